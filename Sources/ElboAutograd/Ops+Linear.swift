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
