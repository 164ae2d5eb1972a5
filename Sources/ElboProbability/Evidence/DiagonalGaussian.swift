import Foundation

/// N(μ, diag σ²) over R^d in Double, for the evidence estimators: a proposal for importance
/// sampling, the mean-field and amortised posteriors, the Gaussian the perturbative expansion is
/// taken around. (The training code's `DiagonalNormal` holds tape variables; this one is plain
/// numbers for one observation.)
public struct DiagonalGaussian: Equatable, Sendable {
  public var mean: [Double]
  /// σ, every entry > 0.
  public var standardDeviation: [Double]

  public init(mean: [Double], standardDeviation: [Double]) {
    precondition(mean.count == standardDeviation.count,
                 "DiagonalGaussian: \(mean.count) means but \(standardDeviation.count) deviations")
    self.mean = mean
    self.standardDeviation = standardDeviation
  }

  /// The prior π(z) = N(0, I_d).
  public static func standard(_ d: Int) -> DiagonalGaussian {
    DiagonalGaussian(mean: [Double](repeating: 0, count: d),
                     standardDeviation: [Double](repeating: 1, count: d))
  }

  public var dimension: Int { mean.count }

  /// z = μ + σ ⊙ ε for ε ~ N(0, I) (the reparameterisation).
  public func sample(noise eps: [Double]) -> [Double] {
    (0..<dimension).map { mean[$0] + standardDeviation[$0] * eps[$0] }
  }

  /// log q(z) = Σ_j −½ ((z_j − μ_j)/σ_j)² − log σ_j − ½ log 2π.
  public func logDensity(_ z: [Double]) -> Double {
    var s = 0.0
    for j in 0..<dimension {
      let u = (z[j] - mean[j]) / standardDeviation[j]
      s += -0.5 * u * u - log(standardDeviation[j])
    }
    return s - 0.5 * Double(dimension) * log(2 * Double.pi)
  }

  /// H[q] = Σ_j ½ log(2π e σ_j²).
  public var entropy: Double {
    var s = 0.0
    for sd in standardDeviation { s += log(sd) }
    return s + 0.5 * Double(dimension) * (1 + log(2 * Double.pi))
  }

  /// log w(z) = log p(x, z) − log q(z) at S draws z ~ q: the log importance weights every
  /// sampling estimator (importance sampling, the perturbative expansion, a Monte Carlo ELBO)
  /// is built from.
  public func logWeights(_ target: some LatentJoint, samples: Int,
                         draws: inout NormalDraws) -> [Double] {
    var out: [Double] = []
    out.reserveCapacity(samples)
    // Chunks of at most 1024 draws: one decoder pass each for a neural joint.
    while out.count < samples {
      let zs = (0..<min(1024, samples - out.count)).map { _ in sample(noise: draws.next(dimension)) }
      let lp = target.logJoints(zs)
      for (z, l) in zip(zs, lp) { out.append(l - logDensity(z)) }
    }
    return out
  }

  /// The Monte Carlo ELBO (1/S) Σ_s log w(z_s), with its standard error.
  public func monteCarloELBO(_ target: some LatentJoint, samples: Int,
                             draws: inout NormalDraws) -> (elbo: Double, standardError: Double) {
    let w = logWeights(target, samples: samples, draws: &draws)
    let mean = w.reduce(0, +) / Double(samples)
    var v = 0.0
    for x in w { v += (x - mean) * (x - mean) }
    return (mean, (v / Double(max(samples - 1, 1)) / Double(samples)).squareRoot())
  }
}
