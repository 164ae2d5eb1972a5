import CKernels

// Elementwise functions. The forward and backward loops live in CKernels (vectorised C, see
// Sources/CKernels); each op below pairs one forward kernel with its accumulating backward.
// `usesOutput` says whether the backward needs f(x) (tanh, sigmoid, exp, relu) or x itself.

typealias ForwardKernel = (UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int) -> Void
typealias BackwardKernel =
  (UnsafePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int) -> Void

extension Variable {
  private func unary(_ forward: ForwardKernel, _ backward: @escaping BackwardKernel,
                     usesOutput: Bool) -> Variable {
    let y = tape.output(shape, self)
    let n = count
    forward(value.pointer, y.value.pointer, n)
    guard y.requiresGrad else { return y }
    tape.record(y) {
      let saved = usesOutput ? y.value : self.value
      backward(saved.pointer, y.grad.pointer, self.grad.pointer, n)
    }
    return y
  }

  /// eˣ
  public func exp() -> Variable {
    unary({ ek_exp($0, $1, $2) }, { ek_exp_backward($0, $1, $2, $3) }, usesOutput: true)
  }
  /// log x (x > 0)
  public func log() -> Variable {
    unary({ ek_log($0, $1, $2) }, { ek_log_backward($0, $1, $2, $3) }, usesOutput: false)
  }
  /// log(1 + x) (x > −1)
  public func log1p() -> Variable {
    unary({ ek_log1p($0, $1, $2) }, { ek_log1p_backward($0, $1, $2, $3) }, usesOutput: false)
  }
  /// tanh x
  public func tanh() -> Variable {
    unary({ ek_tanh($0, $1, $2) }, { ek_tanh_backward($0, $1, $2, $3) }, usesOutput: true)
  }
  /// σ(x) = 1 / (1 + e⁻ˣ)
  public func sigmoid() -> Variable {
    unary({ ek_sigmoid($0, $1, $2) }, { ek_sigmoid_backward($0, $1, $2, $3) }, usesOutput: true)
  }
  /// softplus(x) = log(1 + eˣ), computed stably.
  public func softplus() -> Variable {
    unary({ ek_softplus($0, $1, $2) }, { ek_softplus_backward($0, $1, $2, $3) },
          usesOutput: false)
  }
  /// log σ(x) = −softplus(−x), computed stably.
  public func logSigmoid() -> Variable {
    unary({ ek_log_sigmoid($0, $1, $2) }, { ek_log_sigmoid_backward($0, $1, $2, $3) },
          usesOutput: false)
  }
  /// max(x, 0). The derivative at 0 is taken as 0.
  public func relu() -> Variable {
    unary({ ek_relu($0, $1, $2) }, { ek_relu_backward($0, $1, $2, $3) }, usesOutput: true)
  }
  /// ELU with α = 1: x for x > 0, eˣ − 1 otherwise.
  public func elu() -> Variable {
    let y = tape.output(shape, self)
    let n = count
    ek_elu(value.pointer, y.value.pointer, n)
    guard y.requiresGrad else { return y }
    tape.record(y) { ek_elu_backward(self.value.pointer, y.value.pointer, y.grad.pointer,
                                  self.grad.pointer, n) }
    return y
  }

  /// √x for x > 0. Written in Swift: `squareRoot()` is one instruction and the loop vectorises.
  /// Backward: dx += dy / (2√x), unbounded at 0 — callers keep x away from 0 (e.g. a variance
  /// with a positive floor, as in the local reparameterisation).
  public func sqrt() -> Variable {
    let y = tape.output(shape, self)
    let n = count, xp = value.pointer, yp = y.value.pointer
    for i in 0..<n { yp[i] = xp[i].squareRoot() }
    guard y.requiresGrad else { return y }
    tape.record(y) {
      let dx = self.grad.pointer, dy = y.grad.pointer
      for i in 0..<n { dx[i] += 0.5 * dy[i] / yp[i] }
    }
    return y
  }

  /// |x|. Written in Swift like `sqrt`. Backward: dx += sign(x)·dy, with the derivative at 0
  /// taken as 0 (a flow's log|det| uses it on a determinant kept away from 0).
  public func abs() -> Variable {
    let y = tape.output(shape, self)
    let n = count, xp = value.pointer, yp = y.value.pointer
    for i in 0..<n { yp[i] = Swift.abs(xp[i]) }
    guard y.requiresGrad else { return y }
    tape.record(y) {
      let dx = self.grad.pointer, dy = y.grad.pointer
      for i in 0..<n { dx[i] += xp[i] > 0 ? dy[i] : (xp[i] < 0 ? -dy[i] : 0) }
    }
    return y
  }
}
