@_exported import ElboProbability

/// The Neural Statistician (Edwards & Storkey, ICLR 2017; seed 000): a generative model of data
/// sets, with a context c per data set and latents z_1..z_L per point.
///
/// Generative story, for a data set D = {x_1..x_n}:
///   c ~ p(c) = N(0, I_C);  for each x:  z_L ~ p(z_L|c),  z_l ~ p(z_l|z_{l+1}, c) (l = L−1..1),
///   x ~ p(x|z_{1:L}, c)   (Gaussian with diagonal covariance, or Bernoulli logits for images).
/// Approximate posterior (amortised):
///   q(c|D) = N(μ_c, σ²_c) from the statistic network — pre-pool MLP on every point, masked mean
///   over the set's real points, post-pool MLP;  q(z_L|x, c), q(z_l|z_{l+1}, x, c).
/// Per-data-set ELBO (seed 000, slide "ELBO"):  ELBO_D = R_D − C_D − L_D with
///   R_D = E_q Σ_{x∈D} log p(x|z_{1:L}, c),   C_D = KL(q(c|D) ‖ p(c)),
///   L_D = E_q Σ_{x∈D} [KL(q(z_L|c, x) ‖ p(z_L|c)) + Σ_{l<L} KL(q(z_l|z_{l+1}, c, x) ‖ p(z_l|z_{l+1}, c))],
/// one reparameterised sample of c and of each z_l, every KL analytic between diagonal Gaussians
/// given those samples.
///
/// Networks (each hidden layer H units, `hiddenLayers` of them; inputs combined by summing their
/// projections, as the public implementations do — the same as one layer on the concatenation):
///   shared encoder  x → h          D → H (`encoderLayers` layers)
///   statistic       h → pre-pool (H → H)×layers → pool → (H → H)×layers → 2C (μ_c ‖ log σ²_c)
///   inference l     act(W h + W c [+ W z_{l+1}]) → (H → H)×(layers − 1) → 2Z
///   latent dec. l   act(W c [+ W z_{l+1}]) → (H → H)×(layers − 1) → 2Z   (the top one per set)
///   observation     act(W [z_1‖…‖z_L] + W c) → (H → H)×(layers − 1) → 2D (μ ‖ log σ²) or D logits
/// The public implementations also batch-normalise the Gaussian parameters; this one does not
/// (a batch norm couples the sets of a batch, so a rank's share would no longer be independent).
///
/// Shapes: B sets, N points per set after padding (mask [B, N]), D point dimension, H hidden,
/// C context, Z latent per layer, L layers. Point rows are set-major: row b·N + n.
public final class NeuralStatistician {
  public struct Config: Codable, Equatable, Sendable {
    public var dimension = 1
    public var hidden = 128
    public var hiddenLayers = 3
    public var encoderLayers = 1
    public var context = 3
    public var latent = 32
    public var stochasticLayers = 3
    public var observation: Observation = .gaussian
    public var activation: Activation = .relu
    public init() {}
  }

  /// p(x|z, c): a diagonal Gaussian (points in R^D) or independent Bernoullis (binary images).
  public enum Observation: String, Codable, Sendable, CaseIterable { case gaussian, bernoulli }

  /// A network whose first layer sums projections of several inputs (one Linear each).
  struct Head {
    let inputs: [Linear]
    let tail: [Linear]
    let activation: Activation

    init(_ store: ParameterStore, _ name: String, inputs: [(String, Int)], hidden: Int,
         layers: Int, outputs: Int, activation: Activation) {
      self.inputs = inputs.map { Linear(store, "\(name).in_\($0.0)", $0.1, hidden) }
      var tail: [Linear] = []
      for i in 0..<max(layers - 1, 0) { tail.append(Linear(store, "\(name).fc\(i + 1)", hidden, hidden)) }
      tail.append(Linear(store, "\(name).out", hidden, outputs))
      self.tail = tail
      self.activation = activation
    }

    /// act(Σ_i W_i x_i + b_i) → tail. `perSet` (if any) is a [B, ·] input added to every point's
    /// row of the [B·N, ·] inputs.
    func callAsFunction(_ xs: [Variable], perSet: Variable?, _ store: ParameterStore) -> Variable {
      var e: Variable? = nil
      for (layer, x) in zip(inputs, xs) {
        let p = layer(x, store)
        e = e.map { $0 + p } ?? p
      }
      if let perSet {
        let p = inputs[xs.count](perSet, store)
        e = e.map { addPerSet($0, p) } ?? p
      }
      var h = activation(e!)
      for (i, layer) in tail.enumerated() {
        h = layer(h, store)
        if i < tail.count - 1 { h = activation(h) }
      }
      return h
    }
  }

