import ElboModels
import ElboTestSupport
import Foundation
import XCTest

/// The VAE's joint log p(x, z) as the evidence estimators see it: its gradient and Hessian against
/// finite differences, and importance sampling against quadrature on a one-dimensional latent.
final class VAEEvidenceTests: XCTestCase {
  func tinyVAE(latent: Int, activation: Activation = .tanh) -> VAE {
    var c = VAE.Config()
    c.inputs = 6; c.hidden = 5; c.hiddenLayers = 1; c.latent = latent; c.activation = activation
    return VAE(c, seed: 3)
  }

  let image: [Float] = [1, 0, 0, 1, 1, 0]

  func testJointGradientAndHessianMatchFiniteDifferences() {
    var joint = VAELatentJoint(vae: tinyVAE(latent: 3), x: image)
    joint.curvature = .differences
    let z = [0.3, -0.7, 1.1]
    // Central differences of the Float forward: h = 1e-2 keeps rounding (~1e-7 · |log p| / h)
    // well under the tolerance; the truncation error h²|f'''|/6 is ~1e-5.
    var numeric: [Double] = []
    for k in 0..<3 {
      var p = z, m = z
      p[k] += 1e-2; m[k] -= 1e-2
      numeric.append((joint.logJoint(p) - joint.logJoint(m)) / 2e-2)
    }
    let g = compareClose(joint.gradient(z), numeric, atol: 2e-3, rtol: 1e-2)
    XCTAssertTrue(g.passed, "gradient: \(g)")
    // The Hessian from batched gradient differences against second differences of log p.
    var second = [Double](repeating: 0, count: 9)
    let h = 3e-2
    for i in 0..<3 { for j in 0..<3 {
      func f(_ a: Double, _ b: Double) -> Double {
        var v = z; v[i] += a; v[j] += b; return joint.logJoint(v)
      }
      second[i * 3 + j] = (f(h, h) - f(h, -h) - f(-h, h) + f(-h, -h)) / (4 * h * h)
    } }
    let hess = compareClose(joint.hessian(z), second, atol: 5e-3, rtol: 2e-2)
    XCTAssertTrue(hess.passed, "Hessian: \(hess)")
    // The Gauss–Newton curvature of a smooth (tanh) decoder differs from the Hessian by
    // Σ (x − σ) ∇²l: close but not equal; it is negative definite.
    joint.curvature = .gaussNewton
    XCTAssertNotNil(DenseMatrix.cholesky(joint.hessian(z).map { -$0 }, 3))
    // The batched log-joint is the one-row one.
    let rows = joint.logJoints([z, [0, 0, 0]])
    XCTAssertEqual(rows[0], joint.logJoint(z), accuracy: 1e-9)
  }

  /// A ReLU decoder's logits are piecewise linear, so off the kinks its Gauss–Newton curvature
  /// is the Hessian: compare with second differences of log p at a point (small h: no kink crossed).
  func testGaussNewtonIsTheHessianOfAReLUDecoder() {
    let joint = VAELatentJoint(vae: tinyVAE(latent: 3, activation: .relu), x: image)
    let z = [0.3, -0.7, 1.1]
    var second = [Double](repeating: 0, count: 9)
    let h = 2e-2
    for i in 0..<3 { for j in 0..<3 {
      func f(_ a: Double, _ b: Double) -> Double {
        var v = z; v[i] += a; v[j] += b; return joint.logJoint(v)
      }
      second[i * 3 + j] = (f(h, h) - f(h, -h) - f(-h, h) + f(-h, -h)) / (4 * h * h)
    } }
    let r = compareClose(joint.hessian(z), second, atol: 5e-3, rtol: 2e-2)
    XCTAssertTrue(r.passed, "Gauss–Newton vs second differences: \(r)")
  }

  /// With L = 1, log p(x) = log ∫ p(x, z) dz by a fine trapezoid rule on [−10, 10]; importance
  /// sampling from the encoder's q(z|x) must land on it, and Laplace must be finite at a mode.
  func testImportanceSamplingMatchesQuadratureOnAOneDimensionalLatent() throws {
    let vae = tinyVAE(latent: 1)
    let problem = vae.evidenceProblems(images: image, count: 1)[0]
    let grid = stride(from: -10.0, through: 10.0, by: 0.001).map { [$0] }
    let logs = problem.joint.logJoints(grid)
    let quadrature = DenseMatrix.logSumExp(logs) + log(0.001)
    var draws = NormalDraws(seed: 7)
    let wide = DiagonalGaussian(mean: problem.posterior.mean,
                                standardDeviation: problem.posterior.standardDeviation.map { 2 * $0 + 0.5 })
    let estimate = ImportanceSamplingEvidence(proposal: .gaussian(wide))
      .estimate(problem.joint, samples: 200_000, draws: &draws)
    XCTAssertEqual(estimate, quadrature, accuracy: 0.01)
    let laplace = try LaplaceEvidence(maxSteps: 50, gradientTolerance: 1e-3)
      .estimate(problem.joint, start: problem.posterior.mean)
    XCTAssertTrue(laplace.converged)
    XCTAssertLessThan(abs(problem.joint.gradient(laplace.mode)[0]), 1e-3)
    XCTAssertEqual(laplace.logEvidence, quadrature, accuracy: 1.0, "a 1-D posterior is near Gaussian")
  }
}
