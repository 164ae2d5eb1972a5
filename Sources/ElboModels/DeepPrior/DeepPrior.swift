import ElboProbability

/// Deep Prior (Lacoste et al. 2018, "Uncertainty in Multitask Transfer Learning"; seed 000):
/// a task latent z that conditions one predictor shared by all tasks.
///
/// Generative story, task j with points (x_ij, y_ij), i = 1…n_j:
///   z_j ~ p(z) = N(0, I_L),   y_ij | x_ij, z_j ~ N(μ(x_ij, z_j), σ²(x_ij, z_j)),
///   [μ, log σ²] = predictor([x, z])   (heteroskedastic: σ from the same network).
/// Approximate posterior from the task's own points S_j (a set encoder):
///   h_j = ρ( (1/n_j) Σ_i φ([x_ij, y_ij]) )   (per-point MLP φ, mean over REAL points, MLP ρ),
///   [μ_q, log σ²_q, context] = h_j,   q₀(z|S_j) = N(μ_q, diag σ²_q),
///   standard: q = q₀;   planar / IAF: z_K = f_K ∘ … ∘ f₁(z₀) with amortised parameters (planar)
///   or the IAF's context h read from `context` (Rezende & Mohamed 2015; Kingma et al. 2016).
/// Objective (maximised), seed 000's "Deep prior, ELBO":
///   ELBO = Σ_j [ E_q Σ_i log p(y_ij | x_ij, z_j) − KL(q(z_j|S_j) ‖ N(0, I)) ],
///   KL analytic for the standard encoder; with flows the Monte Carlo estimate
///   log q_K(z_K) − log p(z_K), log q_K = log q₀(z₀) − Σ_k log|det ∂f_k|.
/// Prediction marginalises z: p(y|x, S) ≈ (1/S) Σ_s N(y | μ(x, z_s), σ²(x, z_s)), z_s ~ q(z|S).
///
/// Shapes: B tasks, N points per task after padding (mask [B, N]: 1 real, 0 padding), L latent,
/// H hidden units, C = flow.contextWidth(L) flow context columns.
///   φ: 2 → H → H      ρ: H → H → 2L + C      predictor: 1 + L → H → H → 2
public final class DeepPrior {
  public struct Config: Codable, Equatable, Sendable {
    public var latent = 8
    public var hidden = 64
    public var activation: Activation = .tanh
    /// The flow after q₀ (length 0: the standard encoder).
    public var flow = FlowChainSpec()
    public init() {}
  }

  public let config: Config
  public let store = ParameterStore()
  /// φ, per point.
  public let pointNet: MLP
  /// ρ, on the pooled features.
  public let poolNet: MLP
  public let predictor: MLP
  public let flow: FlowChain

  public var hasFlow: Bool { config.flow.length > 0 }

  public init(_ config: Config, seed: UInt64) {
    self.config = config
    let h = config.hidden, l = config.latent
    pointNet = MLP(store, "encoder.point", sizes: [2, h, h], activation: config.activation)
    poolNet = MLP(store, "encoder.pool",
                  sizes: [h, h, 2 * l + config.flow.contextWidth(dimension: l)],
                  activation: config.activation)
    predictor = MLP(store, "predictor", sizes: [1 + l, h, h, 2], activation: config.activation)
    flow = config.flow.makeChain(store: store, name: "flow", dimension: l, contextOffset: 2 * l)
    store.allocate(seed: seed)
  }

  // MARK: - Encoder q(z|S)

  /// The pooled encoder output [B, 2L + C] of tasks `points` [B, N, 2] under `mask` [B, N]:
  /// ρ(masked mean of φ over each task's real points). A task with no real point pools to 0.
  public func encode(points: Tensor, mask: Tensor, on tape: Tape) -> Variable {
    let b = points.shape[0], n = points.shape[1], h = config.hidden
    let features = pointNet(tape.constant(points.reshaped([b * n, 2])), store)  // [BN, H]
    // Weights 1/n_j on real points and 0 on padding: the weighted sum is the masked mean.
    let w = tape.tensor([b, n, 1])
    for j in 0..<b {
      var real: Float = 0
      for i in 0..<n { real += mask[j * n + i] }
      for i in 0..<n { w[j * n + i] = real > 0 ? mask[j * n + i] / real : 0 }
    }
    let pooled = (features.reshaped([b, n, h]) * tape.constant(w)).sum(axis: 1)  // [B, H]
    return poolNet(pooled, store)                                                // [B, 2L + C]
  }

