import ElboModels
import ElboTestSupport
import Foundation
import XCTest

/// The 2-D test energies of Rezende & Mohamed (2015, Table 1) against hand values, their
/// gradients, the grid normaliser against known ones, the KL estimator at and away from the
/// target, the loss gradient w.r.t. every flow parameter, and a short fit.
final class Flow2DTests: XCTestCase {
  var rng = TestRandom(seed: 2015_0604)

  // MARK: - Energies

  /// Each formula written out from Table 1 at points where it can be done by hand.
  func testEnergiesMatchHandValues() {
    func u(_ t: TestEnergy, _ z1: Double, _ z2: Double) -> Double { t.energy(z1, z2).u }
    let g = { (x: Double, s: Double) in exp(-0.5 * (x / s) * (x / s)) }
    // U1 at the origin: ½(2/0.4)² − ln(2 e^{−½(2/0.6)²}) = 12.5 + 50/9 − ln 2.
    XCTAssertEqual(u(.u1, 0, 0), 12.5 + 50.0 / 9 - log(2), accuracy: 1e-12)
    // On the ring (r = 2) at the mode z₁ = 2 only the far bump remains.
    XCTAssertEqual(u(.u1, 2, 0), -log(1 + g(4, 0.6)), accuracy: 1e-12)
    XCTAssertEqual(u(.u1, 0, 2), 50.0 / 9 - log(2), accuracy: 1e-12)
    // U2: w₁(1) = 1, w₁(−1) = −1, w₁(0.5) = sin(π/4).
    XCTAssertEqual(u(.u2, 1, 0), 3.125, accuracy: 1e-12)
    XCTAssertEqual(u(.u2, -1, -1), 0, accuracy: 1e-12)
    XCTAssertEqual(u(.u2, 0.5, 0.3), 0.5 * pow((0.3 - 0.5.squareRoot()) / 0.4, 2),
                   accuracy: 1e-12)
    // U3 at z₁ = 1: w₁ = 1, w₂ = 3; z₂ = −0.5 sits halfway between the two modes.
    XCTAssertEqual(u(.u3, 1, -0.5), 0.5 * pow(1.5 / 0.35, 2) - log(2), accuracy: 1e-12)
    XCTAssertEqual(u(.u3, 1, 1), -log(1 + g(3, 0.35)), accuracy: 1e-12)
    // U4 at z₁ = 1: w₃ = 3σ(0) = 1.5.
    XCTAssertEqual(u(.u4, 1, 1), -log(1 + g(1.5, 0.35)), accuracy: 1e-12)
    XCTAssertEqual(u(.u4, 1, -0.5), -log(g(1.5, 0.4) + 1), accuracy: 1e-12)
    // U4 at z₁ = 0: w₁ = 0, w₃ = 3σ(−1/0.3).
    let w3 = 3 / (1 + exp(1 / 0.3))
    XCTAssertEqual(u(.u4, 0, 0.2), -log(g(0.2, 0.4) + g(0.2 + w3, 0.35)), accuracy: 1e-12)
    // The wall: U₂ on its ridge z₂ = w₁(z₁) is 0 inside [−4, 4], ½((|z₁| − 4)/0.2)² outside.
    XCTAssertEqual(u(.u2, 3.5, sin(Double.pi * 3.5 / 2)), 0, accuracy: 1e-12)
    XCTAssertEqual(u(.u2, 4.5, sin(Double.pi * 4.5 / 2)), 3.125, accuracy: 1e-12)
    XCTAssertEqual(u(.u4, -4.4, 0.7), -log(g(0.7 - sin(-2.2 * Double.pi), 0.4)
      + g(0.7 - sin(-2.2 * Double.pi) + 3 / (1 + exp(5.4 / 0.3)), 0.35)) + 2, accuracy: 1e-12)
    XCTAssertEqual(u(.u1, 4.5, 0), 0.5 * pow(2.5 / 0.4, 2) - log(g(2.5, 0.6) + g(6.5, 0.6)),
                   accuracy: 1e-12, "U1 has no wall")
    XCTAssertEqual(u(.gaussian, 1, 2), 2.5)
  }

  /// ∂U/∂z through the tape op against central differences, inside the square and on the wall.
  func testEnergyGradientsMatchFiniteDifferences() {
    for target in TestEnergy.allCases {
      var z = rng.uniform(24, -2.5, 2.5)
      // Four rows on the wall (|z₁| > 4; U₁ far out on the ring's tail).
      for (i, z1) in [4.3, -4.6, 4.8, -4.2].enumerated() { z[2 * i] = Float(z1) }
      assertGradients("energy \(target.rawValue)", [Tensor(z, shape: [12, 2])]) { _, v in
        v[0].energy(target)
      }
    }
  }

  // MARK: - The normaliser

  /// Known normalisers: Z = 2π for ½‖z‖²; U₂ integrates over z₂ to 0.4√(2π) at every z₁, so
  /// Z = 0.4√(2π)·(8 + 0.2√(2π)) (the square, plus the two half-Gaussian walls).
  func testGridLogNormalizerMatchesKnownNormalizers() {
    let root2pi = (2 * Double.pi).squareRoot()
    let gaussian = TestEnergy.gaussian.logNormalizer()
    // The grid stops at ±6: the normal's mass beyond is 2·2·10⁻⁹ of the whole.
    XCTAssertEqual(gaussian.value, log(2 * Double.pi), accuracy: 1e-8)
    let u2 = TestEnergy.u2.logNormalizer()
    let want = log(0.4 * root2pi * (8 + 0.2 * root2pi))
    XCTAssertEqual(u2.value, want, accuracy: 1e-5)
    // The stated error (fine − coarse grid) bounds the true one here.
    XCTAssertLessThanOrEqual(abs(u2.value - want), max(u2.error, 1e-9))
    // A coarse grid is measurably off: the comparison would catch a wrong cell area.
    XCTAssertGreaterThan(abs(TestEnergy.u2.gridLogNormalizer(cells: 40) - want), 1e-4)
    for t in TestEnergy.allCases {
      let z = t.logNormalizer()
      XCTAssertTrue(z.value.isFinite && z.error < 1e-4, "\(t): log Z \(z.value) ± \(z.error)")
    }
  }

