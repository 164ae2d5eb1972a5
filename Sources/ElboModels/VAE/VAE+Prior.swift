/// Mixture priors for the VAE from doubly semi-implicit VI (Molchanov, Kharitonov, Sobolev &
/// Vetrov, AISTATS 2019, "Doubly Semi-Implicit Variational Inference", §3–4; seed 003 Way 2):
///
///   dsivi-agg:      p(z) = (1/K) Σ_k q(z|u_k), u_k [D] learned pseudo-inputs passed through the
///                   encoder (the aggregate posterior of K "inputs", VampPrior-like; Tomczak &
///                   Welling 2018). With a Gaussian encoder this mixture is exact; with a
///                   semi-implicit one each q(z|u_k) is itself a mixture over ε, and one draw
///                   ε_k per component gives DSIVI's bound below.
///   semi-implicit:  p(z) = ∫ N(z; μ_θ(ζ), diag σ²_θ(ζ)) N(ζ; 0, I) dζ, [μ, log σ²] = T_θ(ζ) an MLP.
///
/// Both enter the bound through E log p(z) ≥ E_{ζ_1..K} log (1/K) Σ_k p(z|ζ_k) (Jensen: the
/// K-sample mixture is an unbiased estimate of p(z)), so the objective stays a lower bound on the
/// ELBO. The K components are shared by every row of a step (drawn at (seed, step), the same on
/// every rank).
extension VAE {
  /// The family of p(z).
  public enum PriorFamily: String, Codable, Sendable, CaseIterable {
    case standard
    case dsiviAgg = "dsivi-agg"
    case semiImplicit = "semi-implicit"
  }

  /// Indices of the prior's tensors in the store.
  public struct PriorParameters {
    /// dsivi-agg: u [K, D].
    public let pseudoInputs: Int?
    /// semi-implicit: T_θ = ζ → H → 2L (tanh hidden layer).
    public let net: MLP?
    /// semi-implicit prior under hierarchical VI: r_ψ(ζ|z) = z → H → 2E_ζ (tanh).
    public var reverse: MLP? = nil
  }

  /// Declares the prior's tensors after every other one (so N(0, I) keeps the layout).
  static func declarePrior(_ config: Config, store: ParameterStore) -> PriorParameters? {
    switch config.prior {
    case .standard: return nil
    case .dsiviAgg:
      // Pseudo-inputs start near the middle of [0, 1]-valued images' range, small spread.
      return PriorParameters(
        pseudoInputs: store.declare("prior.pseudo_inputs", [config.priorSamples, config.inputs],
                                    .uniform(bound: 0.5)),
        net: nil)
    case .semiImplicit:
      var p = PriorParameters(
        pseudoInputs: nil,
        net: MLP(store, "prior", sizes: [config.priorNoise, config.priorHidden, 2 * config.latent],
                 activation: .tanh))
      if config.posterior == .hierarchical {
        p.reverse = MLP(store, "prior_reverse",
                        sizes: [config.latent, config.priorHidden, 2 * config.priorNoise],
                        activation: .tanh)
      }
      return p
    }
  }

  /// Whether the bound needs the mixture path (a semi-implicit q or a mixture prior).
  public var usesMixturePath: Bool { isSemiImplicit || config.prior != .standard }

  /// E as the posterior sees it: 0 for a Gaussian posterior (whatever --mixing-noise says).
  public var mixingDimension: Int { isSemiImplicit ? config.mixingNoise : 0 }
  /// K of SIVI's surrogate as used: 0 for a Gaussian posterior (log q is exact).
  public var mixtureSamples: Int { isSemiImplicit ? config.mixSamples : 0 }

  /// The shape of the prior's noise for one step: ζ [K, E_ζ] (semi-implicit), the pseudo-inputs'
  /// mixing noise [1, K, E] (dsivi-agg with a semi-implicit encoder), or nil.
  public var priorNoiseShape: [Int]? {
    switch config.prior {
    case .standard: return nil
    case .dsiviAgg: return mixingDimension > 0 ? [1, config.priorSamples, mixingDimension] : nil
    case .semiImplicit: return [config.priorSamples, config.priorNoise]
    }
  }

  /// log p̂(z) for z [N, L] on z's tape: exact for N(0, I) and for dsivi-agg with a Gaussian
  /// encoder; otherwise the K-sample mixture over `noise` (shape `priorNoiseShape`). → [N].
  public func priorLogDensity(_ z: Variable, noise: Tensor?) -> Variable {
    let tape = z.tape, l = config.latent
    switch config.prior {
    case .standard:
      return StandardNormal.logProb(z)
    case .dsiviAgg:
      let u = store.variable(prior!.pseudoInputs!, on: tape)           // [K, D]
      let k = config.priorSamples
      let q: DiagonalNormal
      if isSemiImplicit {
        let c = semiImplicitPosterior(u).conditional(noise ?? tape.tensor([1, k, 0]))  // [1, K, L]
        q = DiagonalNormal(mean: c.mean.reshaped([k, l]), logVariance: c.logVariance.reshaped([k, l]))
      } else {
        q = posterior(u)                                               // [K, L]
      }
      return SIVI.logMixtureDensity(z, shared: q)
    case .semiImplicit:
      let out = prior!.net!(tape.constant(noise!), store)              // [K, 2L]
      return SIVI.logMixtureDensity(z, shared: DiagonalNormal(
        mean: out.columns(0..<l), logVariance: out.columns(l..<(2 * l))))
    }
  }
}
