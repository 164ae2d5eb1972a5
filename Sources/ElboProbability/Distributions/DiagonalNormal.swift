@_exported import ElboNN

/// log(2π), used by every Gaussian log-density.
public let log2Pi: Float = 1.8378770664093453

/// A Gaussian with diagonal covariance, N(μ, diag(σ²)), parameterised by μ and log σ².
///
/// Shapes: `mean` and `logVariance` are [R, D] (one distribution per row). Samples may carry extra
/// leading dimensions ([k, R, D]: k samples per row); log-densities sum over the last axis.
/// log σ² (not σ) is the encoder's output because it is unconstrained and makes the KL simple.
public struct DiagonalNormal {
  public let mean: Variable
  public let logVariance: Variable

  public init(mean: Variable, logVariance: Variable) {
    precondition(mean.shape == logVariance.shape, "mean \(mean.shape) vs logVariance \(logVariance.shape)")
    self.mean = mean
    self.logVariance = logVariance
  }

  /// σ = exp(½ log σ²).
  public var standardDeviation: Variable { logVariance.affine(scale: 0.5).exp() }

  /// Reparameterised sample z = μ + σ ⊙ ε (Kingma & Welling 2014, eq. 10; seed 004 §3.2).
  /// - Parameter noise: ε ~ N(0, I), shape [R, D] or [k, R, D] (constant: no gradient).
  public func sample(noise: Tensor) -> Variable {
    let eps = mean.tape.constant(noise)
    return mean + standardDeviation * eps
  }

  /// log N(z | μ, σ²) summed over the last axis: −½ Σ_d [log 2π + log σ²_d + (z_d − μ_d)²/σ²_d].
  /// z: [R, D] or [k, R, D] → [R] or [k, R].
  public func logProb(_ z: Variable) -> Variable {
    let d = z - mean
    let quad = d.square() * (-logVariance).exp()
    return (quad + logVariance + log2Pi).sum(axis: -1).affine(scale: -0.5)
  }

  /// KL(N(μ, σ²) ‖ N(0, I)) per row = ½ Σ_d [μ² + σ² − 1 − log σ²] → [R] (Kingma & Welling,
  /// Appendix B).
  public func klToStandardNormal() -> Variable {
    let terms = mean.square() + logVariance.exp() - logVariance
    return terms.sum(axis: -1).affine(scale: 0.5, shift: -0.5 * Float(mean.shape.last ?? 0))
  }

  /// KL(self ‖ other) between diagonal Gaussians, per row:
  /// ½ Σ [log σ₂² − log σ₁² + (σ₁² + (μ₁ − μ₂)²)/σ₂² − 1].
  public func kl(to other: DiagonalNormal) -> Variable {
    let d = mean - other.mean
    let ratio = (logVariance.exp() + d.square()) * (-other.logVariance).exp()
    let terms = other.logVariance - logVariance + ratio
    return terms.sum(axis: -1).affine(scale: 0.5, shift: -0.5 * Float(mean.shape.last ?? 0))
  }
}

/// The standard normal N(0, I) over the last axis (the VAE's prior p(z)).
public enum StandardNormal {
  /// log N(z | 0, I) summed over the last axis: −½ Σ_d (z_d² + log 2π).
  public static func logProb(_ z: Variable) -> Variable {
    let dim = Float(z.shape.last ?? 0)
    return z.square().sum(axis: -1).affine(scale: -0.5, shift: -0.5 * dim * log2Pi)
  }
}
