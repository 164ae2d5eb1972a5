import ElboAutograd
import ElboModels
import ElboTestSupport
import Foundation
import XCTest

/// Real NVP's density accounting against known answers: the probability the model gives the 256
/// pixel values of one dimension (identity flow: the Gaussian mass of the logit's range), a
/// coupling chain's density integrating to 1 over the plane, and bits/dim by hand.
final class RealNVPTests: XCTestCase {
  /// Φ(x) in Double.
  func normalCDF(_ x: Double) -> Double { 0.5 * erfc(-x / 2.squareRoot()) }

  /// D = 1 would need a coupling; the identity is K couplings with zeroed output layers, so a
  /// D = 2 model at initialisation is the identity. P(v) = ∫ p((v + u)/256) du / 256 (midpoint
  /// rule, m points per cell), summed over v ∈ {0…255}² factorises: each coordinate carries the
  /// N(0, 1) mass of y ∈ (logit α, logit(1 − α)), so Σ_v P(v) = (2Φ(logit(1 − α)) − 1)².
  /// The sum goes through `bitsPerDimension` (P(v) = 2^(−D·bits)), so a wrong −D log 256, a wrong
  /// or missing log|dy/dx|, or a wrong ln 2 makes it fail.
  func testDiscreteProbabilitiesOfTheIdentityFlowSumToTheGaussianMassOfTheLogitRange() {
    var config = RealNVP.Config()
    config.dimension = 2; config.couplings = 2; config.hidden = [4]
    let model = RealNVP(config, seed: 1)
    let transform = LogitTransform(alpha: 0.05)
    let m = 8
    let rows = 256 * m                                  // one coordinate's cells × midpoints
    // The grid of (v, u) for coordinate 0; coordinate 1 is held at one cell, then the result
    // squared by factorisation is checked against the model's 2-D density directly below.
    var v = [Float](), u = [Float]()
    for value in 0..<256 {
      for k in 0..<m { v += [Float(value), 128]; u += [(Float(k) + 0.5) / Float(m), 0.5] }
    }
    let y = Tensor(zeros: [rows, 2])
    var logJacobian = [Double](repeating: 0, count: rows)
    for r in 0..<rows {
      logJacobian[r] = transform.forward(pixels: v.withUnsafeBufferPointer { $0.baseAddress! + 2 * r },
                                         uniforms: u.withUnsafeBufferPointer { $0.baseAddress! + 2 * r },
                                         out: y.pointer + 2 * r, count: 2)
    }
    let tape = Tape(recording: false)
    let logP = model.logDensity(tape.constant(y)).value
    // P(v₀, v₁ = 128) summed over v₀ = mass₀ · P₁(128); P₁(128) by the same midpoint rule.
    var total = 0.0
    for r in 0..<rows {
      let bits = LogitTransform.bitsPerDimension(logDensity: Double(logP[r]) + logJacobian[r],
                                                 dimension: 2)
      total += pow(2, -2 * bits) / Double(m)
    }
    let a = 0.05, edge = log((1 - a) / a)
    let mass = 2 * normalCDF(edge) - 1
    // P₁(v = 128) = ∫ over its cell of the 1-D density: N(y) |dy/dx| / 256 at u = ½ (midpoint).
    let x1 = (128.5) / 256.0, p1 = a + (1 - 2 * a) * x1, y1 = log(p1 / (1 - p1))
    let density1 = exp(-y1 * y1 / 2) / (2 * Double.pi).squareRoot() * (1 - 2 * a) / (p1 * (1 - p1))
    XCTAssertEqual(total, mass * density1 / 256, accuracy: 1e-5 * mass * density1 / 256)
    XCTAssertEqual(mass, 0.99676, accuracy: 1e-5)   // 2Φ(2.944) − 1, from a table
  }

  func testBitsPerDimensionByHand() {
    // log p(x) = 0 on D pixels: exactly 8 bits per dimension (uniform over 256 values).
    XCTAssertEqual(LogitTransform.bitsPerDimension(logDensity: 0, dimension: 784), 8, accuracy: 1e-12)
    // log p(x) = D ln 2: one bit less.
    XCTAssertEqual(LogitTransform.bitsPerDimension(logDensity: 5 * log(2.0), dimension: 5), 7,
                   accuracy: 1e-12)
  }

