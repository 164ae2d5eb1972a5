/// A multilayer perceptron with a factorised Gaussian over all its weights and biases — the
/// network of Bayes by Backprop (Blundell et al., ICML 2015; seed 004 §2).
///
///   prior       p(w) = Π p(w_i)       (Gaussian or scale mixture, `WeightPriorConfig`)
///   posterior   q(w|θ) = Π N(w_i | μ_i, softplus(ρ_i)²),  θ = (μ, ρ)
///   complexity  KL(q ‖ p) — analytic for the Gaussian prior, log q(w) − log p(w) at a weight
///               sample otherwise (`WeightKL`).
///
/// Shapes: sizes = [in, h1, …, out]; R rows. Layer l has W_l [s_l, s_{l+1}], b_l [s_{l+1}].
/// The noise a pass needs is given by the caller (the workload keys it by seed and step, see
/// `NetworkNoise`), so this type holds no random state.
public struct BayesianMLP {
  /// How the gradient of E_q[log p(y|x,w)] is estimated.
  public enum Estimator: String, Codable, Sendable, CaseIterable {
    /// Blundell et al.: one weight sample per minibatch, w = μ + σ ⊙ ε.
    case weight
    /// Kingma et al. 2015: pre-activations sampled per row from their exact Gaussian.
    case local
  }

  public let layers: [BayesianLinear]
  public let activation: Activation
  public let prior: WeightPrior
  public let estimator: Estimator

  public init(_ store: ParameterStore, _ name: String, sizes: [Int], activation: Activation,
              prior: WeightPrior, estimator: Estimator, rhoInit: Float) {
    precondition(sizes.count >= 2, "a network needs at least input and output sizes")
    layers = (0..<(sizes.count - 1)).map { i in
      BayesianLinear(store, "\(name).fc\(i + 1)", sizes[i], sizes[i + 1], rhoInit: rhoInit)
    }
    self.activation = activation
    self.prior = prior
    self.estimator = estimator
  }

  /// Shapes of one full weight sample's noise, in order W₁, b₁, W₂, b₂, …
  public var weightNoiseShapes: [[Int]] {
    layers.flatMap { [[$0.inputs, $0.outputs], [$0.outputs]] }
  }

  /// Scalars in one weight sample.
  public var weightCount: Int { weightNoiseShapes.reduce(0) { $0 + Tensor.elementCount($1) } }

  /// Output units of each layer (the widths of the local estimator's noise [R, width]).
  public var layerWidths: [Int] { layers.map(\.outputs) }

  /// One pass on a minibatch: the output and the complexity terms.
  public struct Pass {
    /// Network output [R, out].
    public let output: Variable
    /// KL(q ‖ p) over all weights (analytic or Monte Carlo), [1].
    public let kl: Variable
    /// log p(w) − log q(w) at the weight sample, [1]; nil if no weight sample was drawn.
    public let surprise: Variable?
  }

  /// Forward pass for training.
  /// - Parameters:
  ///   - x: inputs [R, in] (constant).
  ///   - noise: `weights` (one ε per entry of `weightNoiseShapes`) for the weight estimator;
  ///     for the local estimator `preactivations` ([R, width] per layer) and, optionally,
  ///     `weights` — a weight sample used ONLY for the complexity term (needed for the Monte
  ///     Carlo KL of a non-conjugate prior, and for the logged surprise). That sample is
  ///     independent of the pre-activation noise, so the KL estimate stays unbiased and the sum
  ///     of the two is an unbiased estimate of the ELBO.
  public func forward(_ x: Variable, store: ParameterStore, noise: NetworkNoise) -> Pass {
    let tape = x.tape
    let posteriors = layers.map { $0.posterior(store, on: tape) }
    // A weight sample, when one was given: the weights of the pass (weight estimator) or the
    // complexity term's sample (local estimator).
    var samples: [(w: Variable, b: Variable)]? = nil
    if !noise.weights.isEmpty {
      precondition(noise.weights.count == 2 * layers.count, "one noise tensor per W and b")
      samples = posteriors.enumerated().map { l, q in
        (q.weight.sample(noise: noise.weights[2 * l]), q.bias.sample(noise: noise.weights[2 * l + 1]))
      }
    }

    var h = x
    for (l, layer) in layers.enumerated() {
      switch estimator {
      case .weight:
        guard let samples else { preconditionFailure("the weight estimator needs weight noise") }
        h = layer(h, weight: samples[l].w, bias: samples[l].b)
      case .local:
        precondition(noise.preactivations.count == layers.count, "one noise tensor per layer")
        h = layer(h, posterior: posteriors[l], noise: noise.preactivations[l])
      }
      if l < layers.count - 1 { h = activation(h) }
    }

    var kl: Variable? = nil, surprise: Variable? = nil
    for (l, q) in posteriors.enumerated() {
      for (post, sample) in [(q.weight, samples?[l].w), (q.bias, samples?[l].b)] {
        let t = WeightKL.terms(q: post, prior: prior, sample: sample)
        kl = kl.map { $0 + t.kl } ?? t.kl
        if let s = t.surprise { surprise = surprise.map { $0 + s } ?? s }
      }
    }
    return Pass(output: h, kl: kl!, surprise: surprise)
  }

  /// Output [R, out] for one fixed weight sample (`weightNoise` as in `forward`), for
  /// predictions: no complexity terms. Use a non-recording tape.
  public func callAsFunction(_ x: Variable, store: ParameterStore, weightNoise: [Tensor])
    -> Variable {
    var h = x
    let tape = x.tape
    for (l, layer) in layers.enumerated() {
      let q = layer.posterior(store, on: tape)
      h = layer(h, weight: q.weight.sample(noise: weightNoise[2 * l]),
                bias: q.bias.sample(noise: weightNoise[2 * l + 1]))
      if l < layers.count - 1 { h = activation(h) }
    }
    return h
  }
}

/// The random numbers of one network pass, drawn by the caller (see `BayesianMLP.forward`).
public struct NetworkNoise {
  /// ε for each weight tensor (W₁, b₁, W₂, b₂, …), shapes `BayesianMLP.weightNoiseShapes`.
  public var weights: [Tensor] = []
  /// Local reparameterisation: ε [R, width] for each layer's pre-activations.
  public var preactivations: [Tensor] = []
  /// Dropout: per hidden layer a mask [R, width] of 0 and 1/(1 − p) (inverted dropout).
  public var dropoutMasks: [Tensor] = []

  public init(weights: [Tensor] = [], preactivations: [Tensor] = [], dropoutMasks: [Tensor] = []) {
    self.weights = weights
    self.preactivations = preactivations
    self.dropoutMasks = dropoutMasks
  }
}
