import CKernels

// Shape legend
//   R examples, D binary inputs in a fixed order, H sigmoid hidden units
//   x [R, D] ∈ {0,1}   W [D, H] (row d = the tied weights of input d)   c [H]   V [D, H]   b [D]
//   logits [R, D]   logp [R]

/// The NADE log-likelihood log p(x) of binary inputs, as one fused op (Larochelle & Murray,
/// "The Neural Autoregressive Distribution Estimator", AISTATS 2011, Algorithm 1).
///
///     a_1 = c,   a_{d+1} = a_d + x_d W_d              (the running sum: O(HD) per example)
///     h_d = σ(a_d),   l_d = b_d + V_d · h_d,   p(x_d = 1 | x_<d) = σ(l_d)
///     log p(x) = Σ_d [x_d l_d − softplus(l_d)]
///
/// Fused because the unfused graph would hold D hidden vectors per example (a [R, D, H]
/// tensor, 157 MB for a batch of 100 MNIST digits) and run D tiny ops per pixel; the C kernels
/// (CKernels/nade.c) keep one running sum per example in L1 instead and recompute h_d in the
/// backward by running subtraction.
///
/// - Parameters:
///   - x: inputs [R, D], every entry 0 or 1 (data: no gradient).
///   - W: tied input weights [D, H].   - c: hidden bias [H].
///   - V: output weights [D, H].       - b: output bias [D].
/// - Returns: log p(x) [R], and the logits l [R, D] of the conditionals (arena memory, valid
///   until the tape's next reset).
///
/// The backward fills the gradients of all four parameters (a constant among them gets a
/// throwaway arena gradient).
public func nadeLogLikelihood(_ x: Tensor, W: Variable, c: Variable, V: Variable, b: Variable)
  -> (logp: Variable, logits: Tensor) {
  let tape = W.tape
  let r = x.rows, d = x.cols, h = W.value.cols
  precondition(W.shape == [d, h] && V.shape == [d, h] && c.shape == [h] && b.shape == [d],
               "NADE shapes: x \(x.shape), W \(W.shape), c \(c.shape), V \(V.shape), b \(b.shape);"
               + " expected W, V [D, H], c [H], b [D] with D = x.cols")

  // MARK: Forward
  let logp = tape.output([r], W, c, V, b)
  let logits = tape.tensor([r, d])
  ek_nade_forward(x.pointer, W.value.pointer, c.value.pointer, V.value.pointer, b.value.pointer,
                  logp.value.pointer, logits.pointer, r, d, h)
  guard logp.requiresGrad else { return (logp, logits) }

  // MARK: Backward
  // dl_{r,d} = g_r (x − σ(l)); dV_d += dl h_d; da_d = dl V_d ⊙ h_d(1 − h_d);
  // dW_d += x_d Σ_{d'>d} da_{d'}; dc += Σ_d da_d; db_d += Σ_r dl_{r,d} (accumulated).
  tape.record(logp) {
    ek_nade_backward(x.pointer, W.value.pointer, c.value.pointer, V.value.pointer,
                     logits.pointer, logp.grad.pointer, W.grad.pointer, c.grad.pointer,
                     V.grad.pointer, b.grad.pointer, r, d, h)
  }
  return (logp, logits)
}
