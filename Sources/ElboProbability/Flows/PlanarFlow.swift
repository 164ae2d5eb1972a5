// MARK: - Planar flow (Rezende & Mohamed 2015, §4.1, eq. 10–12; Appendix A.1)
//
//   f(z) = z + û h(wᵀz + b),   h = tanh,
//   ψ(z) = h′(wᵀz + b) w,      log|det ∂f/∂z| = log|1 + ûᵀψ(z)|   (matrix determinant lemma).
//
// Invertibility (Appendix A.1): f is invertible iff wᵀû ≥ −1. Raw parameters u are mapped to
//   û = u + (m(wᵀu) − wᵀu) w/‖w‖²,   m(x) = −1 + softplus(x),
// so that wᵀû = m(wᵀu) > −1 for any u. Then 1 + ûᵀψ = 1 + h′·wᵀû ≥ 1 − h′ ≥ 0 (h′ ∈ (0, 1]),
// the determinant never changes sign. w = 0 is excluded (‖w‖² divides).
//
// Inverse (numerical, not closed form): with a = wᵀz + b, the component of z′ along w obeys
//   wᵀz′ + b = a + wᵀû tanh(a),
// strictly increasing in a because wᵀû > −1 (its slope is 1 + wᵀû h′(a) > 0), so a is the one
// root of a scalar equation (`solveTanhShift`: Newton with a bisection safeguard, in Double), and
// then z = z′ − û tanh(a). The result is a constant: it carries no gradient.
//
// Composed from tape ops (sum over the last axis, tanh, softplus, abs, log); every parameter
// shape works for both variants: global u, w [L], b [1] broadcast over the rows, amortised
// u, w [R, L], b [R, 1] one per row. Shapes below: a = wᵀz + b and s = wᵀû are [R, 1] ([1]).

/// A planar flow: global parameters from a `ParameterStore`, or amortised ones read per row from
/// the context.
public struct PlanarFlow: Flow {
  public enum Parameters {
    /// u, w [L] and b [1] as store indices.
    case global(store: ParameterStore, u: Int, w: Int, b: Int)
    /// u, w, b per row from context columns offset ..< offset + 2L + 1, laid out [u | w | b].
    case amortised(offset: Int)
  }

  public let dimension: Int
  public let parameters: Parameters

  /// Global parameters `name.u`, `name.w` [L] and `name.b` [1], registered in `store`.
  /// u, w ~ U(−bound, bound) (w ≠ 0 almost surely), b = 0.
  public init(_ store: ParameterStore, _ name: String, dimension: Int, initBound: Float = 0.5) {
    self.dimension = dimension
    let u = store.declare("\(name).u", [dimension], .uniform(bound: initBound))
    let w = store.declare("\(name).w", [dimension], .uniform(bound: initBound))
    let b = store.declare("\(name).b", [1], .zeros)
    parameters = .global(store: store, u: u, w: w, b: b)
  }

  /// Amortised: parameters from context columns `offset ..< offset + contextWidth(dimension)`.
  public init(amortisedDimension dimension: Int, contextOffset offset: Int = 0) {
    self.dimension = dimension
    parameters = .amortised(offset: offset)
  }

  /// Store indices of u, w, b (global variant only).
  public var uIndex: Int { globalIndices.u }
  public var wIndex: Int { globalIndices.w }
  public var bIndex: Int { globalIndices.b }
  private var globalIndices: (u: Int, w: Int, b: Int) {
    guard case let .global(_, u, w, b) = parameters else {
      preconditionFailure("PlanarFlow: an amortised flow has no store parameters")
    }
    return (u, w, b)
  }

  /// Context columns one amortised planar step reads: 2L + 1.
  public static func contextWidth(_ dimension: Int) -> Int { 2 * dimension + 1 }

  public func forward(_ z: Variable, context: Variable?) -> (z: Variable, logDet: Variable) {
    precondition(z.value.cols == dimension, "PlanarFlow: z \(z.shape), dimension \(dimension)")
    switch parameters {
    case let .global(store, u, w, b):
      let tape = z.tape
      return Self.transform(z, u: store.variable(u, on: tape), w: store.variable(w, on: tape),
                            b: store.variable(b, on: tape))
    case let .amortised(offset):
      guard let c = context else {
        preconditionFailure("PlanarFlow (amortised) needs a context [R, ≥ "
                              + "\(offset + Self.contextWidth(dimension))]; pass the encoder's output")
      }
      let l = dimension
      precondition(c.value.rows == z.value.rows && c.value.cols >= offset + 2 * l + 1,
                   "PlanarFlow (amortised): context \(c.shape) too narrow for columns "
                     + "\(offset)..<\(offset + 2 * l + 1), or its rows differ from z \(z.shape)")
      return Self.transform(z, u: c.columns(offset..<offset + l),
                            w: c.columns(offset + l..<offset + 2 * l),
                            b: c.columns(offset + 2 * l..<offset + 2 * l + 1))
    }
  }

