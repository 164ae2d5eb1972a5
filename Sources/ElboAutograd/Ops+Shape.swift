// Shape ops: reshape (no copy of the value), column slices and concatenation along the last axis.

extension Variable {
  /// The same values with another shape of equal size. The value is a view; the gradient is
  /// added back to the input's gradient element by element.
  public func reshaped(_ newShape: [Int]) -> Variable {
    let needs = tape.isRecording && requiresGrad
    let y = Variable(value: value.reshaped(newShape), tape: tape, requiresGrad: needs)
    guard needs else { return y }
    tape.record(y) {
      let dx = self.grad.pointer, dy = y.grad.pointer
      for i in 0..<self.count { dx[i] += dy[i] }
    }
    return y
  }

  /// Columns `range` of the last axis: [R, C] → [R, range.count].
  public func columns(_ range: Range<Int>) -> Variable {
    let r = value.rows, c = value.cols, w = range.count
    precondition(range.lowerBound >= 0 && range.upperBound <= c, "columns \(range) of \(shape)")
    var outShape = shape
    outShape[outShape.count - 1] = w
    let y = tape.output(outShape, self)
    let xp = value.pointer, yp = y.value.pointer
    for i in 0..<r { (yp + i * w).update(from: xp + i * c + range.lowerBound, count: w) }
    guard y.requiresGrad else { return y }
    tape.record(y) {
      let dx = self.grad.pointer, dy = y.grad.pointer
      for i in 0..<r {
        let src = dy + i * w, dst = dx + i * c + range.lowerBound
        for j in 0..<w { dst[j] += src[j] }
      }
    }
    return y
  }
}

/// Concatenation along the last axis of matrices with equal row counts.
public func concatColumns(_ parts: [Variable]) -> Variable {
  precondition(!parts.isEmpty, "concatColumns of nothing")
  let tape = parts[0].tape
  let r = parts[0].value.rows
  let c = parts.reduce(0) { $0 + $1.value.cols }
  let needs = tape.isRecording && parts.contains { $0.requiresGrad }
  let y = Variable(value: tape.tensor([r, c]), tape: tape, requiresGrad: needs)
  var start = 0
  for p in parts {
    precondition(p.value.rows == r, "concatColumns: row counts differ")
    let w = p.value.cols, src = p.value.pointer, dst = y.value.pointer
    for i in 0..<r { (dst + i * c + start).update(from: src + i * w, count: w) }
    start += w
  }
  guard needs else { return y }
  tape.record(y) {
    var start = 0
    for p in parts {
      let w = p.value.cols
      if p.requiresGrad {
        let dx = p.grad.pointer, dy = y.grad.pointer
        for i in 0..<r { for j in 0..<w { dx[i * w + j] += dy[i * c + start + j] } }
      }
      start += w
    }
  }
  return y
}
