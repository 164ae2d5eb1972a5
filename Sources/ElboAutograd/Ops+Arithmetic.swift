// Binary arithmetic with broadcasting: +, −, ×, ÷. Each op's backward reduces the output gradient
// back to each operand's shape (summing over repeated dimensions).

/// The four binary ops; the backward for each is written out in `binaryBackward`.
enum BinaryOp { case add, sub, mul, div }

@inline(__always)
private func apply(_ op: BinaryOp, _ x: Float, _ y: Float) -> Float {
  switch op {
  case .add: return x + y
  case .sub: return x - y
  case .mul: return x * y
  case .div: return x / y
  }
}

func binary(_ a: Variable, _ b: Variable, _ op: BinaryOp) -> Variable {
  let tape = a.tape
  guard let plan = Broadcast(a.shape, b.shape) else {
    preconditionFailure("shapes \(a.shape) and \(b.shape) do not broadcast")
  }
  let y = tape.output(plan.outShape, a, b)
  let ap = a.value.pointer, bp = b.value.pointer, yp = y.value.pointer
  let n = plan.count
  // Fast paths: same shape / scalar operand; otherwise the general strided walk.
  if a.count == n && b.count == n {
    switch op {
    case .add: for i in 0..<n { yp[i] = ap[i] + bp[i] }
    case .sub: for i in 0..<n { yp[i] = ap[i] - bp[i] }
    case .mul: for i in 0..<n { yp[i] = ap[i] * bp[i] }
    case .div: for i in 0..<n { yp[i] = ap[i] / bp[i] }
    }
  } else if b.count == 1 && a.count == n {
    let s = bp[0]
    for i in 0..<n { yp[i] = apply(op, ap[i], s) }
  } else if a.count == 1 && b.count == n {
    let s = ap[0]
    for i in 0..<n { yp[i] = apply(op, s, bp[i]) }
  } else {
    plan.forEach { o, ia, ib in yp[o] = apply(op, ap[ia], bp[ib]) }
  }
  guard y.requiresGrad else { return y }
  tape.record(y) { binaryBackward(op, a, b, y, plan) }
  return y
}

/// d(a∘b): add: (dy, dy); sub: (dy, −dy); mul: (dy·b, dy·a); div: (dy/b, −dy·a/b²).
private func binaryBackward(_ op: BinaryOp, _ a: Variable, _ b: Variable, _ y: Variable,
                            _ plan: Broadcast) {
  let dy = y.grad.pointer, ap = a.value.pointer, bp = b.value.pointer
  let n = plan.count
  let same = a.count == n && b.count == n
  if a.requiresGrad {
    let da = a.grad.pointer
    if same {
      switch op {
      case .add: for i in 0..<n { da[i] += dy[i] }
      case .sub: for i in 0..<n { da[i] += dy[i] }
      case .mul: for i in 0..<n { da[i] += dy[i] * bp[i] }
      case .div: for i in 0..<n { da[i] += dy[i] / bp[i] }
      }
    } else {
      plan.forEach { o, ia, ib in
        switch op {
        case .add, .sub: da[ia] += dy[o]
        case .mul: da[ia] += dy[o] * bp[ib]
        case .div: da[ia] += dy[o] / bp[ib]
        }
      }
    }
  }
  if b.requiresGrad {
    let db = b.grad.pointer
    if same {
      switch op {
      case .add: for i in 0..<n { db[i] += dy[i] }
      case .sub: for i in 0..<n { db[i] -= dy[i] }
      case .mul: for i in 0..<n { db[i] += dy[i] * ap[i] }
      case .div: for i in 0..<n { db[i] -= dy[i] * ap[i] / (bp[i] * bp[i]) }
      }
    } else {
      plan.forEach { o, ia, ib in
        switch op {
        case .add: db[ib] += dy[o]
        case .sub: db[ib] -= dy[o]
        case .mul: db[ib] += dy[o] * ap[ia]
        case .div: db[ib] -= dy[o] * ap[ia] / (bp[ib] * bp[ib])
        }
      }
    }
  }
}

public func + (a: Variable, b: Variable) -> Variable { binary(a, b, .add) }
public func - (a: Variable, b: Variable) -> Variable { binary(a, b, .sub) }
public func * (a: Variable, b: Variable) -> Variable { binary(a, b, .mul) }
public func / (a: Variable, b: Variable) -> Variable { binary(a, b, .div) }

// MARK: - Affine maps by a constant (derived: no calculus of their own beyond the chain rule)

extension Variable {
  /// y = α·x + β with constants α, β.
  public func affine(scale alpha: Float, shift beta: Float = 0) -> Variable {
    let y = tape.output(shape, self)
    let xp = value.pointer, yp = y.value.pointer
    for i in 0..<count { yp[i] = alpha * xp[i] + beta }
    guard y.requiresGrad else { return y }
    tape.record(y) {
      let dx = self.grad.pointer, dy = y.grad.pointer
      for i in 0..<self.count { dx[i] += alpha * dy[i] }
    }
    return y
  }
  /// −x
  public static prefix func - (x: Variable) -> Variable { x.affine(scale: -1) }
  /// x²
  public func square() -> Variable { self * self }
}

public func * (a: Float, x: Variable) -> Variable { x.affine(scale: a) }
public func * (x: Variable, a: Float) -> Variable { x.affine(scale: a) }
public func + (x: Variable, a: Float) -> Variable { x.affine(scale: 1, shift: a) }
public func - (x: Variable, a: Float) -> Variable { x.affine(scale: 1, shift: -a) }
