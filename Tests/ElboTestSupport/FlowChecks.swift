import ElboAutograd
import Foundation
import XCTest

/// The shared check for every flow (Pyro's and TFP's pattern: one harness, every bijector): the
/// flow's own log|det J| per row against the log-determinant of its full Jacobian, computed by
/// autodiff and an LU decomposition.
///
/// The Jacobian: rows of a batch are independent, so one backward pass of Σ_rows z′[:, j] gives,
/// in row i of ∂/∂z, the j-th row of row i's Jacobian, J_i[j, :] = ∂z′_ij/∂z_i. D backward passes
/// (one per output dimension) give every row's D×D Jacobian. These are exact derivatives of the
/// Float forward (no step size), so the only error is Float rounding — ~1e-6 relative on each
/// entry — and the LU in Double adds nothing: 1e-4 on log|det| is ~100× that.
public enum FlowCheck {
  /// A flow as a function of z alone (parameters and context fixed), built on `tape`.
  public typealias Function = (Tape, Variable) -> (z: Variable, logDet: Variable)

  /// J[row][i][j] = ∂z′_i/∂z_j for every row of z [R, D], by D backward passes.
  public static func jacobians(_ z: Tensor, _ f: Function) -> [[[Double]]] {
    let r = z.rows, d = z.cols
    var jac = [[[Double]]](repeating: [[Double]](repeating: [Double](repeating: 0, count: d),
                                                  count: d), count: r)
    for i in 0..<d {
      let tape = Tape()
      let grad = Tensor(zeros: z.shape)
      let (y, _) = f(tape, tape.parameter(Tensor(z.array, shape: z.shape), grad: grad))
      var pick = [Float](repeating: 0, count: y.count)
      for row in 0..<r { pick[row * d + i] = 1 }
      tape.backward((y * tape.constant(Tensor(pick, shape: y.shape))).sum())
      let g = grad.array
      for row in 0..<r {
        for j in 0..<d { jac[row][i][j] = Double(g[row * d + j]) }
      }
    }
    return jac
  }

  /// (log|det A|, sign det A) by LU with partial pivoting, in Double.
  public static func logAbsDet(_ matrix: [[Double]]) -> (logAbs: Double, sign: Double) {
    var a = matrix
    let n = a.count
    var logAbs = 0.0, sign = 1.0
    for c in 0..<n {
      let p = (c..<n).max { Swift.abs(a[$0][c]) < Swift.abs(a[$1][c]) }!
      if p != c { a.swapAt(p, c); sign = -sign }
      let pivot = a[c][c]
      if pivot == 0 { return (-.infinity, 0) }
      if pivot < 0 { sign = -sign }
      logAbs += Foundation.log(Swift.abs(pivot))
      for r in c + 1..<n {
        let factor = a[r][c] / pivot
        for k in c..<n { a[r][k] -= factor * a[c][k] }
      }
    }
    return (logAbs, sign)
  }

  /// Fails unless the flow's logDet [R] equals log|det J| of the autodiff Jacobian in every row
  /// within `tolerance` (absolute, plus the same relative); returns each row's sign of det J.
  @discardableResult
  public static func assertLogDetMatchesJacobian(
    _ name: String, _ z: Tensor, tolerance: Double = 1e-4,
    file: StaticString = #filePath, line: UInt = #line, _ f: Function
  ) -> [Double] {
    let tape = Tape(recording: false)
    let (y, logDet) = f(tape, tape.constant(z))
    XCTAssertEqual(y.shape, z.shape, "\(name): z′ shape", file: file, line: line)
    XCTAssertEqual(logDet.shape, [z.shape[0]], "\(name): logDet shape", file: file, line: line)
    let analytic = logDet.value.array.map(Double.init)
    let dets = jacobians(z, f).map(logAbsDet)
    assertClose(analytic, dets.map(\.logAbs), atol: tolerance, rtol: tolerance,
                "\(name): log|det J| vs autodiff Jacobian", file: file, line: line)
    return dets.map(\.sign)
  }

  /// Fails unless inverse(forward(z)) = z within `tolerance` (max absolute difference).
  public static func assertRoundTrip(
    _ name: String, _ z: Tensor, tolerance: Float = 1e-5,
    file: StaticString = #filePath, line: UInt = #line,
    forward: (Tape, Variable) -> Variable, inverse: (Tape, Variable) -> Variable?
  ) {
    let tape = Tape(recording: false)
    let y = forward(tape, tape.constant(z))
    guard let back = inverse(tape, y) else {
      XCTFail("\(name): no inverse", file: file, line: line)
      return
    }
    let err = zip(back.value.array, z.array).map { Swift.abs($0 - $1) }.max() ?? 0
    XCTAssertLessThanOrEqual(err, tolerance, "\(name): max |f⁻¹(f(z)) − z|", file: file,
                             line: line)
  }
}
