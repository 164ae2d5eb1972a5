import COpenBLAS

/// Matrix products through OpenBLAS's `cblas_sgemm` — the only place Elbo does O(n³) work.
public enum BLAS {
  /// C = alpha · op(A) · op(B) + beta · C, all row-major.
  ///
  /// - Parameters:
  ///   - a: [m × k] (or [k × m] when `transA`), b: [k × n] (or [n × k] when `transB`),
  ///     c: [m × n]. Leading dimensions fold into rows (see `Tensor.rows`).
  @inlinable
  public static func gemm(_ a: Tensor, transA: Bool = false, _ b: Tensor, transB: Bool = false,
                          into c: Tensor, alpha: Float = 1, beta: Float = 0) {
    let m = transA ? a.cols : a.rows
    let k = transA ? a.rows : a.cols
    let kb = transB ? b.cols : b.rows
    let n = transB ? b.rows : b.cols
    precondition(k == kb, "gemm: inner dimensions differ (\(a.shape) · \(b.shape))")
    precondition(c.rows == m && c.cols == n, "gemm: output \(c.shape) is not [\(m), \(n)]")
    gemm(m: m, n: n, k: k, a: a.pointer, lda: a.cols, transA: transA,
         b: b.pointer, ldb: b.cols, transB: transB, c: c.pointer, ldc: n, alpha: alpha, beta: beta)
  }

  /// Raw row-major sgemm over pointers.
  @inlinable
  public static func gemm(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, transA: Bool,
                          b: UnsafePointer<Float>, ldb: Int, transB: Bool,
                          c: UnsafeMutablePointer<Float>, ldc: Int, alpha: Float, beta: Float) {
    if m == 0 || n == 0 { return }
    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans,
                transB ? CblasTrans : CblasNoTrans, Int32(m), Int32(n), Int32(k), alpha,
                a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
  }

  /// y = alpha · op(A) · x + beta · y, A row-major [m × n] (op(A) = Aᵀ when `transA`), unit
  /// strides. One matrix–vector product: much cheaper than an sgemm with one row, which packs A.
  @inlinable
  public static func gemv(m: Int, n: Int, a: UnsafePointer<Float>, lda: Int, transA: Bool,
                          x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>,
                          alpha: Float = 1, beta: Float) {
    if m == 0 || n == 0 { return }
    cblas_sgemv(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, Int32(m), Int32(n), alpha, a,
                Int32(lda), x, 1, beta, y, 1)
  }

  /// A += alpha · x · yᵀ (a rank-one update), A row-major [m × n], x [m], y [n].
  @inlinable
  public static func ger(m: Int, n: Int, x: UnsafePointer<Float>, y: UnsafePointer<Float>,
                         a: UnsafeMutablePointer<Float>, lda: Int, alpha: Float = 1) {
    if m == 0 || n == 0 { return }
    cblas_sger(CblasRowMajor, Int32(m), Int32(n), alpha, x, 1, y, 1, a, Int32(lda))
  }

  /// Number of threads OpenBLAS uses for each call.
  public static var threads: Int {
    get { Int(openblas_get_num_threads()) }
    set { openblas_set_num_threads(Int32(max(1, newValue))) }
  }

  /// OpenBLAS's configuration string (version, core type), for benchmark reports.
  public static var configuration: String {
    guard let c = openblas_get_config() else { return "unknown" }
    return String(cString: c)
  }
  public static var coreName: String {
    guard let c = openblas_get_corename() else { return "unknown" }
    return String(cString: c)
  }
}
