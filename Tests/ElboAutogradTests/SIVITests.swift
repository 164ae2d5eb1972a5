import ElboModels
import ElboTestSupport
import Foundation
import XCTest

/// SIVI's K-sample surrogate of log q(z) (Yin & Zhou 2018): its gradients, its two forms, the
/// evaluation-time mixture density, and its known limit on a semi-implicit q whose marginal is
/// Gaussian in closed form.
final class SIVITests: XCTestCase {
  /// The list form: z [R, L] against K + 1 = 3 components, every input differentiated.
  func testLogMixtureDensityGradients() {
    var rng = TestRandom(seed: 1)
    let r = 3, l = 2, m = 3
    let inputs = [rng.tensor([r, l])] + (0..<(2 * m)).map { _ in rng.tensor([r, l], -0.5, 0.5) }
    assertGradients("SIVI.logMixtureDensity", inputs) { _, v in
      let comps = (0..<m).map { DiagonalNormal(mean: v[1 + 2 * $0], logVariance: v[2 + 2 * $0]) }
      return SIVI.logMixtureDensity(v[0], components: comps)
    }
  }

  /// The stacked form: same gradients check, and the same values as the list form.
  func testStackedFormGradientsAndAgreement() {
    var rng = TestRandom(seed: 2)
    let r = 3, l = 2, m = 4
    let z = rng.tensor([r, l]), mean = rng.tensor([m, r, l]), logVar = rng.tensor([m, r, l], -0.5, 0.5)
    assertGradients("SIVI.logMixtureDensity(stacked:)", [z, mean, logVar]) { _, v in
      SIVI.logMixtureDensity(v[0], stacked: DiagonalNormal(mean: v[1], logVariance: v[2]))
    }
    let tape = Tape(recording: false)
    let stacked = SIVI.logMixtureDensity(tape.constant(z), stacked: DiagonalNormal(
      mean: tape.constant(mean), logVariance: tape.constant(logVar))).value.array
    let list = SIVI.logMixtureDensity(tape.constant(z), components: (0..<m).map { j in
      DiagonalNormal(mean: tape.constant(Tensor(Array(mean.array[(j * r * l)..<((j + 1) * r * l)]),
                                                shape: [r, l])),
                     logVariance: tape.constant(Tensor(Array(logVar.array[(j * r * l)..<((j + 1) * r * l)]),
                                                       shape: [r, l])))
    }).value.array
    assertClose(stacked, list, atol: 1e-5)
  }

  /// Identical components: the mixture is the component itself (log (1/n)·n·q = log q).
  func testIdenticalComponentsGiveTheComponentDensity() {
    var rng = TestRandom(seed: 3)
    let tape = Tape(recording: false)
    let q = DiagonalNormal(mean: tape.constant(rng.tensor([5, 3])),
                           logVariance: tape.constant(rng.tensor([5, 3], -1, 1)))
    let z = tape.constant(rng.tensor([5, 3]))
    let mix = SIVI.logMixtureDensity(z, components: Array(repeating: q, count: 7)).value.array
    assertClose(mix, q.logProb(z).value.array, atol: 1e-5)
  }

  /// The evaluation form (two matrix products) against log Σ_m of the direct densities.
  func testLogSumDensitiesMatchesDirectSum() {
    var rng = TestRandom(seed: 4)
    let s = 6, m = 9, l = 3
    let z = rng.tensor([s, l], -2, 2), mean = rng.tensor([m, l]), logVar = rng.tensor([m, l], -1, 1)
    let got = SIVI.logSumDensities(z, mean: mean, logVariance: logVar)
    var want = [Double](repeating: 0, count: s)
    for i in 0..<s {
      var terms: [Double] = []
      for j in 0..<m {
        var t = 0.0
        for u in 0..<l {
          let lv = Double(logVar[j * l + u]), d = Double(z[i * l + u]) - Double(mean[j * l + u])
          t += -0.5 * (log(2 * Double.pi) + lv + d * d / exp(lv))
        }
        terms.append(t)
      }
      let top = terms.max()!
      want[i] = top + log(terms.reduce(0) { $0 + exp($1 - top) })
    }
    assertClose(got, want, atol: 1e-4)
  }

  /// A linear semi-implicit q: ψ = (ε·A + c, ε·B + d). The surrogate's gradient w.r.t. A, B,
  /// c, d through both z (reparameterised) and the K = 3 extra components.
  func testSurrogateGradients() {
    var rng = TestRandom(seed: 5)
    let r = 2, e = 2, l = 2, k = 2, m = 3
    let a = rng.tensor([e, l]), c = rng.tensor([1, l]), b = rng.tensor([e, l], -0.3, 0.3)
    let d = rng.tensor([1, l], -0.3, 0.3)
    let mixing = rng.normal([k, r, e]), mixture = rng.normal([m, r, e]), noise = rng.normal([k, r, l])
    assertGradients("SemiImplicitNormal.surrogateLogDensity", [a, c, b, d]) { tape, v in
      let q = SemiImplicitNormal(mixingDimension: e) { eps in
        let s = eps.shape[0]
        let flat = tape.constant(eps.reshaped([s * r, e]))
        return DiagonalNormal(mean: (matmul(flat, v[0]) + v[1]).reshaped([s, r, l]),
                              logVariance: (matmul(flat, v[2]) + v[3]).reshaped([s, r, l]))
      }
      let (z, q0) = q.sample(mixing: mixing, noise: noise)
      return q.surrogateLogDensity(z, generating: q0, mixing: mixture)
    }
  }

