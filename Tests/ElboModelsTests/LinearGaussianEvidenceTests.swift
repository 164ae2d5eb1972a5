import ElboModels
import ElboTestSupport
import Foundation
import XCTest

/// Seed 001's evidence estimators held to the exact log p(x) of the linear-Gaussian model.
final class LinearGaussianEvidenceTests: XCTestCase {
  let model = LinearGaussianModel.random(latent: 3, observed: 8, seed: 11)

  /// The same joint with its Hessian hidden, so that the protocol's finite-difference default runs.
  struct WithoutHessian: LatentJoint {
    let base: LinearGaussianJoint
    var latentDimension: Int { base.latentDimension }
    func logJoint(_ z: [Double]) -> Double { base.logJoint(z) }
    func gradient(_ z: [Double]) -> [Double] { base.gradient(z) }
  }

  /// log N(z; m, Λ⁻¹) (the exact posterior's density), written out independently of the estimators.
  func logPosterior(_ j: LinearGaussianJoint, _ z: [Double]) -> Double {
    let d = j.latentDimension
    let l = DenseMatrix.cholesky(j.precision, d)!
    let r = (0..<d).map { z[$0] - j.mode[$0] }
    let quad = DenseMatrix.dot(r, DenseMatrix.multiply(j.precision, rows: d, cols: d, r))
    return -0.5 * (quad + Double(d) * log(2 * Double.pi)) + 0.5 * DenseMatrix.logDeterminant(cholesky: l, d)
  }

  // MARK: - The model

  /// Bayes' rule at arbitrary z: log p(x) = log p(x, z) − log p(z|x), against the D×D marginal.
  func testExactEvidenceAgreesWithBayesRuleAtAnyZ() {
    var draws = NormalDraws(seed: 5)
    for x in model.sample(5, seed: 3) {
      let j = model.joint(x)
      for _ in 0..<3 {
        let z = draws.next(3).map { 2 * $0 }
        XCTAssertEqual(j.logJoint(z) - logPosterior(j, z), model.exactLogEvidence(x), accuracy: 1e-9)
      }
    }
  }

  func testJointGradientAndHessianMatchFiniteDifferences() {
    let j = model.joint(model.sample(1, seed: 4)[0])
    var draws = NormalDraws(seed: 6)
    let z = draws.next(3)
    var numeric = [Double](repeating: 0, count: 3)
    for k in 0..<3 {
      var zp = z, zm = z
      zp[k] += 1e-5; zm[k] -= 1e-5
      numeric[k] = (j.logJoint(zp) - j.logJoint(zm)) / 2e-5
    }
    let g = compareClose(j.gradient(z), numeric, atol: 1e-6, rtol: 1e-6)
    XCTAssertTrue(g.passed, "gradient: \(g)")
    let h = compareClose(j.hessian(z), WithoutHessian(base: j).hessian(z), atol: 1e-6, rtol: 1e-6)
    XCTAssertTrue(h.passed, "Hessian: \(h)")
  }

  // MARK: - Importance sampling

  /// RMSE over independent replicates at K = 16 … 4096; the slope of log RMSE against log K must
  /// be −½ (the estimator's spread), within 0.1.
  func testImportanceSamplingErrorFallsLikeOneOverRootK() {
    let small = LinearGaussianModel.random(latent: 2, observed: 5, seed: 21)
    let x = small.sample(1, seed: 22)[0]
    let j = small.joint(x), exact = small.exactLogEvidence(x)
    // An isotropic proposal twice as wide as the posterior's widest direction: finite weight variance.
    let cov = j.posteriorCovariance
    let widest = max(cov[0], cov[3]) + abs(cov[1])
    let q = DiagonalGaussian(mean: j.mode.map { $0 + 0.3 },
                             standardDeviation: [Double](repeating: 2 * widest.squareRoot(), count: 2))
    let estimator = ImportanceSamplingEvidence(proposal: .gaussian(q))
    let ks = [16, 64, 256, 1024, 4096], replicates = 200
    var logK: [Double] = [], logRMSE: [Double] = []
    for (i, k) in ks.enumerated() {
      var sq = 0.0
      for r in 0..<replicates {
        var draws = NormalDraws(seed: 99, item: UInt32(i), time: UInt64(r))
        let e = estimator.estimate(j, samples: k, draws: &draws) - exact
        sq += e * e
      }
      logK.append(log(Double(k)))
      logRMSE.append(0.5 * log(sq / Double(replicates)))
    }
    let slope = leastSquaresSlope(logK, logRMSE)
    XCTAssertEqual(slope, -0.5, accuracy: 0.1, "log RMSE \(logRMSE) against log K")
    XCTAssertLessThan(exp(logRMSE.last!), 0.05)
  }

