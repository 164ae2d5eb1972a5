/// The minibatch objective of variational learning of weights (Blundell et al. 2015, eq. 8;
/// Graves 2011), on the rows of one rank:
///
///   loss = (c·KL(q ‖ p) − Σ_rows log p(y_n | x_n, w)) / B,
///
/// where B is the GLOBAL batch size and c the multiple of the full KL this rank carries at this
/// step: c = β·λ_t·π_i·(R/B) (see `KLWeighting`; R = this rank's rows). Every rank computes the
/// same KL (the weight noise is keyed by step, not rank), and the shares R/B of the ranks sum to
/// 1, so summing the ranks' gradients gives exactly the gradient of (β·λ_t·π_i·KL − Σ_batch
/// log p)/B: the KL is counted once per global step, whatever the number of ranks.
public enum MinibatchELBO {
  /// - Parameters:
  ///   - logLikelihood: log p(y_n | x_n, w) per row, [R].
  ///   - kl: KL(q ‖ p) [1], or nil for a network without a weight posterior (plain, dropout).
  ///   - klScale: c above.
  ///   - normalizer: B.
  public static func loss(logLikelihood: Variable, kl: Variable?, klScale: Float,
                          normalizer: Float) -> Variable {
    let data = logLikelihood.sum().affine(scale: -1 / normalizer)
    guard let kl, klScale != 0 else { return data }
    return data + kl.affine(scale: klScale / normalizer)
  }
}
