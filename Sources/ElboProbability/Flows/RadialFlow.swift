// MARK: - Radial flow (Rezende & Mohamed 2015, §4.1, eq. 14; Appendix A.2)
//
//   f(z) = z + β h(α, r)(z − z₀),   r = ‖z − z₀‖,   h(α, r) = 1/(α + r),
//   log|det ∂f/∂z| = (L − 1) log(1 + βh) + log(1 + βh + βh′r),   h′ = ∂h/∂r = −h².
//
// Invertibility (Appendix A.2): α > 0 and β ≥ −α. Raw α̂, β̂ are mapped to
//   α = softplus(α̂),   β = −α + softplus(β̂),
// so both hold for any raw values. Then 1 + βh = (α + β + r)/(α + r) > 0 for r > 0, and
// 1 + βh + βh′r = 1 + βαh² ≥ 1 − α²h² > 0: both logs are of positive numbers.
//
// Inverse (closed form): z′ − z₀ = (1 + βh(r))(z − z₀), so z′ − z₀ is parallel to z − z₀ and the
// radii obey r′ = r(1 + β/(α + r)), i.e. the quadratic
//   r² + (α + β − r′) r − α r′ = 0,
// whose roots multiply to −αr′ ≤ 0: exactly one is ≥ 0, r = (−p + √(p² + 4αr′))/2 with
// p = α + β − r′ (computed as 2αr′/(p + √(p² + 4αr′)) when p > 0, which does not cancel). Then
// z = z₀ + (z′ − z₀)/(1 + β/(α + r)). In Double, off the tape (the result carries no gradient).
//
// Composed from tape ops. r is a square root, whose backward is unbounded at r = 0 (z = z₀), a
// measure-zero point. Shapes: d = z − z₀ [R, L]; r, h [R, 1]; α, β [1].

/// A radial flow: global parameters z₀ [L], α̂ [1], β̂ [1] from a `ParameterStore`, or amortised
/// ones read per row from the context (laid out [z₀ | α̂ | β̂], L + 2 columns).
public struct RadialFlow: Flow {
  public enum Parameters {
    /// z₀ [L], α̂ [1], β̂ [1] as store indices.
    case global(store: ParameterStore, center: Int, alphaHat: Int, betaHat: Int)
    /// z₀, α̂, β̂ per row from context columns offset ..< offset + L + 2.
    case amortised(offset: Int)
  }

  public let dimension: Int
  public let parameters: Parameters

  /// Registers `name.center` [L] ~ U(−bound, bound), `name.alphaHat` and `name.betaHat` [1]
  /// ~ U(−bound, bound).
  public init(_ store: ParameterStore, _ name: String, dimension: Int, initBound: Float = 0.5) {
    self.dimension = dimension
    parameters = .global(
      store: store,
      center: store.declare("\(name).center", [dimension], .uniform(bound: initBound)),
      alphaHat: store.declare("\(name).alphaHat", [1], .uniform(bound: initBound)),
      betaHat: store.declare("\(name).betaHat", [1], .uniform(bound: initBound)))
  }

  /// Amortised: parameters from context columns `offset ..< offset + contextWidth(dimension)`.
  public init(amortisedDimension dimension: Int, contextOffset offset: Int = 0) {
    self.dimension = dimension
    parameters = .amortised(offset: offset)
  }

  /// Context columns one amortised radial step reads: L + 2.
  public static func contextWidth(_ dimension: Int) -> Int { dimension + 2 }

  /// Store indices (global variant only).
  public var center: Int { globalIndices.center }
  public var alphaHat: Int { globalIndices.alphaHat }
  public var betaHat: Int { globalIndices.betaHat }
  private var globalIndices: (center: Int, alphaHat: Int, betaHat: Int) {
    guard case let .global(_, c, a, b) = parameters else {
      preconditionFailure("RadialFlow: an amortised flow has no store parameters")
    }
    return (c, a, b)
  }

