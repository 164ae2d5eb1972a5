import ElboTensor
import ElboTestSupport
import XCTest

final class TensorTests: XCTestCase {
  var rng = TestRandom(seed: 99)

  /// Naive row-major C = alpha·op(A)·op(B) + beta·C in Double.
  func naiveGemm(_ a: Tensor, transA: Bool, _ b: Tensor, transB: Bool, _ c: [Float],
                 alpha: Double, beta: Double) -> [Double] {
    let m = transA ? a.cols : a.rows, k = transA ? a.rows : a.cols
    let n = transB ? b.rows : b.cols
    var out = [Double](repeating: 0, count: m * n)
    for i in 0..<m { for j in 0..<n {
      var s = 0.0
      for p in 0..<k {
        let av = transA ? a[p * a.cols + i] : a[i * a.cols + p]
        let bv = transB ? b[j * b.cols + p] : b[p * b.cols + j]
        s += Double(av) * Double(bv)
      }
      out[i * n + j] = alpha * s + beta * Double(c[i * n + j])
    } }
    return out
  }

  func testGemmMatchesNaiveLoopForAllTransposesAndScalings() {
    let (m, k, n) = (5, 7, 3)
    for transA in [false, true] { for transB in [false, true] {
      for (alpha, beta) in [(1.0, 0.0), (0.5, 1.0), (-2.0, 0.25)] {
        let a = rng.tensor(transA ? [k, m] : [m, k]), b = rng.tensor(transB ? [n, k] : [k, n])
        let c = rng.tensor([m, n])
        let c0 = c.array
        BLAS.gemm(a, transA: transA, b, transB: transB, into: c, alpha: Float(alpha),
                  beta: Float(beta))
        // Float products of k = 7 terms in [−1, 1]: error ≤ k·ε·Σ|a||b| ≈ 1e-6; 1e-5 is safe.
        assertClose(c.array.map(Double.init),
                    naiveGemm(a, transA: transA, b, transB: transB, c0, alpha: alpha, beta: beta),
                    atol: 1e-5, rtol: 1e-5, "transA \(transA) transB \(transB) α \(alpha) β \(beta)")
      }
    } }
  }

  func testGemmFoldsLeadingDimensionsIntoRows() {
    let a = rng.tensor([2, 3, 4]), b = rng.tensor([4, 5])
    let c = Tensor(zeros: [2, 3, 5])
    BLAS.gemm(a, b, into: c)
    let ref = naiveGemm(a.reshaped([6, 4]), transA: false, b, transB: false,
                        [Float](repeating: 0, count: 30), alpha: 1, beta: 0)
    assertClose(c.array.map(Double.init), ref, atol: 1e-5, rtol: 1e-5)
  }

  func testReshapedSharesStorage() {
    let t = Tensor([1, 2, 3, 4, 5, 6], shape: [2, 3])
    let r = t.reshaped([3, 2])
    XCTAssertTrue(r.storage === t.storage)
    XCTAssertEqual(r.shape, [3, 2])
    XCTAssertEqual(r.rows, 3)
    XCTAssertEqual(r.cols, 2)
    r[4] = 50
    XCTAssertEqual(t[4], 50)
  }

  func testViewsAtAnOffsetSeeTheirSlice() {
    let s = Storage(capacity: 10)
    let whole = Tensor(storage: s, offset: 0, shape: [10])
    for i in 0..<10 { whole[i] = Float(i) }
    let view = Tensor(storage: s, offset: 4, shape: [2, 3])
    XCTAssertEqual(view.array, [4, 5, 6, 7, 8, 9])
    view.fill(0)
    XCTAssertEqual(whole.array, [0, 1, 2, 3, 0, 0, 0, 0, 0, 0])
  }

  func testCloneIsDeep() {
    let t = Tensor([1, 2, 3], shape: [3])
    let c = t.clone()
    XCTAssertFalse(c.storage === t.storage)
    XCTAssertEqual(c.array, t.array)
    c[0] = 9
    XCTAssertEqual(t[0], 1)
    t[1] = 7
    XCTAssertEqual(c[1], 2)
  }

  func testStorageIsZeroedAndAligned() {
    let s = Storage(capacity: 1000)
    XCTAssertEqual(Int(bitPattern: s.base) % 64, 0)
    XCTAssertTrue(UnsafeBufferPointer(start: s.base, count: 1000).allSatisfy { $0 == 0 })
  }

  func testShapeHelpers() {
    let t = Tensor(zeros: [2, 3, 4])
    XCTAssertEqual(t.count, 24)
    XCTAssertEqual(t.rank, 3)
    XCTAssertEqual(t.rows, 6)
    XCTAssertEqual(t.cols, 4)
    XCTAssertEqual(Tensor(zeros: [5]).rows, 1)
    XCTAssertEqual(Tensor([3], shape: [1]).scalar, 3)
    XCTAssertEqual(Tensor.elementCount([]), 1)
  }
}
