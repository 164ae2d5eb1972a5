import ElboProbability
import ElboTestSupport
import Foundation
import XCTest

final class DistributionTests: XCTestCase {
  var rng = TestRandom(seed: 77)
  let log2PiD = Foundation.log(2 * Double.pi)

  /// log N(z | μ, σ²) summed over the last axis, in Double.
  func logNormal(_ z: [Double], _ mu: [Double], _ logVar: [Double]) -> Double {
    var s = 0.0
    for d in z.indices {
      let diff = z[d] - mu[d]
      s += -0.5 * (log2PiD + logVar[d] + diff * diff / Foundation.exp(logVar[d]))
    }
    return s
  }

  func normal(_ mean: Tensor, _ logVar: Tensor, on tape: Tape) -> DiagonalNormal {
    DiagonalNormal(mean: tape.constant(mean), logVariance: tape.constant(logVar))
  }

  /// Monte Carlo mean and standard error of f(z), z ~ N(μ, σ²) per row (Double).
  func monteCarlo(samples n: Int, mu: [Double], logVar: [Double],
                  _ f: ([Double]) -> Double) -> (mean: Double, se: Double) {
    let dim = mu.count
    let eps = rng.normal([n, dim])
    var sum = 0.0, sumSq = 0.0
    var z = [Double](repeating: 0, count: dim)
    for s in 0..<n {
      for d in 0..<dim {
        z[d] = mu[d] + Foundation.exp(0.5 * logVar[d]) * Double(eps[s * dim + d])
      }
      let v = f(z)
      sum += v; sumSq += v * v
    }
    let mean = sum / Double(n)
    let variance = (sumSq / Double(n) - mean * mean) * Double(n) / Double(n - 1)
    return (mean, (variance / Double(n)).squareRoot())
  }

  func testKLToStandardNormalMatchesMonteCarlo() {
    let mu = Tensor([0.5, -1.2, 0.1, 0, 2, -0.3], shape: [2, 3])
    let lv = Tensor([-0.5, 0.3, 1.0, -1.5, 0, 0.7], shape: [2, 3])
    let tape = Tape(recording: false)
    let kl = normal(mu, lv, on: tape).klToStandardNormal().value.array
    for r in 0..<2 {
      let m = (0..<3).map { Double(mu[r * 3 + $0]) }, l = (0..<3).map { Double(lv[r * 3 + $0]) }
      let est = monteCarlo(samples: 200_000, mu: m, logVar: l) { z in
        logNormal(z, m, l) - logNormal(z, [0, 0, 0], [0, 0, 0])
      }
      // KL = E_q[log q − log p]; the MC mean is within 4 standard errors with prob. > 0.9999.
      XCTAssertEqual(Double(kl[r]), est.mean, accuracy: 4 * est.se, "row \(r): se \(est.se)")
    }
  }

  func testKLBetweenDiagonalNormalsMatchesMonteCarlo() {
    let mu1 = Tensor([0.5, -1.2, 0.1], shape: [1, 3]), lv1 = Tensor([-0.5, 0.3, 1.0], shape: [1, 3])
    let mu2 = Tensor([0, 0.4, -0.5], shape: [1, 3]), lv2 = Tensor([0.2, -0.4, 0.5], shape: [1, 3])
    let tape = Tape(recording: false)
    let kl = normal(mu1, lv1, on: tape).kl(to: normal(mu2, lv2, on: tape)).value[0]
    let m1 = mu1.array.map(Double.init), l1 = lv1.array.map(Double.init)
    let m2 = mu2.array.map(Double.init), l2 = lv2.array.map(Double.init)
    let est = monteCarlo(samples: 200_000, mu: m1, logVar: l1) { z in
      logNormal(z, m1, l1) - logNormal(z, m2, l2)
    }
    XCTAssertEqual(Double(kl), est.mean, accuracy: 4 * est.se, "se \(est.se)")
  }

  func testKLOfADistributionToItselfIsZeroAndToStandardNormalAgrees() {
    let mu = rng.tensor([3, 4]), lv = rng.tensor([3, 4])
    let tape = Tape(recording: false)
    let q = normal(mu, lv, on: tape)
    assertClose(q.kl(to: q).value.array, [0, 0, 0], atol: 1e-6)
    let p = normal(Tensor(zeros: [3, 4]), Tensor(zeros: [3, 4]), on: tape)
    assertClose(q.kl(to: p).value.array, q.klToStandardNormal().value.array, atol: 1e-5,
                rtol: 1e-5)
  }

