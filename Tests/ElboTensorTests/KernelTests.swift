// Accuracy and contract tests for the C kernels (Sources/CKernels/kernels.c).
//
// Forward kernels are compared with glibc's double-precision libm over a dense grid, random points
// and special values; errors are measured in ulps of the float interval that contains the exact
// (double) result, so denormal results are judged in units of the smallest denormal.
// Backward kernels are compared with the analytic derivative evaluated in double and must
// ACCUMULATE into dx. Set ELBO_KERNEL_REPORT=1 to print the measured max errors.
// No absolute tolerance is needed near 0: every kernel keeps full relative accuracy there
// (expm1 in ELU, Fast2Sum-corrected log1p, odd polynomial for small tanh), and results that
// underflow to denormals are judged in units of the smallest denormal (2⁻¹⁴⁹).
// Bounds (ulp): exp, log, elu 1.5; log1p, tanh, softplus, log-sigmoid 2; sigmoid 2.5; relu 0.
// The same bounds hold for all three target_clones versions (checked separately by building
// kernels.c with -DEK_NO_CLONES for -march=x86-64, x86-64-v3 and skylake-avx512).
import CKernels
import Foundation
import XCTest

// MARK: - Helpers

/// SplitMix64: deterministic random numbers for reproducible test points.
fileprivate struct SplitMix64 {
  var state: UInt64
  init(seed: UInt64) { state = seed }
  mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
  /// Uniform in [a, b).
  mutating func uniform(_ a: Double, _ b: Double) -> Double {
    a + (b - a) * Double(next() >> 11) * 0x1p-53
  }
}

/// Width of the float interval containing `r` (the ulp the result is judged in).
fileprivate func floatUlp(at r: Double) -> Double {
  let a = abs(r)
  var lo = Float(a)
  if Double(lo) > a { lo = lo.nextDown }
  if lo == .greatestFiniteMagnitude { return Double(lo.ulp) }
  return Double(lo.nextUp) - Double(lo)
}

/// Error of `y` against the exact `r` in ulps; 0 for matching NaN / infinities, +inf on mismatch.
fileprivate func ulpError(_ y: Float, _ r: Double) -> Double {
  if r.isNaN { return y.isNaN ? 0 : .infinity }
  if y.isNaN { return .infinity }
  let rf = Float(r)  // r beyond the float range rounds to ±inf, as the kernel must
  if rf.isInfinite || y.isInfinite { return y == rf ? 0 : .infinity }
  return abs(Double(y) - r) / floatUlp(at: r)
}

fileprivate let specials: [Float] = [
  0, -0.0, .infinity, -.infinity, .nan, 1, -1, .greatestFiniteMagnitude, -.greatestFiniteMagnitude,
  1e30, -1e30, 1e-30, -1e-30, .leastNormalMagnitude, .leastNonzeroMagnitude, -.leastNonzeroMagnitude,
  88.72, 88.73, -87.33, -103.9, -104, 0.625, -0.625, 0.6249999, 1e-8, -1e-8,
]

/// A dense grid over [a, b], `count` random points in [a, b] and the special values.
fileprivate func points(_ a: Double, _ b: Double, grid: Int = 20_001, random count: Int = 20_000,
            seed: UInt64 = 1) -> [Float] {
  var rng = SplitMix64(seed: seed)
  var xs = (0..<grid).map { Float(a + (b - a) * Double($0) / Double(grid - 1)) }
  xs += (0..<count).map { _ in Float(rng.uniform(a, b)) }
  return xs + specials
}

/// Log-spaced positive points over [10^lo, 10^hi].
fileprivate func logPoints(_ lo: Double, _ hi: Double, count: Int = 40_000,
                           seed: UInt64 = 2) -> [Float] {
  var rng = SplitMix64(seed: seed)
  return (0..<count).map { _ in Float(pow(10, rng.uniform(lo, hi))) }
}

fileprivate typealias Forward = (UnsafePointer<Float>?, UnsafeMutablePointer<Float>?, Int) -> Void

fileprivate func applyKernel(_ f: Forward, _ xs: [Float]) -> [Float] {
  var ys = [Float](repeating: 0, count: xs.count)
  xs.withUnsafeBufferPointer { x in
    ys.withUnsafeMutableBufferPointer { y in f(x.baseAddress, y.baseAddress, xs.count) }
  }
  return ys
}

fileprivate let report = ProcessInfo.processInfo.environment["ELBO_KERNEL_REPORT"] != nil

// MARK: - Double references

