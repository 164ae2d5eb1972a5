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
