@_exported import ElboProbability

/// Variational autoencoder (Kingma & Welling, ICLR 2014; Rezende et al., ICML 2014; seed 004 §3)
/// with the importance-weighted bound of Burda et al. (ICLR 2016) as an alternative objective.
///
/// Generative story:   z ~ p(z) = N(0, I_L),   x | z ~ Bernoulli(σ(decoder(z)))   (x ∈ {0,1}^D)
/// Approximate posterior: q(z|x) = N(μ(x), diag σ²(x)), [μ, log σ²] = encoder(x)
/// Objective (per example, maximised):
///   elbo: log p(x|z) − KL(q(z|x) ‖ p(z)), z = μ + σ ⊙ ε, ε ~ N(0, I), KL analytic
///         (with k > 1 samples, the mean over samples of log p(x|z_s), minus the same KL);
///   iwae: log (1/k) Σ_s p(x, z_s)/q(z_s|x)   (Burda et al. eq. 8).
///
/// Flow posterior (Rezende & Mohamed 2015, §4, eq. 15; `config.flow`, K = flow length > 0):
///   z₀ = μ + σ ⊙ ε,  z_K = f_K ∘ … ∘ f₁(z₀),  log q_K(z_K|x) = log q₀(z₀|x) − Σ_k log|det ∂f_k|,
/// and the bound uses z_K with that density exactly: log p(x|z_K) + log p(z_K) − log q_K(z_K|x)
/// (the KL is then a Monte Carlo estimate; K = 0 keeps the analytic one). Amortised flows read
/// their per-example parameters (IAF: its context h) from extra encoder columns after μ ‖ log σ².
///
/// Shapes: R rows in the batch, D = 784 inputs, H hidden units, L latent units, k samples,
/// C = flow.contextWidth(L) flow context columns (0 without a flow).
///   encoder: D → H → H → 2L + C (μ ‖ log σ² ‖ flow context)   decoder: L → H → H → D (logits)
/// Seed 004 uses ReLU, H = 200, L = 200; Burda et al. use tanh, H = 200, L = 50.
public final class VAE {
  public struct Config: Codable, Equatable, Sendable {
    public var inputs = 784
    public var hidden = 200
    public var hiddenLayers = 2
    public var latent = 50
    public var activation: Activation = .relu
    public var objective: Objective = .elbo
    /// Samples per example in the training objective (k of IWAE; averaged for the ELBO).
    public var samples = 1
    /// The flow that turns q₀ into q_K (length 0: none, q = q₀).
    public var flow = FlowChainSpec()
    /// The posterior family: the diagonal Gaussian, or semi-implicit (VAE+SemiImplicit.swift).
    public var posterior: PosteriorFamily = .gaussian
    /// K, the extra mixture components of SIVI's surrogate of log q(z|x) in training.
    public var mixSamples = 50
    /// E, the dimension of the mixing noise ε fed to the encoder (semi-implicit only).
    public var mixingNoise = 10
    /// p(z): standard normal, or a DSIVI mixture prior (VAE+Prior.swift).
    public var prior: PriorFamily = .standard
    /// K of the mixture prior: pseudo-inputs (dsivi-agg) or draws of ζ (semi-implicit).
    public var priorSamples = 100
    /// The semi-implicit prior's ζ dimension and hidden width of T_θ(ζ).
    public var priorNoise = 10
    public var priorHidden = 100
    public init() {}
  }

  public enum Objective: String, Codable, Sendable, CaseIterable { case elbo, iwae }

  public let config: Config
  public let store = ParameterStore()
  public let encoder: MLP
  public let decoder: MLP
  /// f_K ∘ … ∘ f₁ (empty without a flow); amortised steps read the encoder's columns from 2L on.
  public let flow: FlowChain
  /// W_ε [E, H₁], the encoder's first-layer weights for the mixing noise ε (semi-implicit
  /// posteriors only; declared after every other tensor, so the Gaussian layout is unchanged).
  public let mixingWeight: Int?
  /// The mixture prior's parameters (pseudo-inputs, or T_θ's layers); nil for N(0, I).
  public let prior: PriorParameters?
  /// Hierarchical VI's reverse model s_ξ(ε|z, x) (VAE+Hierarchical.swift); nil otherwise.
  public let reverse: MLP?