  public let config: Config
  public let store = ParameterStore()
  let encoder: MLP
  let prePool: [Linear]
  let postPool: MLP
  /// inference[i], latentDecoders[i] are for z_{L−i} (the top layer first).
  let inference: [Head]
  let latentDecoders: [Head]
  let observationDecoder: Head

  public init(_ config: Config, seed: UInt64) {
    self.config = config
    let h = config.hidden, z = config.latent, c = config.context, a = config.activation
    encoder = MLP(store, "encoder", sizes: [config.dimension]
                    + Array(repeating: h, count: max(config.encoderLayers, 1)), activation: a)
    let store = self.store
    prePool = (0..<config.hiddenLayers).map { Linear(store, "statistic.pre\($0 + 1)", h, h) }
    postPool = MLP(store, "statistic.post",
                   sizes: Array(repeating: h, count: config.hiddenLayers + 1) + [2 * c],
                   activation: a)
    var inf: [Head] = [], dec: [Head] = []
    for i in 0..<config.stochasticLayers {
      let l = config.stochasticLayers - i, top = i == 0
      inf.append(Head(store, "inference\(l)", inputs: [("h", h)] + (top ? [] : [("z", z)]) + [("c", c)],
                      hidden: h, layers: config.hiddenLayers, outputs: 2 * z, activation: a))
      dec.append(Head(store, "latent\(l)", inputs: (top ? [] : [("z", z)]) + [("c", c)],
                      hidden: h, layers: config.hiddenLayers, outputs: 2 * z, activation: a))
    }
    inference = inf
    latentDecoders = dec
    let outs = config.observation == .gaussian ? 2 * config.dimension : config.dimension
    observationDecoder = Head(store, "observation",
                              inputs: [("z", z * config.stochasticLayers), ("c", c)],
                              hidden: h, layers: config.hiddenLayers, outputs: outs, activation: a)
    store.allocate(seed: seed)
  }

  // MARK: - Networks

  /// h = encoder(x) for every point: points [B, N, D] → [B·N, H].
  func encode(_ points: Tensor, on tape: Tape) -> Variable {
    let x = tape.constant(points.reshaped([points.count / config.dimension, config.dimension]))
    return config.activation(encoder(x, store))
  }

  /// q(c|D) from the points' encodings h [B·N, H] and the mask [B, N]: [B, C] each.
  func contextPosterior(encoded h: Variable, mask: Tensor) -> DiagonalNormal {
    var e = h
    for layer in prePool { e = config.activation(layer(e, store)) }
    let pooled = setMeanPool(e, mask: mask)                       // [B, H]
    let out = postPool(pooled, store)                              // [B, 2C]
    let c = config.context
    return DiagonalNormal(mean: out.columns(0..<c), logVariance: out.columns(c..<(2 * c)))
  }

  /// q(c|D) for sets [B, N, D] with mask [B, N] (what the evaluations read).
  public func contextPosterior(points: Tensor, mask: Tensor, on tape: Tape) -> DiagonalNormal {
    contextPosterior(encoded: encode(points, on: tape), mask: mask)
  }

  func gaussian(_ out: Variable) -> DiagonalNormal {
    let z = out.value.cols / 2
    return DiagonalNormal(mean: out.columns(0..<z), logVariance: out.columns(z..<(2 * z)))
  }

  // MARK: - The bound

  /// The reparameterisation noise of one batch: ε_c [B, C] and, per layer from the top, ε_z [B·N, Z].
  public struct Noise {
    public let context: Tensor
    public let latents: [Tensor]
    public init(context: Tensor, latents: [Tensor]) { self.context = context; self.latents = latents }
  }

  /// Per-set terms ([B] each, Σ over the set's real points where per point) and the loss.
  public struct Terms {
    /// The scalar differentiated: −Σ_b [(1+α) R_b − (C_b + L_b)/(1+α)] / normalizer.
    public let loss: Variable
    /// ELBO_D = R_D − C_D − L_D.
    public let bound: Tensor
    /// R_D = Σ_x log p(x|z_{1:L}, c).
    public let reconstruction: Tensor
    /// C_D = KL(q(c|D) ‖ N(0, I)).
    public let contextKL: Tensor
    /// L_D = Σ_l Σ_x KL(q(z_l|·) ‖ p(z_l|·)).
    public let latentKL: Tensor
    /// Σ_x KL for each layer, from the top (z_L) down.
    public let latentKLs: [Tensor]
    /// E[c|D] = μ_c [B, C].
    public let contextMean: Tensor
  }

