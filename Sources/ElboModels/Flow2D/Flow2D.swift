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
/// Shapes: R sample rows, L = 2.
public final class Flow2D {
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
    public init() {}
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
  }

  public static let dimension = 2
  public let config: Config
  public let store = ParameterStore()
  public let chain: FlowChain
  /// μ and log σ² [2] of the base (nil: the standard base).
  private let baseMean: Int?, baseLogVariance: Int?

  public init(_ config: Config, seed: UInt64) {
    self.config = config
    let l = Self.dimension
    if config.base == .diagonal {
      baseMean = store.declare("base.mean", [l], .zeros)
      baseLogVariance = store.declare("base.logVariance", [l], .zeros)
    } else {
      baseMean = nil
      baseLogVariance = nil
    }
    var spec = config.flow
    spec.parameters = .global
    chain = spec.makeChain(store: store, name: "flow", dimension: l)
    store.allocate(seed: seed)
  }

  /// z_K and log q_K(z_K) for base noise ε [R, 2].
  public func sample(noise: Tensor, on tape: Tape) -> (z: Variable, logProb: Variable) {
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

  /// The free energy's terms for base noise ε [R, 2], annealed by β (1: the KL objective).
  /// - Parameter normalizer: the loss divides the row sum by it (the global batch).
  public func terms(noise: Tensor, beta: Float = 1, normalizer: Float, on tape: Tape) -> Terms {
    let (z, logQ) = sample(noise: noise, on: tape)
    let u = z.energy(config.target)
    let perRow = beta == 1 ? logQ + u : logQ + u.affine(scale: beta)
    return Terms(loss: perRow.sum().affine(scale: 1 / normalizer), z: z, logQ: logQ, energy: u)
  }
}