  /// Whether q is a flow posterior (K > 0).
  public var hasFlow: Bool { config.flow.length > 0 }

  /// Encoder outputs: 2L + C (μ, log σ², the flow's context).
  public var encoderWidth: Int {
    2 * config.latent + config.flow.contextWidth(dimension: config.latent)
  }

  public init(_ config: Config, seed: UInt64) {
    self.config = config
    let h = Array(repeating: config.hidden, count: config.hiddenLayers)
    let l = config.latent
    encoder = MLP(store, "encoder",
                  sizes: [config.inputs] + h + [2 * l + config.flow.contextWidth(dimension: l)],
                  activation: config.activation)
    decoder = MLP(store, "decoder", sizes: [config.latent] + h + [config.inputs],
                  activation: config.activation)
    // Global flow parameters (and IAF's MADEs) come after the decoder's: with K = 0 nothing is
    // declared and the layout is the plain VAE's.
    flow = config.flow.makeChain(store: store, name: "flow", dimension: l, contextOffset: 2 * l)
    mixingWeight = VAE.declareMixingWeight(config, store: store, encoder: encoder)
    reverse = VAE.declareReverse(config, store: store)
    prior = VAE.declarePrior(config, store: store)
    store.allocate(seed: seed)
  }

  /// q₀(z|x) for a batch x [R, D] (the posterior itself when there is no flow).
  public func posterior(_ x: Variable) -> DiagonalNormal {
    encode(x).base
  }

  /// q₀(z|x) and the encoder's whole output [R, 2L + C] (the flow's context).
  public func encode(_ x: Variable) -> (base: DiagonalNormal, context: Variable) {
    let out = encoder(x, store)  // [R, 2L + C]
    let l = config.latent
    return (DiagonalNormal(mean: out.columns(0..<l), logVariance: out.columns(l..<(2 * l))), out)
  }

  /// A draw from q_K(z|x) for every (sample, row) and its log-density, by the pieces of
  /// `FlowDistribution.sample` (kept apart so that Σ log|det| can be logged):
  /// z₀ = μ + σ ⊙ ε, (z_K, Σ log|det|) = f(z₀; context), log q_K = log q₀(z₀) − Σ log|det|.
  /// - Parameters: x [R, D]; noise ε [k, R, L].
  /// - Returns: z_K [kR, L] and log q_K(z_K|x), Σ_k log|det ∂f_k| [kR] (rows sample-major,
  ///   s·R + e, as the noise), and q₀'s mean μ(x) [R, L].
  public func flowSample(x: Variable, noise: Tensor)
    -> (z: Variable, logQ: Variable, logDet: Variable, mean: Variable) {
    let k = noise.shape[0], r = x.value.rows, l = config.latent
    let (q0, out) = encode(x)
    // k samples per example: the encoder's output repeated k times along the rows.
    let context = k == 1 ? out : repeatedRows(out, k)                   // [kR, 2L + C]
    let base = k == 1 ? q0 : DiagonalNormal(mean: context.columns(0..<l),
                                            logVariance: context.columns(l..<(2 * l)))
    let z0 = base.sample(noise: noise.reshaped([k * r, l]))             // [kR, L]
    let (z, logDet) = flow.forward(z0, context: context)                // [kR, L], [kR]
    return (z, base.logProb(z0) - logDet, logDet, q0.mean)
  }

  /// p(x|z) for latents z [N, L].
  public func likelihood(_ z: Variable) -> BernoulliLogits {
    BernoulliLogits(logits: decoder(z, store))
  }