  // MARK: - The KL estimator

  func model(_ target: TestEnergy, _ kind: FlowKind = .planar, k: Int,
             base: Flow2D.Base = .diagonal, seed: UInt64 = 7) -> Flow2D {
    var c = Flow2D.Config()
    c.target = target
    c.flow = FlowChainSpec(kind: kind, length: k, parameters: .global)
    c.base = base
    return Flow2D(c, seed: seed)
  }

  /// KL(q ‖ p) estimate: the mean of log q_K(z) + U(z) + log Z over `noise` rows, and its
  /// standard error.
  func klEstimate(_ m: Flow2D, noise: Tensor) -> (kl: Double, stdError: Double) {
    let tape = Tape(recording: false)
    let t = m.terms(noise: noise, normalizer: 1, on: tape)
    let logZ = m.config.target.logNormalizer().value
    let v = (0..<noise.rows).map { Double(t.logQ.value[$0]) + Double(t.energy.value[$0]) + logZ }
    let mean = v.reduce(0, +) / Double(v.count)
    let variance = v.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(v.count - 1)
    return (mean, (variance / Double(v.count)).squareRoot())
  }

  /// q = p (a Gaussian target, no flow, q₀ = N(0, I) either way): every sample's
  /// log q + U + log Z is 0 up to Float rounding. Any other q: KL > 0 by many standard errors.
  func testKLIsZeroAtTheTargetAndPositiveElsewhere() {
    let noise = rng.normal([5000, 2])
    for base in Flow2D.Base.allCases {
      let at = klEstimate(model(.gaussian, k: 0, base: base), noise: noise)
      XCTAssertEqual(at.kl, 0, accuracy: 1e-6, "\(base)")
      XCTAssertLessThan(at.stdError, 1e-6)
    }
    for (target, kind, k) in [(TestEnergy.gaussian, FlowKind.planar, 2), (.u2, .radial, 2),
                              (.u1, .planar, 0), (.u3, .planar, 4), (.u4, .radial, 4)] {
      let away = klEstimate(model(target, kind, k: k), noise: noise)
      XCTAssertGreaterThan(away.kl, 10 * away.stdError, "\(target) \(kind) K = \(k): \(away)")
      XCTAssertGreaterThan(away.kl, 1e-3)
    }
  }

  // MARK: - Gradients and a short fit

  /// The loss (1/R) Σ [log q_K + β U] w.r.t. every parameter (base μ, log σ², each flow's),
  /// per tensor against central differences of the same loss summed in Double. The step is
  /// 2·10⁻³ (not the default 5·10⁻³): U₃'s modes are 0.35 wide, so the loss's third derivative
  /// is large enough for the default step's truncation error h²|f‴|/6 to reach ~2%; a step of
  /// 10⁻³ lets the Float forward's rounding, ~6·10⁻⁸·|L|/h, reach the tolerance instead.
  func testLossGradientMatchesFiniteDifferences() {
    for (target, kind, beta) in [(TestEnergy.u3, FlowKind.planar, Float(1)),
                                 (.u1, .radial, 0.3)] {
      let m = model(target, kind, k: 3, seed: 11)
      let noise = rng.normal([16, 2])
      let tape = Tape()
      m.store.zeroGrad()
      tape.backward(m.terms(noise: noise, beta: beta, normalizer: 16, on: tape).loss)
      let analytic = Array(m.store.flatGrads).map(Double.init)
      let tensors = m.store.specs.indices.map { i in
        (m.store.specs[i].name, m.store.offsets[i]..<(m.store.offsets[i] + m.store.specs[i].count))
      }
      let evalTape = Tape(recording: false)
      GradientCheck(relativeStep: 2e-3).assertWholeModel("\(target) \(kind)", values: m.store.flatValues,
                                       analytic: analytic, tensors: tensors) {
        evalTape.reset()
        let t = m.terms(noise: noise, beta: beta, normalizer: 16, on: evalTape)
        var s = 0.0
        for i in 0..<16 {
          s += Double(t.logQ.value[i]) + Double(beta) * Double(t.energy.value[i])
        }
        return s / 16
      }
    }
  }

  /// 300 Adam steps on fresh noise lower the KL (on fixed held-out noise) a lot.
  func testShortFitLowersTheKL() {
    let m = model(.u2, k: 4, seed: 3)
    let held = rng.normal([4000, 2])
    let before = klEstimate(m, noise: held)
    let adam = Adam(parameterCount: m.store.count, learningRate: 2e-2)
    let tape = Tape()
    for _ in 0..<300 {
      tape.reset()
      m.store.zeroGrad()
      tape.backward(m.terms(noise: rng.normal([64, 2]), normalizer: 64, on: tape).loss)
      adam.update(m.store.flatValues, UnsafeBufferPointer(m.store.flatGrads))
    }
    let after = klEstimate(m, noise: held)
    XCTAssertLessThan(after.kl, 0.6 * before.kl, "KL \(before.kl) → \(after.kl)")
    XCTAssertGreaterThan(after.kl, -5 * after.stdError, "KL must stay ≥ 0: \(after)")
  }
}
