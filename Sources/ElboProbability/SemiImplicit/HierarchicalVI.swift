/// Hierarchical VI with auxiliary bounds (seed 003, Way 1; Ranganath, Tran & Blei 2016,
/// "Hierarchical Variational Models", §3; Agakov & Barber 2004). For q(z) = ∫ q(z|ε) q(ε) dε
/// and p(z) = ∫ p(z|ζ) p(ζ) dζ, each intractable term gets a bound through a learned reverse
/// model:
///
///   L_H^aux  = E_{q(ε) q(z|ε)} [log q(z|ε) + log q(ε) − log s_ξ(ε|z)]
///            = E_q log q(z) + E_q KL(q(ε|z) ‖ s_ξ(ε|z))       ≥ E_q log q(z),
///   L_CE^aux = E_{q(z) r_ψ(ζ|z)} [log p(z|ζ) + log p(ζ) − log r_ψ(ζ|z)]
///            = E_q log p(z) − E_q KL(r_ψ(ζ|z) ‖ p(ζ|z))       ≤ E_q log p(z),
///
/// so E log p(x|z) + L_CE^aux − L_H^aux is a lower bound on the ELBO, tight when s_ξ and r_ψ
/// are the true reverse conditionals. q(ε) = p(ζ) = N(0, I) here; s and r are diagonal Gaussians.
public enum HierarchicalVI {
  /// The per-row integrand of L_H^aux: log q(z|ε) + log N(ε; 0, I) − log s(ε|z).
  /// - Parameters: z [R, L] drawn from `conditional` = q(z|ε) [R, L] at mixing noise ε [R, E]
  ///   (a Variable, usually a constant); reverse = s(ε|z) [R, E]. → [R].
  public static func entropyUpperBound(z: Variable, mixing eps: Variable,
                                       conditional: DiagonalNormal,
                                       reverse: DiagonalNormal) -> Variable {
    conditional.logProb(z) + StandardNormal.logProb(eps) - reverse.logProb(eps)
  }

  /// The per-row integrand of L_CE^aux: log p(z|ζ) + log N(ζ; 0, I) − log r(ζ|z), with
  /// ζ = μ_r + σ_r ⊙ ν drawn from `reverse` = r(ζ|z) (reparameterised, so ψ gets a gradient)
  /// and `conditional` mapping ζ [R, E_ζ] to p(z|ζ) [R, L]. → [R].
  public static func priorLowerBound(z: Variable, reverse: DiagonalNormal, noise: Tensor,
                                     conditional: (Variable) -> DiagonalNormal) -> Variable {
    let zeta = reverse.sample(noise: noise)                            // [R, E_ζ]
    return conditional(zeta).logProb(z) + StandardNormal.logProb(zeta) - reverse.logProb(zeta)
  }
}
