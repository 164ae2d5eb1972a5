// MARK: - Sylvester normalizing flows (van den Berg, Hasenclever, Tomczak & Welling, UAI 2018)
//
//   f(z) = z + Q R h(R̃ Qᵀ z + b),   h = tanh,                                  (eq. 13)
//   Q [L, M] with orthonormal columns (QᵀQ = I_M), R, R̃ [M, M] upper-triangular, b [M],
//   log|det ∂f/∂z| = Σ_i log|1 + R̃_ii R_ii h′((R̃ Qᵀ z + b)_i)|          (Sylvester's determinant
//                                                                        identity, eq. 14–16)
// since det(I_L + Q R D R̃ Qᵀ) = det(I_M + D R̃ R) and D R̃ R is upper-triangular (D = diag h′).
//
// Invertibility (§3, Theorem 2): R_ii R̃_ii > −1/‖h′‖∞ = −1 suffices. As in the authors' code, the
// raw diagonals go through tanh, so |R_ii|, |R̃_ii| < 1 and R_ii R̃_ii ∈ (−1, 1): every factor
// 1 + R_ii R̃_ii h′ lies in (0, 2), and log1p needs no abs.
//
// Q (§4):
//   H-SNF  Q = H₁ H₂ ⋯ H_n (first M columns), H_k = I − 2 v_k v_kᵀ/‖v_k‖² (Householder
//          reflections). Never formed: Qᵀz and Qx are n rank-one updates of [R, L] rows.
//   T-SNF  M = L and Q = I or the reversal permutation P (P_ij = 1[i + j = L − 1]), alternating
//          between steps so that the triangular maps do not all favour the same coordinates.
//
// R and R̃ from one matrix F [M, M] (the authors' amor_d): R = triu(F, 1) + diag(tanh d),
// R̃ = triu(Fᵀ, 1) + diag(tanh d̃), i.e. R̃ᵀ's strict part is F's strict lower triangle. F's own
// diagonal is unused. The hot path is three batched products and a few elementwise ops:
//   y = Qᵀz [R, M];  a = (F⊙L)ᵀ-products: R̃y = batchedMatVec(F ⊙ lower, y, ᵀ) + tanh(d̃)⊙y;
//   t = tanh(R̃y + b);  R t = batchedMatVec(F ⊙ upper, t) + tanh(d)⊙t;  z′ = z + Q(R t).
//
// Inverse (numerical): QᵀQ = I gives Qᵀz′ = y + R h(R̃ y + b), an upper-triangular system in
// y = Qᵀz. Back-substitution from i = M − 1 down solves one scalar equation per coordinate,
//   y_i + R_ii tanh(R̃_ii y_i + c_i) = (Qᵀz′)_i − Σ_{j>i} R_ij t_j,   c_i = b_i + Σ_{j>i} R̃_ij y_j,
// strictly increasing in y_i since R_ii R̃_ii > −1 (`solveTanhShift`), and then
// z = z′ − Q R t. In Double, off the tape: the result carries no gradient.
//
// Parameters, global or amortised (the amortised layout per step, M² + 3M + nL columns):
//   [F (M·M, row-major) | d (M) | d̃ (M) | b (M) | v₁ … v_n (n·L, H-SNF only)].

/// A Sylvester flow step (H-SNF or T-SNF), global or amortised.
public struct SylvesterFlow: Flow {
  /// How Q is made.
  public enum Orthogonal: Equatable, Sendable {
    /// H-SNF: Q = H₁⋯H_n, n ≥ 1 reflections, its first M columns.
    case householder(reflections: Int)
    /// T-SNF: Q = I (M = L).
    case identity
    /// T-SNF: Q = the reversal permutation (M = L).
    case reversal

    var reflections: Int {
      if case let .householder(n) = self { return n }
      return 0
    }
  }

  public enum Parameters {
    /// F [M, M], d, d̃, b [M], Householder vectors [n, L] (H-SNF) as store indices.
    case global(store: ParameterStore, full: Int, diagonal: Int, diagonalTilde: Int, bias: Int,
                householder: Int?)
    /// Everything per row from context columns offset ..< offset + contextWidth.
    case amortised(offset: Int)
  }

