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
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
