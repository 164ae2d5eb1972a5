import ElboProbability
import Foundation

/// The linear-Gaussian latent model of seed 001 ("Graphical Models: a concrete example"), the one
/// model here whose evidence is exact, so that every approximate estimator can be held to it.
///
/// Generative story:   z ~ π(z) = N(0, I_d),   x | z ~ N(θ₀ + θ₁ z, diag exp θ₂)
/// Evidence (closed form):   p(x|θ) = N(x; θ₀, θ₁θ₁ᵀ + Ψ),   Ψ = diag exp θ₂
/// Posterior (closed form):  p(z|x) = N(m, Λ⁻¹),   Λ = I + θ₁ᵀΨ⁻¹θ₁,   m = Λ⁻¹ θ₁ᵀΨ⁻¹ (x − θ₀)
///
/// Shapes: x ∈ R^D, z ∈ R^d; θ₀ [D], θ₁ [D, d] row-major, θ₂ [D] (log variances: the seed's
/// θ₂ ∈ R^{d_x}; a shared exp θ₂ I is the case of equal entries). The seed's prior on θ,
/// ρ(θ) = N(0, κ² I), is not used: θ is fixed and only z is integrated out.
public struct LinearGaussianModel: Equatable, Sendable {
  /// d
  public let latent: Int
  /// D
  public let observed: Int
  /// θ₀ [D]
  public var offset: [Double]
  /// θ₁ [D, d]
  public var loading: [Double]
  /// θ₂ [D], log Ψ_ii
  public var logNoiseVariance: [Double]

  public init(latent: Int, observed: Int, offset: [Double], loading: [Double],
              logNoiseVariance: [Double]) {
    precondition(offset.count == observed && loading.count == observed * latent
                   && logNoiseVariance.count == observed,
                 "LinearGaussianModel: θ₀ \(offset.count), θ₁ \(loading.count), θ₂ "
                   + "\(logNoiseVariance.count) entries for d = \(latent), D = \(observed)")
    self.latent = latent
    self.observed = observed
    self.offset = offset
    self.loading = loading
    self.logNoiseVariance = logNoiseVariance
  }

  /// A model with θ₀ ~ N(0, 1), θ₁ ~ N(0, 1/d) entries and θ₂ = log σ²_noise + N(0, 0.1²), all
  /// drawn from `seed`: loadings of order one against a noise of σ_noise (default 0.5), so that the
  /// posterior is well away from the prior and correlated — a fair test for mean-field.
  public static func random(latent d: Int, observed D: Int, seed: UInt64,
                            noise: Double = 0.5) -> LinearGaussianModel {
    var draws = NormalDraws(seed: seed, purpose: .initialization)
    let offset = draws.next(D)
    let loading = draws.next(D * d).map { $0 / Double(d).squareRoot() }
    let logVar = draws.next(D).map { 2 * log(noise) + 0.1 * $0 }
    return LinearGaussianModel(latent: d, observed: D, offset: offset, loading: loading,
                               logNoiseVariance: logVar)
  }

  /// Ψ⁻¹ = diag exp(−θ₂).
  var noisePrecision: [Double] { logNoiseVariance.map { exp(-$0) } }

  /// N observations x = θ₀ + θ₁ z + Ψ^{1/2} ε with z ~ N(0, I), ε ~ N(0, I).
  public func sample(_ count: Int, seed: UInt64, item: UInt32 = 0) -> [[Double]] {
    var draws = NormalDraws(seed: seed, purpose: .dataGeneration, item: item)
    var out: [[Double]] = []
    for _ in 0..<count {
      let z = draws.next(latent)
      let mean = DenseMatrix.multiply(loading, rows: observed, cols: latent, z)
      let eps = draws.next(observed)
      var x = [Double](repeating: 0, count: observed)
      for n in 0..<observed {
        let sd: Double = exp(0.5 * logNoiseVariance[n])
        x[n] = offset[n] + mean[n] + sd * eps[n]
      }
      out.append(x)
    }
    return out
  }