fileprivate func sigmoidRef(_ x: Double) -> Double {
  x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x))
}
fileprivate func softplusRef(_ x: Double) -> Double {
  x.isNaN ? x : max(x, 0) + log1p(exp(-abs(x)))
}
fileprivate func logSigmoidRef(_ x: Double) -> Double {
  x.isNaN ? x : min(x, 0) - log1p(exp(-abs(x)))
}
fileprivate func eluRef(_ x: Double) -> Double { x > 0 ? x : expm1(x) }

final class KernelForwardTests: XCTestCase {
  /// Runs `f` on `xs` (out of place and in place), asserts max ulp error ≤ `bound` and
  /// returns the measured maximum.
  @discardableResult
  fileprivate func check(_ name: String, _ f: Forward, _ ref: (Double) -> Double, _ xs: [Float],
             bound: Double, file: StaticString = #filePath, line: UInt = #line) -> Double {
    let ys = applyKernel(f, xs)
    var worst = 0.0, worstX: Float = 0
    for (x, y) in zip(xs, ys) {
      let e = ulpError(y, ref(Double(x)))
      if e > worst || e.isNaN { worst = e; worstX = x }
    }
    if report { print("\(name): max \(String(format: "%.3f", worst)) ulp at x = \(worstX)") }
    XCTAssertLessThanOrEqual(worst, bound, "\(name) worst at x = \(worstX)", file: file, line: line)
    // In place (y == x) must give the same bits.
    var inPlace = xs
    inPlace.withUnsafeMutableBufferPointer { f($0.baseAddress, $0.baseAddress, xs.count) }
    XCTAssert(zip(inPlace, ys).allSatisfy { $0.bitPattern == $1.bitPattern || ($0.isNaN && $1.isNaN) },
              "\(name) in place differs", file: file, line: line)
    return worst
  }

  func testExp() {
    let xs = points(-110, 100) + points(-1, 1, seed: 3)
    check("exp", ek_exp, exp, xs, bound: 1.5)
    let y = applyKernel(ek_exp, [88.71, 88.73, 200, -87.0, -103.0, -103.98, -1000, .nan, 0, -0.0])
    XCTAssert(y[0].isFinite && y[1] == .infinity && y[2] == .infinity)
    XCTAssert(y[3] > 0 && y[4] > 0 && y[4] < Float.leastNormalMagnitude)  // gradual underflow
    XCTAssert(y[5] == 0 && y[6] == 0 && y[7].isNaN && y[8] == 1 && y[9] == 1)
  }

  func testLog() {
    let xs = logPoints(-30, 30) + logPoints(-45.5, -37.9, count: 5000) + points(0, 4)
      + points(0.5, 2, seed: 4) + specials.map { abs($0) }
    check("log", ek_log, log, xs, bound: 1.5)
    let y = applyKernel(ek_log, [0, -0.0, -1, .infinity, .nan, -.infinity, 1, .leastNonzeroMagnitude])
    XCTAssert(y[0] == -.infinity && y[1] == -.infinity && y[2].isNaN && y[3] == .infinity)
    XCTAssert(y[4].isNaN && y[5].isNaN && y[6] == 0 && abs(y[7] + 103.27893) < 1e-4)
  }

  func testLog1p() {
    var xs = points(-1, 1) + points(-1, 1e6, seed: 5) + logPoints(-30, 30, seed: 6)
    xs += logPoints(-30, 0, seed: 7).map { -$0 }.filter { $0 > -1 }
    check("log1p", ek_log1p, log1p, xs, bound: 2)
    let y = applyKernel(ek_log1p, [-1, -2, .infinity, .nan, -0.0, 0, 1e-30])
    XCTAssert(y[0] == -.infinity && y[1].isNaN && y[2] == .infinity && y[3].isNaN)
    XCTAssert(y[4].bitPattern == (-0.0 as Float).bitPattern && y[5] == 0 && y[6] == 1e-30)
  }

  func testTanh() {
    let xs = points(-20, 20) + points(-1, 1, seed: 8) + logPoints(-30, 2, seed: 9)
    check("tanh", ek_tanh, tanh, xs, bound: 2)
    let y = applyKernel(ek_tanh, [1e30, -1e30, .infinity, -.infinity, .nan, -0.0, 10, -10])
    XCTAssert(y[0] == 1 && y[1] == -1 && y[2] == 1 && y[3] == -1 && y[4].isNaN)
    XCTAssert(y[5].bitPattern == (-0.0 as Float).bitPattern && y[6] == 1 && y[7] == -1)
  }