  func testDiagonalNormalLogProbMatchesDoubleReference() {
    let mu = rng.tensor([3, 4], -1, 1), lv = rng.tensor([3, 4], -1, 1)
    let z = rng.tensor([2, 3, 4], -2, 2)   // [k, R, D]: broadcasts over the sample axis
    let tape = Tape(recording: false)
    let lp = normal(mu, lv, on: tape).logProb(tape.constant(z))
    XCTAssertEqual(lp.shape, [2, 3])
    var ref: [Double] = []
    for s in 0..<2 { for r in 0..<3 {
      let row = (0..<4).map { r * 4 + $0 }
      ref.append(logNormal(row.map { Double(z[s * 12 + $0]) }, row.map { Double(mu[$0]) },
                           row.map { Double(lv[$0]) }))
    } }
    // Float arithmetic on O(10) terms: 1e-5 relative.
    assertClose(lp.value.array.map(Double.init), ref, atol: 1e-5, rtol: 1e-5)
  }

  func testStandardNormalLogProbMatchesDoubleReference() {
    let z = rng.tensor([5, 3], -3, 3)
    let tape = Tape(recording: false)
    let lp = StandardNormal.logProb(tape.constant(z))
    let ref = (0..<5).map { r in
      logNormal((0..<3).map { Double(z[r * 3 + $0]) }, [0, 0, 0], [0, 0, 0])
    }
    assertClose(lp.value.array.map(Double.init), ref, atol: 1e-5, rtol: 1e-5)
  }

  func testSampleMeanAndVarianceMatchTheParameters() {
    let mu = Tensor([0.5, -2], shape: [1, 2]), lv = Tensor([-1, 1.5], shape: [1, 2])
    let n = 100_000
    let tape = Tape(recording: false)
    let z = normal(mu, lv, on: tape).sample(noise: rng.normal([n, 1, 2])).value
    for d in 0..<2 {
      let xs = (0..<n).map { Double(z[$0 * 2 + d]) }
      let mean = xs.reduce(0, +) / Double(n)
      let variance = xs.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(n - 1)
      let sigma2 = Foundation.exp(Double(lv[d]))
      // Standard errors: σ/√n for the mean, σ²·√(2/n) for the variance of a normal; 5 SE.
      XCTAssertEqual(mean, Double(mu[d]), accuracy: 5 * (sigma2 / Double(n)).squareRoot())
      XCTAssertEqual(variance, sigma2, accuracy: 5 * sigma2 * (2 / Double(n)).squareRoot())
    }
  }

  func testLogProbGradientsWithRespectToMeanLogVarianceAndSample() {
    let mu = rng.tensor([3, 4]), lv = rng.tensor([3, 4]), z = rng.tensor([2, 3, 4], -2, 2)
    assertGradients("DiagonalNormal.logProb", [mu, lv, z]) { _, v in
      DiagonalNormal(mean: v[0], logVariance: v[1]).logProb(v[2])
    }
    assertGradients("StandardNormal.logProb", [z]) { _, v in StandardNormal.logProb(v[0]) }
  }

  func testKLGradientsWithRespectToMeansAndLogVariances() {
    let mu1 = rng.tensor([3, 4]), lv1 = rng.tensor([3, 4])
    let mu2 = rng.tensor([3, 4]), lv2 = rng.tensor([3, 4])
    assertGradients("klToStandardNormal", [mu1, lv1]) { _, v in
      DiagonalNormal(mean: v[0], logVariance: v[1]).klToStandardNormal()
    }
    assertGradients("kl(to:)", [mu1, lv1, mu2, lv2]) { _, v in
      DiagonalNormal(mean: v[0], logVariance: v[1])
        .kl(to: DiagonalNormal(mean: v[2], logVariance: v[3]))
    }
  }

  func testReparameterisedSampleGradients() {
    let mu = rng.tensor([3, 2]), lv = rng.tensor([3, 2]), eps = rng.normal([4, 3, 2])
    assertGradients("sample(noise:)", [mu, lv]) { _, v in
      DiagonalNormal(mean: v[0], logVariance: v[1]).sample(noise: eps)
    }
  }
}
