/// Semi-implicit variational inference, Way 2 of seed 003: the K-sample surrogate of log q(z).
///
/// For a semi-implicit q(z) = ∫ q(z|ψ) q(ψ) dψ with q(z|ψ) explicit, Yin & Zhou (ICML 2018,
/// eq. 6–8; seed 003 "Way 2") bound the intractable entropy term from above by a finite mixture
/// that contains the ψ₀ which generated z:
///
///   E_{ψ₀ ~ q(ψ), z ~ q(z|ψ₀), ψ₁..ψ_K ~ q(ψ)} log (1/(K+1)) Σ_{k=0..K} q(z|ψ_k)  ≥  E_q log q(z),
///
/// so E log p(x, z) − (that surrogate) is a lower bound on the ELBO for every K ≥ 0, rising
/// with K (Yin & Zhou, Theorem 1) and tight as K → ∞. K = 0 gives log q(z|ψ₀), i.e. the ELBO
/// of the conditional alone. Everything is reparameterised (z = μ(ψ₀) + σ(ψ₀) ⊙ η, ψ_k from
/// noise), so the gradient flows through z and every component.
public enum SIVI {
  /// log (1/(K+1)) Σ_{k=0..K} q(z|ψ_k), with components[0] = ψ₀ (the one that generated z) and
  /// components[1...K] independent draws.
  /// - Parameters: z [R, L]; each component a DiagonalNormal [R, L] (at least one).
  /// - Returns: [R].
  public static func logMixtureDensity(_ z: Variable, components: [DiagonalNormal]) -> Variable {
    precondition(!components.isEmpty, "SIVI.logMixtureDensity needs at least the component ψ₀")
    let r = z.shape[0]
    // [R, K+1]: one column of log q(z|ψ_k) per component, then a stable log-mean-exp by row.
    let columns = components.map { $0.logProb(z).reshaped([r, 1]) }
    let stacked = columns.count == 1 ? columns[0] : concatColumns(columns)
    return stacked.logsumexp(axis: 1).affine(scale: 1, shift: -logf(Float(components.count)))
  }

  /// The same surrogate with the K+1 components stacked along a leading axis (one tape node per
  /// op instead of K+1): `stacked` has mean and log σ² [K+1, R, L], row 0 of the leading axis
  /// being ψ₀. z [R, L] broadcasts against every component. → [R].
  public static func logMixtureDensity(_ z: Variable, stacked: DiagonalNormal) -> Variable {
    let m = stacked.mean.shape[0]
    precondition(stacked.mean.shape.count == 3 && Array(stacked.mean.shape.dropFirst()) == z.shape,
                 "stacked components \(stacked.mean.shape), expected [K+1, \(z.shape)]")
    let logQ = stacked.logProb(z)                                    // [K+1, R]
    return logQ.logsumexp(axis: 0).affine(scale: 1, shift: -logf(Float(m)))
  }

  /// log (1/K) Σ_k N(z_n; μ_k, diag σ²_k) with K components shared by every row (a mixture
  /// prior: DSIVI's E log p(z) ≥ E log (1/K) Σ_k p(z|ζ_k), Molchanov et al. 2019, eq. 7; exact
  /// for a finite mixture such as VampPrior-style pseudo-inputs).
  /// - Parameters: z [N, L]; shared: mean and log σ² [K, L]. → [N].
  public static func logMixtureDensity(_ z: Variable, shared: DiagonalNormal) -> Variable {
    let n = z.shape[0], l = z.shape[1], k = shared.mean.shape[0]
    precondition(shared.mean.shape == [k, l], "shared components \(shared.mean.shape), expected [K, \(l)]")
    let comps = DiagonalNormal(mean: shared.mean.reshaped([1, k, l]),
                               logVariance: shared.logVariance.reshaped([1, k, l]))
    let logP = comps.logProb(z.reshaped([n, 1, l]))                    // [N, K]
    return logP.logsumexp(axis: 1).affine(scale: 1, shift: -logf(Float(k)))
  }

  // MARK: - Evaluation (no gradient)

  /// log Σ_{m=1..M} N(z_s; μ_m, diag σ²_m) for every z_s, by two matrix products (for large S
  /// and M at evaluation time, where S·M·L elementwise terms would dominate):
  ///   −2 log N(z; μ, σ²) = Σ_l z_l² a_l − 2 Σ_l z_l b_l + Σ_l (μ_l² a_l + log σ²_l + log 2π),
  /// with a = 1/σ², b = μ/σ²; the sum over m is a log-sum-exp in Double.
  /// - Parameters: z [S, L]; mean, logVariance [M, L].
  /// - Returns: [S], in Double.
  public static func logSumDensities(_ z: Tensor, mean: Tensor, logVariance: Tensor) -> [Double] {
    let s = z.rows, m = mean.rows, l = z.cols
    precondition(mean.shape == [m, l] && logVariance.shape == [m, l] && z.shape == [s, l],
                 "z \(z.shape), mean \(mean.shape), logVariance \(logVariance.shape)")
    let a = Tensor(zeros: [m, l]), b = Tensor(zeros: [m, l]), z2 = Tensor(zeros: [s, l])
    var c = [Double](repeating: 0, count: m)  // Σ_l (μ² a + log σ² + log 2π) per component
    for j in 0..<m {
      var acc = 0.0
      for u in 0..<l {
        let lv = logVariance.pointer[j * l + u], mu = mean.pointer[j * l + u]
        let inv = Float(exp(Double(-lv)))
        a.pointer[j * l + u] = inv
        b.pointer[j * l + u] = mu * inv
        acc += Double(mu * mu * inv) + Double(lv) + Double(log2Pi)
      }
      c[j] = acc
    }
    for i in 0..<(s * l) { z2.pointer[i] = z.pointer[i] * z.pointer[i] }
    // q [S, M] = z²·aᵀ − 2 z·bᵀ
    let q = Tensor(zeros: [s, m])
    BLAS.gemm(z2, a, transB: true, into: q)
    BLAS.gemm(z, b, transB: true, into: q, alpha: -2, beta: 1)
    var out = [Double](repeating: 0, count: s)
    for i in 0..<s {
      let row = q.pointer + i * m
      var best = -Double.infinity
      for j in 0..<m { best = Swift.max(best, -0.5 * (Double(row[j]) + c[j])) }
      var sum = 0.0
      for j in 0..<m { sum += exp(-0.5 * (Double(row[j]) + c[j]) - best) }
      out[i] = best + log(sum)
    }
    return out
  }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