  /// L.
  public let dimension: Int
  /// M (≤ L; = L for T-SNF).
  public let columns: Int
  public let orthogonal: Orthogonal
  public let parameters: Parameters

  /// Global parameters registered in `store` as `name.full` [M, M], `name.diagonal`,
  /// `name.diagonalTilde`, `name.bias` [M] and (H-SNF) `name.householder` [n, L], all
  /// U(−bound, bound) (a Householder vector is nonzero almost surely).
  public init(_ store: ParameterStore, _ name: String, dimension: Int, columns: Int,
              orthogonal: Orthogonal, initBound: Float = 0.5) {
    Self.validate(dimension: dimension, columns: columns, orthogonal)
    self.dimension = dimension
    self.columns = columns
    self.orthogonal = orthogonal
    let m = columns, n = orthogonal.reflections
    parameters = .global(
      store: store,
      full: store.declare("\(name).full", [m, m], .uniform(bound: initBound)),
      diagonal: store.declare("\(name).diagonal", [m], .uniform(bound: initBound)),
      diagonalTilde: store.declare("\(name).diagonalTilde", [m], .uniform(bound: initBound)),
      bias: store.declare("\(name).bias", [m], .uniform(bound: initBound)),
      householder: n > 0 ? store.declare("\(name).householder", [n, dimension],
                                         .uniform(bound: 1)) : nil)
  }

  /// Amortised: parameters from context columns `offset ..< offset + contextWidth(…)`.
  public init(amortisedDimension dimension: Int, columns: Int, orthogonal: Orthogonal,
              contextOffset offset: Int = 0) {
    Self.validate(dimension: dimension, columns: columns, orthogonal)
    self.dimension = dimension
    self.columns = columns
    self.orthogonal = orthogonal
    parameters = .amortised(offset: offset)
  }

  private static func validate(dimension l: Int, columns m: Int, _ q: Orthogonal) {
    precondition(l >= 1 && m >= 1 && m <= l, "SylvesterFlow: need 1 ≤ M ≤ L, got M = \(m), L = \(l)")
    switch q {
    case let .householder(n):
      precondition(n >= 1, "SylvesterFlow: H-SNF needs ≥ 1 Householder reflection, got \(n)")
    case .identity, .reversal:
      precondition(m == l, "SylvesterFlow: T-SNF needs M = L, got M = \(m), L = \(l)")
    }
  }

  /// Context columns one amortised step reads: M² + 3M + nL (n = reflections, 0 for T-SNF).
  public static func contextWidth(dimension l: Int, columns m: Int, orthogonal: Orthogonal)
    -> Int {
    m * m + 3 * m + orthogonal.reflections * l
  }

  /// The step's parameters as variables: F [M, M] or [R, M, M]; d, d̃, b [M] or [R, M];
  /// Householder vectors, n of [L] or [R, L].
  public func parameterVariables(on tape: Tape, rows: Int, context: Variable?)
    -> (full: Variable, diagonal: Variable, diagonalTilde: Variable, bias: Variable,
        householder: [Variable]) {
    let l = dimension, m = columns, n = orthogonal.reflections
    switch parameters {
    case let .global(store, full, d, dt, b, hh):
      var vectors: [Variable] = []
      if let hh {
        let all = store.variable(hh, on: tape).reshaped([1, n * l])
        vectors = (0..<n).map { all.columns($0 * l..<($0 + 1) * l).reshaped([l]) }
      }
      return (store.variable(full, on: tape), store.variable(d, on: tape),
              store.variable(dt, on: tape), store.variable(b, on: tape), vectors)
    case let .amortised(offset):
      let width = Self.contextWidth(dimension: l, columns: m, orthogonal: orthogonal)
      guard let c = context else {
        preconditionFailure("SylvesterFlow (amortised) needs a context [R, ≥ \(offset + width)]; "
                              + "pass the encoder's output")
      }
      precondition(c.value.rows == rows && c.value.cols >= offset + width,
                   "SylvesterFlow (amortised): context \(c.shape) too narrow for columns "
                     + "\(offset)..<\(offset + width), or its rows differ from z (\(rows))")
      var at = offset
      func take(_ w: Int) -> Variable {
        defer { at += w }
        return c.columns(at..<at + w)
      }
      let full = take(m * m).reshaped([rows, m, m])
      let d = take(m), dt = take(m), b = take(m)
      let vectors = (0..<n).map { _ in take(l) }
      return (full, d, dt, b, vectors)
    }
  }