  /// With the prior as proposal (w = p(x|z)), a large K still lands on the exact value.
  func testImportanceSamplingFromThePriorConverges() {
    let small = LinearGaussianModel.random(latent: 2, observed: 3, seed: 31, noise: 1)
    let x = small.sample(1, seed: 32)[0]
    var draws = NormalDraws(seed: 33)
    let estimate = ImportanceSamplingEvidence(proposal: .prior)
      .estimate(small.joint(x), samples: 200_000, draws: &draws)
    XCTAssertEqual(estimate, small.exactLogEvidence(x), accuracy: 0.02)
  }

  // MARK: - Laplace

  func testLaplaceIsExactOnTheLinearGaussianModel() throws {
    for (d, D, seed) in [(1, 4, UInt64(1)), (3, 8, 2), (5, 12, 3)] {
      let m = LinearGaussianModel.random(latent: d, observed: D, seed: seed)
      for x in m.sample(4, seed: seed + 10) {
        let j = m.joint(x), exact = m.exactLogEvidence(x)
        let start = [Double](repeating: 0, count: d)
        let analytic = try LaplaceEvidence().estimate(j, start: start)
        XCTAssertTrue(analytic.converged)
        XCTAssertEqual(analytic.logEvidence, exact, accuracy: 1e-4)
        // The finite-difference Hessian of the protocol's default reaches the same value.
        let numeric = try LaplaceEvidence().estimate(WithoutHessian(base: j), start: start)
        XCTAssertEqual(numeric.logEvidence, exact, accuracy: 1e-4)
        // Away from the mode the seed's gradient term ½ JᵀΛ⁻¹J makes the expansion exact too.
        let away = LaplaceEvidence.estimate(at: start, j, includeGradient: true)!
        XCTAssertEqual(away, exact, accuracy: 1e-6)
      }
    }
  }

  // MARK: - Mean-field fixed points

  func testMeanFieldStaysBelowTheEvidenceAndItsGapIsTheKL() {
    for x in model.sample(4, seed: 41) {
      let j = model.joint(x), exact = model.exactLogEvidence(x)
      let result = MeanFieldEvidence(sweeps: 30).run(j)
      for (a, b) in zip(result.trace, result.trace.dropFirst()) {
        XCTAssertGreaterThanOrEqual(b, a - 1e-12, "a sweep lowered the ELBO: \(result.trace)")
      }
      XCTAssertLessThan(result.elbo, exact)
      XCTAssertGreaterThan(exact - result.elbo, 1e-3, "the posterior should be correlated")
      XCTAssertEqual(exact - result.elbo, j.klToPosterior(result.posterior), accuracy: 1e-8)
      // The closed-form ELBO is the Monte Carlo one.
      var draws = NormalDraws(seed: 42)
      let mc = result.posterior.monteCarloELBO(j, samples: 20_000, draws: &draws)
      XCTAssertEqual(mc.elbo, result.elbo, accuracy: 4 * mc.standardError + 1e-9)
      // The fixed point's means are the posterior mean (Λ is positive definite).
      let close = compareClose(result.posterior.mean, j.mode, atol: 1e-6, rtol: 0)
      XCTAssertTrue(close.passed, "\(close)")
    }
  }

  // MARK: - Amortised VI

  func testAmortizedGradientMatchesFiniteDifferences() {
    let x = model.sample(1, seed: 51)[0]
    let j = model.joint(x)
    var draws = NormalDraws(seed: 52)
    var encoder = AmortizedGaussianEncoder(inputs: 8, latent: 3)
    encoder.weight = draws.next(24).map { 0.2 * $0 }
    encoder.bias = draws.next(3).map { 0.3 * $0 }
    encoder.logScale = draws.next(3).map { 0.2 * $0 - 0.5 }
    let eps = draws.next(3)
    let analytic = encoder.elbo(x, j, noise: eps).gradient
    func numeric(_ path: WritableKeyPath<AmortizedGaussianEncoder, [Double]>) -> [Double] {
      var out: [Double] = []
      for k in encoder[keyPath: path].indices {
        var plus = encoder, minus = encoder
        plus[keyPath: path][k] += 1e-5
        minus[keyPath: path][k] -= 1e-5
        out.append((plus.elbo(x, j, noise: eps).value - minus.elbo(x, j, noise: eps).value) / 2e-5)
      }
      return out
    }
    for (name, a, n) in [("A", analytic.weight, numeric(\.weight)), ("b", analytic.bias, numeric(\.bias)),
                         ("ρ", analytic.logScale, numeric(\.logScale))] {
      let r = compareClose(a, n, atol: 1e-5, rtol: 1e-5)
      XCTAssertTrue(r.passed, "∂ELBO/∂\(name): \(r)")
    }
  }

