/// The evidence lower bound, written from its parts (seed 004 §3; Kingma & Welling 2014).
///
///   log p(x) ≥ F = E_q[log p(x|z)] + E_q[log p(z) − log q(z|x)]
///                = E_q[log p(x|z)] − KL(q(z|x) ‖ p(z)).
/// With the analytic KL, the estimator has lower variance than with the Monte Carlo "surprise";
/// both are returned by models so the seed's three curves (F, likelihood, surprise) can be drawn.
public enum Bound {
  /// Per-example ELBO with an analytic KL: log p(x|z) − KL. Shapes [R] → [R].
  public static func elbo(logLikelihood: Variable, kl: Variable) -> Variable {
    logLikelihood - kl
  }

  /// Per-example importance-weighted bound (Burda et al. 2016, eq. 8):
  ///   L_k = log (1/k) Σ_s w_s,   log w_s = log p(x, z_s) − log q(z_s|x),  z_s ~ q(z|x).
  /// logWeights: [k, R] → [R]. L_1 is the single-sample (Monte Carlo) ELBO; E[L_k] grows with k
  /// and tends to log p(x).
  public static func iwae(logWeights: Variable) -> Variable {
    let k = Float(logWeights.shape[0])
    return logWeights.logsumexp(axis: 0) - logf(k)
  }
}

#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif
