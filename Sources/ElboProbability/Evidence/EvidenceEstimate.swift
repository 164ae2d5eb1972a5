/// The estimators of log p(x) that `elbo evidence` offers (seed 001's list).
public enum EvidenceEstimator: String, CaseIterable, Sendable {
  case importance, laplace, perturbative
  case meanField = "mean-field"
  case amortized

  /// What the estimator's budget counts (the x axis of its plot).
  public var budgetName: String {
    switch self {
    case .importance: return "samples K"
    case .laplace: return "Newton steps"
    case .perturbative: return "expansion order"
    case .meanField: return "fixed-point sweeps"
    case .amortized: return "training steps"
    }
  }
}

/// One estimate of the mean log evidence over a set of observations, at one budget.
public struct EvidenceEstimate: Sendable {
  public var estimator: EvidenceEstimator
  /// Which flavour ("prior" or "mean-field q" proposal, "moments" or "cumulants" series, …).
  public var variant: String
  public var budget: Int
  /// (1/N) Σ_n estimate(x_n), nats.
  public var estimate: Double
  /// (1/N) Σ_n log p(x_n) when it is known (nil for a VAE).
  public var exact: Double?

  public init(_ estimator: EvidenceEstimator, _ variant: String, budget: Int, estimate: Double,
              exact: Double?) {
    self.estimator = estimator
    self.variant = variant
    self.budget = budget
    self.estimate = estimate
    self.exact = exact
  }

  public var error: Double? { exact.map { estimate - $0 } }
}
