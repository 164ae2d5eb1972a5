import ElboAutograd
import ElboTestSupport
import Foundation
import XCTest

/// Finite-difference checks of every differentiable op, plus forward checks against plain Double
/// references. Gradient tolerances: see `GradientCheck` (atol 1e-3·scale, rtol 1e-2).
/// Forward tolerances: the ops compute in Float, so a few ulp of the result (rtol 1e-5 — libm
/// float functions are within 1–2 ulp ≈ 1.2e-7 relative; reductions add ~n·ε) plus atol 1e-6
/// for values near 0.
final class OpGradientTests: XCTestCase {
  var rng = TestRandom(seed: 20_240_601)

  // MARK: - Helpers

  /// Forward of a one-input op on a non-recording tape, as Doubles.
  func forward(_ x: Tensor, _ f: (Variable) -> Variable) -> [Double] {
    let tape = Tape(recording: false)
    return withExtendedLifetime(tape) { f(tape.constant(x)).value.array.map(Double.init) }
  }

  /// Reference NumPy broadcasting in Double.
  func broadcastReference(_ a: Tensor, _ b: Tensor, _ op: (Double, Double) -> Double)
    -> (shape: [Int], values: [Double]) {
    let rank = max(a.rank, b.rank)
    let sa = [Int](repeating: 1, count: rank - a.rank) + a.shape
    let sb = [Int](repeating: 1, count: rank - b.rank) + b.shape
    let out = (0..<rank).map { max(sa[$0], sb[$0]) }
    let n = Tensor.elementCount(out)
    var values = [Double](repeating: 0, count: n)
    for o in 0..<n {
      var rem = o, ia = 0, ib = 0, strideA = 1, strideB = 1
      for d in stride(from: rank - 1, through: 0, by: -1) {
        let i = rem % out[d]; rem /= out[d]
        ia += (sa[d] == 1 ? 0 : i) * strideA; strideA *= sa[d]
        ib += (sb[d] == 1 ? 0 : i) * strideB; strideB *= sb[d]
      }
      values[o] = op(Double(a[ia]), Double(b[ib]))
    }
    return (out, values)
  }

  let unaryShapes: [[Int]] = [[3, 4], [2, 3, 5], [7]]

  func checkUnary(_ name: String, _ lo: Float, _ hi: Float,
                  awayFrom: (point: Float, margin: Float)? = nil,
                  reference: (Double) -> Double, _ op: @escaping (Variable) -> Variable,
                  file: StaticString = #filePath, line: UInt = #line) {
    for shape in unaryShapes {
      let x = rng.tensor(shape, lo, hi, awayFrom: awayFrom)
      assertGradients("\(name) \(shape)", [x], file: file, line: line) { _, v in op(v[0]) }
      assertClose(forward(x, op), x.array.map { reference(Double($0)) }, atol: 1e-6, rtol: 1e-5,
                  "\(name) forward \(shape)", file: file, line: line)
    }
  }

  // MARK: - The checker itself

  func testGradientCheckDetectsAWrongBackward() {
    // y = x² with a deliberately wrong backward 2.1·x: the checker must report it.
    let x = rng.tensor([4], 0.5, 2)
    let reports = GradientCheck().run([x]) { tape, v in
      let y = tape.output(v[0].shape, v[0])
      for i in 0..<y.count { y.value[i] = v[0].value[i] * v[0].value[i] }
      if y.requiresGrad {
        tape.record(y) { for i in 0..<y.count { v[0].grad[i] += y.grad[i] * 2.1 * v[0].value[i] } }
      }
      return y
    }
    XCTAssertFalse(reports[0].passed, "a 5% gradient error went unnoticed")
  }

  func testGradientCheckAcceptsTheRightBackward() {
    let x = rng.tensor([4], 0.5, 2)
    XCTAssertTrue(GradientCheck().run([x]) { _, v in v[0] * v[0] }[0].passed)
  }

  // MARK: - Elementwise

