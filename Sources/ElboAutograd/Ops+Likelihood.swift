import CKernels

/// Σ over each row of log Bernoulli(t | σ(logits)) = Σ_c [t·l − softplus(l)] → shape [R].
///
/// Fused because it is the largest elementwise job in a VAE step (batch × 784): one vectorised
/// pass forward, one backward, no intermediate tensors. Stable for any logit. The targets `t`
/// are constants (data); t ∈ [0, 1] also gives the continuous-Bernoulli-free "soft" form.
public func bernoulliLogLikelihood(logits: Variable, targets: Tensor) -> Variable {
  precondition(logits.count == targets.count, "logits \(logits.shape) vs targets \(targets.shape)")
  let tape = logits.tape
  let rows = logits.value.rows, cols = logits.value.cols
  let y = tape.output([rows], logits)
  ek_bernoulli_logits_rowsum(logits.value.pointer, targets.pointer, y.value.pointer, rows, cols)
  guard y.requiresGrad else { return y }
  tape.record(y) {
    ek_bernoulli_logits_backward(logits.value.pointer, targets.pointer, y.grad.pointer,
                                 logits.grad.pointer, rows, cols)
  }
  return y
}
