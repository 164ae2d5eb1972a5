import ElboProbability
import ElboTestSupport
import Foundation
import XCTest

/// UIVI on a semi-implicit q whose marginal is Gaussian in closed form:
///
///   ε ~ N(0, I₃),  q(z|ε) = N(Aε + b, diag s²)  ⇒  q(z) = N(b, Σ),  Σ = AAᵀ + diag s²,
///
/// so ∇_z log q(z) = −Σ⁻¹(z − b) and E_q log q(z) = −½ log det(2πe Σ), whose gradients are
/// ∂/∂A = −Σ⁻¹A, ∂/∂b = 0, ∂/∂ log s²_i = −½ (Σ⁻¹)_ii s²_i. The HMC score estimate and the
/// entropy surrogate's gradient must match these within 3 standard errors.
final class UIVITests: XCTestCase {
  static let e = 3, l = 2
  /// A as W = Aᵀ [E, L] (the layout of `linear`), b [L], log s² [L].
  static let w: [Float] = [0.9, -0.3, 0.4, 0.8, -0.6, 0.5]
  static let b: [Float] = [0.3, -0.7]
  static let logS2: [Float] = [log(0.3), log(0.6)]

  /// Σ = AAᵀ + diag s² and its inverse (2 × 2, Double), for parameters (w, logS2).
  static func sigma(w: [Float], logS2: [Float]) -> (cov: [[Double]], inv: [[Double]]) {
    var c = [[0.0, 0.0], [0.0, 0.0]]
    for i in 0..<l { for j in 0..<l {
      for k in 0..<e { c[i][j] += Double(w[k * l + i]) * Double(w[k * l + j]) }
    } }
    for i in 0..<l { c[i][i] += Foundation.exp(Double(logS2[i])) }
    let det = c[0][0] * c[1][1] - c[0][1] * c[1][0]
    return (c, [[c[1][1] / det, -c[0][1] / det], [-c[1][0] / det, c[0][0] / det]])
  }

  /// q(z|ε) on ε's tape with the parameters as constants.
  static func conditional(w: [Float], b: [Float], logS2: [Float]) -> (Variable) -> DiagonalNormal {
    { eps in
      let t = eps.tape
      let mean = linear(eps, t.constant(Tensor(w, shape: [e, l])), t.constant(Tensor(b, shape: [l])))
      let logVar = t.constant(Tensor(zeros: [eps.shape[0], l])) + t.constant(Tensor(logS2, shape: [l]))
      return DiagonalNormal(mean: mean, logVariance: logVar)
    }
  }

  func streams(_ n: Int, seed: UInt64, time: UInt64) -> [RandomStream] {
    (0..<n).map { RandomStream(NoiseAddress(seed: seed, purpose: .benchmark, time: time,
                                            item: UInt32($0))) }
  }

  /// (ε [R, E], η [R, L], z = Aε + b + s ⊙ η [R, L]).
  func draw(_ r: Int, _ rng: inout TestRandom) -> (eps: Tensor, eta: Tensor, z: Tensor) {
    let eps = rng.normal([r, Self.e]), eta = rng.normal([r, Self.l])
    let z = Tensor(zeros: [r, Self.l])
    for i in 0..<r { for j in 0..<Self.l {
      var v = Self.b[j] + Foundation.exp(0.5 * Self.logS2[j]) * eta[i * Self.l + j]
      for k in 0..<Self.e { v += Self.w[k * Self.l + j] * eps[i * Self.e + k] }
      z[i * Self.l + j] = v
    } }
    return (eps, eta, z)
  }

  /// The score residual d = estimate − (−Σ⁻¹(z − b)) over 20,000 draws: E d_i = 0 and
  /// E[d_i (z_j − b_j)] = 0 (the latter catches a z-dependent bias such as a wrong scale) each
  /// within 3 standard errors; the chains move (acceptance in (0.3, 1)).
  func testScoreMatchesExactGradientOfLogMarginal() {
    let r = 20_000, l = Self.l
    var rng = TestRandom(seed: 2019)
    let (eps, _, z) = draw(r, &rng)
    var sampler = HamiltonianMonteCarlo(chains: r)
    var s = streams(r, seed: 1, time: 0)
    let out = UIVI.score(z: z, start: eps,
                         conditional: Self.conditional(w: Self.w, b: Self.b, logS2: Self.logS2),
                         sampler: &sampler, streams: &s)
    XCTAssertGreaterThan(out.acceptance, 0.3)
    XCTAssertLessThan(out.acceptance, 1)
    let inv = Self.sigma(w: Self.w, logS2: Self.logS2).inv
    var d = [Double](repeating: 0, count: r * l), zc = [Double](repeating: 0, count: r * l)
    for i in 0..<r {
      for j in 0..<l { zc[i * l + j] = Double(z[i * l + j] - Self.b[j]) }
      for j in 0..<l {
        let exact = -(inv[j][0] * zc[i * l] + inv[j][1] * zc[i * l + 1])
        d[i * l + j] = Double(out.score[i * l + j]) - exact
      }
    }
    func check(_ name: String, _ f: (Int) -> Double) {
      var s = 0.0, s2 = 0.0
      for i in 0..<r { let v = f(i); s += v; s2 += v * v }
      let m = s / Double(r), se = ((s2 / Double(r) - m * m) / Double(r - 1)).squareRoot()
      XCTAssertLessThan(abs(m), 3 * se, "\(name): mean \(m) ± \(se)")
    }
    for j in 0..<l {
      check("d\(j)") { d[$0 * l + j] }
      for k in 0..<l { check("d\(j)·z\(k)") { d[$0 * l + j] * zc[$0 * l + k] } }
    }
    // The states are not the starts: HMC moved them.
    XCTAssertNotEqual(out.states.array, eps.array)
  }