  func testExp() { checkUnary("exp", -2, 2, reference: Foundation.exp) { $0.exp() } }
  func testLogOnPositiveInputs() {
    checkUnary("log", 0.5, 3, reference: Foundation.log) { $0.log() }
  }
  func testLog1pAboveMinusOne() {
    checkUnary("log1p", -0.5, 2, reference: Foundation.log1p) { $0.log1p() }
  }
  func testAbsAwayFromZero() {
    checkUnary("abs", -2, 2, awayFrom: (0, 0.05), reference: Swift.abs) { $0.abs() }
  }
  func testTanh() { checkUnary("tanh", -3, 3, reference: Foundation.tanh) { $0.tanh() } }
  func testSigmoid() {
    checkUnary("sigmoid", -5, 5, reference: { 1 / (1 + Foundation.exp(-$0)) }) { $0.sigmoid() }
  }
  func testSoftplus() {
    checkUnary("softplus", -5, 5, reference: { Foundation.log1p(Foundation.exp($0)) }) {
      $0.softplus()
    }
  }
  func testLogSigmoid() {
    checkUnary("logSigmoid", -5, 5, reference: { -Foundation.log1p(Foundation.exp(-$0)) }) {
      $0.logSigmoid()
    }
  }
  func testReluAwayFromZero() {
    // |x| ≥ 0.1 > 2h (h = 5e-3·max(1,|x|) ≤ 0.015 here): no difference straddles the kink.
    checkUnary("relu", -3, 3, awayFrom: (0, 0.1), reference: { max($0, 0) }) { $0.relu() }
  }
  func testEluAwayFromZero() {
    checkUnary("elu", -3, 3, awayFrom: (0, 0.1), reference: { $0 > 0 ? $0 : Foundation.expm1($0) }) {
      $0.elu()
    }
  }

  func testSoftplusAndLogSigmoidAreStableForLargeInputs() {
    let x = Tensor([-100, -30, 30, 100], shape: [4])
    assertClose(forward(x) { $0.softplus() }, [0, 9.357623e-14, 30, 100], atol: 1e-6, rtol: 1e-6)
    assertClose(forward(x) { $0.logSigmoid() }, [-100, -30, -9.357623e-14, 0], atol: 1e-6,
                rtol: 1e-6)
  }

  // MARK: - Affine and friends

  func testAffine() {
    for shape in [[3, 4], [5]] {
      let x = rng.tensor(shape)
      assertGradients("affine", [x]) { _, v in v[0].affine(scale: -1.7, shift: 0.3) }
      assertClose(forward(x) { $0.affine(scale: -1.7, shift: 0.3) },
                  x.array.map { -1.7 * Double($0) + 0.3 }, atol: 1e-6, rtol: 1e-6)
    }
  }
  func testNegationAndScalarForms() {
    let x = rng.tensor([3, 4])
    assertGradients("-x", [x]) { _, v in -v[0] }
    assertGradients("2.5 * x", [x]) { _, v in 2.5 * v[0] }
    assertGradients("x * 2.5", [x]) { _, v in v[0] * 2.5 }
    assertGradients("x + 1", [x]) { _, v in v[0] + 1 }
    assertGradients("x - 1", [x]) { _, v in v[0] - 1 }
  }
  func testSquare() {
    for shape in [[3, 4], [2, 2, 3]] {
      let x = rng.tensor(shape, -2, 2)
      assertGradients("square", [x]) { _, v in v[0].square() }
      assertClose(forward(x) { $0.square() }, x.array.map { Double($0) * Double($0) },
                  atol: 1e-6, rtol: 1e-6)
    }
  }

  // MARK: - Binary ops with broadcasting

  /// (a shape, b shape) pairs: equal, row vector, column, leading batch, scalars, outer.
  let broadcastCases: [([Int], [Int])] = [
    ([3, 4], [3, 4]), ([3, 4], [4]), ([3, 4], [3, 1]), ([2, 3, 4], [3, 4]),
    ([1], [3, 4]), ([3, 4], [1]), ([1, 4], [3, 1]), ([4], [3, 4]), ([3, 1], [2, 3, 4]),
    ([3, 1], [4]), ([2, 3, 4], [2, 3, 1]), ([2, 3, 1], [2, 3, 4]), ([2, 3, 4], [1, 3, 4]),
    ([2, 3, 4], [1, 1, 4]), ([2, 3, 4], [2, 1, 4]),
  ]