  /// Per-batch terms, each per example ([R]), plus the loss to minimise.
  public struct Terms {
    /// −(Σ over this rank's rows of the bound) / normalizer: the quantity to differentiate.
    public let loss: Variable
    /// The per-example bound maximised (ELBO or IWAE-k): −F in the seed's notation.
    public let bound: Tensor
    /// log p(x|z), averaged over the k samples.
    public let logLikelihood: Tensor
    /// Analytic KL(q(z|x) ‖ p(z)).
    public let kl: Tensor
    /// The seed's "surprise" log p(z) − log q(z|x), Monte Carlo, averaged over samples.
    public let surprise: Tensor
    /// Σ_k log|det ∂f_k/∂z_{k−1}|, averaged over samples (zeros without a flow).
    public let logDet: Tensor
    /// μ(x) [R, L] (for counting active units).
    public let posteriorMean: Tensor
    /// Semi-implicit posterior: Monte Carlo log p(z) and SIVI's surrogate of log q(z|x) [R].
    public var logPrior: Tensor? = nil
    public var logQSurrogate: Tensor? = nil
  }

  /// Computes the objective for a batch.
  ///
  /// - Parameters:
  ///   - x: binarised inputs [R, D].
  ///   - noise: ε ~ N(0, I), [k, R, L].
  ///   - normalizer: the loss is Σ_rows(−bound) / normalizer; pass the GLOBAL batch size so that
  ///     summing gradients over ranks gives the gradient of the global mean.
  ///   - klWeight: β multiplying the KL (K = 0) or the surprise log p(z) − log q(z|x) (a flow,
  ///     and IWAE's log-weights) in the loss: a warm-up's β_t ∈ (0, 1]; 1 is the bound itself.
  ///     `Terms.bound` is always the bound with β = 1.
  public func terms(x: Tensor, noise: Tensor, normalizer: Float, klWeight beta: Float = 1,
                    on tape: Tape) -> Terms {
    let k = noise.shape[0], r = x.rows, l = config.latent
    precondition(noise.shape == [k, r, l], "noise \(noise.shape), expected [\(k), \(r), \(l)]")
    if hasFlow {
      return flowTerms(x: x, noise: noise, normalizer: normalizer, klWeight: beta, on: tape)
    }
    let q = posterior(tape.constant(x))
    let z = q.sample(noise: noise)                                // [k, R, L]
    let logits = decoder(z.reshaped([k * r, l]), store)           // [kR, D]
    let logPxz = BernoulliLogits(logits: logits).logProb(tiled(x, k, tape))
      .reshaped([k, r])                                           // [k, R]
    let surprise = StandardNormal.logProb(z) - q.logProb(z)       // [k, R]
    let kl = q.klToStandardNormal()                               // [R]
    let meanLogPxz = logPxz.mean(axis: 0)                         // [R]

    let bound: Variable
    switch config.objective {
    case .elbo: bound = Bound.elbo(logLikelihood: meanLogPxz, kl: kl)
    case .iwae: bound = Bound.iwae(logWeights: logPxz + surprise)
    }
    // The warmed-up objective (β < 1) is differentiated; the bound is still logged.
    var objective = bound
    if beta != 1 {
      switch config.objective {
      case .elbo: objective = Bound.elbo(logLikelihood: meanLogPxz, kl: kl.affine(scale: beta))
      case .iwae: objective = Bound.iwae(logWeights: logPxz + surprise.affine(scale: beta))
      }
    }
    let loss = objective.sum().affine(scale: -1 / normalizer)
    return Terms(loss: loss, bound: bound.value, logLikelihood: meanLogPxz.value,
                 kl: kl.value, surprise: surprise.mean(axis: 0).value,
                 logDet: zeros(r, tape), posteriorMean: q.mean.value)
  }