  /// z = f⁻¹(z′) by the scalar root-find along w (see the file comment); off the tape, so the
  /// result has no gradient. z′ [R, L] → z [R, L].
  public func inverse(_ z: Variable, context: Variable?) -> Variable? {
    let l = dimension, rows = z.value.rows
    precondition(z.value.cols == l, "PlanarFlow.inverse: z \(z.shape), dimension \(l)")
    let local = Tape(recording: false)
    let (u, w, b): (Variable, Variable, Variable)
    switch parameters {
    case let .global(store, ui, wi, bi):
      (u, w, b) = (local.constant(store.value(ui)), local.constant(store.value(wi)),
                   local.constant(store.value(bi)))
    case let .amortised(offset):
      guard let c = context else {
        preconditionFailure("PlanarFlow (amortised).inverse needs the context")
      }
      let cv = local.constant(c.value)
      (u, w, b) = (cv.columns(offset..<offset + l), cv.columns(offset + l..<offset + 2 * l),
                   cv.columns(offset + 2 * l..<offset + 2 * l + 1))
    }
    // The same û the forward uses (same Float ops), then one scalar solve per row in Double.
    let uHat = Self.constrainedU(u: u, w: w).value.array
    let wv = w.value.array, bv = b.value.array
    let perRow = wv.count == rows * l    // amortised: one (u, w, b) per row
    let zp = z.value.array
    var out = [Float](repeating: 0, count: rows * l)
    for r in 0..<rows {
      let pw = perRow ? r * l : 0, pb = perRow ? r : 0
      var wz = Double(bv[pb]), s = 0.0
      for i in 0..<l {
        wz += Double(wv[pw + i]) * Double(zp[r * l + i])
        s += Double(wv[pw + i]) * Double(uHat[pw + i])
      }
      let a = solveTanhShift(target: wz, rho: s, kappa: 1, shift: 0)   // wᵀz′ + b = a + s·tanh a
      let t = _tanh(a)
      for i in 0..<l { out[r * l + i] = Float(Double(zp[r * l + i]) - Double(uHat[pw + i]) * t) }
    }
    return z.tape.constant(Tensor(out, shape: z.shape))
  }

  // MARK: - Forward (shared by both variants)

  /// û = u + (m(wᵀu) − wᵀu) w/‖w‖², m(x) = −1 + softplus(x): guarantees wᵀû = m(wᵀu) > −1.
  /// u, w: [L] or [R, L] → [L] or [R, L].
  public static func constrainedU(u: Variable, w: Variable) -> Variable {
    let wu = (w * u).sum(axis: -1, keepDims: true)       // wᵀu [1] or [R, 1]
    let ww = w.square().sum(axis: -1, keepDims: true)    // ‖w‖²
    let m = wu.softplus() - 1                            // m(wᵀu)
    return u + (m - wu) * w / ww
  }

  /// f(z) = z + û tanh(wᵀz + b) and log|1 + (1 − tanh²(wᵀz + b)) wᵀû| per row.
  /// - Parameters: z [R, L]; u, w [L] or [R, L]; b [1] or [R, 1].
  /// - Returns: z′ [R, L] and logDet [R].
  public static func transform(_ z: Variable, u: Variable, w: Variable, b: Variable)
    -> (z: Variable, logDet: Variable) {
    let uHat = constrainedU(u: u, w: w)                   // [L] or [R, L]
    let a = (z * w).sum(axis: -1, keepDims: true) + b     // wᵀz + b [R, 1]
    let t = a.tanh()                                      // h(a) [R, 1]
    let zNew = z + uHat * t                               // [R, L]
    // ûᵀψ = h′(a)·wᵀû with h′ = 1 − tanh²: a scalar per row, no [R, L] ψ needed.
    let s = (w * uHat).sum(axis: -1, keepDims: true)      // wᵀû [1] or [R, 1]
    let hPrime = t.square().affine(scale: -1, shift: 1)   // [R, 1]
    let det = (hPrime * s) + 1                            // 1 + ûᵀψ [R, 1]
    return (zNew, det.abs().log().reshaped([z.value.rows]))
  }
}