  func checkBinary(_ name: String, bRange: (Float, Float) = (-1, 1),
                   _ op: @escaping (Variable, Variable) -> Variable,
                   reference: @escaping (Double, Double) -> Double,
                   file: StaticString = #filePath, line: UInt = #line) {
    for (sa, sb) in broadcastCases {
      let a = rng.tensor(sa), b = rng.tensor(sb, bRange.0, bRange.1)
      assertGradients("\(name) \(sa)∘\(sb)", [a, b], file: file, line: line) { _, v in
        op(v[0], v[1])
      }
      let tape = Tape(recording: false)
      let y = op(tape.constant(a), tape.constant(b))
      let ref = broadcastReference(a, b, reference)
      XCTAssertEqual(y.shape, ref.shape, "\(name) \(sa)∘\(sb) shape", file: file, line: line)
      assertClose(y.value.array.map(Double.init), ref.values, atol: 1e-6, rtol: 1e-6,
                  "\(name) \(sa)∘\(sb) forward", file: file, line: line)
    }
  }

  func testAddBroadcasting() { checkBinary("+", { $0 + $1 }, reference: +) }
  func testSubtractBroadcasting() { checkBinary("−", { $0 - $1 }, reference: -) }
  func testMultiplyBroadcasting() { checkBinary("×", { $0 * $1 }, reference: *) }
  func testDivideBroadcastingWithDenominatorAwayFromZero() {
    checkBinary("÷", bRange: (0.5, 2), { $0 / $1 }, reference: /)
  }

  func testSameVariableOnBothSidesOfABroadcastOp() {
    let x = rng.tensor([3, 4])
    assertGradients("x * x.sum(axis: 0)", [x]) { _, v in v[0] * v[0].sum(axis: 0) }
  }

  // MARK: - Reductions

  func testSumAndMeanOfAllElements() {
    for shape in [[3, 4], [2, 3, 5]] {
      let x = rng.tensor(shape)
      assertGradients("sum", [x]) { _, v in v[0].sum() }
      assertGradients("mean", [x]) { _, v in v[0].mean() }
      let total = x.array.reduce(0.0) { $0 + Double($1) }
      assertClose(forward(x) { $0.sum() }, [total], atol: 1e-5)
      assertClose(forward(x) { $0.mean() }, [total / Double(x.count)], atol: 1e-6)
    }
  }

  func reduceReference(_ x: Tensor, axis: Int, mean: Bool) -> [Double] {
    let outer = x.shape[..<axis].reduce(1, *), n = x.shape[axis]
    let inner = x.shape[(axis + 1)...].reduce(1, *)
    var out = [Double](repeating: 0, count: outer * inner)
    for o in 0..<outer { for j in 0..<n { for i in 0..<inner {
      out[o * inner + i] += Double(x[(o * n + j) * inner + i]) / (mean ? Double(n) : 1)
    } } }
    return out
  }

  func testSumAndMeanOverEachAxisOf3DTensors() {
    for shape in [[2, 3, 4], [3, 1, 5]] {
      let x = rng.tensor(shape)
      for axis in [0, 1, 2, -1, -2, -3] {
        let ax = axis < 0 ? axis + 3 : axis
        for keepDims in [false, true] {
          var expectedShape = shape
          if keepDims { expectedShape[ax] = 1 } else { expectedShape.remove(at: ax) }
          let tape = Tape(recording: false)
          let s = tape.constant(x).sum(axis: axis, keepDims: keepDims)
          let m = tape.constant(x).mean(axis: axis, keepDims: keepDims)
          XCTAssertEqual(s.shape, expectedShape, "sum axis \(axis) keepDims \(keepDims)")
          XCTAssertEqual(m.shape, expectedShape, "mean axis \(axis) keepDims \(keepDims)")
          assertClose(s.value.array.map(Double.init), reduceReference(x, axis: ax, mean: false),
                      atol: 1e-6, rtol: 1e-6, "sum axis \(axis) forward")
          assertClose(m.value.array.map(Double.init), reduceReference(x, axis: ax, mean: true),
                      atol: 1e-6, rtol: 1e-6, "mean axis \(axis) forward")
          assertGradients("sum(axis: \(axis), keepDims: \(keepDims)) \(shape)", [x]) { _, v in
            v[0].sum(axis: axis, keepDims: keepDims)
          }
          assertGradients("mean(axis: \(axis), keepDims: \(keepDims)) \(shape)", [x]) { _, v in
            v[0].mean(axis: axis, keepDims: keepDims)
          }
        }
      }
    }
  }

