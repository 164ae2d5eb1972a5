import Foundation

/// Mean-field variational inference by its fixed-point equations (seed 001, "Variational
/// mean-field approx"): q(z) = Π_j q_j(z_j), and coordinate ascent sets each factor to
///
///   q_j*(z_j) ∝ exp E_{q_{−j}}[log p(x, z)].
///
/// For a joint that is Gaussian in z, log p(x, z) = log p(x, m) − ½ (z − m)ᵀ Λ (z − m), the
/// expectation is quadratic in z_j, so every factor is Gaussian and the update is closed form
/// (Bishop, PRML §10.1.2):
///
///   q_j = N(μ_j, 1/Λ_jj),   μ_j = m_j − (1/Λ_jj) Σ_{k≠j} Λ_jk (μ_k − m_k).
///
/// Each sweep updates j = 1…d in order using the newest μ; the ELBO never falls, and converges to
/// log p(x) − KL(q* ‖ p(z|x)) with q* = N(m, diag 1/Λ_jj): below the evidence unless Λ is diagonal
/// (the gap is the price of the factorisation, not of the optimiser).
public struct MeanFieldEvidence {
  public var sweeps: Int

  public init(sweeps: Int = 20) { self.sweeps = sweeps }

  public struct Result {
    /// The final factorised posterior.
    public var posterior: DiagonalGaussian
    /// The ELBO before the first sweep (at `start`) and after each sweep.
    public var trace: [Double]
    public var elbo: Double { trace[trace.count - 1] }
  }

  /// Coordinate ascent from q = N(start, diag 1/Λ_jj) (the prior's mean, 0, by default).
  public func run(_ target: some QuadraticLatentJoint, start: [Double]? = nil) -> Result {
    let d = target.latentDimension, lam = target.precision, m = target.mode
    var mu = start ?? [Double](repeating: 0, count: d)
    // The factor variances are 1/Λ_jj whatever the means are: set once.
    let sd = (0..<d).map { 1 / lam[$0 * d + $0].squareRoot() }
    var q = DiagonalGaussian(mean: mu, standardDeviation: sd)
    var trace = [target.elbo(q)]
    for _ in 0..<sweeps {
      for j in 0..<d {
        var s = 0.0
        for k in 0..<d where k != j { s += lam[j * d + k] * (mu[k] - m[k]) }
        mu[j] = m[j] - s / lam[j * d + j]
      }
      q.mean = mu
      trace.append(target.elbo(q))
    }
    return Result(posterior: q, trace: trace)
  }
}
