import ElboTrain
import ElboModels

/// The Bayes-by-Backprop part of `TrainingOptions` (models `bbb-regression`, `bbb-classifier`).
public struct BBBOptions: Codable, Equatable, Sendable {
  /// The network: variant (bbb | plain | dropout), sizes, prior, estimator, ρ₀, dropout rate.
  public var network = BBBNetworkConfig()
  /// How the KL is shared over minibatches and scaled (β, warm-up).
  public var kl = KLWeighting()
  /// Weight samples S averaged at prediction (ensembling).
  public var predictSamples = 10
  /// Regression: σ_y fixed (nil: learned) and its starting value when learned.
  public var noiseStd: Float? = nil
  public var noiseStdInit: Float = 0.5
  /// Regression: training and held-out points.
  public var trainPoints = 1000
  public var heldOutPoints = 500
  /// Regression: the network sees inputs and targets standardised with the training set's
  /// mean and standard deviation (`Standardization`); everything reported is in data units.
  public var standardize = true

  public init() {}

  public init(from decoder: Decoder) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    func get<T: Decodable>(_ key: CodingKeys, _ value: inout T) throws {
      if let v = try c.decodeIfPresent(T.self, forKey: key) { value = v }
    }
    try get(.network, &network); try get(.kl, &kl); try get(.predictSamples, &predictSamples)
    noiseStd = try c.decodeIfPresent(Float.self, forKey: .noiseStd)
    try get(.noiseStdInit, &noiseStdInit); try get(.trainPoints, &trainPoints)
    try get(.heldOutPoints, &heldOutPoints)
    // Configs written before standardisation existed trained in raw units: read them that way.
    standardize = try c.decodeIfPresent(Bool.self, forKey: .standardize) ?? false
  }

  /// Checks what a flag parser cannot; each message names the flag.
  public func validate() throws {
    func positive(_ v: Int, _ flag: String) throws {
      if v <= 0 { throw ElboError("\(flag) must be a positive integer (got \(v))") }
    }
    func positive(_ v: Float, _ flag: String) throws {
      if !(v > 0) || !v.isFinite { throw ElboError("\(flag) must be a positive number (got \(v))") }
    }
    try positive(network.hidden, "--hidden")
    try positive(network.hiddenLayers, "--hidden-layers")
    try positive(predictSamples, "--predict-samples")
    try positive(trainPoints, "--points")
    try positive(heldOutPoints, "--heldout-points")
    if !network.rhoInit.isFinite { throw ElboError("--rho-init must be a finite number") }
    if !(network.dropout >= 0 && network.dropout < 1) {
      throw ElboError("--dropout must be in [0, 1) (got \(network.dropout))")
    }
    let p = network.prior
    try positive(p.gaussianStd, "--prior-std")
    if !(p.pi > 0 && p.pi < 1) { throw ElboError("--prior-pi must be in (0, 1) (got \(p.pi))") }
    for (v, flag) in [(p.negLogSigma1, "--prior-neg-log-sigma1"),
                      (p.negLogSigma2, "--prior-neg-log-sigma2")] where !v.isFinite || abs(v) > 30 {
      throw ElboError("\(flag) must be a number in [−30, 30] (got \(v))")
    }
    if !(kl.beta >= 0) || !kl.beta.isFinite {
      throw ElboError("--beta must be a non-negative number (got \(kl.beta))")
    }
    if kl.warmupSteps < 0 { throw ElboError("--kl-warmup must be ≥ 0 (got \(kl.warmupSteps))") }
    if let s = noiseStd { try positive(s, "--noise-std") }
    try positive(noiseStdInit, "--noise-std-init")
  }

  /// The header lines that state the objective with its numbers (`Workload.objectiveDescription`).
  func describe(examples n: Int, globalBatch b: Int, likelihood: String) -> [String] {
    let m = max(n / b, 1)
    let net = network
    var lines: [String] = []
    switch net.variant {
    case .bbb:
      let sigma0 = log1p(exp(Double(net.rhoInit)))
      lines.append("Bayes by Backprop: q(w) factorised Gaussian, σ = softplus(ρ), ρ₀ = "
        + "\(net.rhoInit) (σ₀ = \(String(format: "%.3g", sigma0))); \(net.prior.summary); "
        + "estimator \(net.estimator.rawValue)"
        + (net.estimator == .local
          ? " (pre-activations sampled per example; the KL/surprise uses a separate weight "
            + "sample keyed by the step)" : " (one weight sample per global step)"))
      let shareText: String
      switch kl.share {
      case .uniform:
        shareText = "uniform: π_i = 1/M = \(String(format: "%.4g", 1 / Double(m))), i.e. KL/(M·B) "
          + "= KL/\(m * b) per example"
      case .blundell:
        shareText = "blundell: π_i = 2^(M−i)/(2^M − 1) for minibatch i = 1…M of each epoch "
          + "(π_1 = \(String(format: "%.3g", kl.share(minibatch: 0, of: m))), π_M = "
          + "\(String(format: "%.3g", kl.share(minibatch: m - 1, of: m))))"
      }
      lines.append("loss at minibatch i = (β·λ_t·π_i·KL − Σ_batch \(likelihood)) / B with N = \(n) "
        + "examples, B = \(b) (global batch), M = \(m) minibatches/epoch; KL share "
        + shareText + "; β = \(kl.beta); warm-up λ_t = "
        + (kl.warmupSteps > 0 ? "min(1, (t+1)/\(kl.warmupSteps))" : "1 (none)"))
      lines.append("logged per example: elbo = log_likelihood − kl with kl = π_i·KL/B (β = 1, no "
        + "warm-up: the bound itself), surprise = π_i·(log p(w) − log q(w))/B; kl_weight = β·λ_t·π_i "
        + "and kl_total = KL (nats) of the record's last step. Ranks share the KL in proportion "
        + "to their examples, so it counts once per global step")
    case .plain, .dropout:
      lines.append("\(net.variant.rawValue) network (point estimate"
        + (net.variant == .dropout ? ", dropout \(net.dropout) on hidden units" : "")
        + "): loss = −(1/B) Σ_batch \(likelihood), B = \(b); N = \(n), M = \(m); no KL")
    }
    return lines
  }
}

#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif
