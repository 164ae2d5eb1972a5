import ElboProbability
import ElboTestSupport
import Foundation
import XCTest

/// Hamiltonian Monte Carlo: chains started AT exact samples of a known target stay distributed
/// as the target (moments within 3 standard errors over many independent chains); the same check
/// catches a kernel aimed at a different target; leapfrog is reversible and volume-preserving;
/// step-size adaptation reaches the target acceptance; runs are deterministic given the streams.
final class HMCTests: XCTestCase {
  // MARK: - Targets

  /// N(m, Σ) in 2-D with Σ = [[1.5, 0.6], [0.6, 0.5]], m = (0.5, −1): log π and its gradient,
  /// optionally at inverse temperature `beta` (a different target, for the power check).
  static let mean: [Double] = [0.5, -1]
  static let cov: [[Double]] = [[1.5, 0.6], [0.6, 0.5]]
  static func gaussian(beta: Double = 1) -> HamiltonianMonteCarlo.Target {
    let c = cov, det = c[0][0] * c[1][1] - c[0][1] * c[1][0]
    let p = [[c[1][1] / det, -c[0][1] / det], [-c[1][0] / det, c[0][0] / det]]   // Σ⁻¹
    return { x in
      let r = x.rows
      let lp = Tensor(zeros: [r]), g = Tensor(zeros: [r, 2])
      for i in 0..<r {
        let d0 = Double(x[2 * i]) - mean[0], d1 = Double(x[2 * i + 1]) - mean[1]
        let g0 = -(p[0][0] * d0 + p[0][1] * d1), g1 = -(p[1][0] * d0 + p[1][1] * d1)
        lp[i] = Float(beta * 0.5 * (d0 * g0 + d1 * g1))
        g[2 * i] = Float(beta * g0); g[2 * i + 1] = Float(beta * g1)
      }
      return (lp, g)
    }
  }

  /// Exact samples of N(m, Σ) [n, 2] by the Cholesky factor of Σ.
  func gaussianSamples(_ n: Int, seed: UInt64) -> Tensor {
    let eps = TestRandom(seed: seed).normalTensor([n, 2])
    let l00 = Self.cov[0][0].squareRoot(), l10 = Self.cov[1][0] / l00
    let l11 = (Self.cov[1][1] - l10 * l10).squareRoot()
    let x = Tensor(zeros: [n, 2])
    for i in 0..<n {
      let e0 = Double(eps[2 * i]), e1 = Double(eps[2 * i + 1])
      x[2 * i] = Float(Self.mean[0] + l00 * e0)
      x[2 * i + 1] = Float(Self.mean[1] + l10 * e0 + l11 * e1)
    }
    return x
  }

  /// 1-D mixture 0.3 N(−2, 0.5²) + 0.7 N(1.5, 1).
  static let mixture: [(w: Double, m: Double, s: Double)] = [(0.3, -2, 0.5), (0.7, 1.5, 1)]
  static let mixtureTarget: HamiltonianMonteCarlo.Target = { x in
    let r = x.rows
    let lp = Tensor(zeros: [r]), g = Tensor(zeros: [r, 1])
    for i in 0..<r {
      let v = Double(x[i])
      let logs = mixture.map { c in
        Foundation.log(c.w) - Foundation.log(c.s) - 0.5 * ((v - c.m) / c.s) * ((v - c.m) / c.s)
      }
      let top = logs.max()!, sum = logs.map { Foundation.exp($0 - top) }.reduce(0, +)
      lp[i] = Float(top + Foundation.log(sum))
      var grad = 0.0
      for (k, c) in mixture.enumerated() {
        grad += Foundation.exp(logs[k] - top) / sum * -(v - c.m) / (c.s * c.s)
      }
      g[i] = Float(grad)
    }
    return (lp, g)
  }

  func streams(_ n: Int, seed: UInt64) -> [RandomStream] {
    (0..<n).map { RandomStream(NoiseAddress(seed: seed, purpose: .benchmark, time: 7,
                                            item: UInt32($0))) }
  }

  func fixedStep(_ h: Float, burnIn: Int = 5, samples: Int = 5) -> HamiltonianMonteCarlo {
    var s = HamiltonianMonteCarlo.Settings()
    s.initialStepSize = h
    s.adaptationRate = 0
    s.burnIn = burnIn
    s.samples = samples
    return HamiltonianMonteCarlo(s, chains: 1)
  }

  // MARK: - Invariance