  func testSigmoid() {
    let xs = points(-110, 100) + points(-5, 5, seed: 10)
    check("sigmoid", ek_sigmoid, sigmoidRef, xs, bound: 2.5)
    let y = applyKernel(ek_sigmoid, [1e30, -1e30, .infinity, -.infinity, .nan, 0])
    XCTAssert(y[0] == 1 && y[1] == 0 && y[2] == 1 && y[3] == 0 && y[4].isNaN && y[5] == 0.5)
  }

  func testSoftplus() {
    let xs = points(-110, 100) + points(-5, 5, seed: 11) + logPoints(-30, 30, seed: 12)
    check("softplus", ek_softplus, softplusRef, xs, bound: 2)
    let big: [Float] = [20, 1e4, 3.3e7, 1e30, .greatestFiniteMagnitude]
    XCTAssertEqual(applyKernel(ek_softplus, big), big)  // exactly x for large x
    let y = applyKernel(ek_softplus, [.infinity, -.infinity, .nan, -1e30])
    XCTAssert(y[0] == .infinity && y[1] == 0 && y[2].isNaN && y[3] == 0)
  }

  func testLogSigmoid() {
    let xs = points(-100, 110) + points(-5, 5, seed: 13) + logPoints(-30, 30, seed: 14).map { -$0 }
    check("log_sigmoid", ek_log_sigmoid, logSigmoidRef, xs, bound: 2)
    let y = applyKernel(ek_log_sigmoid, [-.infinity, .infinity, .nan, -1e30, 1e30])
    XCTAssert(y[0] == -.infinity && y[1] == 0 && y[2].isNaN && y[3] == -1e30 && y[4] == 0)
  }

  func testRelu() {
    let xs = points(-10, 10)
    check("relu", ek_relu, { $0.isNaN ? $0 : max($0, 0) }, xs, bound: 0)
    XCTAssert(applyKernel(ek_relu, [.nan])[0].isNaN)
  }

  func testElu() {
    let xs = points(-110, 10) + points(-1, 1, seed: 15) + logPoints(-30, 1, seed: 16).map { -$0 }
    check("elu", ek_elu, eluRef, xs, bound: 1.5)
    let y = applyKernel(ek_elu, [-.infinity, .infinity, .nan, -0.0, -1e-30])
    XCTAssert(y[0] == -1 && y[1] == .infinity && y[2].isNaN)
    XCTAssert(y[3].bitPattern == (-0.0 as Float).bitPattern && y[4] == -1e-30)
  }

  /// Lengths around the vector widths exercise the remainder loops.
  func testOddLengths() {
    var rng = SplitMix64(seed: 17)
    for n in [0, 1, 3, 7, 8, 15, 16, 17, 31, 33, 63, 65, 1001] {
      let xs = (0..<n).map { _ in Float(rng.uniform(-5, 5)) }
      let ys = applyKernel(ek_exp, xs)
      for (x, y) in zip(xs, ys) { XCTAssertLessThanOrEqual(ulpError(y, exp(Double(x))), 1.5) }
    }
  }
}

// MARK: - Backward

fileprivate typealias Backward = (UnsafePointer<Float>?, UnsafePointer<Float>?,
                                  UnsafeMutablePointer<Float>?,
                      Int) -> Void

final class KernelBackwardTests: XCTestCase {
  /// Calls `f(a, dy, dx)` with dx starting at random non-zero values and checks
  /// dx == dx0 + dy · d(a) (computed in double) to `rel` of |dx0| + |dy · d(a)|.
  fileprivate func check(_ name: String, _ f: Backward, _ a: [Float], _ d: (Double) -> Double,
             rel: Double = 6e-7, file: StaticString = #filePath, line: UInt = #line) {
    var rng = SplitMix64(seed: 21)
    let n = a.count
    let dy = (0..<n).map { _ in Float(rng.uniform(-2, 2)) }
    let dx0 = (0..<n).map { _ in Float(rng.uniform(-1, 1)) }
    var dx = dx0
    a.withUnsafeBufferPointer { ap in
      dy.withUnsafeBufferPointer { dyp in
        dx.withUnsafeMutableBufferPointer { f(ap.baseAddress, dyp.baseAddress, $0.baseAddress, n) }
      }
    }
    var worst = 0.0
    for i in 0..<n {
      let term = Double(dy[i]) * d(Double(a[i]))
      let expect = Double(dx0[i]) + term
      let err = abs(Double(dx[i]) - expect) / (abs(Double(dx0[i])) + abs(term))
      worst = max(worst, err)
    }
    if report { print("\(name): max relative error \(worst)") }
    XCTAssertLessThanOrEqual(worst, rel, name, file: file, line: line)
  }