  func logsumexpReference(_ x: Tensor, axis: Int) -> [Double] {
    let outer = x.shape[..<axis].reduce(1, *), n = x.shape[axis]
    let inner = x.shape[(axis + 1)...].reduce(1, *)
    return (0..<(outer * inner)).map { oi in
      let o = oi / inner, i = oi % inner
      // Naive: fine for the moderate values used with it.
      return Foundation.log((0..<n).reduce(0.0) { $0 + Foundation.exp(Double(x[(o * n + $1) * inner + i])) })
    }
  }

  func testLogsumexpGradientOverFirstAndLastAxis() {
    for shape in [[5, 3], [4, 2, 3]] {
      let x = rng.tensor(shape, -3, 3)
      for axis in [0, -1, shape.count - 1] {
        for keepDims in [false, true] {
          assertGradients("logsumexp(axis: \(axis)) \(shape)", [x]) { _, v in
            v[0].logsumexp(axis: axis, keepDims: keepDims)
          }
        }
        let ax = axis < 0 ? axis + shape.count : axis
        assertClose(forward(x) { $0.logsumexp(axis: axis) }, logsumexpReference(x, axis: ax),
                    atol: 1e-6, rtol: 1e-6, "logsumexp forward axis \(axis) \(shape)")
      }
    }
  }

  func testLogsumexpIsStableWhereTheNaiveFormOverflows() {
    // exp(1e4) overflows even in Double; the answer is m + log Σ exp(x − m).
    let x = Tensor([10_000, 10_001, 9_999, -10_000, -10_001, -9_999], shape: [2, 3])
    let y = forward(x) { $0.logsumexp(axis: -1) }
    let lse = Foundation.log(1 + Foundation.exp(1.0) + Foundation.exp(-1.0))
    XCTAssertTrue(logsumexpReference(x, axis: 1)[0].isInfinite, "the naive form should overflow")
    // Float at 1e4 has ulp 1e-3: the result can be no closer than that.
    assertClose(y, [10_000 + lse, -10_000 + lse], atol: 2e-3)
  }

  func testLogsumexpOfAllMinusInfinityIsMinusInfinity() {
    let x = Tensor([-.infinity, -.infinity, 0, 1], shape: [2, 2])
    let y = forward(x) { $0.logsumexp(axis: 1) }
    XCTAssertEqual(y[0], -.infinity)
    XCTAssertEqual(y[1], Foundation.log(1 + Foundation.exp(1.0)), accuracy: 1e-6)
  }

  // MARK: - Matrix products

  func testLinearChecksInputWeightAndBias() {
    for (r, nIn, nOut) in [(4, 3, 5), (1, 6, 2), (7, 1, 3)] {
      let x = rng.tensor([r, nIn]), w = rng.tensor([nIn, nOut]), b = rng.tensor([nOut])
      assertGradients("linear [\(r),\(nIn)]→\(nOut)", [x, w, b]) { _, v in
        linear(v[0], v[1], v[2])
      }
      var ref = [Double](repeating: 0, count: r * nOut)
      for i in 0..<r { for j in 0..<nOut {
        ref[i * nOut + j] = Double(b[j])
          + (0..<nIn).reduce(0.0) { $0 + Double(x[i * nIn + $1]) * Double(w[$1 * nOut + j]) }
      } }
      let tape = Tape(recording: false)
      let y = linear(tape.constant(x), tape.constant(w), tape.constant(b))
      assertClose(y.value.array.map(Double.init), ref, atol: 1e-5, rtol: 1e-5, "linear forward")
    }
  }

  func testMatmul() {
    for (m, k, n) in [(3, 4, 2), (1, 5, 5), (6, 2, 1)] {
      let a = rng.tensor([m, k]), b = rng.tensor([k, n])
      assertGradients("matmul [\(m),\(k)]·[\(k),\(n)]", [a, b]) { _, v in matmul(v[0], v[1]) }
      var ref = [Double](repeating: 0, count: m * n)
      for i in 0..<m { for j in 0..<n { for p in 0..<k {
        ref[i * n + j] += Double(a[i * k + p]) * Double(b[p * n + j])
      } } }
      let tape = Tape(recording: false)
      let c = matmul(tape.constant(a), tape.constant(b))
      XCTAssertEqual(c.shape, [m, n])
      assertClose(c.value.array.map(Double.init), ref, atol: 1e-5, rtol: 1e-5, "matmul forward")
    }
  }

  // MARK: - Shapes

