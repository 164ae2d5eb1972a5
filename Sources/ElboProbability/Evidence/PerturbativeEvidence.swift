import Foundation

/// The perturbative expansion of the log evidence around a Gaussian q (seed 001, "Approximate
/// Inference: Perturbative expansion"). The seed starts from
///
///   e^{−M(x)} = E_{z~q}[e^{−𝓕(x, z)}] = Σ_{k≥0} (−1)^k / k! · E_q[𝓕^k],   𝓕 = log q(z) − log p(x, z),
///
/// and truncates the series. Expanded as written, the terms are powers of a free energy of tens of
/// nats and the truncation is useless; expanded around 𝓕's mean (the seed's last slide: "compatible
/// with the variational bound") order 1 is exactly the ELBO and each further order corrects it.
/// With Y = log w = −𝓕 and Ȳ = E_q Y = ELBO, two truncations of order n are offered:
///
///   moments   (the seed's series, centred):  log p(x) ≈ Ȳ + log Σ_{k=0..n} E_q[(Y − Ȳ)^k] / k!
///   cumulants (log of the same series):       log p(x) ≈ Σ_{k=1..n} κ_k(Y) / k!
///
/// Order 1 is the ELBO for both; order 2 adds log(1 + ½ Var Y) or ½ Var Y; both converge to
/// log p(x) as n grows when the series does. The moments are Monte Carlo estimates from S draws of
/// q (any joint); for a joint that is quadratic in z the cumulants are also given in closed form
/// (``exactCumulantOrders(_:around:maxOrder:)``), which separates truncation error from sampling
/// error. A truncated moment series can be ≤ 0 (an odd order on a skewed Y); that order is NaN.
public enum PerturbativeEvidence {
  public enum Series: String, Sendable, CaseIterable { case moments, cumulants }

  /// The estimates of orders 1…maxOrder from log weights y_s = log p(x, z_s) − log q(z_s), z_s ~ q.
  public static func orders(logWeights y: [Double], maxOrder: Int, series: Series) -> [Double] {
    precondition(maxOrder >= 1 && !y.isEmpty, "orders: need maxOrder ≥ 1 and some weights")
    let n = Double(y.count)
    let mean = y.reduce(0, +) / n
    // c[k] = E[(Y − Ȳ)^k], the sample central moments (c[0] = 1, c[1] = 0 by construction).
    var c = [Double](repeating: 0, count: maxOrder + 1)
    c[0] = 1
    for v in y {
      let u = v - mean
      var p = u
      for k in 1...maxOrder { c[k] += p; p *= u }
    }
    for k in 1...maxOrder { c[k] /= n }
    c[1] = 0
    var out: [Double] = []
    switch series {
    case .moments:
      var sum = 1.0, factorial = 1.0
      for k in 1...maxOrder {
        factorial *= Double(k)
        sum += c[k] / factorial
        out.append(sum > 0 ? mean + log(sum) : .nan)
      }
    case .cumulants:
      // κ_n = c_n − Σ_{k=1..n−1} C(n−1, k−1) κ_k c_{n−k} (moments → cumulants of Y − Ȳ; κ_1 = 0).
      var kappa = [Double](repeating: 0, count: maxOrder + 1)
      var sum = mean, factorial = 1.0
      for order in 1...maxOrder {
        var k = c[order]
        for j in 1..<order {
          k -= binomial(order - 1, j - 1) * kappa[j] * c[order - j]
        }
        kappa[order] = order == 1 ? 0 : k
        factorial *= Double(order)
        sum += kappa[order] / factorial
        out.append(sum)
      }
    }
    return out
  }

  /// The cumulant series of orders 1…maxOrder in closed form, for q = N(μ, diag σ²) and a
  /// quadratic joint. With z = μ + σ ⊙ ε, Y = log p(x, z) − log q(z) = c + bᵀε + ½ εᵀAε where
  ///   A = I − SΛS,  b = −SΛ(μ − m),  S = diag σ,
  /// and log E e^{tY} = tc − ½ log det(I − tA) + ½ t² bᵀ(I − tA)⁻¹ b, whose t^n coefficient is
  ///   order 1: E Y = ELBO;   order n ≥ 2: tr(Aⁿ)/(2n) + ½ bᵀA^{n−2}b.
  /// At t = 1 the sum is log p(x) exactly; it converges when the spectral radius of A is below 1.
  public static func exactCumulantOrders(_ target: some QuadraticLatentJoint,
                                         around q: DiagonalGaussian, maxOrder: Int) -> [Double] {
    let d = target.latentDimension, lam = target.precision, m = target.mode
    let s = q.standardDeviation
    var a = [Double](repeating: 0, count: d * d)
    for i in 0..<d { for j in 0..<d {
      a[i * d + j] = (i == j ? 1 : 0) - s[i] * lam[i * d + j] * s[j]
    } }
    let r = (0..<d).map { q.mean[$0] - m[$0] }
    let lr = DenseMatrix.multiply(lam, rows: d, cols: d, r)
    let b = (0..<d).map { -s[$0] * lr[$0] }
    var out = [target.elbo(q)]
    var power = identity(d)   // A^{n−2}, then A^n for the trace
    var bPower = b            // A^{n−2} b
    for n in stride(from: 2, through: maxOrder, by: 1) {
      let an = multiply(multiply(power, a, d), a, d)  // A^n
      var trace = 0.0
      for i in 0..<d { trace += an[i * d + i] }
      out.append(out[out.count - 1] + trace / (2 * Double(n)) + 0.5 * DenseMatrix.dot(b, bPower))
      power = multiply(power, a, d)
      bPower = DenseMatrix.multiply(a, rows: d, cols: d, bPower)
    }
    return Array(out.prefix(maxOrder))
  }

  // MARK: - Helpers

  static func binomial(_ n: Int, _ k: Int) -> Double {
    var r = 1.0
    if k < 0 || k > n { return 0 }
    for i in 0..<k { r = r * Double(n - i) / Double(i + 1) }
    return r
  }

  static func identity(_ d: Int) -> [Double] {
    var m = [Double](repeating: 0, count: d * d)
    for i in 0..<d { m[i * d + i] = 1 }
    return m
  }

  static func multiply(_ x: [Double], _ y: [Double], _ d: Int) -> [Double] {
    var out = [Double](repeating: 0, count: d * d)
    for i in 0..<d { for k in 0..<d where x[i * d + k] != 0 {
      for j in 0..<d { out[i * d + j] += x[i * d + k] * y[k * d + j] }
    } }
    return out
  }
}
