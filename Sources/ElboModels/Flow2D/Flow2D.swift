import ElboProbability

/// A flow fitted to an unnormalised 2-D density (Rezende & Mohamed 2015, §6.1, Fig. 3).
///
/// Target: p(z) = e^{−U(z)}/Z, U one of ``TestEnergy`` (Table 1).
/// Approximation: q_K = q₀ pushed through K global flows of one kind, z_K = f_K ∘ … ∘ f₁(z₀),
///   log q_K(z_K) = log q₀(z₀) − Σ_k log|det ∂f_k/∂z_{k−1}|   (eq. 13),
/// with q₀ = N(μ, diag σ²), μ and log σ² learned (starting at N(0, I)), or q₀ = N(0, I) fixed.
/// Objective: the free energy F = E_{q₀}[log q_K(z_K) + β U(z_K)] (eq. 15; β = 1 once warm-up
/// is over), estimated with reparameterised samples z₀ = μ + σ ⊙ ε, ε ~ N(0, I). At β = 1,
///   KL(q_K ‖ p) = F + log Z ≥ 0,
/// with log Z from a grid (``TestEnergy/logNormalizer()``), so the reported KL is the true one.
///
/// Other posteriors (`posterior`), fitted by the same KL(q ‖ p):
/// - gaussian: the mean-field N(μ, diag σ²) alone (K = 0, the diagonal base);
/// - semi-implicit: ``SemiImplicit2D`` with SIVI's surrogate (Yin & Zhou 2018, eq. 6–8): log q(z)
///   replaced by log (1/(K+1)) Σ_{k=0..K} q(z|ε_k), ε₀ the mixing noise that made z — in
///   expectation an upper bound on log q(z), so the reported KL is an upper bound too;
/// - uivi: the same q with UIVI's gradient (Titsias & Ruiz 2019): the loss is
///   (1/B) Σ [⟨stop(∇_z log q(z)), z⟩ + β U(z)], the score by HMC over q(ε|z) warm-started at ε₀
///   (``UIVI``). Its value is not the KL; the logged log q is SIVI's surrogate, computed aside.
/// Noise per row for the semi-implicit two: [ε₀ (E) | η (2) | ε₁ … ε_K (K·E)]; UIVI's chains
/// draw from the row's stream after it (see ``noiseWidth``).
///
/// Shapes: R sample rows, L = 2.
public final class Flow2D {
  /// The approximate posterior q(z).
  public enum Posterior: String, Codable, CaseIterable, Sendable {
    /// q₀ through the flow chain (the default).
    case flow
    /// The mean-field Gaussian N(μ, diag σ²) (no flow).
    case gaussian
    /// Semi-implicit q fitted with SIVI's K-sample surrogate.
    case semiImplicit = "semi-implicit"
    /// Semi-implicit q fitted with UIVI's HMC score.
    case uivi
  }

  /// The base density q₀.
  public enum Base: String, Codable, CaseIterable, Sendable {
    /// N(0, I), no parameters.
    case standard
    /// N(μ, diag σ²), μ and log σ² learned (initialised at 0).
    case diagonal
  }

  public struct Config: Codable, Equatable, Sendable {
    public var target: TestEnergy = .u1
    /// The chain (kind and K); its parameters are always global.
    public var flow = FlowChainSpec(kind: .planar, length: 8, parameters: .global)
    public var base: Base = .diagonal
    public var posterior: Posterior = .flow
    /// E, the mixing noise of the semi-implicit q, and H, its MLP's hidden width.
    public var mixingDimension = 3
    public var hidden = 50
    /// The MLP's non-linearity (Titsias & Ruiz: ReLU).
    public var activation: Activation = .relu
    /// σ of q(z|ε) at initialisation (Titsias & Ruiz: 0.5).
    public var initialStd: Float = 0.5
    /// The factor on the MLP's last-layer initial weights (see
    /// ``SemiImplicit2D/scaleOutputLayer(_:by:)``).
    public var mixingInitScale: Float = 8
    /// K, the extra mixing draws of SIVI's surrogate (semi-implicit: trained on; uivi: logged).
    public var mixSamples = 50
    /// UIVI's HMC. Each step starts every chain at this step size (it is not carried from step
    /// to step: a step size adapted on one rank's rows would make the run depend on the number
    /// of ranks), 5 burn-in + 5 samples of 5 leapfrog steps as in Titsias & Ruiz's code.
    public var hmc: HamiltonianMonteCarlo.Settings = {
      var s = HamiltonianMonteCarlo.Settings()
      s.initialStepSize = 0.1
      s.adaptationRate = 0
      return s
    }()
    public init() {}