  /// Mean and standard error of f over the rows of `x` (independent chains).
  func moment(_ x: Tensor, _ f: (Int) -> Double) -> (mean: Double, se: Double) {
    let n = x.rows
    var s = 0.0, s2 = 0.0
    for i in 0..<n { let v = f(i); s += v; s2 += v * v }
    let m = s / Double(n)
    return (m, ((s2 / Double(n) - m * m) / Double(n - 1)).squareRoot())
  }

  /// The worst |estimate − truth| / SE over the Gaussian's means and covariances.
  func gaussianWorstZ(_ x: Tensor) -> Double {
    var worst = 0.0
    let m = Self.mean
    for j in 0..<2 {
      let e = moment(x) { Double(x[2 * $0 + j]) }
      worst = max(worst, abs(e.mean - m[j]) / e.se)
      for k in j..<2 {
        let c = moment(x) { (Double(x[2 * $0 + j]) - m[j]) * (Double(x[2 * $0 + k]) - m[k]) }
        worst = max(worst, abs(c.mean - Self.cov[j][k]) / c.se)
      }
    }
    return worst
  }

  /// 20,000 chains started at exact N(m, Σ) samples, 10 iterations of 5 leapfrog steps of 0.35:
  /// means and covariances of the final states within 3 standard errors; the chains moved
  /// (acceptance well inside (0, 1), states changed).
  func testLeavesCorrelatedGaussianInvariant() {
    let n = 20_000
    let start = gaussianSamples(n, seed: 1)
    var hmc = fixedStep(0.35)
    var s = streams(n, seed: 2)
    let out = hmc.run(from: start, target: Self.gaussian(), streams: &s)
    XCTAssertGreaterThan(out.acceptance, 0.5)
    XCTAssertLessThan(out.acceptance, 0.99)
    let before = gaussianWorstZ(start), after = gaussianWorstZ(out.states)
    XCTAssertLessThan(after, 3, "moments after HMC off by \(after) SE (start: \(before))")
    // The states moved far: their correlation with the start is well below 1.
    let moved = moment(out.states) { abs(Double(out.states[2 * $0] - start[2 * $0])) }
    XCTAssertGreaterThan(moved.mean, 0.3)
  }

  /// The same check run on a kernel aimed at another target (the Gaussian at inverse
  /// temperature 0.6, i.e. Σ/0.6) fails: the check has the power to see a wrong kernel.
  func testInvarianceCheckCatchesAWrongTarget() {
    let n = 20_000
    var hmc = fixedStep(0.35, burnIn: 20)
    var s = streams(n, seed: 2)
    let out = hmc.run(from: gaussianSamples(n, seed: 1), target: Self.gaussian(beta: 0.6),
                      streams: &s)
    XCTAssertGreaterThan(gaussianWorstZ(out.states), 10)
  }

  /// A wrong gradient (×1.4) keeps the target invariant — leapfrog stays volume-preserving and
  /// reversible for any force, and the Metropolis test uses the true log π — it only lowers the
  /// acceptance. (So a wrong-gradient mutant cannot be caught by invariance; the gradient is
  /// tested where it is computed.)
  func testWrongGradientLowersAcceptanceButKeepsInvariance() {
    let n = 20_000
    let right = Self.gaussian()
    let wrong: HamiltonianMonteCarlo.Target = { x in
      let (lp, g) = right(x)
      for i in 0..<g.count { g[i] *= 1.4 }
      return (lp, g)
    }
    var a = fixedStep(0.35), b = fixedStep(0.35)
    var s1 = streams(n, seed: 2), s2 = streams(n, seed: 2)
    let good = a.run(from: gaussianSamples(n, seed: 1), target: right, streams: &s1)
    let bad = b.run(from: gaussianSamples(n, seed: 1), target: wrong, streams: &s2)
    XCTAssertLessThan(bad.acceptance, good.acceptance - 0.05)
    XCTAssertLessThan(gaussianWorstZ(bad.states), 3)
  }

