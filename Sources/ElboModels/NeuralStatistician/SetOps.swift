import ElboAutograd

// Ops over a batch of sets: B data sets of up to N points each, padded to N, laid out point-major
// inside each set — row b·N + n of a [B·N, H] matrix is point n of set b. `mask` [B, N] is 1 for
// a real point and 0 for padding; padding never reaches a pooled value or a summed term, and its
// rows get exactly zero gradient. Each op's backward sits under its forward.

/// Masked mean over the points of each set: y_b = Σ_n m_bn h_bn / Σ_n m_bn.
/// - Parameters: h [B·N, H]; mask [B, N] (every set has at least one real point).
/// - Returns: [B, H].
public func setMeanPool(_ h: Variable, mask: Tensor) -> Variable {
  let b = mask.shape[0], n = mask.shape[1], width = h.value.cols
  precondition(h.value.rows == b * n, "setMeanPool: h \(h.shape) vs mask \(mask.shape)")
  let y = h.tape.output([b, width], h)
  let hp = h.value.pointer, yp = y.value.pointer, mp = mask.pointer
  // 1 / (real points of each set), shared by forward and backward.
  var inverse = [Float](repeating: 0, count: b)
  for s in 0..<b {
    var count: Float = 0
    for i in 0..<n { count += mp[s * n + i] }
    precondition(count > 0, "setMeanPool: set \(s) has no real point")
    inverse[s] = 1 / count
    let out = yp + s * width
    out.update(repeating: 0, count: width)
    for i in 0..<n where mp[s * n + i] != 0 {
      let row = hp + (s * n + i) * width, m = mp[s * n + i]
      for j in 0..<width { out[j] += m * row[j] }
    }
    for j in 0..<width { out[j] *= inverse[s] }
  }
  guard y.requiresGrad else { return y }
  h.tape.record(y) {
    // The mask is read through the tensor (not `mp`): the closure must keep its storage alive.
    let dh = h.grad.pointer, dy = y.grad.pointer, mp = mask.pointer
    for s in 0..<b {
      for i in 0..<n where mp[s * n + i] != 0 {
        let w = mp[s * n + i] * inverse[s], row = dh + (s * n + i) * width, g = dy + s * width
        for j in 0..<width { row[j] += w * g[j] }
      }
    }
  }
  return y
}

/// x plus its set's row of c: y_{b·N+n} = x_{b·N+n} + c_b (a per-set context added to every
/// point's features, PyTorch's `expand_as` without the copy).
/// - Parameters: x [B·N, H]; c [B, H]. - Returns: [B·N, H].
public func addPerSet(_ x: Variable, _ c: Variable) -> Variable {
  let b = c.value.rows, width = c.value.cols
  precondition(x.value.cols == width && x.value.rows % b == 0,
               "addPerSet: x \(x.shape) vs c \(c.shape)")
  let n = x.value.rows / b
  let y = x.tape.output(x.shape, x, c)
  let xp = x.value.pointer, cp = c.value.pointer, yp = y.value.pointer
  for s in 0..<b {
    let cs = cp + s * width
    for i in 0..<n {
      let o = (s * n + i) * width
      for j in 0..<width { yp[o + j] = xp[o + j] + cs[j] }
    }
  }
  guard y.requiresGrad else { return y }
  x.tape.record(y) {
    let dy = y.grad.pointer
    if x.requiresGrad {
      let dx = x.grad.pointer
      for i in 0..<x.count { dx[i] += dy[i] }
    }
    if c.requiresGrad {
      let dc = c.grad.pointer
      for s in 0..<b {
        let g = dc + s * width
        for i in 0..<n {
          let row = dy + (s * n + i) * width
          for j in 0..<width { g[j] += row[j] }
        }
      }
    }
  }
  return y
}

/// Each set's row repeated for its N points: [B, H] → [B·N, H] (a per-set prior
/// p(z_L|c) compared with every point's q(z_L|x, c)).
public func repeatPerSet(_ c: Variable, points n: Int) -> Variable {
  let b = c.value.rows, width = c.value.cols
  let y = c.tape.output([b * n, width], c)
  let cp = c.value.pointer, yp = y.value.pointer
  for s in 0..<b {
    for i in 0..<n { (yp + (s * n + i) * width).update(from: cp + s * width, count: width) }
  }
  guard y.requiresGrad else { return y }
  c.tape.record(y) {
    let dc = c.grad.pointer, dy = y.grad.pointer
    for s in 0..<b {
      let g = dc + s * width
      for i in 0..<n {
        let row = dy + (s * n + i) * width
        for j in 0..<width { g[j] += row[j] }
      }
    }
  }
  return y
}

/// Masked sum of a per-point term over each set: y_b = Σ_n m_bn v_{b·N+n}.
/// - Parameters: v [B·N]; mask [B, N]. - Returns: [B].
public func setSum(_ v: Variable, mask: Tensor) -> Variable {
  let b = mask.shape[0], n = mask.shape[1]
  precondition(v.count == b * n, "setSum: v \(v.shape) vs mask \(mask.shape)")
  let y = v.tape.output([b], v)
  let vp = v.value.pointer, yp = y.value.pointer, mp = mask.pointer
  for s in 0..<b {
    // Padding is skipped, not multiplied by 0: a padded row's value may be anything.
    var acc: Float = 0
    for i in 0..<n where mp[s * n + i] != 0 { acc += mp[s * n + i] * vp[s * n + i] }
    yp[s] = acc
  }
  guard y.requiresGrad else { return y }
  v.tape.record(y) {
    let dv = v.grad.pointer, dy = y.grad.pointer, mp = mask.pointer
    for s in 0..<b {
      for i in 0..<n where mp[s * n + i] != 0 { dv[s * n + i] += mp[s * n + i] * dy[s] }
    }
  }
  return y
}
