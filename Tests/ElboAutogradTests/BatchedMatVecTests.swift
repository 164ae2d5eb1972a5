import ElboAutograd
import ElboTestSupport
import XCTest

/// `batchedMatVec`: forward against a Double reference, gradients by the shared finite-difference
/// check, for per-row and shared matrices, plain and transposed.
final class BatchedMatVecTests: XCTestCase {
  var rng = TestRandom(seed: 20_261_201)

  /// y_r = op(A_r) x_r in Double; a: [R, m, n] or [m, n].
  func reference(_ a: Tensor, _ x: Tensor, transposed: Bool) -> [Double] {
    let shared = a.rank == 2
    let m = a.shape[a.rank - 2], n = a.shape[a.rank - 1], r = x.rows
    let outW = transposed ? n : m
    var y = [Double](repeating: 0, count: r * outW)
    for row in 0..<r {
      let base = shared ? 0 : row * m * n
      for i in 0..<m {
        for j in 0..<n {
          let aij = Double(a[base + i * n + j])
          if transposed { y[row * n + j] += aij * Double(x[row * m + i]) } else {
            y[row * m + i] += aij * Double(x[row * n + j])
          }
        }
      }
    }
    return y
  }

  func testForwardMatchesReference() {
    for shared in [false, true] {
      for transposed in [false, true] {
        let r = 4, m = 3, n = 5
        let a = rng.tensor(shared ? [m, n] : [r, m, n])
        let x = rng.tensor([r, transposed ? m : n])
        let tape = Tape(recording: false)
        let y = batchedMatVec(tape.constant(a), tape.constant(x), transposed: transposed)
        XCTAssertEqual(y.shape, [r, transposed ? n : m])
        assertClose(y.value.array.map(Double.init), reference(a, x, transposed: transposed),
                    atol: 1e-6, rtol: 1e-5, "shared \(shared) transposed \(transposed)")
      }
    }
  }

  func testGradients() {
    for shared in [false, true] {
      for transposed in [false, true] {
        let r = 3, m = 4, n = 2
        let inputs = [rng.tensor(shared ? [m, n] : [r, m, n]),
                      rng.tensor([r, transposed ? m : n])]
        assertGradients("batchedMatVec shared \(shared) transposed \(transposed)", inputs) { _, v in
          batchedMatVec(v[0], v[1], transposed: transposed)
        }
      }
    }
  }
}
