import Foundation

/// Laplace (saddle-point) log evidence (seed 001, "Approximate Inference: Laplace/saddle point"):
/// expand log p(x, z) to second order around a point μ,
///
///   log p(x, z) ≈ log p(x, μ) + Jᵀ(z − μ) − ½ (z − μ)ᵀ Λ (z − μ),   J = ∇ log p, Λ = −∇² log p,
///
/// and integrate the Gaussian:  log p(x) ≈ log p(x, μ) + ½ JᵀΛ⁻¹J + (d/2) log 2π − ½ log det Λ.
/// At the mode ẑ (J = 0) this is the usual log p(x, ẑ) + (d/2) log 2π − ½ log det(−H). (The seed's
/// slide writes det(2πH)^{1/2}; the Gaussian integral gives det(2πΛ⁻¹)^{1/2}, used here.) The mode
/// is found by Newton's method, damped (Levenberg) where −H is not positive definite and
/// backtracked where a step lowers log p. Exact when log p(x, z) is quadratic in z (the
/// linear-Gaussian model); for a VAE it is the Gaussian fit at the posterior mode.
public struct LaplaceEvidence {
  /// Newton steps at most.
  public var maxSteps: Int
  /// Stop when ‖∇ log p(x, z)‖∞ falls below this.
  public var gradientTolerance: Double

  public init(maxSteps: Int = 50, gradientTolerance: Double = 1e-8) {
    self.maxSteps = maxSteps
    self.gradientTolerance = gradientTolerance
  }

  public struct Result {
    /// The Laplace estimate at the last iterate (at the mode when `converged`).
    public var logEvidence: Double
    /// ẑ, the last iterate.
    public var mode: [Double]
    /// The estimate at the start and after each Newton step (the report's budget curve).
    public var trace: [Double]
    public var converged: Bool
  }

  public enum Failure: Error, CustomStringConvertible {
    case notConcave(step: Int)
    public var description: String {
      switch self {
      case .notConcave(let step):
        return "Laplace: −∇² log p(x, z) is not positive definite at the final point (step "
          + "\(step)); the posterior has no Gaussian fit there — use importance sampling instead"
      }
    }
  }

  /// The second-order estimate at z (with the gradient term), or nil where Λ is not positive
  /// definite.
  public static func estimate(at z: [Double], _ target: some LatentJoint, includeGradient: Bool)
    -> Double?
  {
    let d = target.latentDimension
    let lam = target.hessian(z).map { -$0 }
    guard let l = DenseMatrix.cholesky(lam, d) else { return nil }
    var value = target.logJoint(z) + 0.5 * Double(d) * log(2 * Double.pi)
      - 0.5 * DenseMatrix.logDeterminant(cholesky: l, d)
    if includeGradient {
      let g = target.gradient(z)
      value += 0.5 * DenseMatrix.dot(g, DenseMatrix.solve(cholesky: l, d, g))
    }
    return value
  }

  /// Newton's method from `start`, then the estimate at the mode.
  public func estimate(_ target: some LatentJoint, start: [Double]) throws -> Result {
    let d = target.latentDimension
    var z = start
    var value = target.logJoint(z)
    var trace: [Double] = [LaplaceEvidence.estimate(at: z, target, includeGradient: false) ?? .nan]
    var converged = false
    for _ in 0..<maxSteps {
      let g = target.gradient(z)
      if g.map(abs).max() ?? 0 < gradientTolerance { converged = true; break }
      let lam = target.hessian(z).map { -$0 }
      // Levenberg damping: add λI until Λ + λI is positive definite (λ = 0 near a maximum).
      var damping = 0.0, factor: [Double]? = nil
      while factor == nil && damping < 1e8 {
        var a = lam
        for i in 0..<d { a[i * d + i] += damping }
        factor = DenseMatrix.cholesky(a, d)
        if factor == nil { damping = max(2 * damping, 1e-6) }
      }
      guard let l = factor else { break }
      let step = DenseMatrix.solve(cholesky: l, d, g)  // (Λ + λI)⁻¹ ∇ log p: an ascent step
      // Backtrack so that log p(x, z) does not fall (a non-quadratic joint may overshoot).
      var t = 1.0, next = z, nextValue = value
      repeat {
        next = (0..<d).map { z[$0] + t * step[$0] }
        nextValue = target.logJoint(next)
        t *= 0.5
      } while !(nextValue >= value - 1e-12) && t > 1e-10
      z = next; value = nextValue
      trace.append(LaplaceEvidence.estimate(at: z, target, includeGradient: false) ?? .nan)
    }
    if !converged, target.gradient(z).map(abs).max() ?? 0 < gradientTolerance { converged = true }
    guard let final = LaplaceEvidence.estimate(at: z, target, includeGradient: false) else {
      throw Failure.notConcave(step: trace.count - 1)
    }
    return Result(logEvidence: final, mode: z, trace: trace, converged: converged)
  }
}