  /// ∂/∂(W, b, log s²) of (1/R) Σ_rows entropySurrogate — 40 batches of 500 rows, fresh noise
  /// and chains per batch — against the exact gradient of E_q log q(z), every component within
  /// 3 standard errors of the batch means, with 30 burn-in iterations; the exact gradient is
  /// many standard errors from 0 (so the check can fail).
  ///
  /// With the authors' 5 burn-in iterations the same check fails (worst component 7.6 SE off,
  /// ∂/∂W₁₁ −0.504 vs −0.536): the chain starts at the ε that made z and its kept states are
  /// still correlated with that ε, which enters ∂z/∂φ, so E[score · ∂z/∂φ] ≠ E[∇log q · ∂z/∂φ]
  /// although the score itself is unbiased given z (the test above). The bias is gone by 20
  /// burn-in iterations on this q (1.97 SE at 20, 1.70 at 50, 1.74 at 150).
  func testEntropySurrogateGradientMatchesExactGradient() {
    var settings = HamiltonianMonteCarlo.Settings()
    settings.burnIn = 30
    let g = entropyGradient(settings, batches: 40, rows: 500)
    var signal = 0.0
    for i in g.mean.indices {
      XCTAssertLessThan(abs(g.mean[i] - g.exact[i]), 3 * g.se[i],
                        "component \(i): \(g.mean[i]) ± \(g.se[i]) vs \(g.exact[i])")
      signal = max(signal, abs(g.exact[i]) / g.se[i])
    }
    XCTAssertGreaterThan(signal, 10, "the exact gradient is indistinguishable from 0")
  }

  /// The warm-start bias at the authors' 5 + 5 (see above) is visible to the same check.
  func testWarmStartBiasIsVisibleWithFiveBurnInIterations() {
    let g = entropyGradient(HamiltonianMonteCarlo.Settings(), batches: 40, rows: 500)
    let worst = g.mean.indices.map { abs(g.mean[$0] - g.exact[$0]) / g.se[$0] }.max()!
    XCTAssertGreaterThan(worst, 4)
  }

  func entropyGradient(_ settings: HamiltonianMonteCarlo.Settings, batches: Int, rows r: Int)
    -> (mean: [Double], se: [Double], exact: [Double]) {
    let e = Self.e, l = Self.l
    var rng = TestRandom(seed: 2020)
    let n = e * l + l + l
    var sums = [Double](repeating: 0, count: n), sq = [Double](repeating: 0, count: n)
    var sampler = HamiltonianMonteCarlo(settings, chains: r)
    for batch in 0..<batches {
      let (eps, eta, _) = draw(r, &rng)
      let tape = Tape()
      let gw = Tensor(zeros: [e, l]), gb = Tensor(zeros: [l]), gs = Tensor(zeros: [l])
      let w = tape.parameter(Tensor(Self.w, shape: [e, l]), grad: gw)
      let b = tape.parameter(Tensor(Self.b, shape: [l]), grad: gb)
      let logS2 = tape.parameter(Tensor(Self.logS2, shape: [l]), grad: gs)
      let sd = (tape.constant(Tensor(zeros: [r, l])) + logS2).affine(scale: 0.5).exp()
      let z = linear(tape.constant(eps), w, b) + sd * tape.constant(eta)      // [R, L]
      var s = streams(r, seed: 3, time: UInt64(batch))
      let score = UIVI.score(z: z.value, start: eps,
                             conditional: Self.conditional(w: Self.w, b: Self.b, logS2: Self.logS2),
                             sampler: &sampler, streams: &s).score
      tape.backward(UIVI.entropySurrogate(z: z, score: score).sum().affine(scale: 1 / Float(r)))
      let g = (gw.array + gb.array + gs.array).map(Double.init)
      for i in 0..<n { sums[i] += g[i]; sq[i] += g[i] * g[i] }
    }
    let (_, inv) = Self.sigma(w: Self.w, logS2: Self.logS2)
    var exact = [Double](repeating: 0, count: n)
    for k in 0..<e { for i in 0..<l {                     // ∂/∂W_{k,i} = (−Σ⁻¹A)_{i,k}
      var v = 0.0
      for j in 0..<l { v -= inv[i][j] * Double(Self.w[k * l + j]) }
      exact[k * l + i] = v
    } }
    for i in 0..<l {
      exact[e * l + l + i] = -0.5 * inv[i][i] * Foundation.exp(Double(Self.logS2[i]))
    }
    let mean = sums.map { $0 / Double(batches) }
    let se = (0..<n).map { ((sq[$0] / Double(batches) - mean[$0] * mean[$0])
                              / Double(batches - 1)).squareRoot() }
    return (mean, se, exact)
  }

  /// entropySurrogate is built from ops with their own gradient tests; checked once anyway.
  func testEntropySurrogateGradient() {
    var rng = TestRandom(seed: 4)
    let score = rng.tensor([5, 2])
    assertGradients("entropySurrogate", [rng.tensor([5, 2])]) { _, v in
      UIVI.entropySurrogate(z: v[0], score: score)
    }
  }
}