  /// `terms` with a flow posterior: z_K from `flowSample`, log p(x|z_K), the surprise
  /// log p(z_K) − log q_K(z_K|x) [k, R], KL estimated as minus its mean over the k samples.
  private func flowTerms(x: Tensor, noise: Tensor, normalizer: Float, klWeight beta: Float,
                         on tape: Tape) -> Terms {
    let k = noise.shape[0], r = x.rows
    let q = flowSample(x: tape.constant(x), noise: noise)
    let logPxz = BernoulliLogits(logits: decoder(q.z, store)).logProb(tiled(x, k, tape))
      .reshaped([k, r])                                             // [k, R]
    let surprise = (StandardNormal.logProb(q.z) - q.logQ).reshaped([k, r])  // [k, R]
    let meanLogPxz = logPxz.mean(axis: 0)                           // [R]
    let kl = -surprise.mean(axis: 0)                                // Monte Carlo KL [R]
    func bound(_ beta: Float) -> Variable {
      switch config.objective {
      case .elbo:
        return Bound.elbo(logLikelihood: meanLogPxz, kl: beta == 1 ? kl : kl.affine(scale: beta))
      case .iwae:
        return Bound.iwae(logWeights: logPxz + (beta == 1 ? surprise : surprise.affine(scale: beta)))
      }
    }
    let objective = bound(beta)
    let value = beta == 1 ? objective.value : bound(1).value
    let loss = objective.sum().affine(scale: -1 / normalizer)
    return Terms(loss: loss, bound: value, logLikelihood: meanLogPxz.value, kl: kl.value,
                 surprise: surprise.mean(axis: 0).value,
                 logDet: q.logDet.reshaped([k, r]).mean(axis: 0).value,
                 posteriorMean: q.mean.value)
  }

  /// log w_s = log p(x, z_s) − log q(z_s|x) for importance-sampled evaluation: x [R, D],
  /// noise [k, R, L] → [k, R]. Use a non-recording tape.
  /// With a flow, log w_s = log p(x|z_K) + log p(z_K) − log q_K(z_K|x).
  public func logWeights(x: Tensor, noise: Tensor, on tape: Tape) -> Tensor {
    let k = noise.shape[0], r = x.rows, l = config.latent
    if hasFlow {
      let q = flowSample(x: tape.constant(x), noise: noise)
      let logPxz = BernoulliLogits(logits: decoder(q.z, store)).logProb(tiled(x, k, tape))
      return (logPxz + StandardNormal.logProb(q.z) - q.logQ).reshaped([k, r]).value
    }
    let q = posterior(tape.constant(x))
    let z = q.sample(noise: noise)
    let logits = decoder(z.reshaped([k * r, l]), store)
    let logPxz = BernoulliLogits(logits: logits).logProb(tiled(x, k, tape)).reshaped([k, r])
    return (logPxz + StandardNormal.logProb(z) - q.logProb(z)).value
  }

  /// Bernoulli means σ(decoder(z)) for latents z [N, L] (samples from the prior when z ~ N(0,I)).
  public func decode(_ z: Tensor, on tape: Tape) -> Tensor {
    likelihood(tape.constant(z)).probabilities.value
  }

  /// The posterior's central latent for reconstructions: μ(x) pushed through the flow
  /// (z_K at ε = 0), [R, L]; μ(x) itself without a flow.
  public func centralLatent(_ x: Variable) -> Variable {
    let (q0, out) = encode(x)
    return hasFlow ? flow.forward(q0.mean, context: out).z : q0.mean
  }

  /// [n] zeros in the tape's arena.
  private func zeros(_ n: Int, _ tape: Tape) -> Tensor {
    let t = tape.tensor([n])
    t.pointer.update(repeating: 0, count: n)
    return t
  }

  /// v [R, C] repeated k times along the rows: [kR, C], row s·R + e = v[e] (gradients summed
  /// back over the k copies by the broadcast's backward).
  private func repeatedRows(_ v: Variable, _ k: Int) -> Variable {
    let r = v.value.rows, c = v.value.cols
    let none = v.tape.constant(zeros(k, v.tape).reshaped([k, 1, 1]))
    return (v.reshaped([1, r, c]) + none).reshaped([k * r, c])
  }

  /// x repeated k times along a new leading axis: [R, D] → [k·R, D] (arena memory).
  private func tiled(_ x: Tensor, _ k: Int, _ tape: Tape) -> Tensor {
    if k == 1 { return x }
    let t = tape.tensor([k * x.rows, x.cols])
    for s in 0..<k { (t.pointer + s * x.count).update(from: x.pointer, count: x.count) }
    return t
  }
}
