@_exported import ElboAutograd
import CKernels

/// How a parameter tensor is initialised.
public enum Initializer: Sendable, Equatable {
  case zeros
  case constant(Float)
  /// U(−bound, bound).
  case uniform(bound: Float)
  /// N(0, std²).
  case normal(std: Float)
}

/// The name, shape and initialiser of one parameter tensor.
public struct ParameterSpec: Sendable, Equatable {
  public let name: String
  public let shape: [Int]
  public let initializer: Initializer
  public var count: Int { Tensor.elementCount(shape) }
}

/// All of a model's parameters in ONE contiguous buffer, its gradients in another.
///
/// The ordered list of `specs` is the single source of truth (STYLE.md): it fixes each tensor's
/// offset in the flat buffers, the optimizer state layout, the order of the fused all-reduce,
/// the parameter broadcast, and the dataset names in checkpoints. Layers keep only an index
/// into it and see their tensors as views (no copies).
public final class ParameterStore {
  public private(set) var specs: [ParameterSpec] = []
  public private(set) var offsets: [Int] = []
  /// Total number of scalar parameters.
  public private(set) var count = 0
  private var values: Storage?
  private var grads: Storage?

  public init() {}

  /// Declares a parameter; returns its index. Only before `allocate`.
  public func declare(_ name: String, _ shape: [Int], _ initializer: Initializer) -> Int {
    precondition(values == nil, "declare '\(name)' after the store was allocated")
    precondition(!specs.contains { $0.name == name }, "duplicate parameter name '\(name)'")
    specs.append(ParameterSpec(name: name, shape: shape, initializer: initializer))
    offsets.append(count)
    count += Tensor.elementCount(shape)
    return specs.count - 1
  }

  /// Allocates the flat buffers and fills every tensor from its initialiser, with noise keyed by
  /// (seed, initialization, tensor index): the same seed gives the same model on every rank.
  public func allocate(seed: UInt64) {
    precondition(values == nil, "ParameterStore allocated twice")
    values = Storage(capacity: count)
    grads = Storage(capacity: count)
    for (i, spec) in specs.enumerated() {
      let t = value(i)
      var rng = RandomStream(NoiseAddress(seed: seed, purpose: .initialization, item: UInt32(i)))
      switch spec.initializer {
      case .zeros: t.fill(0)
      case .constant(let c): t.fill(c)
      case .uniform(let bound):
        for j in 0..<t.count { t[j] = (2 * rng.uniform() - 1) * bound }
      case .normal(let std):
        rng.fillNormal(t.buffer)
        for j in 0..<t.count { t[j] *= std }
      }
    }
  }

  private var valueStorage: Storage {
    guard let values else { preconditionFailure("ParameterStore used before allocate(seed:)") }
    return values
  }
  private var gradStorage: Storage {
    guard let grads else { preconditionFailure("ParameterStore used before allocate(seed:)") }
    return grads
  }

  /// View of parameter `i`.
  public func value(_ i: Int) -> Tensor {
    Tensor(storage: valueStorage, offset: offsets[i], shape: specs[i].shape)
  }
  /// View of the gradient of parameter `i`.
  public func grad(_ i: Int) -> Tensor {
    Tensor(storage: gradStorage, offset: offsets[i], shape: specs[i].shape)
  }
  /// All parameters as one flat buffer.
  public var flatValues: UnsafeMutableBufferPointer<Float> {
    UnsafeMutableBufferPointer(start: valueStorage.base, count: count)
  }
  /// All gradients as one flat buffer (what the all-reduce sees).
  public var flatGrads: UnsafeMutableBufferPointer<Float> {
    UnsafeMutableBufferPointer(start: gradStorage.base, count: count)
  }

  /// Sets every gradient to 0 (one memset).
  public func zeroGrad() { gradStorage.base.update(repeating: 0, count: count) }

  /// Parameter `i` as a leaf on `tape`, accumulating into its gradient view.
  public func variable(_ i: Int, on tape: Tape) -> Variable {
    tape.parameter(value(i), grad: grad(i))
  }

  public func index(of name: String) -> Int? { specs.firstIndex { $0.name == name } }
}
