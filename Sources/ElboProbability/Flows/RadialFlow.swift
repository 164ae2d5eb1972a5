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
// Inverse: the radius obeys a quadratic, r′ = r(1 + β/(α + r)); not implemented here (nil).
//
// Composed from tape ops. r is a square root, whose backward is unbounded at r = 0 (z = z₀), a
// measure-zero point. Shapes: d = z − z₀ [R, L]; r, h [R, 1]; α, β [1].

/// A radial flow with global parameters z₀ [L], α̂ [1], β̂ [1] from a `ParameterStore`.
public struct RadialFlow: Flow {
  public let dimension: Int
  public let store: ParameterStore
  public let center: Int, alphaHat: Int, betaHat: Int

  /// Registers `name.center` [L] ~ U(−bound, bound), `name.alphaHat` and `name.betaHat` [1]
  /// ~ U(−bound, bound).
  public init(_ store: ParameterStore, _ name: String, dimension: Int, initBound: Float = 0.5) {
    self.dimension = dimension
    self.store = store
    center = store.declare("\(name).center", [dimension], .uniform(bound: initBound))
    alphaHat = store.declare("\(name).alphaHat", [1], .uniform(bound: initBound))
    betaHat = store.declare("\(name).betaHat", [1], .uniform(bound: initBound))
  }

  public func forward(_ z: Variable, context: Variable?) -> (z: Variable, logDet: Variable) {
    precondition(z.value.cols == dimension, "RadialFlow: z \(z.shape), dimension \(dimension)")
    let tape = z.tape
    return Self.transform(z, center: store.variable(center, on: tape),
                          alphaHat: store.variable(alphaHat, on: tape),
                          betaHat: store.variable(betaHat, on: tape))
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