    /// Whether q is semi-implicit (no density: surrogate or score).
    public var isSemiImplicit: Bool { posterior == .semiImplicit || posterior == .uivi }
  }

  /// The terms of a batch of samples, per row.
  public struct Terms {
    /// The scalar to differentiate: (1/normaliser) Σ_rows [log q_K(z) + β U(z)].
    public let loss: Variable
    /// z_K [R, 2].
    public let z: Variable
    /// log q_K(z_K) [R].
    public let logQ: Variable
    /// U(z_K) [R].
    public let energy: Variable
    /// UIVI only: the HMC acceptance summed over the rows (each row's mean over its iterations).
    public var acceptanceSum: Double? = nil
    /// UIVI only: the mean HMC acceptance over the rows.
    public var acceptance: Float? {
      acceptanceSum.map { Float($0 / Double(max(1, z.shape[0]))) }
    }
  }

  public static let dimension = 2
  public let config: Config
  public let store = ParameterStore()
  public let chain: FlowChain
  /// The semi-implicit q (posterior semi-implicit or uivi), else nil.
  public let semiImplicit: SemiImplicit2D?
  /// μ and log σ² [2] of the base (nil: the standard base).
  private let baseMean: Int?, baseLogVariance: Int?

  public init(_ config: Config, seed: UInt64) {
    self.config = config
    let l = Self.dimension
    if config.isSemiImplicit {
      baseMean = nil
      baseLogVariance = nil
      semiImplicit = SemiImplicit2D(store, "q", mixingDimension: config.mixingDimension,
                                    hidden: config.hidden, activation: config.activation,
                                    initialStd: config.initialStd)
      chain = FlowChain([])
      store.allocate(seed: seed)
      semiImplicit?.scaleOutputLayer(store, by: config.mixingInitScale)
      return
    }
    semiImplicit = nil
    if config.base == .diagonal || config.posterior == .gaussian {
      baseMean = store.declare("base.mean", [l], .zeros)
      baseLogVariance = store.declare("base.logVariance", [l], .zeros)
    } else {
      baseMean = nil
      baseLogVariance = nil
    }
    var spec = config.flow
    spec.parameters = .global
    if config.posterior == .gaussian { spec.length = 0 }
    chain = spec.makeChain(store: store, name: "flow", dimension: l)
    store.allocate(seed: seed)
  }

  /// Noise columns per row: 2 (flow, gaussian) or E + 2 + K·E (semi-implicit, uivi).
  public var noiseWidth: Int {
    config.isSemiImplicit ? config.mixingDimension * (1 + config.mixSamples) + Self.dimension
      : Self.dimension
  }

  /// z_K and log q_K(z_K) for base noise ε [R, 2]; for a semi-implicit q, a draw z and SIVI's
  /// surrogate of log q(z) from noise [R, noiseWidth].
  public func sample(noise: Tensor, on tape: Tape) -> (z: Variable, logProb: Variable) {
    if let si = semiImplicit {
      let (z, q0, mixing) = semiImplicitDraw(si, noise: noise, on: tape)
      return (z, siviSurrogate(si, z: z, generating: q0, mixing: mixing, frozen: false))
    }
    let r = noise.rows
    let base: DiagonalNormal
    if let m = baseMean, let v = baseLogVariance {
      // [2] parameters broadcast to the rows by adding a [R, 2] zero.
      let zeros = tape.constant(Tensor(zeros: [r, Self.dimension]))
      base = DiagonalNormal(mean: zeros + store.variable(m, on: tape),
                            logVariance: zeros + store.variable(v, on: tape))
    } else {
      let zeros = tape.constant(Tensor(zeros: [r, Self.dimension]))
      base = DiagonalNormal(mean: zeros, logVariance: zeros)
    }
    return FlowDistribution(base: base, chain: chain).sample(noise: noise)
  }

  /// The free energy's terms for noise [R, noiseWidth], annealed by β (1: the KL objective).
  /// - Parameter normalizer: the loss divides the row sum by it (the global batch).
  /// - Parameter streams: one per row, for UIVI's chains (unused by the other posteriors).
  public func terms(noise: Tensor, streams: inout [RandomStream], beta: Float = 1,
                    normalizer: Float, on tape: Tape) -> Terms {
    if config.posterior == .uivi, let si = semiImplicit {
      return uiviTerms(si, noise: noise, streams: &streams, beta: beta, normalizer: normalizer,
                       on: tape)
    }
    return terms(noise: noise, beta: beta, normalizer: normalizer, on: tape)
  }

