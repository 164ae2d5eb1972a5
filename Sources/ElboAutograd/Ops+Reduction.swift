import CKernels

// Reductions. A tensor of shape [d0, …, dk] reduced over axis a is seen as [outer, n, inner]
// (outer = d0⋯d(a−1), n = da, inner = d(a+1)⋯dk); the reduced dimension is dropped
// (keepDims: false) or kept as 1.

private func split(_ shape: [Int], _ axis: Int) -> (outer: Int, n: Int, inner: Int) {
  precondition(axis >= 0 && axis < shape.count, "axis \(axis) out of range for \(shape)")
  let outer = shape[..<axis].reduce(1, *)
  let inner = shape[(axis + 1)...].reduce(1, *)
  return (outer, shape[axis], inner)
}

private func reducedShape(_ shape: [Int], _ axis: Int, _ keepDims: Bool) -> [Int] {
  var s = shape
  if keepDims { s[axis] = 1 } else { s.remove(at: axis) }
  return s
}

extension Variable {
  /// Σ of all elements → shape [1].
  public func sum() -> Variable {
    let y = tape.output([1], self)
    y.value[0] = ek_sum(value.pointer, count)
    guard y.requiresGrad else { return y }
    tape.record(y) {
      let g = y.grad[0], dx = self.grad.pointer
      for i in 0..<self.count { dx[i] += g }
    }
    return y
  }

  /// Mean of all elements → shape [1].
  public func mean() -> Variable { sum().affine(scale: 1 / Float(count)) }

  /// Σ over `axis` (negative counts from the end).
  public func sum(axis: Int, keepDims: Bool = false) -> Variable {
    let ax = axis < 0 ? shape.count + axis : axis
    let (outer, n, inner) = split(shape, ax)
    let y = tape.output(reducedShape(shape, ax, keepDims), self)
    let xp = value.pointer, yp = y.value.pointer
    if inner == 1 {  // last axis: one contiguous row per output (log-densities over latents)
      for o in 0..<outer { yp[o] = ek_sum(xp + o * n, n) }
      guard y.requiresGrad else { return y }
      tape.record(y) {
        let dx = self.grad.pointer, dy = y.grad.pointer
        for o in 0..<outer {
          let g = dy[o], row = dx + o * n
          for j in 0..<n { row[j] += g }
        }
      }
      return y
    }
    for o in 0..<outer {
      let out = yp + o * inner
      out.update(repeating: 0, count: inner)
      for j in 0..<n {
        let row = xp + (o * n + j) * inner
        for i in 0..<inner { out[i] += row[i] }
      }
    }
    guard y.requiresGrad else { return y }
    tape.record(y) {
      let dx = self.grad.pointer, dy = y.grad.pointer
      for o in 0..<outer {
        for j in 0..<n {
          let row = dx + (o * n + j) * inner
          for i in 0..<inner { row[i] += dy[o * inner + i] }
        }
      }
    }
    return y
  }

  /// Mean over `axis`.
  public func mean(axis: Int, keepDims: Bool = false) -> Variable {
    let ax = axis < 0 ? shape.count + axis : axis
    return sum(axis: ax, keepDims: keepDims).affine(scale: 1 / Float(shape[ax]))
  }

  /// log Σ exp over `axis`, stable: m + log Σ exp(x − m) with m the maximum.
  ///
  /// Backward: ∂/∂xⱼ = softmax(x)ⱼ = exp(xⱼ − y).
  public func logsumexp(axis: Int, keepDims: Bool = false) -> Variable {
    let ax = axis < 0 ? shape.count + axis : axis
    let (outer, n, inner) = split(shape, ax)
    let y = tape.output(reducedShape(shape, ax, keepDims), self)
    let xp = value.pointer, yp = y.value.pointer
    for o in 0..<outer {
      for i in 0..<inner {
        var m = -Float.infinity
        for j in 0..<n { m = Swift.max(m, xp[(o * n + j) * inner + i]) }
        if !m.isFinite {  // all −∞ (log 0), or a +∞/NaN that should propagate
          yp[o * inner + i] = m.isNaN ? .nan : m
          continue
        }
        var s: Double = 0
        for j in 0..<n { s += _exp(Double(xp[(o * n + j) * inner + i] - m)) }
        yp[o * inner + i] = m + Float(_logD(s))
      }
    }
    guard y.requiresGrad else { return y }
    tape.record(y) {
      let dx = self.grad.pointer, dy = y.grad.pointer
      for o in 0..<outer {
        for i in 0..<inner {
          let yo = yp[o * inner + i], g = dy[o * inner + i]
          for j in 0..<n {
            let k = (o * n + j) * inner + i
            dx[k] += g * Float(_exp(Double(xp[k] - yo)))
          }
        }
      }
    }
    return y
  }
}

#if canImport(Glibc)
import Glibc
@inline(__always) func _exp(_ x: Double) -> Double { Glibc.exp(x) }
@inline(__always) func _logD(_ x: Double) -> Double { Glibc.log(x) }
#else
import Darwin
@inline(__always) func _exp(_ x: Double) -> Double { Darwin.exp(x) }
@inline(__always) func _logD(_ x: Double) -> Double { Darwin.log(x) }
#endif
