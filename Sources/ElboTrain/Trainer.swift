import ElboDistributed
import ElboModels

/// The training step, written once: the loop, `elbo bench <model>` and the tests all call
/// ``step(_:)``.
///
/// On every rank:
///
///     this rank's share of the global batch (Sharder)  →  the model's loss terms
///     →  backward into the flat gradient  →  reduce (GradientSync: all-reduce, or the sharded
///        reduce-scatter)  →  one small all-reduce of the loss terms and the per-tensor
///        non-finite flags  →  optimizer update (sharded: this rank's shard, then all-gather)
///
/// Every rank makes the same collective calls in the same order. Whether a step is skipped for a
/// non-finite value is decided on all-reduced values, so all ranks decide alike.
public final class Trainer {
  public let experiment: any Experiment
  public let optimizer: Optimizer
  public let communicator: Communicator
  public let sharder: Sharder
  /// Items per global batch (split over the ranks by ``Sharder/share(of:rank:size:)``).
  public let globalBatch: Int
  /// Floats per bucket of the bucketed exchange.
  public let bucketFloats: Int
  public let gradients: GradientSync
  /// Elementwise and norm clipping of the reduced gradient (off by default).
  public let clipping: GradientClipping
  let tape = Tape()
  private let mine: Range<Int>
  private var permutation: [Int] = []
  private var permutationEpoch = -1

  /// Collective (the gradient exchange may set up a shared-memory window): every rank creates
  /// its trainers in the same order.
  public init(experiment: any Experiment, globalBatch: Int, optimizer: Optimizer,
              method: AllreduceMethod = .trainerDefault,
              bucketFloats: Int = AllreduceMethod.defaultBucketFloats,
              sharedMemory: Bool = true, clipping: GradientClipping = GradientClipping(),
              seed: UInt64, communicator: Communicator) throws {
    self.experiment = experiment
    self.clipping = clipping
    self.optimizer = optimizer
    self.communicator = communicator
    self.globalBatch = globalBatch
    self.bucketFloats = bucketFloats
    sharder = Sharder(itemCount: experiment.itemCount, seed: seed)
    mine = Sharder.share(of: globalBatch, rank: communicator.rank, size: communicator.size)
    gradients = try GradientSync(method, store: experiment.store, communicator: communicator,
                                 bucketFloats: bucketFloats, sharedMemory: sharedMemory)
    guard stepsPerEpoch > 0 else {
      throw ElboError("--batch-size \(globalBatch) is larger than the training set "
        + "(\(experiment.itemCount) items)")
    }
  }

  public var stepsPerEpoch: Int { sharder.stepsPerEpoch(globalBatch: globalBatch) }
  public var method: AllreduceMethod { gradients.method }
  /// The exchange method and its transport, for the run header.
  public var exchangeSummary: String { gradients.summary }

  /// This rank's items of global step `step`: its share of the step's slice of the epoch's
  /// permutation.
  public func items(step: Int) -> ArraySlice<Int> {
    let epoch = step / stepsPerEpoch, inEpoch = step % stepsPerEpoch
    if epoch != permutationEpoch {
      permutation = sharder.permutation(epoch: epoch)
      permutationEpoch = epoch
    }
    let start = inEpoch * globalBatch
    return permutation[(start + mine.lowerBound)..<(start + mine.upperBound)]
  }

  /// What one step did.
  public struct Outcome {
    /// The terms summed over the global batch (the same on every rank).
    public let sums: TermSums
    /// The term or tensor that was non-finite; the parameters were then left untouched.
    public let nonFinite: String?
    /// This rank's items.
    public let items: Int
    /// How many ranks had received a stop signal (SIGTERM, SIGUSR1) when the step began its
    /// loss-terms all-reduce: > 0 on every rank alike (see ``StopSignals``).
    public let stopRanks: Int
    /// The L2 norm of the reduced gradient before norm clipping (after elementwise clipping);
    /// nil when norm clipping is off.
    public let gradientNorm: Double?
    /// Seconds: loss (forward), backward, gradient reduction, optimizer, parameter gather.
    public let seconds: (loss: Double, backward: Double, reduce: Double, update: Double,
                         gather: Double)
  }

  /// One training step at global step `step` (0-based): see the type's documentation.
  public func step(_ step: Int) throws -> Outcome {
    let store = experiment.store
    let items = self.items(step: step)
    let epoch = step / stepsPerEpoch

    let t0 = now()
    tape.reset()
    store.zeroGrad()
    let loss = experiment.loss(items: items, step: step, epoch: epoch,
                               globalBatch: globalBatch, tape: tape)
    let t1 = now()
    let (backward, reduce) = try gradients.backwardAndReduce(loss.loss, on: tape)
    // The loss terms, per parameter tensor whether this rank's part of the reduced gradient is
    // non-finite, and whether this rank was asked to stop: one small all-reduce, after which
    // every rank knows all three.
    // The squared norm of this rank's shard travels in the same all-reduce (after elementwise
    // clipping, which needs no communication: every rank clips the same reduced values).
    if let v = clipping.value { gradients.clipElements(to: v) }
    let termCount = 1 + loss.sums.components.count
    var sums = loss.sums.flat + gradients.nonFiniteFlags()
      + [StopSignals.received != 0 ? 1 : 0, clipping.norm != nil ? gradients.shardSquaredNorm() : 0]
    try communicator.allreduceSum(&sums, name: "loss terms")
    let global = TermSums(flat: sums[0..<termCount])
    let stopRanks = Int(sums[sums.count - 2])
    let norm = clipping.norm != nil ? sums[sums.count - 1].squareRoot() : nil

    if let bad = nonFiniteTerm(global, flags: sums[termCount..<(sums.count - 2)]) {
      return Outcome(sums: global, nonFinite: bad, items: items.count, stopRanks: stopRanks,
                     gradientNorm: norm, seconds: (t1 - t0, backward, reduce, 0, 0))
    }
    if let c = clipping.norm, let norm, norm > Double(c) {
      gradients.scaleGradient(by: Float(Double(c) / norm))
    }
    let (update, gather) = try gradients.update(optimizer)
    return Outcome(sums: global, nonFinite: nil, items: items.count, stopRanks: stopRanks,
                   gradientNorm: norm, seconds: (t1 - t0, backward, reduce, update, gather))
  }

  /// The first component whose global sum is NaN or ±∞ (they say *which* part went bad), then
  /// the bound, then "gradient of <tensor>" for the first tensor whose reduced gradient is.
  func nonFiniteTerm(_ sums: TermSums, flags: ArraySlice<Double>) -> String? {
    let names = experiment.terms
    for (name, v) in zip(names.components, sums.components) where !v.isFinite { return name }
    if !sums.bound.isFinite { return names.bound }
    return gradients.nonFiniteTensor(flags)
  }

  /// Makes the optimizer state whole on every rank before a checkpoint (collective).
  public func gatherOptimizerState() throws {
    try gradients.gatherOptimizerState(optimizer)
  }
}

/// Clipping of the reduced (summed over ranks) gradient before the optimizer step: each element
/// to [−value, value], then the whole vector to L2 norm ≤ norm (PyTorch's clip_grad_value_ and
/// clip_grad_norm_, in that order). Both act on the global gradient, so the result does not
/// depend on the number of ranks.
public struct GradientClipping: Sendable, Equatable {
  public var value: Float?
  public var norm: Float?
  public init(value: Float? = nil, norm: Float? = nil) {
    self.value = value
    self.norm = norm
  }
}
