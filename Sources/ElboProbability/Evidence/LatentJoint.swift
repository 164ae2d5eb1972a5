import Foundation

/// log p(x, z) for one fixed observation x, as a function of the latent z ∈ R^d: what an
/// estimator of the evidence log p(x) = log ∫ p(x, z) dz is written against (seed 001,
/// "Approximate inference": importance sampling, Laplace, the perturbative expansion, variational
/// bounds). The linear-Gaussian model and a trained VAE's decoder both provide one.
///
/// Seed 001 writes p(x, z) = e^{−U(x, z)} / 𝒵; here logJoint = −U (the energy's negative), in nats.
public protocol LatentJoint {
  /// d, the length of z.
  var latentDimension: Int { get }
  /// log p(x, z) = log p(x|z) + log π(z).
  func logJoint(_ z: [Double]) -> Double
  /// log p(x, z) at many z at once (default: one ``logJoint(_:)`` each); a neural decoder
  /// overrides it to take all rows in one pass.
  func logJoints(_ zs: [[Double]]) -> [Double]
  /// ∇_z log p(x, z), d entries.
  func gradient(_ z: [Double]) -> [Double]
  /// ∇²_z log p(x, z), d×d row-major. The default differentiates ``gradient(_:)`` by central
  /// differences (h = 1e-4·max(1, |z_j|)) and symmetrises, for joints with no Hessian of their own.
  func hessian(_ z: [Double]) -> [Double]
}

extension LatentJoint {
  public func logJoints(_ zs: [[Double]]) -> [Double] { zs.map(logJoint) }

  public func hessian(_ z: [Double]) -> [Double] {
    let d = latentDimension
    var h = [Double](repeating: 0, count: d * d)
    var zp = z
    for j in 0..<d {
      let step = 1e-4 * max(1, abs(z[j]))
      zp[j] = z[j] + step
      let gPlus = gradient(zp)
      zp[j] = z[j] - step
      let gMinus = gradient(zp)
      zp[j] = z[j]
      for i in 0..<d { h[i * d + j] = (gPlus[i] - gMinus[i]) / (2 * step) }
    }
    // Differences leave H slightly asymmetric; its symmetric part is the Hessian's estimate.
    for i in 0..<d { for j in 0..<i {
      let s = 0.5 * (h[i * d + j] + h[j * d + i])
      h[i * d + j] = s; h[j * d + i] = s
    } }
    return h
  }
}

/// A joint that is Gaussian in z: log p(x, z) = log p(x, m) − ½ (z − m)ᵀ Λ (z − m), so the
/// posterior is p(z|x) = N(m, Λ⁻¹) and every Gaussian expectation is closed form. The mean-field
/// fixed point and the closed-form ELBO / KL below need this; a VAE's joint is not of this kind.
public protocol QuadraticLatentJoint: LatentJoint {
  /// m = argmax_z log p(x, z), the posterior mean.
  var mode: [Double] { get }
  /// Λ = −∇²_z log p(x, z), d×d row-major, symmetric positive definite.
  var precision: [Double] { get }
}

extension QuadraticLatentJoint {
  /// E_q[log p(x, z)] − E_q[log q(z)] for q = N(μ, diag σ²), in closed form:
  ///   E_q log p(x, z) = log p(x, m) − ½ [(μ − m)ᵀ Λ (μ − m) + Σ_j Λ_jj σ_j²],
  ///   H[q] = Σ_j ½ log(2π e σ_j²).
  public func elbo(_ q: DiagonalGaussian) -> Double {
    let d = latentDimension, m = mode, lam = precision
    let r = (0..<d).map { q.mean[$0] - m[$0] }
    let quad = DenseMatrix.dot(r, DenseMatrix.multiply(lam, rows: d, cols: d, r))
    var trace = 0.0
    for j in 0..<d { trace += lam[j * d + j] * q.standardDeviation[j] * q.standardDeviation[j] }
    return logJoint(m) - 0.5 * (quad + trace) + q.entropy
  }

  /// KL(q ‖ p(z|x)) for q = N(μ, diag σ²) and p(z|x) = N(m, Λ⁻¹), in closed form:
  ///   ½ [tr(Λ Σ_q) + (m − μ)ᵀ Λ (m − μ) − d − log det Λ − Σ_j log σ_j²].
  /// The identity log p(x) − ELBO(q) = KL(q ‖ p(z|x)) is what the tests hold estimators to.
  public func klToPosterior(_ q: DiagonalGaussian) -> Double {
    let d = latentDimension, m = mode, lam = precision
    guard let l = DenseMatrix.cholesky(lam, d) else { return .nan }
    let r = (0..<d).map { q.mean[$0] - m[$0] }
    let quad = DenseMatrix.dot(r, DenseMatrix.multiply(lam, rows: d, cols: d, r))
    var trace = 0.0, logVar = 0.0
    for j in 0..<d {
      let s = q.standardDeviation[j]
      trace += lam[j * d + j] * s * s
      logVar += 2 * log(s)
    }
    return 0.5 * (trace + quad - Double(d) - DenseMatrix.logDeterminant(cholesky: l, d) - logVar)
  }
}
