import CKernels

// MARK: - Linear layer: y = x·W + b
//
// Shapes: x [R, in], W [in, out] (stored input-major so that the forward is a plain NN gemm),
// b [out], y [R, out].

/// y = x·W + b.
public func linear(_ x: Variable, _ w: Variable, _ b: Variable) -> Variable {
  let tape = x.tape
  let r = x.value.rows, nIn = x.value.cols, nOut = w.value.cols
  precondition(w.value.rows == nIn, "linear: x \(x.shape) does not match W \(w.shape)")
  precondition(b.count == nOut, "linear: bias \(b.shape) does not match W \(w.shape)")
  let y = tape.output([r, nOut], x, w, b)
  // Forward: broadcast the bias into y, then let sgemm accumulate x·W onto it (beta = 1).
  let yp = y.value.pointer, bp = b.value.pointer
  for i in 0..<r { (yp + i * nOut).update(from: bp, count: nOut) }
  BLAS.gemm(x.value, w.value, into: y.value, beta: 1)
  guard y.requiresGrad else { return y }

  tape.record(y) {
    let dy = y.grad  // [R, out]
    if w.requiresGrad {  // dW += xᵀ·dy   [in, out]
      BLAS.gemm(x.value, transA: true, dy, into: w.grad, beta: 1)
    }
    if b.requiresGrad {  // db += Σ_rows dy
      let db = b.grad.pointer, dyp = dy.pointer
      for i in 0..<r {
        let row = dyp + i * nOut
        for j in 0..<nOut { db[j] += row[j] }
      }
    }
    if x.requiresGrad {  // dx += dy·Wᵀ   [R, in]
      BLAS.gemm(dy, w.value, transB: true, into: x.grad, beta: 1)
    }
  }
  return y
}

/// C = A·B for matrices (leading dimensions fold into rows).
public func matmul(_ a: Variable, _ b: Variable) -> Variable {
  let tape = a.tape
  let c = tape.output([a.value.rows, b.value.cols], a, b)
  BLAS.gemm(a.value, b.value, into: c.value)
  guard c.requiresGrad else { return c }
  tape.record(c) {
    if a.requiresGrad { BLAS.gemm(c.grad, b.value, transB: true, into: a.grad, beta: 1) }
    if b.requiresGrad { BLAS.gemm(a.value, transA: true, c.grad, into: b.grad, beta: 1) }
  }
  return c
}

// MARK: - Per-row matrix–vector products: y_r = A_r x_r
//
// Shapes: A [R, m, n] (one matrix per row of the batch, e.g. a Sylvester flow's amortised R) or
// [m, n] (shared by every row); x [R, n] ([R, m] when transposed); y [R, m] ([R, n]).
// The shared case is one gemm (y = x·Aᵀ, or x·A when transposed); the per-row case is R small
// gemms, each a matrix–vector product, because each row has its own matrix.

/// y_r = A_r x_r (or A_rᵀ x_r when `transposed`) for every row r.
/// - Parameters:
///   - a: [R, m, n] or [m, n] (broadcast over rows).
///   - x: [R, n], or [R, m] when `transposed`.
/// - Returns: [R, m], or [R, n] when `transposed`.
public func batchedMatVec(_ a: Variable, _ x: Variable, transposed: Bool = false) -> Variable {
  let tape = x.tape
  let shared = a.value.rank == 2
  precondition(shared || a.value.rank == 3, "batchedMatVec: A must be [m, n] or [R, m, n], got "
                 + "\(a.shape)")
  let r = x.value.rows
  let m = a.value.shape[a.value.rank - 2], n = a.value.shape[a.value.rank - 1]
  let (inW, outW) = transposed ? (m, n) : (n, m)
  precondition(x.value.cols == inW && (shared || a.value.shape[0] == r),
               "batchedMatVec: A \(a.shape)\(transposed ? "ᵀ" : "") does not apply to x \(x.shape)")
  let y = tape.output([r, outW], x, a)
  if shared {
    // Row vectors: yᵀ = xᵀ·Aᵀ (plain) or xᵀ·A (transposed), over all rows at once.
    BLAS.gemm(x.value, a.value, transB: !transposed, into: y.value)
  } else {
    let ap = a.value.pointer, xp = x.value.pointer, yp = y.value.pointer
    for i in 0..<r {  // y_iᵀ [1, outW] = x_iᵀ [1, inW] · op(A_i)ᵀ
      BLAS.gemm(m: 1, n: outW, k: inW, a: xp + i * inW, lda: inW, transA: false,
                b: ap + i * m * n, ldb: n, transB: !transposed,
                c: yp + i * outW, ldc: outW, alpha: 1, beta: 0)
    }
  }
  guard y.requiresGrad else { return y }

  tape.record(y) {
    let dy = y.grad  // [R, outW]
    if x.requiresGrad {  // dx_i += op(A_i)ᵀ dy_i, i.e. dx_iᵀ += dy_iᵀ·op(A_i)
      if shared {
        BLAS.gemm(dy, a.value, transB: transposed, into: x.grad, beta: 1)
      } else {
        let ap = a.value.pointer, dyp = dy.pointer, dxp = x.grad.pointer
        for i in 0..<r {
          BLAS.gemm(m: 1, n: inW, k: outW, a: dyp + i * outW, lda: outW, transA: false,
                    b: ap + i * m * n, ldb: n, transB: transposed,
                    c: dxp + i * inW, ldc: inW, alpha: 1, beta: 1)
        }
      }
    }
    if a.requiresGrad {  // dA_i += dy_i x_iᵀ (plain) or x_i dy_iᵀ (transposed): [m, n]
      let (left, right) = transposed ? (x.value, dy) : (dy, x.value)  // [R, m], [R, n]
      if shared {  // Σ_i outer products = leftᵀ·right
        BLAS.gemm(left, transA: true, right, into: a.grad, beta: 1)
      } else {
        let lp = left.pointer, rp = right.pointer, dap = a.grad.pointer
        for i in 0..<r {
          BLAS.gemm(m: m, n: n, k: 1, a: lp + i * m, lda: 1, transA: false,
                    b: rp + i * n, ldb: n, transB: false,
                    c: dap + i * m * n, ldc: n, alpha: 1, beta: 1)
        }
      }
    }
  }
  return y
}