  /// q₀(z|S) from the encoder's output [B, 2L + C].
  public func base(_ out: Variable) -> DiagonalNormal {
    let l = config.latent
    return DiagonalNormal(mean: out.columns(0..<l), logVariance: out.columns(l..<(2 * l)))
  }

  /// z ~ q(z|S) for every task and its KL term: z [B, L]; kl [B] (analytic without a flow, else
  /// log q_K(z_K) − log p(z_K)); logDet [B] (Σ_k log|det ∂f_k|, zeros without a flow).
  /// - Parameters: out: the encoder's output [B, 2L + C]; noise ε [B, L].
  public func posteriorSample(_ out: Variable, noise: Tensor)
    -> (z: Variable, kl: Variable, logDet: Variable) {
    let q0 = base(out)
    let z0 = q0.sample(noise: noise)                                 // [B, L]
    guard hasFlow else {
      let zeros = out.tape.tensor([noise.shape[0]], zeroed: true)
      return (z0, q0.klToStandardNormal(), out.tape.constant(zeros))
    }
    let (z, logDet) = flow.forward(z0, context: out)                // [B, L], [B]
    let logQ = q0.logProb(z0) - logDet
    return (z, logQ - StandardNormal.logProb(z), logDet)
  }

  // MARK: - Predictor p(y|x, z)

  /// p(y|x, z) at every point: x [B, N] (constants), z [B, L] → N(μ, σ²) with μ, log σ² [BN, 1]
  /// (row j·N + i is point i of task j).
  public func predictive(x: Tensor, z: Variable) -> DiagonalNormal {
    let b = x.shape[0], n = x.shape[1], l = config.latent
    let tape = z.tape
    // Each task's z beside each of its points: [B, 1, L] + 0 [1, N, 1] → [BN, L].
    let spread = (z.reshaped([b, 1, l]) + tape.constant(tape.tensor([1, n, 1], zeroed: true)))
      .reshaped([b * n, l])
    let out = predictor(concatColumns([tape.constant(x.reshaped([b * n, 1])), spread]), store)
    return DiagonalNormal(mean: out.columns(0..<1), logVariance: out.columns(1..<2))
  }

  // MARK: - The bound

  /// Per-task terms of the ELBO and the loss to minimise.
  public struct Terms {
    /// −(Σ_j ELBO_j) / normalizer.
    public let loss: Variable
    /// ELBO_j = logLikelihood_j − kl_j, [B].
    public let elbo: Tensor
    /// Σ over task j's real points of log p(y|x, z_j), one z_j ~ q per task, [B].
    public let logLikelihood: Tensor
    /// KL(q(z_j|S_j) ‖ N(0, I)), analytic or Monte Carlo (one sample), [B].
    public let kl: Tensor
    /// Σ_k log|det ∂f_k| at z_j (zeros without a flow), [B].
    public let logDet: Tensor
  }

  /// The bound on tasks `points` [B, N, 2] (columns x, y) under `mask` [B, N].
  /// - Parameters:
  ///   - noise: ε [B, L], one draw per task.
  ///   - normalizer: the loss is −Σ_j ELBO_j / normalizer (pass the GLOBAL batch of tasks).
  /// Padding never counts: the encoder pools with the mask and the log-likelihood of a padded
  /// point is multiplied by 0.
  public func terms(points: Tensor, mask: Tensor, noise: Tensor, normalizer: Float,
                    on tape: Tape) -> Terms {
    let b = points.shape[0], n = points.shape[1]
    let out = encode(points: points, mask: mask, on: tape)
    let q = posteriorSample(out, noise: noise)
    let (x, y) = columns(points, tape)
    let p = predictive(x: x, z: q.z)
    let perPoint = p.logProb(tape.constant(y.reshaped([b * n, 1])))        // [BN]
    let logLik = (perPoint * tape.constant(mask.reshaped([b * n]))).reshaped([b, n])
      .sum(axis: 1)                                                          // [B]
    let elbo = logLik - q.kl                                                 // [B]
    return Terms(loss: elbo.sum().affine(scale: -1 / normalizer), elbo: elbo.value,
                 logLikelihood: logLik.value, kl: q.kl.value, logDet: q.logDet.value)
  }

  /// x and y of `points` [B, N, 2] as two [B, N] tensors (arena memory).
  public func columns(_ points: Tensor, _ tape: Tape) -> (x: Tensor, y: Tensor) {
    let b = points.shape[0], n = points.shape[1]
    let x = tape.tensor([b, n]), y = tape.tensor([b, n])
    for r in 0..<(b * n) {
      x[r] = points[2 * r]
      y[r] = points[2 * r + 1]
    }
    return (x, y)
  }
}