  func testBackward() {
    var rng = SplitMix64(seed: 22)
    let x = (0..<10_007).map { _ in Float(rng.uniform(-30, 30)) }
    let xPos = (0..<10_007).map { _ in Float(pow(10, rng.uniform(-10, 10))) }
    let xLog1p = (0..<10_007).map { _ in Float(rng.uniform(-0.99, 100)) }
    let yExp = applyKernel(ek_exp, x.map { $0 / 4 })
    let yTanh = applyKernel(ek_tanh, x), ySig = applyKernel(ek_sigmoid, x)
    check("exp_backward", ek_exp_backward, yExp) { $0 }
    check("log_backward", ek_log_backward, xPos) { 1 / $0 }
    check("log1p_backward", ek_log1p_backward, xLog1p) { 1 / (1 + $0) }
    check("tanh_backward", ek_tanh_backward, yTanh) { (1 - $0) * (1 + $0) }
    check("sigmoid_backward", ek_sigmoid_backward, ySig) { $0 * (1 - $0) }
    check("softplus_backward", ek_softplus_backward, x, sigmoidRef)
    check("log_sigmoid_backward", ek_log_sigmoid_backward, x) { sigmoidRef(-$0) }
    let yRelu = applyKernel(ek_relu, x)
    check("relu_backward", ek_relu_backward, yRelu) { $0 > 0 ? 1 : 0 }
  }

  func testEluBackward() {
    var rng = SplitMix64(seed: 23)
    let n = 5003
    let x = (0..<n).map { _ in Float(rng.uniform(-10, 10)) }
    let y = applyKernel(ek_elu, x)
    let dy = (0..<n).map { _ in Float(rng.uniform(-2, 2)) }
    let dx0 = (0..<n).map { _ in Float(rng.uniform(-1, 1)) }
    var dx = dx0
    ek_elu_backward(x, y, dy, &dx, n)
    // The contract is dx += dy·(y + 1) from the float y the forward produced (y + 1 loses
    // digits when y ≈ −1, which is inherent to the formula), so the reference uses that y.
    for i in 0..<n {
      let d = x[i] > 0 ? 1 : Double(y[i]) + 1
      let term = Double(dy[i]) * d
      XCTAssertEqual(Double(dx[i]), Double(dx0[i]) + term,
                     accuracy: 6e-7 * (abs(Double(dx0[i])) + abs(term)))
    }
  }
}

// MARK: - Bernoulli, reductions, Adam

final class KernelFusedTests: XCTestCase {
  func testBernoulliRowsum() {
    var rng = SplitMix64(seed: 31)
    let rows = 5, cols = 784
    var l = (0..<rows * cols).map { _ in Float(rng.uniform(-8, 8)) }
    // Row 0: realistic MNIST-like (≈ −0.7 per term); row 4: extreme logits.
    for c in 0..<cols { l[c] = Float(rng.uniform(-1.5, 0.5)) }
    for c in 0..<cols { l[4 * cols + c] = [1e30, -1e30, 100, -100, 0][c % 5] }
    let t = (0..<rows * cols).map { i in i % 7 == 0 ? Float(rng.uniform(0, 1)) : Float(i % 2) }
    var rs = [Float](repeating: 0, count: rows)
    ek_bernoulli_logits_rowsum(l, t, &rs, rows, cols)
    var worst = 0.0
    for r in 0..<rows {
      var s = 0.0
      for c in 0..<cols {
        let li = Double(l[r * cols + c]), ti = Double(t[r * cols + c])
        s += ti * li - softplusRef(li)
      }
      let rel = abs(Double(rs[r]) - s) / abs(s)
      worst = max(worst, rel)
      XCTAssertLessThanOrEqual(rel, 1e-6, "row \(r): \(rs[r]) vs \(s)")
    }
    if report { print("bernoulli_logits_rowsum: max relative error \(worst)") }

    // Backward: dlogits += drow[r] · (t − σ(l)), accumulating.
    let drow: [Float] = [1, -0.5, 2, 0.25, -1]
    let d0 = (0..<rows * cols).map { _ in Float(rng.uniform(-1, 1)) }
    var dl = d0
    ek_bernoulli_logits_backward(l, t, drow, &dl, rows, cols)
    var worstB = 0.0
    for i in 0..<rows * cols {
      let sig = sigmoidRef(Double(l[i])), d = Double(drow[i / cols])
      let term = d * (Double(t[i]) - sig)
      // Error scale: t − σ(l) may cancel, so its rounding error is relative to |t| + σ.
      let scale = abs(Double(d0[i])) + abs(d) * (Double(t[i]) + sig)
      let err = abs(Double(dl[i]) - (Double(d0[i]) + term)) / scale
      worstB = max(worstB, err)
    }
    if report { print("bernoulli_logits_backward: max relative error \(worstB)") }
    XCTAssertLessThanOrEqual(worstB, 6e-7)
  }

