import ElboTensor
import Foundation

/// Small dense linear algebra in Double for the evidence estimators: latent spaces here have a
/// handful of dimensions, so plain loops over row-major arrays are clearer than BLAS and exact
/// enough (the Laplace bar is 1e-4 nats; Float would spend half of it on rounding).
///
/// Matrices are row-major `[Double]` with an explicit size: a[i * n + j] is row i, column j.
public enum DenseMatrix {
  /// The lower Cholesky factor L of a symmetric positive-definite n×n matrix a = L Lᵀ,
  /// or nil when a is not positive definite (a pivot ≤ 0 or non-finite).
  public static func cholesky(_ a: [Double], _ n: Int) -> [Double]? {
    precondition(a.count == n * n, "cholesky: \(a.count) entries for \(n)×\(n)")
    var l = [Double](repeating: 0, count: n * n)
    for i in 0..<n {
      for j in 0...i {
        var s = a[i * n + j]
        for k in 0..<j { s -= l[i * n + k] * l[j * n + k] }
        if i == j {
          guard s > 0, s.isFinite else { return nil }
          l[i * n + i] = s.squareRoot()
        } else {
          l[i * n + j] = s / l[j * n + j]
        }
      }
    }
    return l
  }

  /// log det a = 2 Σ log L_ii from its Cholesky factor.
  public static func logDeterminant(cholesky l: [Double], _ n: Int) -> Double {
    var s = 0.0
    for i in 0..<n { s += 2 * log(l[i * n + i]) }
    return s
  }

  /// Solves (L Lᵀ) x = b by a forward then a backward substitution.
  public static func solve(cholesky l: [Double], _ n: Int, _ b: [Double]) -> [Double] {
    var y = b
    for i in 0..<n {  // L y = b
      var s = y[i]
      for k in 0..<i { s -= l[i * n + k] * y[k] }
      y[i] = s / l[i * n + i]
    }
    for i in stride(from: n - 1, through: 0, by: -1) {  // Lᵀ x = y
      var s = y[i]
      for k in (i + 1)..<n { s -= l[k * n + i] * y[k] }
      y[i] = s / l[i * n + i]
    }
    return y
  }

  /// The inverse of a from its Cholesky factor (n solves; n is small).
  public static func inverse(cholesky l: [Double], _ n: Int) -> [Double] {
    var inv = [Double](repeating: 0, count: n * n)
    for j in 0..<n {
      var e = [Double](repeating: 0, count: n)
      e[j] = 1
      let col = solve(cholesky: l, n, e)
      for i in 0..<n { inv[i * n + j] = col[i] }
    }
    return inv
  }

  /// y = a x for a rows×cols matrix a.
  public static func multiply(_ a: [Double], rows: Int, cols: Int, _ x: [Double]) -> [Double] {
    var y = [Double](repeating: 0, count: rows)
    for i in 0..<rows {
      var s = 0.0
      for j in 0..<cols { s += a[i * cols + j] * x[j] }
      y[i] = s
    }
    return y
  }

  /// y = aᵀ x for a rows×cols matrix a (y has cols entries).
  public static func multiplyTransposed(_ a: [Double], rows: Int, cols: Int, _ x: [Double])
    -> [Double]
  {
    var y = [Double](repeating: 0, count: cols)
    for i in 0..<rows where x[i] != 0 {
      for j in 0..<cols { y[j] += a[i * cols + j] * x[i] }
    }
    return y
  }

  public static func dot(_ a: [Double], _ b: [Double]) -> Double {
    var s = 0.0
    for i in a.indices { s += a[i] * b[i] }
    return s
  }

  /// log Σ exp(v), shifted by the maximum so that no term overflows.
  public static func logSumExp(_ v: [Double]) -> Double {
    guard let m = v.max(), m.isFinite else { return v.max() ?? -.infinity }
    var s = 0.0
    for x in v { s += exp(x - m) }
    return m + log(s)
  }
}

/// Standard normal draws in Double from Elbo's counter-based generator: the same
/// (seed, purpose, item) address always gives the same numbers, on any rank.
public struct NormalDraws {
  var stream: RandomStream
  var spare: Double? = nil

  public init(seed: UInt64, purpose: NoisePurpose = .evaluation, item: UInt32 = 0,
              time: UInt64 = 0) {
    stream = RandomStream(NoiseAddress(seed: seed, purpose: purpose, time: time, item: item))
  }

  /// A uniform in (0, 1) with 53 random bits (two 32-bit words, as numpy does).
  mutating func uniform() -> Double {
    let a = Double(stream.nextWord() >> 5), b = Double(stream.nextWord() >> 6)
    return (a * 67_108_864 + b + 0.5) / 9_007_199_254_740_992
  }

  /// One N(0, 1) draw (Box–Muller, both values used).
  public mutating func next() -> Double {
    if let s = spare { spare = nil; return s }
    let r = (-2 * log(uniform())).squareRoot(), t = 2 * Double.pi * uniform()
    spare = r * sin(t)
    return r * cos(t)
  }

  /// n independent N(0, 1) draws.
  public mutating func next(_ n: Int) -> [Double] {
    var out = [Double](repeating: 0, count: n)
    for i in 0..<n { out[i] = next() }
    return out
  }
}