  /// q(z) = ∫ N(z; a·ε, s²) N(ε; 0, 1) dε = N(0, a² + s²), so E_q log q(z) = −½ log(2π(a² + s²))
  /// − ½ exactly. SIVI's surrogate is an upper bound on it in expectation that falls with K
  /// and reaches it as K → ∞ (Yin & Zhou, Theorem 1). Means over 10,000 draws, 3 standard
  /// errors: a surrogate without ψ₀ (below the limit at small K), without the 1/(K+1), or with
  /// the components mixed up would fail.
  func testSurrogateFallsWithKTowardsTheExactEntropy() {
    let a: Float = 2, s: Float = 0.5, n = 10_000
    let exact = -0.5 * log(2 * Double.pi * Double(a * a + s * s)) - 0.5
    var rng = TestRandom(seed: 6)
    var previous = Double.infinity
    for kk in [0, 1, 5, 50, 500] {
      let chunk = 2000
      var values: [Double] = []
      for _ in 0..<(n / chunk) {
        let tape = Tape(recording: false)
        let qc = SemiImplicitNormal(mixingDimension: 1) { eps in
          let m = eps.shape[0]
          return DiagonalNormal(
            mean: tape.constant(eps).affine(scale: a),
            logVariance: tape.constant(Tensor(Array(repeating: 2 * log(s), count: m * chunk),
                                               shape: [m, chunk, 1])))
        }
        let (z, q0) = qc.sample(mixing: rng.normal([1, chunk, 1]), noise: rng.normal([1, chunk, 1]))
        values += qc.surrogateLogDensity(z, generating: q0, mixing: rng.normal([kk, chunk, 1]))
          .value.array.map(Double.init)
      }
      let mean = values.reduce(0, +) / Double(values.count)
      let sd = sqrt(values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(values.count - 1))
      let se = sd / sqrt(Double(values.count))
      XCTAssertGreaterThan(mean, exact - 3 * se, "K = \(kk): surrogate \(mean) ± \(se) is an "
                             + "upper bound on E log q = \(exact)")
      if previous.isFinite {
        XCTAssertLessThan(mean, previous, "K = \(kk): the surrogate falls with K")
      }
      previous = mean
      if kk == 500 { XCTAssertEqual(mean, exact, accuracy: max(0.03, 3 * se), "K = 500 is tight") }
    }
  }

  /// The shared-component mixture (a mixture prior): gradients w.r.t. z and every component.
  func testSharedMixtureGradients() {
    var rng = TestRandom(seed: 7)
    let inputs = [rng.tensor([4, 2]), rng.tensor([3, 2]), rng.tensor([3, 2], -0.5, 0.5)]
    assertGradients("SIVI.logMixtureDensity(shared:)", inputs) { _, v in
      SIVI.logMixtureDensity(v[0], shared: DiagonalNormal(mean: v[1], logVariance: v[2]))
    }
  }

  /// DSIVI's prior side: p(z) = ∫ N(z; a·ζ, s²) N(ζ; 0, 1) dζ = N(0, a² + s²). The K-sample
  /// mixture E log (1/K) Σ_k N(z; a·ζ_k, s²) is below log p(z) and rises towards it with K
  /// (Jensen on an unbiased estimate of p(z)); at fixed z, means over 3000 independent sets of draws, 3 SE.
  func testMixturePriorBoundRisesWithKTowardsTheExactDensity() {
    let a: Float = 2, s: Float = 0.5, n = 3000
    let zs: [Float] = [0, 1.5, -3]
    var rng = TestRandom(seed: 8)
    for zv in zs {
      let exact = -0.5 * log(2 * Double.pi * Double(a * a + s * s))
        - 0.5 * Double(zv * zv) / Double(a * a + s * s)
      var previous = -Double.infinity
      for kk in [1, 10, 100, 500] {
        // Row r has its own K draws ζ_rk: the stacked form, components [K, n, 1].
        let tape = Tape(recording: false)
        let comps = DiagonalNormal(mean: tape.constant(rng.normal([kk, n, 1])).affine(scale: a),
                                   logVariance: tape.constant(Tensor(
                                     Array(repeating: 2 * log(s), count: kk * n), shape: [kk, n, 1])))
        let z = tape.constant(Tensor(Array(repeating: zv, count: n), shape: [n, 1]))
        let values = SIVI.logMixtureDensity(z, stacked: comps).value.array.map(Double.init)
        let mean = values.reduce(0, +) / Double(values.count)
        let sd = sqrt(values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +)
                        / Double(values.count - 1))
        let se = sd / sqrt(Double(values.count))
        XCTAssertLessThan(mean, exact + 3 * se, "z = \(zv), K = \(kk): a lower bound on log p(z)")
        XCTAssertGreaterThan(mean, previous, "z = \(zv), K = \(kk): rises with K")
        if kk == 500 { XCTAssertEqual(mean, exact, accuracy: max(0.02, 3 * se), "K = 500 is tight") }
        previous = mean
      }
    }
  }
}
