/// Independent Bernoullis over the last axis, parameterised by logits l: p(x = 1) = σ(l).
///
/// Logits, not probabilities: log p(x) = x·l − softplus(l) is exact and finite for every l,
/// where log σ(l) computed from a rounded probability underflows to −∞.
public struct BernoulliLogits {
  public let logits: Variable

  public init(logits: Variable) { self.logits = logits }

  /// Σ over the last axis of log Bernoulli(x | σ(l)); x [R, D] (or matching leading dims) → [R].
  public func logProb(_ x: Tensor) -> Variable {
    bernoulliLogLikelihood(logits: logits, targets: x)
  }

  /// The mean σ(l), e.g. for drawing reconstructions.
  public var probabilities: Variable { logits.sigmoid() }
}