  public func forward(_ z: Variable, context: Variable?) -> (z: Variable, logDet: Variable) {
    precondition(z.value.cols == dimension, "SylvesterFlow: z \(z.shape), dimension \(dimension)")
    let p = parameterVariables(on: z.tape, rows: z.value.rows, context: context)
    return Self.transform(z, full: p.full, diagonal: p.diagonal, diagonalTilde: p.diagonalTilde,
                          bias: p.bias, orthogonal: orthogonal, householder: p.householder,
                          columns: columns)
  }

  // MARK: - Forward (shared by both variants)

  /// f(z) = z + Q R tanh(R̃ Qᵀ z + b) and Σ_i log(1 + R_ii R̃_ii tanh′) per row.
  /// - Parameters: z [R, L]; full F [M, M] or [R, M, M]; diagonal d, diagonalTilde d̃ (raw, before
  ///   tanh) and bias b [M] or [R, M]; householder: n vectors [L] or [R, L] (H-SNF), else empty.
  /// - Returns: z′ [R, L] and logDet [R].
  public static func transform(_ z: Variable, full: Variable, diagonal: Variable,
                               diagonalTilde: Variable, bias: Variable, orthogonal: Orthogonal,
                               householder: [Variable], columns m: Int)
    -> (z: Variable, logDet: Variable) {
    let tape = z.tape
    let rows = z.value.rows
    let masks = triangularMasks(m)
    // F ⊙ mask as a row of M² over the rows (the broadcast's row-vector fast path).
    let shape = full.value.rank == 3 ? [rows, m, m] : [m, m]
    let flat = full.reshaped(full.value.rank == 3 ? [rows, m * m] : [m * m])
    let upper = (flat * tape.constant(masks.upper)).reshaped(shape)   // strict triu(F): R − diag
    let lower = (flat * tape.constant(masks.lower)).reshaped(shape)   // strict tril(F): (R̃ − diag)ᵀ
    let d = diagonal.tanh(), dt = diagonalTilde.tanh()                  // R_ii, R̃_ii ∈ (−1, 1)

    let y = applyQTranspose(z, orthogonal, householder, columns: m)      // Qᵀz [R, M]
    let a = batchedMatVec(lower, y, transposed: true) + dt * y + bias    // R̃y + b [R, M]
    let t = a.tanh()                                                     // h [R, M]
    let rt = batchedMatVec(upper, t) + d * t                             // R h [R, M]
    let zNew = z + applyQ(rt, orthogonal, householder, dimension: z.value.cols)
    // 1 + R_ii R̃_ii h′ with h′ = 1 − tanh²: each factor in (0, 2).
    let hPrime = t.square().affine(scale: -1, shift: 1)                  // [R, M]
    let logDet = (hPrime * (d * dt)).log1p().sum(axis: -1)              // [R]
    return (zNew, logDet)
  }

  /// Strictly upper and strictly lower 0/1 masks of an M×M matrix, flattened [M²].
  static func triangularMasks(_ m: Int) -> (upper: Tensor, lower: Tensor) {
    let upper = Tensor(zeros: [m * m]), lower = Tensor(zeros: [m * m])
    for i in 0..<m {
      for j in 0..<m where j > i { upper[i * m + j] = 1; lower[j * m + i] = 1 }
    }
    return (upper, lower)
  }

  // MARK: - Q and Qᵀ

  /// H x = x − 2 v (vᵀx)/‖v‖² on rows x [R, L]; v [L] or [R, L].
  static func reflect(_ x: Variable, _ v: Variable) -> Variable {
    let vv = v.square().sum(axis: -1, keepDims: true)    // ‖v‖² [1] or [R, 1]
    if v.value.rank == 1 {  // one v for every row: two thin gemms
      let l = v.value.count
      let coefficient = matmul(x, v.reshaped([l, 1])) / vv             // vᵀx/‖v‖² [R, 1]
      return x - matmul(coefficient, v.reshaped([1, l])).affine(scale: 2)
    }
    let vx = (x * v).sum(axis: -1, keepDims: true)       // vᵀx [R, 1]
    return x - (vx / vv).affine(scale: 2) * v            // column over [R, L]
  }

