/// The three networks Blundell et al. (ICML 2015, Table 1) compare, behind one interface:
/// Bayes by Backprop, a plain MLP (maximum likelihood) and an MLP with dropout
/// (Srivastava et al. 2014).
public enum NetworkVariant: String, Codable, Sendable, CaseIterable {
  case bbb, plain, dropout
}

/// What the network of a BBB experiment is; stored in run configs.
public struct BBBNetworkConfig: Codable, Equatable, Sendable {
  public var variant: NetworkVariant = .bbb
  public var hidden = 400
  public var hiddenLayers = 2
  public var activation: Activation = .relu
  public var prior = WeightPriorConfig()
  public var estimator: BayesianMLP.Estimator = .weight
  /// ρ₀ of every posterior scale, σ₀ = softplus(ρ₀).
  public var rhoInit: Float = -5
  /// Dropout rate of hidden units (variant `dropout`).
  public var dropout: Float = 0.5

  public init() {}

  public init(from decoder: Decoder) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    func get<T: Decodable>(_ key: CodingKeys, _ value: inout T) throws {
      if let v = try c.decodeIfPresent(T.self, forKey: key) { value = v }
    }
    try get(.variant, &variant); try get(.hidden, &hidden); try get(.hiddenLayers, &hiddenLayers)
    try get(.activation, &activation); try get(.prior, &prior); try get(.estimator, &estimator)
    try get(.rhoInit, &rhoInit); try get(.dropout, &dropout)
  }
}

/// A network of one of the variants, its parameters declared in a store.
public enum BBBNetwork {
  case bayesian(BayesianMLP)
  /// A point-estimate MLP; `dropout` 0 for the plain network.
  case point(MLP, dropout: Float)

  public init(_ store: ParameterStore, _ name: String, sizes: [Int], config c: BBBNetworkConfig) {
    switch c.variant {
    case .bbb:
      self = .bayesian(BayesianMLP(store, name, sizes: sizes, activation: c.activation,
                                   prior: c.prior.make(), estimator: c.estimator,
                                   rhoInit: c.rhoInit))
    case .plain: self = .point(MLP(store, name, sizes: sizes, activation: c.activation), dropout: 0)
    case .dropout:
      self = .point(MLP(store, name, sizes: sizes, activation: c.activation), dropout: c.dropout)
    }
  }

  public var bayesian: BayesianMLP? {
    if case .bayesian(let b) = self { return b }
    return nil
  }

  /// Dropout rate (0 unless the dropout variant).
  public var dropoutRate: Float {
    if case .point(_, let p) = self { return p }
    return 0
  }

  /// Widths of the hidden layers (dropout masks are [R, width] for each).
  public var hiddenWidths: [Int] {
    switch self {
    case .bayesian(let b): return Array(b.layerWidths.dropLast())
    case .point(let m, _): return m.layers.dropLast().map(\.outputs)
    }
  }

  /// Training pass: output [R, out] and, for the Bayesian network, its complexity terms.
  public func forward(_ x: Variable, store: ParameterStore, noise: NetworkNoise)
    -> (output: Variable, kl: Variable?, surprise: Variable?) {
    switch self {
    case .bayesian(let b):
      let p = b.forward(x, store: store, noise: noise)
      return (p.output, p.kl, p.surprise)
    case .point(let mlp, let rate):
      precondition(rate == 0 || noise.dropoutMasks.count == mlp.layers.count - 1,
                   "one dropout mask per hidden layer")
      var h = x
      for (l, layer) in mlp.layers.enumerated() {
        h = layer(h, store)
        if l < mlp.layers.count - 1 {
          h = mlp.activation(h)
          // Inverted dropout: the mask holds 0 or 1/(1 − p), so no rescaling at test time.
          if rate > 0 { h = h * x.tape.constant(noise.dropoutMasks[l]) }
        }
      }
      return (h, nil, nil)
    }
  }

  /// Prediction pass [R, out]: one weight sample (`weightNoise`) for the Bayesian network, the
  /// deterministic network (no dropout) otherwise.
  public func predict(_ x: Variable, store: ParameterStore, weightNoise: [Tensor]) -> Variable {
    switch self {
    case .bayesian(let b): return b(x, store: store, weightNoise: weightNoise)
    case .point(let mlp, _): return mlp(x, store)
    }
  }
}

/// The terms of one minibatch, common to the BBB regression and classifier.
public struct BBBTerms {
  /// The scalar to differentiate (see `MinibatchELBO`).
  public let loss: Variable
  /// log p(y_n | x_n, w) per row, [R].
  public let logLikelihood: Tensor
  /// KL(q ‖ p) over all weights, in nats (analytic or one-sample Monte Carlo); nil without a
  /// weight posterior.
  public let kl: Double?
  /// log p(w) − log q(w) at the weight sample; nil without one.
  public let surprise: Double?
}