  /// The ELBO of each set and the α-weighted loss (Edwards & Storkey's training device; α = 0
  /// differentiates −ELBO itself).
  /// - Parameters:
  ///   - points: [B, N, D] (padding rows anything finite); mask [B, N].
  ///   - noise: ε ~ N(0, I) (``Noise``).
  ///   - alpha: the weight α ≥ 0; normalizer: the loss's divisor (global sets × points per set).
  public func terms(points: Tensor, mask: Tensor, noise: Noise, alpha: Float = 0,
                    normalizer: Float, on tape: Tape) -> Terms {
    let b = mask.shape[0], n = mask.shape[1], layers = config.stochasticLayers
    precondition(points.shape == [b, n, config.dimension],
                 "points \(points.shape), expected [\(b), \(n), \(config.dimension)]")
    precondition(noise.context.shape == [b, config.context] && noise.latents.count == layers,
                 "noise shapes do not match the batch")
    let h = encode(points, on: tape)                                 // [BN, H]
    let qc = contextPosterior(encoded: h, mask: mask)                // [B, C]
    let c = qc.sample(noise: noise.context)                          // [B, C]
    let contextKL = qc.klToStandardNormal()                          // [B]

    // From the top layer down: q(z_l|z_{l+1}, x, c), p(z_l|z_{l+1}, c), their KL per point.
    var zs: [Variable] = [], kls: [Variable] = []
    var above: Variable? = nil
    for i in 0..<layers {
      let q = gaussian(inference[i]([h] + (above.map { [$0] } ?? []), perSet: c, store))
      let p: DiagonalNormal
      if let above {
        p = gaussian(latentDecoders[i]([above], perSet: c, store))   // [BN, 2Z]
      } else {                                                       // p(z_L|c), per set
        let top = latentDecoders[i]([], perSet: c, store)            // [B, 2Z]
        p = gaussian(repeatPerSet(top, points: n))
      }
      let z = q.sample(noise: noise.latents[i])                      // [BN, Z]
      kls.append(setSum(q.kl(to: p), mask: mask))                    // [B]
      zs.append(z)
      above = z
    }
    let zAll = layers == 1 ? zs[0] : concatColumns(zs)               // [BN, LZ]
    let out = observationDecoder([zAll], perSet: c, store)           // [BN, 2D] or [BN, D]
    let x = points.reshaped([b * n, config.dimension])
    let logPx: Variable
    switch config.observation {
    case .gaussian: logPx = gaussian(out).logProb(tape.constant(x))
    case .bernoulli: logPx = BernoulliLogits(logits: out).logProb(x)
    }
    let reconstruction = setSum(logPx, mask: mask)                   // [B]
    var latentKL = kls[0]
    for k in kls.dropFirst() { latentKL = latentKL + k }
    let kl = contextKL + latentKL
    let bound = reconstruction - kl
    let weighted = alpha == 0
      ? bound : reconstruction.affine(scale: 1 + alpha) - kl.affine(scale: 1 / (1 + alpha))
    let loss = weighted.sum().affine(scale: -1 / normalizer)
    return Terms(loss: loss, bound: bound.value, reconstruction: reconstruction.value,
                 contextKL: contextKL.value, latentKL: latentKL.value,
                 latentKLs: kls.map(\.value), contextMean: qc.mean.value)
  }

  // MARK: - Sampling

  /// Seed 000's Algorithm 2 for one batch of conditioning sets: c ~ q(c|D) (ε_c given), then for
  /// k new points z_L ~ p(z_L|c), …, z_1 ~ p(z_1|z_2, c), x = the mean of p(x|z, c).
  /// - Returns: [B, k, D] means (Gaussian μ or Bernoulli probabilities).
  public func conditionalSamples(points: Tensor, mask: Tensor, contextNoise: Tensor,
                                 latentNoise: [Tensor], on tape: Tape) -> Tensor {
    let b = mask.shape[0], k = latentNoise[0].rows / b
    let c = contextPosterior(points: points, mask: mask, on: tape).sample(noise: contextNoise)
    var zs: [Variable] = [], above: Variable? = nil
    for i in 0..<config.stochasticLayers {
      let p = above.map { gaussian(latentDecoders[i]([$0], perSet: c, store)) }
        ?? gaussian(repeatPerSet(latentDecoders[i]([], perSet: c, store), points: k))
      let z = p.sample(noise: latentNoise[i])
      zs.append(z)
      above = z
    }
    let out = observationDecoder([zs.count == 1 ? zs[0] : concatColumns(zs)], perSet: c, store)
    let d = config.dimension
    let mean = config.observation == .gaussian ? out.columns(0..<d) : out.sigmoid()
    return mean.value.reshaped([b, k, d])
  }
}