  /// 20,000 chains started at exact samples of the 1-D two-component mixture: mean, second
  /// moment and the mass below 0 (0.3 + 0.7·Φ(−1.5) = 0.3468) within 3 standard errors.
  func testLeavesTwoComponentMixtureInvariant() {
    let n = 20_000
    var seeds = TestRandom(seed: 3)
    var rng = seeds.stream()
    let start = Tensor(zeros: [n, 1])
    for i in 0..<n {
      let pick = rng.uniform() < 0.3 ? 0 : 1
      var z: Float = 0
      withUnsafeMutablePointer(to: &z) { rng.fillNormal(UnsafeMutableBufferPointer(start: $0, count: 1)) }
      let c = Self.mixture[pick]
      start[i] = Float(c.m + c.s * Double(z))
    }
    var hmc = fixedStep(0.4)
    var s = streams(n, seed: 4)
    let out = hmc.run(from: start, target: Self.mixtureTarget, streams: &s)
    let x = out.states
    let mix = Self.mixture
    let mean = mix.map { $0.w * $0.m }.reduce(0, +)
    let second = mix.map { $0.w * ($0.m * $0.m + $0.s * $0.s) }.reduce(0, +)
    func phi(_ v: Double) -> Double { 0.5 * erfc(-v / 2.0.squareRoot()) }
    let below = mix.map { $0.w * phi((0 - $0.m) / $0.s) }.reduce(0, +)
    for (name, truth, f) in [("mean", mean, { (i: Int) in Double(x[i]) }),
                             ("E x²", second, { (i: Int) in Double(x[i]) * Double(x[i]) }),
                             ("P(x < 0)", below, { (i: Int) in x[i] < 0 ? 1.0 : 0.0 })] {
      let e = moment(x, f)
      XCTAssertLessThan(abs(e.mean - truth), 3 * e.se, "\(name): \(e.mean) ± \(e.se) vs \(truth)")
    }
    XCTAssertGreaterThan(out.acceptance, 0.5)
  }

  // MARK: - Leapfrog

  /// A banana, log π = −½(x₁² + (x₂ − x₁²)²): leapfrog is non-linear on it.
  static let banana: HamiltonianMonteCarlo.Target = { x in
    let r = x.rows
    let lp = Tensor(zeros: [r]), g = Tensor(zeros: [r, 2])
    for i in 0..<r {
      let a = x[2 * i], b = x[2 * i + 1], d = b - a * a
      lp[i] = -0.5 * (a * a + d * d)
      g[2 * i] = -a + 2 * a * d
      g[2 * i + 1] = -d
    }
    return (lp, g)
  }

  func leapfrogMap(_ hmc: HamiltonianMonteCarlo, x: Tensor, p: Tensor, target: HamiltonianMonteCarlo.Target)
    -> (x: Tensor, p: Tensor) {
    let x1 = x.clone(), p1 = p.clone()
    let (lp, g) = target(x1)
    hmc.leapfrog(x: x1, p: p1, logDensity: lp.clone(), gradient: g.clone(), target: target)
    return (x1, p1)
  }

  /// Leapfrog from (x, p), then from (x', −p'), returns to (x, −p) — per chain step sizes.
  func testLeapfrogIsReversible() {
    var rng = TestRandom(seed: 5)
    var settings = HamiltonianMonteCarlo.Settings()
    settings.sharing = .perChain
    settings.leapfrogSteps = 7
    var hmc = HamiltonianMonteCarlo(settings, chains: 16)
    hmc.stepSizes = rng.uniform(16, 0.05, 0.3)
    let x = rng.tensor([16, 2], -1, 1), p = rng.normal([16, 2])
    let forward = leapfrogMap(hmc, x: x, p: p, target: Self.banana)
    for i in 0..<forward.p.count { forward.p[i] = -forward.p[i] }
    let back = leapfrogMap(hmc, x: forward.x, p: forward.p, target: Self.banana)
    XCTAssertGreaterThan(zip(forward.x.array, x.array).map { abs($0 - $1) }.max()!, 0.05)
    assertClose(back.x.array, x.array, atol: 1e-4)
    assertClose(back.p.array, p.array.map { -$0 }, atol: 1e-4)
  }

  /// |det ∂(x', p')/∂(x, p)| = 1 on the banana, by central differences in (x, p) ∈ ℝ⁴.
  func testLeapfrogPreservesVolume() {
    var settings = HamiltonianMonteCarlo.Settings()
    settings.initialStepSize = 0.25
    let hmc = HamiltonianMonteCarlo(settings, chains: 1)
    let point: [Float] = [0.7, 0.2, -0.4, 0.9]                  // (x₁, x₂, p₁, p₂)
    func map(_ v: [Float]) -> [Double] {
      let out = leapfrogMap(hmc, x: Tensor(Array(v[0..<2]), shape: [1, 2]),
                            p: Tensor(Array(v[2..<4]), shape: [1, 2]), target: Self.banana)
      return (out.x.array + out.p.array).map(Double.init)
    }
    let h: Float = 1e-2
    var jac = [[Double]](repeating: [Double](repeating: 0, count: 4), count: 4)
    for j in 0..<4 {
      var up = point, down = point
      up[j] += h; down[j] -= h
      let a = map(up), b = map(down)
      for i in 0..<4 { jac[i][j] = (a[i] - b[i]) / Double(up[j] - down[j]) }
    }
    XCTAssertEqual(determinant(jac), 1, accuracy: 5e-3)
    // Not the identity: the map really is non-trivial.
    XCTAssertGreaterThan(abs(jac[0][2] - 0), 0.5)
  }