  /// Qᵀz (its first M coordinates): z [R, L] → [R, M].
  public static func applyQTranspose(_ z: Variable, _ q: Orthogonal, _ householder: [Variable],
                                     columns m: Int) -> Variable {
    switch q {
    case .identity: return z
    case .reversal: return matmul(z, z.tape.constant(reversal(z.value.cols)))  // P = Pᵀ
    case .householder:
      var x = z                                            // Qᵀ = H_n ⋯ H₁: H₁ first
      for v in householder { x = reflect(x, v) }
      return m == z.value.cols ? x : x.columns(0..<m)
    }
  }

  /// Q x for x [R, M] (Q's first M columns, i.e. Q applied to x padded with zeros) → [R, L].
  public static func applyQ(_ x: Variable, _ q: Orthogonal, _ householder: [Variable],
                            dimension l: Int) -> Variable {
    switch q {
    case .identity: return x
    case .reversal: return matmul(x, x.tape.constant(reversal(l)))
    case .householder:
      let m = x.value.cols
      var y = m == l ? x
        : concatColumns([x, x.tape.constant(Tensor(zeros: [x.value.rows, l - m]))])
      for v in householder.reversed() { y = reflect(y, v) }   // Q = H₁ ⋯ H_n: H_n first
      return y
    }
  }

  /// The reversal permutation P [L, L], P_ij = 1[i + j = L − 1].
  static func reversal(_ l: Int) -> Tensor {
    let p = Tensor(zeros: [l, l])
    for i in 0..<l { p[i * l + (l - 1 - i)] = 1 }
    return p
  }

  // MARK: - Inverse (numerical, see the file comment)

  /// z = f⁻¹(z′) by back-substitution in y = Qᵀz, one scalar root-find per coordinate, in
  /// Double and off the tape (no gradient). z′ [R, L] → z [R, L].
  public func inverse(_ z: Variable, context: Variable?) -> Variable? {
    let l = dimension, m = columns, rows = z.value.rows
    precondition(z.value.cols == l, "SylvesterFlow.inverse: z \(z.shape), dimension \(l)")
    let local = Tape(recording: false)
    let p = parameterVariables(on: local, rows: rows,
                               context: context.map { local.constant($0.value) })
    let zc = local.constant(z.value)
    // Qᵀz′ and the diagonals exactly as the forward makes them (same Float ops).
    let yPrime = Self.applyQTranspose(zc, orthogonal, p.householder, columns: m).value.array
    let d = p.diagonal.tanh().value.array, dt = p.diagonalTilde.tanh().value.array
    let f = p.full.value.array, bv = p.bias.value.array
    let perRow = f.count == rows * m * m
    var rt = [Float](repeating: 0, count: rows * m)   // R t per row, for z = z′ − Q R t
    for r in 0..<rows {
      let pf = perRow ? r * m * m : 0, pv = perRow ? r * m : 0
      var y = [Double](repeating: 0, count: m), t = [Double](repeating: 0, count: m)
      for i in stride(from: m - 1, through: 0, by: -1) {
        var c = Double(bv[pv + i]), known = 0.0
        for j in i + 1..<m {
          c += Double(f[pf + j * m + i]) * y[j]         // R̃_ij = F_ji (strict lower of F)
          known += Double(f[pf + i * m + j]) * t[j]     // R_ij = F_ij (strict upper of F)
        }
        let rho = Double(d[pv + i]), kappa = Double(dt[pv + i])
        y[i] = solveTanhShift(target: Double(yPrime[r * m + i]) - known, rho: rho, kappa: kappa,
                              shift: c)
        t[i] = _tanh(kappa * y[i] + c)
        rt[r * m + i] = Float(known + rho * t[i])
      }
    }
    let qrt = Self.applyQ(local.constant(Tensor(rt, shape: [rows, m])), orthogonal,
                          p.householder, dimension: l).value.array
    let zp = z.value.array
    let out = (0..<rows * l).map { zp[$0] - qrt[$0] }
    return z.tape.constant(Tensor(out, shape: z.shape))
  }
}
