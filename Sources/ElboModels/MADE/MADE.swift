/// MADE: Masked Autoencoder for Distribution Estimation (Germain, Gregor, Murray & Larochelle,
/// ICML 2015), for binary data.
///
/// Model: an autoregressive factorisation in the ordering m⁰ of mask i,
///   p(x | i) = Π_d Bernoulli(x_d | σ(l_d(x))),   l(x) = b^V + h^L·(V ⊙ M^V) [+ x·(A ⊙ M^A)],
///   h^l = act(b^l + h^{l−1}·(W^l ⊙ M^l)),  h⁰ = x                    (§4)
/// where the masks (`MADEMasks`) make l_d depend only on the x_j with m⁰(j) < m⁰(d), so every
/// p(x | i) is exactly normalised over {0,1}^D.
/// Training (order- and connectivity-agnostic, §4): minimise −log p(x | i) over minibatches,
/// mask i changing from step to step. Step t uses `trainingMaskIndex(step: t)`: a fresh uniform
/// draw from 0..<masks keyed by NoiseAddress(seed, .maskSchedule, time t) — the same on every
/// rank and after a resume, independent of the data order. With masks ≤ 1 it is always mask 0, with the
/// natural ordering m⁰(d) = d + 1 (also when `orderAgnostic`).
/// Test: log p(x) ≈ log (1/M) Σ_{m<M} p(x | m) over the first M = `testMaskIndices`
/// training masks (log-mean-exp in Double).
///
/// Shapes: R rows, D inputs (784 for MNIST), H_l hidden units of layer l (Germain et al. use one
/// or two layers of 500 and up to 32 masks).
///   hidden l:  `hidden<l>.weight` [H_{l−1}, H_l], `hidden<l>.bias` [H_l]   (H_0 = D)
///   output:    `output.weight` [H_L, D], `output.bias` [D]
///   direct:    `direct.weight` [D, D]   (only with `directConnections`; no bias)
/// Initialisation: every layer as PyTorch's `nn.Linear` (U(±1/√fan-in)), as `Linear`.
///
/// Not thread-safe: the model caches the masks of the last index it used.
public final class MADE {
  public struct Config: Codable, Equatable, Sendable {
    public var inputs = 784
    public var hidden = [500]
    public var activation: Activation = .relu
    /// Distinct masks cycled through in training; 0 or 1 = one fixed natural-order mask.
    public var masks = 1
    /// Whether each training mask also draws its own input ordering (only when masks > 1).
    public var orderAgnostic = false
    /// M: masks averaged by `testLogLikelihood` (at most `masks` distinct ones are used).
    public var testMasks = 8
    /// Direct (masked, strictly autoregressive) input→output connections.
    public var directConnections = false
    public init() {}
  }

  public let config: Config
  public let store = ParameterStore()
  public let hiddenLayers: [MaskedLinear]
  public let outputLayer: MaskedLinear
  public let directLayer: MaskedLinear?
  public let connectivity: MADEMasks
  public let seed: UInt64
  private var cached: (set: MADEMaskSet, direct: Tensor?)?

  /// Parameters and masks both come from `seed` (different noise purposes).
  public init(_ config: Config, seed: UInt64) {
    self.config = config
    self.seed = seed
    let d = config.inputs
    let widths = [d] + config.hidden, store = self.store
    hiddenLayers = config.hidden.indices.map { l in
      MaskedLinear(store, "hidden\(l + 1)", widths[l], widths[l + 1])
    }
    outputLayer = MaskedLinear(store, "output", widths[widths.count - 1], d)
    directLayer = config.directConnections
      ? MaskedLinear(store, "direct", d, d, bias: false) : nil
    connectivity = MADEMasks(inputs: d, hidden: config.hidden, seed: seed,
                             orderAgnostic: config.orderAgnostic && config.masks > 1)
    store.allocate(seed: seed)
  }

  // MARK: - Masks

  /// The degrees and masks of mask `index` (cached for the last index used).
  public func masks(_ index: Int) -> MADEMaskSet { maskSet(index).set }

  private func maskSet(_ index: Int) -> (set: MADEMaskSet, direct: Tensor?) {
    if let c = cached, c.set.index == index { return c }
    let set = connectivity(index)
    let entry = (set: set, direct: directLayer == nil ? nil : set.direct)
    cached = entry
    return entry
  }

  /// The mask training step `step` uses: uniform in 0..<masks, keyed by (seed, .maskSchedule,
  /// step) — a fresh draw per minibatch, identical on every rank and after a resume.
  public func trainingMaskIndex(step: UInt64) -> Int {
    guard config.masks > 1 else { return 0 }
    var rng = RandomStream(NoiseAddress(seed: seed, purpose: .maskSchedule, time: step))
    return rng.integer(below: config.masks)
  }