  func testColumns() {
    let x = rng.tensor([3, 6])
    for range in [0..<2, 2..<6, 3..<4] {
      assertGradients("columns \(range)", [x]) { _, v in v[0].columns(range) }
      let ref = (0..<3).flatMap { i in range.map { Double(x[i * 6 + $0]) } }
      assertClose(forward(x) { $0.columns(range) }, ref, atol: 0)
    }
    let x3 = rng.tensor([2, 3, 4])
    assertGradients("columns of 3-D", [x3]) { _, v in v[0].columns(1..<3) }
  }

  func testConcatColumns() {
    let a = rng.tensor([3, 2]), b = rng.tensor([3, 1]), c = rng.tensor([3, 4])
    assertGradients("concatColumns", [a, b, c]) { _, v in concatColumns(v) }
    let tape = Tape(recording: false)
    let y = concatColumns([a, b, c].map { tape.constant($0) })
    XCTAssertEqual(y.shape, [3, 7])
    let ref = (0..<3).flatMap { i in
      [a[i * 2], a[i * 2 + 1], b[i]] + (0..<4).map { c[i * 4 + $0] }
    }
    XCTAssertEqual(y.value.array, ref)
  }

  func testConcatColumnsWithAConstantPart() {
    let a = rng.tensor([2, 3]), k = rng.tensor([2, 2])
    assertGradients("concatColumns with constant", [a]) { tape, v in
      concatColumns([tape.constant(k), v[0]]).square()
    }
  }

  func testReshaped() {
    let x = rng.tensor([2, 3, 4])
    assertGradients("reshaped [6,4]", [x]) { _, v in v[0].reshaped([6, 4]).sum(axis: 0) }
    assertGradients("reshaped [4,6]·exp", [x]) { _, v in v[0].reshaped([4, 6]).exp() }
    XCTAssertEqual(forward(x) { $0.reshaped([24]) }, x.array.map(Double.init))
  }

  // MARK: - Bernoulli log-likelihood

  func bernoulliReference(_ logits: Tensor, _ t: Tensor) -> [Double] {
    (0..<logits.rows).map { r in
      (0..<logits.cols).reduce(0.0) { acc, c in
        let l = Double(logits[r * logits.cols + c]), tv = Double(t[r * logits.cols + c])
        let s = 1 / (1 + Foundation.exp(-l))
        return acc + tv * Foundation.log(s) + (1 - tv) * Foundation.log(1 - s)
      }
    }
  }

  func testBernoulliLogLikelihoodWithBinaryTargets() {
    for shape in [[4, 6], [1, 10], [2, 3, 5]] {
      let l = rng.tensor(shape, -4, 4), t = rng.binary(shape)
      assertGradients("bernoulli binary \(shape)", [l]) { _, v in
        bernoulliLogLikelihood(logits: v[0], targets: t)
      }
      let tape = Tape(recording: false)
      let y = bernoulliLogLikelihood(logits: tape.constant(l), targets: t)
      XCTAssertEqual(y.shape, [l.rows])
      assertClose(y.value.array.map(Double.init), bernoulliReference(l, t), atol: 1e-5,
                  rtol: 1e-5, "bernoulli forward \(shape)")
    }
  }

  func testBernoulliLogLikelihoodWithSoftTargets() {
    for shape in [[4, 6], [3, 7]] {
      let l = rng.tensor(shape, -4, 4), t = rng.tensor(shape, 0, 1)
      assertGradients("bernoulli soft \(shape)", [l]) { _, v in
        bernoulliLogLikelihood(logits: v[0], targets: t)
      }
      let tape = Tape(recording: false)
      let y = bernoulliLogLikelihood(logits: tape.constant(l), targets: t)
      assertClose(y.value.array.map(Double.init), bernoulliReference(l, t), atol: 1e-5,
                  rtol: 1e-5, "bernoulli soft forward \(shape)")
    }
  }

  func testBernoulliLogLikelihoodIsFiniteForExtremeLogits() {
    let l = Tensor([-80, 80, -80, 80], shape: [1, 4]), t = Tensor([0, 1, 1, 0], shape: [1, 4])
    let tape = Tape(recording: false)
    let y = bernoulliLogLikelihood(logits: tape.constant(l), targets: t).value[0]
    // log σ(−80) = −80 − log1p(e^−80) ≈ −80; two of them, and two ≈ −e^−80 ≈ 0.
    XCTAssertEqual(y, -160, accuracy: 1e-4)
  }
}
