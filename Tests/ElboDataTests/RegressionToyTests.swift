import ElboData
import Foundation
import XCTest

/// The seed-004 regression toy: y = x + 0.3 sin 2π(x+v) + 0.3 sin 4π(x+v) + v, v ~ N(0, 0.02)
/// with 0.02 the VARIANCE (the seed's notation), x ~ U(0, 0.5).
final class RegressionToyTests: XCTestCase {
  func testDeterministicInRangeAndSplitsDiffer() {
    let a = RegressionToy(count: 500, seed: 3, split: .train)
    let b = RegressionToy(count: 500, seed: 3, split: .train)
    let c = RegressionToy(count: 500, seed: 3, split: .heldOut)
    let d = RegressionToy(count: 500, seed: 4, split: .train)
    XCTAssertEqual(a.x, b.x)
    XCTAssertEqual(a.y, b.y)
    XCTAssertNotEqual(a.x, c.x)
    XCTAssertNotEqual(a.x, d.x)
    XCTAssertTrue(a.x.allSatisfy { RegressionToy.range.contains(Double($0)) })
    // A prefix of a larger set is the smaller set: point i depends only on (seed, split, i).
    XCTAssertEqual(Array(RegressionToy(count: 800, seed: 3, split: .train).y.prefix(500)), a.y)
  }

  /// E[y | x] and E[Var(y | x)] computed here by quadrature over v ~ N(0, 0.02), independently of
  /// the generator: the sample mean of y − E[y|x] is 0 and the residual variance matches. With
  /// σ_v = 0.02 (the other reading of the seed) E[y|x] would be ≈ the noise-free curve, and the
  /// mean residual would be off by ≈ 0.06, thirty standard errors.
  func testSamplesFollowTheConditionalMeanAndVarianceOfTheSeedsNoise() {
    let n = 20_000
    let toy = RegressionToy(count: n, seed: 11, split: .train)
    let s = RegressionToy.noiseVariance.squareRoot()
    // A midpoint rule over v ∈ [−8s, 8s] (400 points: exact to ~1e-12 for this smooth integrand).
    func moments(_ x: Double) -> (mean: Double, variance: Double) {
      let k = 400, h = 16 * s / Double(k)
      var w = 0.0, m1 = 0.0, m2 = 0.0
      for i in 0..<k {
        let v = -8 * s + (Double(i) + 0.5) * h
        let p = exp(-v * v / (2 * s * s))
        let y = RegressionToy.curve(x, v: v)
        w += p; m1 += p * y; m2 += p * y * y
      }
      return (m1 / w, m2 / w - (m1 / w) * (m1 / w))
    }
    var residualSum = 0.0, residualSq = 0.0, expectedVariance = 0.0
    for i in 0..<n {
      let x = Double(toy.x[i]), m = moments(x)
      XCTAssertEqual(RegressionToy.conditionalMean(x), m.mean, accuracy: 1e-9)
      let r = Double(toy.y[i]) - m.mean
      residualSum += r
      residualSq += r * r
      expectedVariance += m.variance
    }
    let meanResidual = residualSum / Double(n)
    let variance = residualSq / Double(n)
    expectedVariance /= Double(n)
    let se = (variance / Double(n)).squareRoot()
    XCTAssertEqual(meanResidual, 0, accuracy: 4 * se)
    // The variance of a variance estimate: ≈ √(2/n)·σ² for near-Gaussian residuals, more for
    // these skewed ones; 5% is ≈ 7 standard errors, a wrong noise scale is off by a factor.
    XCTAssertEqual(variance, expectedVariance, accuracy: 0.05 * expectedVariance)
  }
}