  /// A trained linear encoder: below the evidence for every x, gap = KL(q(z|x) ‖ p(z|x)), and
  /// (for this model) as tight as the per-x mean-field optimum.
  func testAmortizedStaysBelowTheEvidenceAndItsGapIsTheKL() {
    let train = model.sample(2000, seed: 61)
    var encoder = AmortizedGaussianEncoder(inputs: 8, latent: 3)
    AmortizedEvidence(steps: 1500, batchSize: 32, learningRate: 0.02)
      .train(&encoder, observations: train, joint: { self.model.joint($0) }, seed: 62)
    var gap = 0.0, meanFieldGap = 0.0
    let test = model.sample(20, seed: 63)
    var draws = NormalDraws(seed: 64)
    for x in test {
      let j = model.joint(x), exact = model.exactLogEvidence(x)
      let q = encoder.posterior(x)
      let elbo = j.elbo(q)
      XCTAssertLessThan(elbo, exact)
      XCTAssertEqual(exact - elbo, j.klToPosterior(q), accuracy: 1e-8)
      let mc = q.monteCarloELBO(j, samples: 5000, draws: &draws)
      XCTAssertEqual(mc.elbo, elbo, accuracy: 4 * mc.standardError + 1e-9)
      gap += (exact - elbo) / Double(test.count)
      meanFieldGap += (exact - MeanFieldEvidence().run(j).elbo) / Double(test.count)
    }
    let untrained = test.map { model.exactLogEvidence($0) - model.joint($0).elbo(.standard(3)) }
      .reduce(0, +) / Double(test.count)
    XCTAssertLessThan(gap, 0.1 * untrained, "training barely moved the encoder")
    XCTAssertEqual(gap, meanFieldGap, accuracy: 0.05)
  }

  // MARK: - Perturbative expansion

  func testPerturbativeSeriesConvergesToTheEvidence() {
    let small = LinearGaussianModel.random(latent: 2, observed: 6, seed: 71)
    for x in small.sample(3, seed: 72) {
      let j = small.joint(x), exact = small.exactLogEvidence(x)
      let q = MeanFieldEvidence().run(j).posterior
      let series = PerturbativeEvidence.exactCumulantOrders(j, around: q, maxOrder: 200)
      XCTAssertEqual(series[0], j.elbo(q), accuracy: 1e-10, "order 1 is the ELBO")
      XCTAssertLessThan(abs(series[1] - exact), abs(series[0] - exact), "order 2 must improve")
      XCTAssertEqual(series[199], exact, accuracy: 1e-6)
      // Monte Carlo cumulants (S = 200,000 draws of q) reproduce the closed-form orders 1–3.
      var draws = NormalDraws(seed: 73)
      let y = q.logWeights(j, samples: 200_000, draws: &draws)
      let mc = PerturbativeEvidence.orders(logWeights: y, maxOrder: 3, series: .cumulants)
      for n in 0..<3 { XCTAssertEqual(mc[n], series[n], accuracy: 0.01, "order \(n + 1)") }
      // The seed's moment series agrees with the cumulant one to second order: log(1 + ½κ₂) ≈ ½κ₂.
      let moments = PerturbativeEvidence.orders(logWeights: y, maxOrder: 2, series: .moments)
      XCTAssertEqual(moments[1], mc[0] + log(1 + (mc[1] - mc[0])), accuracy: 1e-9)
    }
  }

  func leastSquaresSlope(_ x: [Double], _ y: [Double]) -> Double {
    let n = Double(x.count), mx = x.reduce(0, +) / n, my = y.reduce(0, +) / n
    var sxy = 0.0, sxx = 0.0
    for i in x.indices { sxy += (x[i] - mx) * (y[i] - my); sxx += (x[i] - mx) * (x[i] - mx) }
    return sxy / sxx
  }
}