  /// `terms` for the posteriors that need no streams (all but uivi).
  public func terms(noise: Tensor, beta: Float = 1, normalizer: Float, on tape: Tape) -> Terms {
    precondition(config.posterior != .uivi, "uivi's terms need the rows' streams")
    let (z, logQ) = sample(noise: noise, on: tape)
    let u = z.energy(config.target)
    let perRow = beta == 1 ? logQ + u : logQ + u.affine(scale: beta)
    return Terms(loss: perRow.sum().affine(scale: 1 / normalizer), z: z, logQ: logQ, energy: u)
  }
}

// MARK: - The semi-implicit posteriors

extension Flow2D {
  /// Splits noise [R, E + 2 + K·E] into ε₀ → q(z|ε₀) [R, 2], z = μ(ε₀) + σ ⊙ η [R, 2], and the
  /// mixing draws ε₁…ε_K as [K, R, E].
  func semiImplicitDraw(_ si: SemiImplicit2D, noise: Tensor, on tape: Tape)
    -> (z: Variable, generating: DiagonalNormal, mixing: Tensor) {
    let r = noise.rows, w = noise.cols, e = si.mixingDimension, k = config.mixSamples
    precondition(w == noiseWidth, "semi-implicit noise has \(w) columns, expected \(noiseWidth)")
    let eps0 = tape.tensor([r, e]), eta = tape.tensor([r, 2]), mixing = tape.tensor([k, r, e])
    let src = noise.pointer
    for i in 0..<r {
      let row = src + i * w
      for j in 0..<e { eps0[i * e + j] = row[j] }
      for j in 0..<2 { eta[i * 2 + j] = row[e + j] }
      for m in 0..<k { for j in 0..<e { mixing[(m * r + i) * e + j] = row[e + 2 + m * e + j] } }
    }
    let q0 = si.conditional(tape.constant(eps0), store: store)
    return (q0.sample(noise: eta), q0, mixing)
  }

  /// SIVI's surrogate log (1/(K+1)) Σ_k q(z|ε_k) [R] (ElboProbability's SemiImplicitNormal).
  func siviSurrogate(_ si: SemiImplicit2D, z: Variable, generating q0: DiagonalNormal,
                     mixing: Tensor, frozen: Bool) -> Variable {
    let tape = z.tape, r = z.shape[0]
    let q = SemiImplicitNormal(mixingDimension: si.mixingDimension) { eps in
      si.conditional(tape.constant(eps), store: self.store, frozen: frozen)
    }
    let g = DiagonalNormal(mean: q0.mean.reshaped([1, r, 2]),
                           logVariance: q0.logVariance.reshaped([1, r, 2]))
    return q.surrogateLogDensity(z.reshaped([1, r, 2]), generating: g, mixing: mixing)
      .reshaped([r])
  }

  /// UIVI: loss (1/N) Σ [⟨stop(score), z⟩ + β U(z)]; logQ is SIVI's surrogate, off the
  /// gradient's path (constants), for the logs.
  func uiviTerms(_ si: SemiImplicit2D, noise: Tensor, streams: inout [RandomStream],
                 beta: Float, normalizer: Float, on tape: Tape) -> Terms {
    let (z, q0, mixing) = semiImplicitDraw(si, noise: noise, on: tape)
    let r = noise.rows, e = si.mixingDimension
    let eps0 = Tensor(zeros: [r, e])
    for i in 0..<r { for j in 0..<e { eps0[i * e + j] = noise[i * noise.cols + j] } }
    var sampler = HamiltonianMonteCarlo(config.hmc, chains: r)
    let store = self.store
    let (score, _, _) = UIVI.score(
      z: z.value, start: eps0,
      conditional: { si.conditional($0, store: store, frozen: true) },
      sampler: &sampler, streams: &streams)
    let u = z.energy(config.target)
    let surrogate = UIVI.entropySurrogate(z: z, score: score)
    let perRow = beta == 1 ? surrogate + u : surrogate + u.affine(scale: beta)
    // The logged log q: SIVI's surrogate on constant copies (no gradient path).
    let zc = tape.constant(z.value)
    let g = DiagonalNormal(mean: tape.constant(q0.mean.value),
                           logVariance: tape.constant(q0.logVariance.value))
    let logQ = siviSurrogate(si, z: zc, generating: g, mixing: mixing, frozen: true)
    var t = Terms(loss: perRow.sum().affine(scale: 1 / normalizer), z: z, logQ: logQ, energy: u)
    t.acceptanceSum = sampler.lastChainAcceptance.reduce(0.0) { $0 + Double($1) }
    return t
  }
}
