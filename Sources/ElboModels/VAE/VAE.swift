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
/// Shapes: R rows in the batch, D = 784 inputs, H hidden units, L latent units, k samples.
///   encoder: D → H → H → 2L (μ ‖ log σ²)        decoder: L → H → H → D (logits)
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
    public init() {}
  }

  public enum Objective: String, Codable, Sendable, CaseIterable { case elbo, iwae }

  public let config: Config
  public let store = ParameterStore()
  public let encoder: MLP
  public let decoder: MLP

  public init(_ config: Config, seed: UInt64) {
    self.config = config
    let h = Array(repeating: config.hidden, count: config.hiddenLayers)
    encoder = MLP(store, "encoder", sizes: [config.inputs] + h + [2 * config.latent],
                  activation: config.activation)
    decoder = MLP(store, "decoder", sizes: [config.latent] + h + [config.inputs],
                  activation: config.activation)
    store.allocate(seed: seed)
  }

  /// q(z|x) for a batch x [R, D].
  public func posterior(_ x: Variable) -> DiagonalNormal {
    let out = encoder(x, store)  // [R, 2L]
    let l = config.latent
    return DiagonalNormal(mean: out.columns(0..<l), logVariance: out.columns(l..<(2 * l)))
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
    /// μ(x) [R, L] (for counting active units).
    public let posteriorMean: Tensor
  }

  /// Computes the objective for a batch.
  ///
  /// - Parameters:
  ///   - x: binarised inputs [R, D].
  ///   - noise: ε ~ N(0, I), [k, R, L].
  ///   - normalizer: the loss is Σ_rows(−bound) / normalizer; pass the GLOBAL batch size so that
  ///     summing gradients over ranks gives the gradient of the global mean.
  public func terms(x: Tensor, noise: Tensor, normalizer: Float, on tape: Tape) -> Terms {
    let k = noise.shape[0], r = x.rows, l = config.latent
    precondition(noise.shape == [k, r, l], "noise \(noise.shape), expected [\(k), \(r), \(l)]")
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
    let loss = bound.sum().affine(scale: -1 / normalizer)
    return Terms(loss: loss, bound: bound.value, logLikelihood: meanLogPxz.value,
                 kl: kl.value, surprise: surprise.mean(axis: 0).value,
                 posteriorMean: q.mean.value)
  }

  /// log w_s = log p(x, z_s) − log q(z_s|x) for importance-sampled evaluation: x [R, D],
  /// noise [k, R, L] → [k, R]. Use a non-recording tape.
  public func logWeights(x: Tensor, noise: Tensor, on tape: Tape) -> Tensor {
    let k = noise.shape[0], r = x.rows, l = config.latent
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

  /// x repeated k times along a new leading axis: [R, D] → [k·R, D] (arena memory).
  private func tiled(_ x: Tensor, _ k: Int, _ tape: Tape) -> Tensor {
    if k == 1 { return x }
    let t = tape.tensor([k * x.rows, x.cols])
    for s in 0..<k { (t.pointer + s * x.count).update(from: x.pointer, count: x.count) }
    return t
  }
}