  func testSumAndDot() {
    var rng = SplitMix64(seed: 32)
    for n in [0, 1, 5, 17, 1000, 100_003] {
      let x = (0..<n).map { _ in Float(rng.uniform(-1, 1)) + 0.1 }
      let y = (0..<n).map { _ in Float(rng.uniform(-1, 1)) }
      let s = x.reduce(0.0) { $0 + Double($1) }
      let d = zip(x, y).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
      XCTAssertLessThanOrEqual(ulpError(ek_sum(x, n), s), 0.5001, "sum n=\(n)")
      XCTAssertLessThanOrEqual(ulpError(ek_dot(x, y, n), d), 0.5001, "dot n=\(n)")
    }
    XCTAssert(ek_sum([1, .nan, 2], 3).isNaN)
    XCTAssertEqual(ek_sum([1, .infinity, 2], 3), .infinity)
  }

  func testAllFinite() {
    var rng = SplitMix64(seed: 33)
    XCTAssertEqual(ek_all_finite(nil, 0), 1)
    for n in [1, 2, 15, 16, 17, 63, 1001, 100_003] {
      var x = (0..<n).map { _ in Float(rng.uniform(-1e6, 1e6)) }
      x[n / 2] = .greatestFiniteMagnitude
      x[0] = -.greatestFiniteMagnitude
      XCTAssertEqual(ek_all_finite(x, n), 1, "n=\(n)")
      let positions = [0, n - 1, n / 2, Int(rng.next() % UInt64(n))]
      for pos in positions {
        for bad: Float in [.nan, -.nan, .infinity, -.infinity, .signalingNaN] {
          var z = x
          z[pos] = bad
          XCTAssertEqual(ek_all_finite(z, n), 0, "n=\(n) pos=\(pos) value=\(bad)")
        }
      }
    }
  }

  /// Ten steps of textbook Adam (bias-corrected m̂, v̂; Kingma & Ba 2015, Alg. 1) in double
  /// against ek_adam with the folded lr_t, eps_t.
  func testAdam() {
    var rng = SplitMix64(seed: 34)
    let n = 1003
    // Hyper-parameters exactly representable in float, so the comparison measures the kernel
    // and not the rounding of 0.9 / 0.999 to float.
    let lr = 1e-3, b1 = Double(Float(0.9)), b2 = Double(Float(0.999)), eps = 1e-8
    var p = (0..<n).map { _ in Float(rng.uniform(-1, 1)) }
    var m = [Float](repeating: 0, count: n), v = m
    var pd = p.map(Double.init), md = [Double](repeating: 0, count: n), vd = md
    var mAbs = md  // Σ of |terms| of m: the scale of its rounding error (m may cancel to ≈ 0)
    for step in 1...10 {
      // Gradients spanning several magnitudes, including exact zeros.
      let g = (0..<n).map { i in
        i % 97 == 0 ? 0 : Float(rng.uniform(-1, 1) * pow(10, Double(i % 5) - 2))
      }
      for i in 0..<n {
        let gi = Double(g[i])
        md[i] = b1 * md[i] + (1 - b1) * gi
        mAbs[i] = b1 * mAbs[i] + (1 - b1) * abs(gi)
        vd[i] = b2 * vd[i] + (1 - b2) * gi * gi
        let mh = md[i] / (1 - pow(b1, Double(step))), vh = vd[i] / (1 - pow(b2, Double(step)))
        pd[i] -= lr * mh / (vh.squareRoot() + eps)
      }
      let bc2 = (1 - pow(b2, Double(step))).squareRoot()
      let lrT = Float(lr * bc2 / (1 - pow(b1, Double(step)))), epsT = Float(eps * bc2)
      ek_adam(&p, g, &m, &v, n, lrT, Float(b1), Float(b2), epsT)
    }
    var worst = 0.0
    for i in 0..<n {
      worst = max(worst, abs(Double(p[i]) - pd[i]))
      XCTAssertEqual(Double(m[i]), md[i], accuracy: 1e-6 * mAbs[i] + 1e-30)
      XCTAssertEqual(Double(v[i]), vd[i], accuracy: 1e-6 * abs(vd[i]) + 1e-30)
    }
    if report { print("adam: max |p − p_ref| after 10 steps \(worst)") }
    // 10 steps of size ≤ lr: the float update itself is exact to ~1e-7 per step relative to p.
    XCTAssertLessThanOrEqual(worst, 1e-6)
  }
}