  /// The masks `testLogLikelihood` averages: 0..<min(testMasks, max(masks, 1)).
  public var testMaskIndices: Range<Int> {
    0..<max(1, min(config.testMasks, max(config.masks, 1)))
  }

  // MARK: - Forward

  /// Logits l(x) [R, D] of the conditionals p(x_d = 1 | x_<d) under mask `maskIndex`; x [R, D]
  /// (binary for a likelihood; any real values for checking the autoregressive property).
  public func logits(_ x: Variable, maskIndex: Int) -> Variable {
    let (set, direct) = maskSet(maskIndex)
    var h = x
    for (l, layer) in hiddenLayers.enumerated() {
      h = config.activation(layer.with(mask: set.hidden[l])(h, store))   // [R, H_l]
    }
    var out = outputLayer.with(mask: set.output)(h, store)                // [R, D]
    if let directLayer, let direct {
      out = out + directLayer.with(mask: direct)(x, store)                // + x·(A ⊙ mask)
    }
    return out
  }

  /// log p(x | mask) per example: x [R, D] in {0, 1} → [R].
  public func logLikelihood(_ x: Tensor, maskIndex: Int, on tape: Tape) -> Variable {
    precondition(x.cols == config.inputs, "MADE: x \(x.shape), expected [R, \(config.inputs)]")
    return BernoulliLogits(logits: logits(tape.constant(x), maskIndex: maskIndex)).logProb(x)
  }

  /// Per-batch terms plus the loss to minimise.
  public struct Terms {
    /// −(Σ over this rank's rows of log p(x | mask)) / normalizer.
    public let loss: Variable
    /// log p(x | mask) per example [R].
    public let logLikelihood: Tensor
  }

  /// The training objective for a batch x [R, D] under mask `maskIndex` (for step t, pass
  /// `trainingMaskIndex(step: t)`). `normalizer`: the GLOBAL batch size, so that summing the
  /// gradients over ranks gives the gradient of the global mean.
  public func terms(x: Tensor, maskIndex: Int, normalizer: Float, on tape: Tape) -> Terms {
    let ll = logLikelihood(x, maskIndex: maskIndex, on: tape)   // [R]
    return Terms(loss: ll.sum().affine(scale: -1 / normalizer), logLikelihood: ll.value)
  }

  /// log (1/M) Σ_m p(x | mask m) per example over `testMaskIndices`; x [R, D] → [R]. Each mask's
  /// log-likelihood is computed in Float, the log-mean-exp in Double around the per-example
  /// maximum (stable when the masks disagree by hundreds of nats).
  public func testLogLikelihood(_ x: Tensor) -> [Double] {
    let tape = Tape(recording: false)
    var average = ImportanceSampledLogLikelihood(examples: x.rows)
    for m in testMaskIndices {
      tape.reset()
      average.add(logWeights: logLikelihood(x, maskIndex: m, on: tape).value)
    }
    return average.estimates
  }

  // MARK: - Sample and pictures

  /// The conditionals p(x_d = 1 | x_<d) = σ(l_d(x)) [R, D] under mask `maskIndex`, x [R, D].
  public func conditionals(_ x: Tensor, maskIndex: Int) -> Tensor {
    let tape = Tape(recording: false)
    return logits(tape.constant(x), maskIndex: maskIndex).sigmoid().value
  }

  /// `count` ancestral samples [count, D] in {0, 1}: x_d is drawn in the order of mask
  /// `maskIndex`, x_d = 1[u_{r,d} < σ(l_d(x))] with u_{r,·} the uniforms of
  /// NoiseAddress(seed, .sampling, item r) — D forward passes.
  public func sample(count: Int, maskIndex: Int, seed: UInt64) -> Tensor {
    let d = config.inputs
    let x = Tensor(zeros: [count, d])              // [count, D], filled in sampling order
    let u = Tensor(zeros: [count, d])              // [count, D] uniforms, in input order
    for r in 0..<count {
      var rng = RandomStream(NoiseAddress(seed: seed, purpose: .sampling, item: UInt32(r)))
      rng.fillUniform(UnsafeMutableBufferPointer(start: u.pointer + r * d, count: d))
    }
    let tape = Tape(recording: false)
    for j in masks(maskIndex).samplingOrder {
      tape.reset()
      let l = logits(tape.constant(x), maskIndex: maskIndex).value   // [count, D]
      for r in 0..<count {
        let p = 1 / (1 + _exp(-Double(l[r * d + j])))
        x[r * d + j] = Double(u[r * d + j]) < p ? 1 : 0
      }
    }
    return x
  }
}

#if canImport(Glibc)
import Glibc
@inline(__always) private func _exp(_ x: Double) -> Double { Glibc.exp(x) }
#else
import Darwin
@inline(__always) private func _exp(_ x: Double) -> Double { Darwin.exp(x) }
#endif