  /// log p(x|θ) = log N(x; θ₀, θ₁θ₁ᵀ + Ψ), by a Cholesky factor of the D×D marginal covariance
  /// (deliberately not through the posterior, so that the tests compare two routes).
  public func exactLogEvidence(_ x: [Double]) -> Double {
    let D = observed, d = latent
    var cov = [Double](repeating: 0, count: D * D)
    for i in 0..<D { for j in 0..<D {
      var s = 0.0
      for k in 0..<d { s += loading[i * d + k] * loading[j * d + k] }
      cov[i * D + j] = s + (i == j ? exp(logNoiseVariance[i]) : 0)
    } }
    let l = DenseMatrix.cholesky(cov, D)!  // θ₁θ₁ᵀ + Ψ with Ψ > 0 is positive definite
    let r = (0..<D).map { x[$0] - offset[$0] }
    let quad = DenseMatrix.dot(r, DenseMatrix.solve(cholesky: l, D, r))
    return -0.5 * (quad + DenseMatrix.logDeterminant(cholesky: l, D)
                   + Double(D) * log(2 * Double.pi))
  }

  /// log p(x, z) as a function of z, for the estimators.
  public func joint(_ x: [Double]) -> LinearGaussianJoint { LinearGaussianJoint(model: self, x: x) }
}

/// log p(x, z) = log N(x; θ₀ + θ₁z, Ψ) + log N(z; 0, I) for one x: quadratic in z, with its
/// gradient, Hessian (−Λ, constant) and the exact posterior.
public struct LinearGaussianJoint: QuadraticLatentJoint {
  public let model: LinearGaussianModel
  public let x: [Double]
  /// Λ = I + θ₁ᵀΨ⁻¹θ₁ [d, d]
  public let precision: [Double]
  /// m = Λ⁻¹ θ₁ᵀΨ⁻¹(x − θ₀) [d]
  public let mode: [Double]

  public init(model: LinearGaussianModel, x: [Double]) {
    self.model = model
    self.x = x
    let d = model.latent, D = model.observed, psiInv = model.noisePrecision
    var lam = [Double](repeating: 0, count: d * d)
    for i in 0..<d { for j in 0..<d {
      var s = i == j ? 1.0 : 0.0
      for n in 0..<D { s += model.loading[n * d + i] * psiInv[n] * model.loading[n * d + j] }
      lam[i * d + j] = s
    } }
    precision = lam
    let weighted = (0..<D).map { psiInv[$0] * (x[$0] - model.offset[$0]) }
    let rhs = DenseMatrix.multiplyTransposed(model.loading, rows: D, cols: d, weighted)
    mode = DenseMatrix.solve(cholesky: DenseMatrix.cholesky(lam, d)!, d, rhs)
  }

  public var latentDimension: Int { model.latent }

  /// The residual x − θ₀ − θ₁z [D].
  func residual(_ z: [Double]) -> [Double] {
    let mean = DenseMatrix.multiply(model.loading, rows: model.observed, cols: model.latent, z)
    return (0..<model.observed).map { x[$0] - model.offset[$0] - mean[$0] }
  }

  public func logJoint(_ z: [Double]) -> Double {
    let r = residual(z), D = model.observed, d = model.latent
    var s = 0.0
    for n in 0..<D { s += r[n] * r[n] * exp(-model.logNoiseVariance[n]) + model.logNoiseVariance[n] }
    return -0.5 * (s + DenseMatrix.dot(z, z) + Double(D + d) * log(2 * Double.pi))
  }

  /// ∇_z = θ₁ᵀΨ⁻¹(x − θ₀ − θ₁z) − z.
  public func gradient(_ z: [Double]) -> [Double] {
    let r = residual(z), psiInv = model.noisePrecision
    let weighted = (0..<model.observed).map { psiInv[$0] * r[$0] }
    let g = DenseMatrix.multiplyTransposed(model.loading, rows: model.observed,
                                           cols: model.latent, weighted)
    return (0..<model.latent).map { g[$0] - z[$0] }
  }

  /// ∇²_z = −Λ (constant in z).
  public func hessian(_ z: [Double]) -> [Double] { precision.map { -$0 } }

  /// p(z|x) = N(m, Λ⁻¹) as mean and covariance [d, d].
  public var posteriorCovariance: [Double] {
    DenseMatrix.inverse(cholesky: DenseMatrix.cholesky(precision, model.latent)!, model.latent)
  }
}