  func testLogitJacobianMatchesFiniteDifferences() {
    let t = LogitTransform(alpha: 0.05)
    for (value, noise) in [(0, 0.1), (17, 0.5), (128, 0.9), (255, 0.999)] as [(Float, Float)] {
      var y: Float = 0, yPlus: Float = 0, yMinus: Float = 0
      let h: Float = 1e-2
      let lj = withUnsafePointer(to: value) { v in
        withUnsafePointer(to: noise) { u in t.forward(pixels: v, uniforms: u, out: &y, count: 1) }
      }
      _ = withUnsafePointer(to: value) { v in
        withUnsafePointer(to: noise + h) { u in t.forward(pixels: v, uniforms: u, out: &yPlus, count: 1) }
      }
      _ = withUnsafePointer(to: value) { v in
        withUnsafePointer(to: noise - h) { u in t.forward(pixels: v, uniforms: u, out: &yMinus, count: 1) }
      }
      // dy/dx = (dy/du)·256.
      let numeric = log(Double(yPlus - yMinus) / Double(2 * h) * 256)
      XCTAssertEqual(lj, numeric, accuracy: 1e-2, "v = \(value)")
      XCTAssertEqual(Double(t.intensities(y)), (Double(value) + Double(noise)) / 256, accuracy: 1e-5)
    }
  }

  /// A 2-D chain of 4 couplings at random (non-identity) parameters.
  func randomModel() -> RealNVP {
    var config = RealNVP.Config()
    config.dimension = 2; config.couplings = 4; config.hidden = [16, 16]; config.activation = .tanh
    let model = RealNVP(config, seed: 7)
    var rng = TestRandom(seed: 9)
    for c in model.couplings {
      let last = c.net.layers.last!
      let w = model.store.value(last.weight)
      let noise = rng.tensor(w.shape, -0.4, 0.4)
      for i in 0..<w.count { w[i] = noise[i] }
    }
    return model
  }

  /// ∫ p(y) dy over [−10, 10]² (midpoint rule, 0.1 spacing) is 1.
  func testCouplingChainDensityIntegratesToOne() {
    let model = randomModel()
    let n = 200, lo = -10.0, h = 20.0 / Double(n)
    let y = Tensor(zeros: [n * n, 2])
    for i in 0..<n {
      for j in 0..<n {
        y[2 * (i * n + j)] = Float(lo + (Double(i) + 0.5) * h)
        y[2 * (i * n + j) + 1] = Float(lo + (Double(j) + 0.5) * h)
      }
    }
    let tape = Tape(recording: false)
    let p = model.logDensity(tape.constant(y)).value.array.reduce(0.0) { $0 + exp(Double($1)) }
    XCTAssertEqual(p * h * h, 1, accuracy: 5e-3)
    // And the chain is not the identity: the density differs from the base somewhere.
    let base = RealNVP.standardNormalLogProb(tape.constant(y)).value
    let logP = model.logDensity(tape.constant(y)).value
    XCTAssertGreaterThan(zip(base.array, logP.array).map { abs($0 - $1) }.max()!, 0.1)
  }

  /// Samples y = f⁻¹(z) follow the density log p(y) = log N(f(y)) + log|det|: the fraction of
  /// 20,000 samples in each quadrant equals ∫ p over the quadrant (binomial sd ≤ 0.0036).
  func testSamplesFollowTheDensity() {
    let model = randomModel()
    let y = model.sample(count: 20_000, seed: 5)
    var counts = [Double](repeating: 0, count: 4)
    for r in 0..<20_000 { counts[(y[2 * r] > 0 ? 1 : 0) + (y[2 * r + 1] > 0 ? 2 : 0)] += 1 }
    let n = 200, h = 20.0 / Double(n)
    let grid = Tensor(zeros: [n * n, 2])
    for i in 0..<n {
      for j in 0..<n {
        grid[2 * (i * n + j)] = Float(-10 + (Double(i) + 0.5) * h)
        grid[2 * (i * n + j) + 1] = Float(-10 + (Double(j) + 0.5) * h)
      }
    }
    let tape = Tape(recording: false)
    let logP = model.logDensity(tape.constant(grid)).value
    var mass = [Double](repeating: 0, count: 4)
    for k in 0..<(n * n) {
      mass[(grid[2 * k] > 0 ? 1 : 0) + (grid[2 * k + 1] > 0 ? 2 : 0)] += exp(Double(logP[k])) * h * h
    }
    for q in 0..<4 { XCTAssertEqual(counts[q] / 20_000, mass[q], accuracy: 0.015, "quadrant \(q)") }
    XCTAssertGreaterThan(mass.max()! - mass.min()!, 0.05, "the quadrants differ (not the base)")
  }
}
