import Foundation

/// Importance-sampled log evidence (seed 001, "Approximate Inference: importance sampling"):
///
///   log p(x) ≈ log (1/K) Σ_{k=1..K} p(x, z_k) / q(z_k),   z_k ~ q,
///
/// the seed's M(x, θ) ≈ −ln Σ_k e^{−𝓕(x, z_k, θ)} + ln K with 𝓕 = log q − log p(x, z). The average
/// inside the log is unbiased for p(x); its log is biased low by about Var[w]/(2K p(x)²) and its
/// spread falls like 1/√K (the test fits that slope). The proposal q is the prior π(z) = N(0, I)
/// or any given diagonal Gaussian (a posterior approximation: far fewer samples for the same error).
public struct ImportanceSamplingEvidence {
  public enum Proposal: Equatable, Sendable {
    /// π(z) = N(0, I), the textbook choice: then w = p(x|z).
    case prior
    case gaussian(DiagonalGaussian)
  }

  public var proposal: Proposal

  public init(proposal: Proposal = .prior) { self.proposal = proposal }

  /// The proposal as a distribution over R^d.
  public func distribution(dimension d: Int) -> DiagonalGaussian {
    switch proposal {
    case .prior: return .standard(d)
    case .gaussian(let q):
      precondition(q.dimension == d, "proposal has \(q.dimension) dimensions, the latent \(d)")
      return q
    }
  }

  /// log (1/K) Σ_k w_k with K = `samples` fresh draws (log-sum-exp: no weight overflows).
  public func estimate(_ target: some LatentJoint, samples: Int, draws: inout NormalDraws)
    -> Double
  {
    precondition(samples > 0, "importance sampling needs at least one sample")
    let q = distribution(dimension: target.latentDimension)
    let w = q.logWeights(target, samples: samples, draws: &draws)
    return DenseMatrix.logSumExp(w) - log(Double(samples))
  }
}