  public func forward(_ z: Variable, context: Variable?) -> (z: Variable, logDet: Variable) {
    precondition(z.value.cols == dimension, "RadialFlow: z \(z.shape), dimension \(dimension)")
    switch parameters {
    case let .global(store, center, alphaHat, betaHat):
      let tape = z.tape
      return Self.transform(z, center: store.variable(center, on: tape),
                            alphaHat: store.variable(alphaHat, on: tape),
                            betaHat: store.variable(betaHat, on: tape))
    case let .amortised(offset):
      let l = dimension
      guard let c = context else {
        preconditionFailure("RadialFlow (amortised) needs a context [R, ≥ \(offset + l + 2)]; "
                              + "pass the encoder's output")
      }
      precondition(c.value.rows == z.value.rows && c.value.cols >= offset + l + 2,
                   "RadialFlow (amortised): context \(c.shape) too narrow for columns "
                     + "\(offset)..<\(offset + l + 2), or its rows differ from z \(z.shape)")
      return Self.transform(z, center: c.columns(offset..<offset + l),
                            alphaHat: c.columns(offset + l..<offset + l + 1),
                            betaHat: c.columns(offset + l + 1..<offset + l + 2))
    }
  }

  /// z = f⁻¹(z′) in closed form (the quadratic in the file comment), off the tape: the result
  /// has no gradient. z′ [R, L] → z [R, L].
  public func inverse(_ z: Variable, context: Variable?) -> Variable? {
    let l = dimension, rows = z.value.rows
    precondition(z.value.cols == l, "RadialFlow.inverse: z \(z.shape), dimension \(l)")
    let local = Tape(recording: false)
    let (center, alphaHat, betaHat): (Variable, Variable, Variable)
    switch parameters {
    case let .global(store, c, a, b):
      (center, alphaHat, betaHat) = (local.constant(store.value(c)),
                                     local.constant(store.value(a)),
                                     local.constant(store.value(b)))
    case let .amortised(offset):
      guard let c = context else {
        preconditionFailure("RadialFlow (amortised).inverse needs the context")
      }
      let cv = local.constant(c.value)
      (center, alphaHat, betaHat) = (cv.columns(offset..<offset + l),
                                     cv.columns(offset + l..<offset + l + 1),
                                     cv.columns(offset + l + 1..<offset + l + 2))
    }
    // α and β exactly as the forward makes them (same Float ops).
    let alphaV = alphaHat.softplus()
    let av = alphaV.value.array, bv = (betaHat.softplus() - alphaV).value.array
    let cv = center.value.array
    let perRow = cv.count == rows * l
    let zp = z.value.array
    var out = [Float](repeating: 0, count: rows * l)
    for row in 0..<rows {
      let pc = perRow ? row * l : 0, pa = perRow ? row : 0
      let alpha = Double(av[pa]), beta = Double(bv[pa])
      var rr = 0.0                                         // r′² = ‖z′ − z₀‖²
      for i in 0..<l {
        let d = Double(zp[row * l + i]) - Double(cv[pc + i])
        rr += d * d
      }
      let rPrime = _sqrt(rr)
      let p = alpha + beta - rPrime
      let root = _sqrt(p * p + 4 * alpha * rPrime)
      let r = p > 0 ? 2 * alpha * rPrime / (p + root) : 0.5 * (root - p)
      let scale = 1 / (1 + beta / (alpha + r))              // (z − z₀) = (z′ − z₀)·scale
      for i in 0..<l {
        let c = Double(cv[pc + i])
        out[row * l + i] = Float(c + (Double(zp[row * l + i]) - c) * scale)
      }
    }
    return z.tape.constant(Tensor(out, shape: z.shape))
  }

  // MARK: - Forward

  /// f(z) = z + βh(z − z₀) and its log|det| per row.
  /// - Parameters: z [R, L]; center z₀ [L] (or [R, L]); alphaHat, betaHat [1] (or [R, 1]).
  /// - Returns: z′ [R, L] and logDet [R].
  public static func transform(_ z: Variable, center: Variable, alphaHat: Variable,
                               betaHat: Variable) -> (z: Variable, logDet: Variable) {
    let l = Float(z.value.cols)
    let alpha = alphaHat.softplus()                             // α > 0
    let beta = betaHat.softplus() - alpha                       // β ≥ −α
    let d = z - center                                          // z − z₀ [R, L]
    let r = d.square().sum(axis: -1, keepDims: true).sqrt()     // [R, 1]
    let one = z.tape.constant(Tensor([1], shape: [1]))
    let h = one / (alpha + r)                                   // [R, 1]
    let betaH = beta * h                                        // βh [R, 1]
    let zNew = z + betaH * d                                    // [R, L]
    // βh + βh′r = βh(1 − hr) = βh·αh: written with h′ = −h² as in eq. 14.
    let second = betaH - betaH * h * r                          // βh + βh′r
    let logDet = (l - 1) * betaH.log1p() + second.log1p()      // [R, 1]
    return (zNew, logDet.reshaped([z.value.rows]))
  }
}