  func determinant(_ m: [[Double]]) -> Double {
    var a = m, det = 1.0
    let n = a.count
    for c in 0..<n {
      let pivot = (c..<n).max { abs(a[$0][c]) < abs(a[$1][c]) }!
      if pivot != c { a.swapAt(pivot, c); det = -det }
      det *= a[c][c]
      for r in (c + 1)..<n {
        let f = a[r][c] / a[c][c]
        for k in c..<n { a[r][k] -= f * a[c][k] }
      }
    }
    return det
  }

  // MARK: - Adaptation and determinism

  /// From h = 0.02, 300 calls of 5 + 5 iterations (carrying states and h, as a trainer does)
  /// bring the mean acceptance of the last 50 calls to within 0.04 of the target 0.67, both
  /// with one shared h and with one h per chain (whose mean acceptance is then on target too).
  func testAdaptationReachesTargetAcceptance() {
    for sharing in [HamiltonianMonteCarlo.StepSizeSharing.shared, .perChain] {
      let n = 400
      var settings = HamiltonianMonteCarlo.Settings()
      settings.initialStepSize = 0.02
      settings.targetAcceptance = 0.67
      settings.adaptationRate = 0.05
      settings.sharing = sharing
      var hmc = HamiltonianMonteCarlo(settings, chains: n)
      var x = gaussianSamples(n, seed: 9)
      var s = streams(n, seed: 10)
      var late = 0.0
      for call in 0..<300 {
        let out = hmc.run(from: x, target: Self.gaussian(), streams: &s)
        x = out.states
        if call >= 250 { late += Double(out.acceptance) / 50 }
      }
      XCTAssertEqual(late, 0.67, accuracy: 0.04, "\(sharing)")
      XCTAssertGreaterThan(hmc.stepSizes.reduce(0, +) / Float(hmc.stepSizes.count), 0.2,
                           "\(sharing): h grew from 0.02")
    }
  }

  /// A sampler resumed from saved step sizes and stream positions (blocks) continues exactly as
  /// the uninterrupted one, bit for bit: that pair is the whole state.
  func testRunsAreDeterministicGivenStreamsAndStepSizes() {
    let n = 50
    var settings = HamiltonianMonteCarlo.Settings()
    settings.sharing = .perChain
    let start = gaussianSamples(n, seed: 11)
    var a = HamiltonianMonteCarlo(settings, chains: n)
    var sa = streams(n, seed: 12)
    let first = a.run(from: start, target: Self.gaussian(), streams: &sa)
    // Resume: a fresh sampler given the saved step sizes and the streams' positions.
    var resumed = HamiltonianMonteCarlo(settings, chains: n)
    resumed.stepSizes = a.stepSizes
    var sr = (0..<n).map { RandomStream(sa[$0].address, startBlock: sa[$0].block) }
    let second = a.run(from: first.states, target: Self.gaussian(), streams: &sa)
    let again = resumed.run(from: first.states, target: Self.gaussian(), streams: &sr)
    XCTAssertEqual(second.states.array, again.states.array)
    XCTAssertEqual(a.stepSizes, resumed.stepSizes)
    XCTAssertNotEqual(a.stepSizes, [Float](repeating: 0.2, count: n), "h adapted")
  }

  func testSettingsValidationNamesTheProblem() {
    var s = HamiltonianMonteCarlo.Settings()
    XCTAssertNoThrow(try s.validate())
    s.targetAcceptance = 1.2
    XCTAssertThrowsError(try s.validate()) { XCTAssertTrue("\($0)".contains("target acceptance")) }
    s = HamiltonianMonteCarlo.Settings()
    s.leapfrogSteps = 0
    XCTAssertThrowsError(try s.validate()) { XCTAssertTrue("\($0)".contains("leapfrog")) }
  }
}

extension TestRandom {
  /// A tensor of standard normals from a fresh stream (a non-mutating convenience).
  func normalTensor(_ shape: [Int]) -> Tensor {
    var copy = self
    return copy.normal(shape)
  }
}
