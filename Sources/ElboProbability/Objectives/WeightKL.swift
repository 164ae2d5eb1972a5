/// The complexity cost of Bayes by Backprop for one parameter tensor (Blundell et al. 2015,
/// eq. 2): KL(q(w|θ) ‖ p(w)), and the seed's "surprise" log p(w) − log q(w) at a sample.
///
/// Pyro's TraceMeanField_ELBO policy: the KL is analytic when the prior has a closed form
/// (Gaussian prior), otherwise the single-sample Monte Carlo estimate log q(w) − log p(w) at
/// w ~ q (scale-mixture prior), whose gradient is Blundell's eq. (3)–(4). Both are unbiased
/// for the same KL; the analytic one has no variance.
public enum WeightKL {
  /// - Parameters:
  ///   - q: the factorised Gaussian posterior of the tensor.
  ///   - prior: p(w).
  ///   - sample: w ~ q drawn as `q.sample(noise:)` (gradients flow through it), or nil when the
  ///     prior is analytic and no surprise is wanted.
  /// - Returns: `kl` [1] to put in the loss, and `surprise` [1] = log p(w) − log q(w) at the
  ///   sample (a value for logging: E[surprise] = −KL), nil without a sample.
  public static func terms(q: FactorizedNormal, prior: WeightPrior, sample: Variable?)
    -> (kl: Variable, surprise: Variable?) {
    let surprise = sample.map { prior.logProb($0) - q.logProb($0) }
    if let analytic = prior.klFrom(q) { return (analytic, surprise) }
    guard let surprise else {
      preconditionFailure("a prior without a closed-form KL needs a weight sample")
    }
    return (-surprise, surprise)
  }
}
