/// One named float tensor of a checkpoint (parameters or optimizer state), row-major.
public struct CheckpointTensor: Sendable, Equatable {
  /// Path-like name; slashes become HDF5 groups (e.g. `params/encoder.fc1.weight`).
  public var name: String
  /// The tensor's shape (`[]` for a single number).
  public var shape: [Int]
  /// The elements, row-major; `data.count` equals the product of `shape`.
  public var data: [Float]

  public init(name: String, shape: [Int], data: [Float]) {
    self.name = name
    self.shape = shape
    self.data = data
  }
}

/// Everything needed to resume a run exactly. See `LAYOUT.md` for how it is stored.
public struct CheckpointState: Sendable, Equatable {
  /// The newest layout this code writes and reads.
  public static let currentFormatVersion = 1

  /// Layout version (currently 1).
  public var formatVersion: Int
  /// The model kind, its registered name.
  public var model: String
  /// The resolved run configuration, as JSON.
  public var configJSON: String
  /// Optimizer steps done.
  public var step: Int64
  /// The current epoch.
  public var epoch: Int64
  /// Examples of the epoch's permutation already consumed (global, over all ranks).
  public var positionInEpoch: Int64
  /// The run's seed.
  public var seed: UInt64
  /// Parameters and optimizer state, in the caller's order (the order is preserved).
  public var tensors: [CheckpointTensor]
  /// Named scalars, e.g. `optimizer/adam.t`, `optimizer/lr`.
  public var scalars: [String: Double]
  /// RNG state, one row per rank, all rows the same length.
  ///
  /// When saving, pass either all `size` rows (identical on every rank; rank r's row is
  /// `rngState[r]`) or just this rank's own row (`rngState.count == 1`). When loading, it holds
  /// the rows as written, i.e. as many as the writing job had ranks.
  public var rngState: [[UInt64]]

  public init(formatVersion: Int = CheckpointState.currentFormatVersion, model: String,
              configJSON: String, step: Int64, epoch: Int64, positionInEpoch: Int64,
              seed: UInt64, tensors: [CheckpointTensor], scalars: [String: Double],
              rngState: [[UInt64]])
  {
    self.formatVersion = formatVersion
    self.model = model
    self.configJSON = configJSON
    self.step = step
    self.epoch = epoch
    self.positionInEpoch = positionInEpoch
    self.seed = seed
    self.tensors = tensors
    self.scalars = scalars
    self.rngState = rngState
  }

  /// The tensor named `name`, if present.
  public func tensor(_ name: String) -> CheckpointTensor? { tensors.first { $0.name == name } }
}
