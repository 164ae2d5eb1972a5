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

/// log Categorical(label | softmax(logits)) per row = l[label] − log Σ_c exp(l_c) → shape [R].
///
/// Fused (log-softmax and the pick of the label in one pass) so that no [R, C] intermediate is
/// made and the log-sum-exp is taken stably, with the row maximum subtracted, in Double.
/// Backward: ∂/∂l_c = 1[c = label] − softmax(l)_c.
/// - Parameters:
///   - logits: [R, C].
///   - labels: [R], class indices 0..<C stored as Floats (exact below 2²⁴; keeps them in the
///     tape's arena instead of a per-step array).
public func categoricalLogLikelihood(logits: Variable, labels: Tensor) -> Variable {
  let tape = logits.tape
  let rows = logits.value.rows, cols = logits.value.cols
  precondition(labels.count == rows, "labels \(labels.shape) for logits \(logits.shape)")
  let y = tape.output([rows], logits)
  let lse = tape.tensor([rows])  // log Σ exp per row, kept for the backward
  let lp = logits.value.pointer, yp = y.value.pointer, sp = lse.pointer, tp = labels.pointer
  for r in 0..<rows {
    let row = lp + r * cols
    let label = Int(tp[r])
    precondition(label >= 0 && label < cols, "label \(tp[r]) outside 0..<\(cols)")
    var m = row[0]
    for c in 1..<cols { m = Swift.max(m, row[c]) }
    var s = 0.0
    for c in 0..<cols { s += _exp(Double(row[c] - m)) }
    let logZ = Double(m) + _logD(s)
    sp[r] = Float(logZ)
    yp[r] = Float(Double(row[label]) - logZ)
  }
  guard y.requiresGrad else { return y }
  tape.record(y) {
    let dl = logits.grad.pointer, dy = y.grad.pointer
    for r in 0..<rows {
      let row = lp + r * cols, drow = dl + r * cols, g = dy[r], logZ = Double(sp[r])
      for c in 0..<cols { drow[c] -= g * Float(_exp(Double(row[c]) - logZ)) }
      drow[Int(tp[r])] += g
    }
  }
  return y
}
