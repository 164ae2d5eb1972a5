import CKernels

/// An optimizer updates a flat parameter buffer from a flat gradient buffer.
///
/// Its state is a list of flat buffers the size of the parameters plus scalars, exposed for
/// checkpoints under stable names.
///
/// Updates are elementwise: element i of the new parameters and state depends only on element i
/// of the parameters, gradients and state (plus scalars such as Adam's t). So the update can be
/// split into disjoint ranges done by different ranks, each owning one shard of the flat
/// buffers (ZeRO stage 1, Rajbhandari et al. 2020), with exactly the result of the full update.
public protocol Optimizer: AnyObject {
  /// One step over elements `range` of the flat buffers: params[range] ← params[range] −
  /// step(grads[range]), and the state's elements in `range` advance; nothing outside `range`
  /// is read or written. It counts as one step (Adam's t advances once), so call it once per
  /// training step, with this rank's shard or with the whole buffer.
  ///
  /// - Parameters:
  ///   - params: all parameters, [parameter count].
  ///   - grads: all gradients, [parameter count]; only `range` is read.
  ///   - range: a sub-range of 0..<parameter count.
  func update(_ params: UnsafeMutableBufferPointer<Float>, _ grads: UnsafeBufferPointer<Float>,
              range: Range<Int>)
  /// Learning rate (may be changed by a schedule between steps).
  var learningRate: Float { get set }
  /// Named flat state buffers (each the size of the parameters), e.g. "adam.m".
  var stateBuffers: [(name: String, buffer: UnsafeMutableBufferPointer<Float>)] { get }
  /// Named scalar state, e.g. "adam.t".
  var stateScalars: [String: Double] { get set }
}

extension Optimizer {
  /// One update of every parameter: params ← params − step(grads).
  public func update(_ params: UnsafeMutableBufferPointer<Float>,
                     _ grads: UnsafeBufferPointer<Float>) {
    update(params, grads, range: 0..<params.count)
  }
}

/// Adam (Kingma & Ba, ICLR 2015, Algorithm 1) with bias correction.
///
/// m ← β₁m + (1−β₁)g, v ← β₂v + (1−β₂)g², θ ← θ − α·m̂/(√v̂ + ε), m̂ = m/(1−β₁ᵗ), v̂ = v/(1−β₂ᵗ).
/// Defaults are PyTorch's: α = 1e-3, β = (0.9, 0.999), ε = 1e-8.
public final class Adam: Optimizer {
  public var learningRate: Float
  public let beta1: Float, beta2: Float, epsilon: Float
  /// Steps taken so far (t).
  public private(set) var step = 0
  private let m: Storage, v: Storage
  private let count: Int

  public init(parameterCount: Int, learningRate: Float = 1e-3, beta1: Float = 0.9,
              beta2: Float = 0.999, epsilon: Float = 1e-8) {
    self.learningRate = learningRate
    self.beta1 = beta1; self.beta2 = beta2; self.epsilon = epsilon
    count = parameterCount
    m = Storage(capacity: parameterCount)
    v = Storage(capacity: parameterCount)
  }

  public func update(_ params: UnsafeMutableBufferPointer<Float>,
                     _ grads: UnsafeBufferPointer<Float>, range: Range<Int>) {
    checkUpdate("Adam", count: count, params, grads, range)
    step += 1
    // Fold both bias corrections into the step size and ε (algebraically the same update;
    // computed in Double so that large t stays exact).
    let c1 = 1 - _pow(Double(beta1), Double(step))
    let c2 = 1 - _pow(Double(beta2), Double(step))
    let lrT = Float(Double(learningRate) * c2.squareRoot() / c1)
    let epsT = Float(Double(epsilon) * c2.squareRoot())
    guard !range.isEmpty else { return }
    let i = range.lowerBound
    ek_adam(params.baseAddress! + i, grads.baseAddress! + i, m.base + i, v.base + i, range.count,
            lrT, beta1, beta2, epsT)
  }

  public var stateBuffers: [(name: String, buffer: UnsafeMutableBufferPointer<Float>)] {
    [("adam.m", UnsafeMutableBufferPointer(start: m.base, count: count)),
     ("adam.v", UnsafeMutableBufferPointer(start: v.base, count: count))]
  }
  public var stateScalars: [String: Double] {
    get { ["adam.t": Double(step)] }
    set { if let t = newValue["adam.t"] { step = Int(t) } }
  }
}

/// SGD with (heavy-ball) momentum, PyTorch's form: b ← μb + g, θ ← θ − α·b.
public final class SGD: Optimizer {
  public var learningRate: Float
  public let momentum: Float
  private let velocity: Storage
  private let count: Int

  public init(parameterCount: Int, learningRate: Float, momentum: Float = 0.9) {
    self.learningRate = learningRate
    self.momentum = momentum
    count = parameterCount
    velocity = Storage(capacity: parameterCount)
  }

  public func update(_ params: UnsafeMutableBufferPointer<Float>,
                     _ grads: UnsafeBufferPointer<Float>, range: Range<Int>) {
    checkUpdate("SGD", count: count, params, grads, range)
    let b = velocity.base, mu = momentum, lr = learningRate
    for i in range {
      b[i] = mu * b[i] + grads[i]
      params[i] -= lr * b[i]
    }
  }

  public var stateBuffers: [(name: String, buffer: UnsafeMutableBufferPointer<Float>)] {
    [("sgd.velocity", UnsafeMutableBufferPointer(start: velocity.base, count: count))]
  }
  public var stateScalars: [String: Double] {
    get { [:] }
    set {}
  }
}

/// The preconditions every `Optimizer.update(_:_:range:)` states: full-size buffers, a range
/// inside them.
@inline(__always)
func checkUpdate(_ name: String, count: Int, _ params: UnsafeMutableBufferPointer<Float>,
                 _ grads: UnsafeBufferPointer<Float>, _ range: Range<Int>) {
  precondition(params.count == count && grads.count == count, "\(name): buffer sizes differ")
  precondition(range.lowerBound >= 0 && range.upperBound <= count,
               "\(name): range \(range) is outside the \(count) parameters")
}

#if canImport(Glibc)
import Glibc
@inline(__always) func _pow(_ x: Double, _ y: Double) -> Double { Glibc.pow(x, y) }
#else
import Darwin
@inline(__always) func _pow(_ x: Double, _ y: Double) -> Double { Darwin.pow(x, y) }
#endif
