import CKernels
import ElboTestSupport
import XCTest

/// `ek_bernoulli_logits_rowsum_fast` (one log per 64 lane factors) against a Double reference and
/// against the exact kernel, over rows as long as an image and ragged ones.
final class BernoulliRowsumFastTests: XCTestCase {
  func testMatchesDoubleReferenceAndTheExactKernel() {
    var rng = TestRandom(seed: 17)
    for cols in [1, 15, 16, 17, 784, 1024, 1025, 3000] {
      let rows = 5
      var l = rng.normal([rows, cols]).array.map { $0 * 6 }
      l[0] = 90; if cols > 2 { l[1] = -90; l[2] = 0 }   // saturated and zero logits
      let t = rng.binary([rows, cols]).array
      var fast = [Float](repeating: 0, count: rows), exact = fast
      ek_bernoulli_logits_rowsum_fast(l, t, &fast, rows, cols)
      ek_bernoulli_logits_rowsum(l, t, &exact, rows, cols)
      let reference = (0..<rows).map { r in
        (0..<cols).reduce(0.0) { s, c in
          let x = Double(l[r * cols + c]), y = Double(t[r * cols + c])
          return s + y * x - (max(x, 0) + log1p(exp(-abs(x))))
        }
      }
      // 2e-8 relative to the row's magnitude, plus a few float roundings of the lane logs.
      assertClose(fast.map(Double.init), reference, atol: 1e-5 * Double(cols).squareRoot(),
                  rtol: 2e-7, "cols \(cols)")
      assertClose(fast, exact, atol: 1e-4 * Float(cols).squareRoot(), rtol: 3e-7, "cols \(cols)")
    }
  }

  func testSpecialValuesAsTheExactKernel() {
    // NaN stays NaN; ±∞ logits give NaN in both kernels (0·∞); huge finite ones are exact.
    let l: [Float] = [.nan, 1, 2, .infinity, 1e30, -1e30], t: [Float] = [1, 0, 1, 0, 0, 1]
    var fast: [Float] = [0, 0, 0], exact = fast
    ek_bernoulli_logits_rowsum_fast(l, t, &fast, 3, 2)
    ek_bernoulli_logits_rowsum(l, t, &exact, 3, 2)
    XCTAssertTrue(fast[0].isNaN && exact[0].isNaN)
    XCTAssertEqual(fast[1].isNaN, exact[1].isNaN)
    XCTAssertEqual(fast[2], -2e30)
    XCTAssertEqual(exact[2], -2e30)
  }
}
