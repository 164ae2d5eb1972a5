import CKernels

/// The Neural Autoregressive Distribution Estimator (Larochelle & Murray, AISTATS 2011).
///
/// An exact, tractable density over binary vectors, factorised in a fixed input order:
///   p(x) = Π_d p(x_d | x_<d),   p(x_d = 1 | x_<d) = σ(b_d + V_d · h_d),   h_d = σ(c + W_<d x_<d)
/// with the input weights W tied across the D conditionals (paper eq. 2–3), so that all D hidden
/// vectors come from one running sum a_{d+1} = a_d + x_d W_d: O(HD) per example (Algorithm 1).
/// No latent variables and no bound: the loss is the exact negative log-likelihood.
///
/// Shapes: R rows, D inputs (784 for MNIST, in raster order), H hidden units (500 in the paper).
///   W [D, H]   c [H]   V [D, H]   b [D]      (input-major: row d belongs to input d)
///
/// Initialisation (seeded, the same on every rank): W ~ U(±1/√D) so that the running sum after
/// the ~D/3 ones of a digit stays O(1) (std ≈ 1/3) and the sigmoids start unsaturated;
/// V ~ U(±1/√H), the PyTorch default of an H → 1 linear layer per output; c = b = 0, so training
/// starts from p(x_d = 1 | ·) ≈ ½ (setting b to the data's log-odds would start lower, but the
/// model would then depend on the data at construction).
public final class NADE {
  public struct Config: Codable, Equatable, Sendable {
    /// D, the number of binary inputs.
    public var inputs = 784
    /// H, the number of sigmoid hidden units.
    public var hidden = 500
    public init(inputs: Int = 784, hidden: Int = 500) {
      self.inputs = inputs
      self.hidden = hidden
    }
  }

  public let config: Config
  public let store = ParameterStore()
  /// Tied input weights W [D, H].
  public let W: Int
  /// Hidden bias c [H].
  public let c: Int
  /// Output weights V [D, H].
  public let V: Int
  /// Output bias b [D].
  public let b: Int

  public init(_ config: Config, seed: UInt64) {
    precondition(config.inputs > 0 && config.hidden > 0,
                 "NADE needs inputs > 0 and hidden > 0, got \(config.inputs), \(config.hidden)")
    self.config = config
    let d = config.inputs, h = config.hidden
    W = store.declare("nade.W", [d, h], .uniform(bound: 1 / Float(d).squareRoot()))
    c = store.declare("nade.c", [h], .zeros)
    V = store.declare("nade.V", [d, h], .uniform(bound: 1 / Float(h).squareRoot()))
    b = store.declare("nade.b", [d], .zeros)
    store.allocate(seed: seed)
  }

  // MARK: - Likelihood

  /// Exact log p(x) [R] of binary inputs x [R, D] (a constant: data), differentiable in the
  /// parameters.
  public func logLikelihood(_ x: Variable, on tape: Tape) -> Variable {
    fused(x.value, on: tape).logp
  }

  private func fused(_ x: Tensor, on tape: Tape) -> (logp: Variable, logits: Tensor) {
    precondition(x.cols == config.inputs, "NADE expects [R, \(config.inputs)] inputs, got \(x.shape)")
    return nadeLogLikelihood(x, W: store.variable(W, on: tape), c: store.variable(c, on: tape),
                             V: store.variable(V, on: tape), b: store.variable(b, on: tape))
  }

  /// The per-batch terms: the loss to minimise and the per-example log-likelihood.
  public struct Terms {
    /// −(Σ over this rank's rows of log p(x)) / normalizer.
    public let loss: Variable
    /// log p(x) per example [R] (nats).
    public let logLikelihood: Tensor
  }

  /// - Parameters:
  ///   - x: binarised inputs [R, D].
  ///   - normalizer: pass the GLOBAL batch size, so that summing gradients over ranks gives the
  ///     gradient of the global mean negative log-likelihood.
  public func terms(x: Tensor, normalizer: Float, on tape: Tape) -> Terms {
    let logp = fused(x, on: tape).logp
    return Terms(loss: logp.sum().affine(scale: -1 / normalizer), logLikelihood: logp.value)
  }

  // MARK: - Conditionals and samples

  /// p(x_d = 1 | x_<d) [R, D] for inputs x [R, D] (e.g. to picture what the model expects next).
  public func conditionals(x: Tensor) -> Tensor {
    let tape = Tape(recording: false)
    let logits = fused(x, on: tape).logits
    let p = Tensor(zeros: logits.shape)
    ek_sigmoid(logits.pointer, p.pointer, logits.count)
    return p
  }

  /// `count` ancestral samples x ~ p(x) [count, D]: x_1 first, then each x_d from
  /// p(x_d | x_<d) given the pixels already drawn.
  ///
  /// Noise: sample i takes its D uniforms from the address (seed, evaluation, time,
  /// firstItem + i) — keyed by what the sample is, never by rank, so sample i is the same
  /// whoever draws it and however the samples are split.
  public func sample(count: Int, seed: UInt64, time: UInt64 = 0, firstItem: Int = 0) -> Tensor {
    let d = config.inputs, h = config.hidden
    let u = Tensor(zeros: [count, d]), x = Tensor(zeros: [count, d])
    let logits = Tensor(zeros: [count, d])
    for i in 0..<count {
      var rng = RandomStream(NoiseAddress(seed: seed, purpose: .evaluation, time: time,
                                          item: UInt32(firstItem + i)))
      rng.fillUniform(UnsafeMutableBufferPointer(start: u.pointer + i * d, count: d))
    }
    ek_nade_sample(store.value(W).pointer, store.value(c).pointer, store.value(V).pointer,
                   store.value(b).pointer, u.pointer, x.pointer, logits.pointer, count, d, h)
    return x
  }
}
