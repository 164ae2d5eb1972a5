import CKernels

// Shape legend
//   R rows, L coordinates; mask b [L] ∈ {0, 1} (1 = conditioning, copied)
//   x, z, z′ [R, L]   h = [ŝ | t̂] [R, 2L] (the coupling network's output)   σ [L]   logDet [R]
//
// The elementwise part of an affine coupling step (Real NVP, Dinh et al. 2017, eq. 9) as two
// fused ops. Composed from broadcasting tape ops it is seven passes over [R, L] (two of them the
// broadcasting walk) plus two column copies of h, forward and again backward; fused, it is one
// pass each way, and the split of h is read in place.

/// b⊙x with a constant mask over the columns: x [R, L], b [L] → [R, L]; dx += dy⊙b.
public func maskColumns(_ x: Variable, _ mask: Tensor) -> Variable {
  let r = x.value.rows, l = x.value.cols
  precondition(mask.count == l, "maskColumns: x \(x.shape), mask \(mask.shape)")
  let y = x.tape.output([r, l], x)
  let xp = x.value.pointer, yp = y.value.pointer, bp = mask.pointer
  for i in 0..<r {
    for j in 0..<l { yp[i * l + j] = xp[i * l + j] * bp[j] }
  }
  guard y.requiresGrad else { return y }
  x.tape.record(y) {
    let dy = y.grad.pointer, dx = x.grad.pointer
    for i in 0..<r {
      for j in 0..<l { dx[i * l + j] += dy[i * l + j] * bp[j] }
    }
  }
  return y
}

/// The affine coupling update and its log-determinant:
///
///   s = (1 − b)⊙σ⊙tanh(ŝ),   t = (1 − b)⊙t̂,   z′ = z⊙exp(s) + t,   logDet_r = Σ_j s_rj.
///
/// Backward (each output's own, so either may be the only one on a path to the loss):
///   from z′:     dz += dz′⊙exp(s);  dt̂ += (1 − b)⊙dz′;  ds = dz′⊙z⊙exp(s)
///   from logDet: ds = (1 − b)·dlogDet_r
///   then         dŝ += ds⊙σ⊙(1 − tanh²ŝ),  dσ += Σ_r ds⊙tanh ŝ   (ds is 0 where b = 1).
/// - Parameters:
///   - z: [R, L]; h: [R, 2L] = [ŝ | t̂]; scale: σ [L]; mask: b [L] (a constant).
/// - Returns: z′ [R, L] and logDet [R].
public func affineCoupling(_ z: Variable, h: Variable, scale: Variable, mask: Tensor)
  -> (z: Variable, logDet: Variable) {
  let tape = z.tape
  let r = z.value.rows, l = z.value.cols
  precondition(h.value.rows == r && h.value.cols == 2 * l && scale.count == l && mask.count == l,
               "affineCoupling: z \(z.shape), h \(h.shape) (expected [R, 2L]), σ \(scale.shape), "
                 + "mask \(mask.shape)")

  // MARK: Forward
  let th = tape.tensor([r, l])                                   // tanh ŝ [R, L]
  let e = tape.tensor([r, l])                                    // exp(s) [R, L]
  let out = tape.output([r, l], z, h, scale)
  let logDet = tape.output([r], h, scale)
  let zp = z.value.pointer, hp = h.value.pointer, sg = scale.value.pointer, bp = mask.pointer
  let tp = th.pointer, ep = e.pointer, yp = out.value.pointer, lp = logDet.value.pointer
  for i in 0..<r { ek_tanh(hp + i * 2 * l, tp + i * l, l) }
  for i in 0..<r {
    for j in 0..<l { ep[i * l + j] = (1 - bp[j]) * sg[j] * tp[i * l + j] }   // s
  }
  // Σ s before s is overwritten by exp(s).
  for i in 0..<r {
    var sum: Float = 0
    for j in 0..<l { sum += ep[i * l + j] }
    lp[i] = sum
  }
  ek_exp(ep, ep, r * l)
  for i in 0..<r {
    for j in 0..<l {
      yp[i * l + j] = zp[i * l + j] * ep[i * l + j] + (1 - bp[j]) * hp[i * 2 * l + l + j]
    }
  }

  // MARK: Backward
  // dŝ and dσ from ds, shared by both outputs' backwards.
  func scaleBackward(_ ds: (Int, Int) -> Float) {
    let dh = h.grad.pointer, dsg = scale.grad.pointer
    for i in 0..<r {
      for j in 0..<l where bp[j] == 0 {
        let d = ds(i, j), t = tp[i * l + j]
        dh[i * 2 * l + j] += d * sg[j] * (1 - t * t)
        dsg[j] += d * t
      }
    }
  }
  if out.requiresGrad {
    tape.record(out) {
      let dy = out.grad.pointer
      if z.requiresGrad {
        let dz = z.grad.pointer
        for k in 0..<(r * l) { dz[k] += dy[k] * ep[k] }
      }
      if h.requiresGrad {
        let dh = h.grad.pointer
        for i in 0..<r {
          for j in 0..<l { dh[i * 2 * l + l + j] += (1 - bp[j]) * dy[i * l + j] }
        }
      }
      if h.requiresGrad || scale.requiresGrad {
        scaleBackward { i, j in dy[i * l + j] * zp[i * l + j] * ep[i * l + j] }
      }
    }
  }
  if logDet.requiresGrad {
    tape.record(logDet) {
      let dld = logDet.grad.pointer
      scaleBackward { i, _ in dld[i] }
    }
  }
  return (out, logDet)
}
