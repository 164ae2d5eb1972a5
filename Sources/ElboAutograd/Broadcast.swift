/// NumPy-style broadcasting of two shapes, and the index arithmetic to walk them.
///
/// Shapes are right-aligned; a dimension of 1 (or a missing leading one) repeats. Binary ops use
/// fast paths for the common layouts (equal shapes, a scalar, a row vector over a matrix, a
/// column over a matrix) and fall back to the general strided walk below.
struct Broadcast {
  let outShape: [Int]
  let count: Int
  /// Element strides of each operand inside the output index space (0 where it repeats).
  let aStrides: [Int]
  let bStrides: [Int]

  init?(_ a: [Int], _ b: [Int]) {
    let rank = max(a.count, b.count)
    let pa = Array(repeating: 1, count: rank - a.count) + a
    let pb = Array(repeating: 1, count: rank - b.count) + b
    var out = [Int](repeating: 1, count: rank)
    for d in 0..<rank {
      if pa[d] == pb[d] || pb[d] == 1 { out[d] = pa[d] } else if pa[d] == 1 { out[d] = pb[d] } else {
        return nil
      }
    }
    outShape = out
    count = Tensor.elementCount(out)
    aStrides = Broadcast.strides(pa, out)
    bStrides = Broadcast.strides(pb, out)
  }

  static func strides(_ shape: [Int], _ out: [Int]) -> [Int] {
    var s = [Int](repeating: 0, count: shape.count)
    var acc = 1
    for d in stride(from: shape.count - 1, through: 0, by: -1) {
      s[d] = (shape[d] == 1 && out[d] != 1) ? 0 : acc
      acc *= shape[d]
    }
    return s
  }

  /// How one operand walks the output, when it is one of the common layouts: the full output
  /// (contiguous), a row repeated over the leading dimensions (a [L] bias over [R, L]), or a
  /// column repeated along the last axis (an [R, 1] scale over [R, L]).
  enum Walk { case full, row, column, other }

  static func walk(_ s: [Int], _ out: [Int]) -> Walk {
    if s == strides(out, out) { return .full }
    guard let last = out.last else { return .other }
    // Row: stride 0 on a leading block of dimensions, contiguous (for the trailing block) after.
    if let k = s.firstIndex(where: { $0 != 0 }),
       Array(s[k...]) == strides(Array(out[k...]), Array(out[k...])) {
      return .row
    }
    // Column: stride 0 on the last axis, the leading dimensions contiguous among themselves.
    if s.last == 0 && last > 1 {
      let lead = Array(out.dropLast())
      if Array(s.dropLast()) == strides(lead, lead) { return .column }
    }
    return .other
  }

  /// Elements of one repeat of a row operand with strides `s` (the trailing block's size).
  static func period(_ s: [Int], _ out: [Int]) -> Int {
    s.firstIndex { $0 != 0 }.map { Tensor.elementCount(Array(out[$0...])) } ?? 1
  }

  /// Calls body(outIndex, aIndex, bIndex) for every output element, in order. The layouts above
  /// take a two-level loop (which the compiler vectorises); anything else the odometer walk.
  @inline(__always)
  func forEach(_ body: (Int, Int, Int) -> Void) {
    let rank = outShape.count
    if rank == 0 { body(0, 0, 0); return }
    let w = outShape[rank - 1], rows = w == 0 ? 0 : count / w
    switch (Broadcast.walk(aStrides, outShape), Broadcast.walk(bStrides, outShape)) {
    case (.full, .row):
      let p = Broadcast.period(bStrides, outShape)
      for r in 0..<count / p { for j in 0..<p { body(r * p + j, r * p + j, j) } }
      return
    case (.row, .full):
      let p = Broadcast.period(aStrides, outShape)
      for r in 0..<count / p { for j in 0..<p { body(r * p + j, j, r * p + j) } }
      return
    case (.full, .column):
      for r in 0..<rows { for j in 0..<w { body(r * w + j, r * w + j, r) } }
      return
    case (.column, .full):
      for r in 0..<rows { for j in 0..<w { body(r * w + j, r, r * w + j) } }
      return
    case (.row, .column) where Broadcast.period(aStrides, outShape) == w:   // [L] ∘ [R, 1]
      for r in 0..<rows { for j in 0..<w { body(r * w + j, j, r) } }
      return
    case (.column, .row) where Broadcast.period(bStrides, outShape) == w:   // [R, 1] ∘ [L]
      for r in 0..<rows { for j in 0..<w { body(r * w + j, r, j) } }
      return
    default: break
    }
    var idx = [Int](repeating: 0, count: rank)
    var ia = 0, ib = 0
    for o in 0..<count {
      body(o, ia, ib)
      // Odometer increment, innermost dimension fastest.
      var d = rank - 1
      while d >= 0 {
        idx[d] += 1
        ia += aStrides[d]
        ib += bStrides[d]
        if idx[d] < outShape[d] { break }
        ia -= aStrides[d] * outShape[d]
        ib -= bStrides[d] * outShape[d]
        idx[d] = 0
        d -= 1
      }
    }
  }
}
