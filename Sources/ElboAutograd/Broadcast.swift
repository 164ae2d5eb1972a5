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

  /// Calls body(outIndex, aIndex, bIndex) for every output element, in order.
  @inline(__always)
  func forEach(_ body: (Int, Int, Int) -> Void) {
    let rank = outShape.count
    if rank == 0 { body(0, 0, 0); return }
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
