import ElboDistributed
import ElboModels
import ElboTrain
import Foundation

/// A flow fitted to one of Rezende & Mohamed's 2-D test densities by minimising KL(q_K ‖ p)
/// (``Flow2D``): noise, the warm-up, the KL estimate with the grid normaliser, pictures.
///
/// There is no data set. The sharder's items are noise rows: an "epoch" is `samplesPerEpoch`
/// rows, a step takes a global batch of them, and the ε of row g at step t is
/// RandomStream(seed, latentNoise, time: t, item: g) — keyed by the global row, never by rank,
/// so the loss curve is the same on any number of ranks and a resumed run redraws the same noise.
public final class Flow2DExperiment: Experiment {
  /// flow-2d's options (under "flow-2d" in a config).
  public struct Config: ExperimentConfig {
    public var target: TestEnergy = .u1
    /// The chain: kind and K (`--flow`, `--flow-length`); its parameters are always global.
    public var flow = FlowChainSpec(kind: .planar, length: 8, parameters: .global)
    public var base: Flow2D.Base = .diagonal
    /// The posterior: the flow (default), the mean-field gaussian, or the semi-implicit q fitted
    /// with SIVI's surrogate (semi-implicit) or UIVI's score (uivi).
    public var posterior: Flow2D.Posterior = .flow
    /// K, SIVI's extra mixing draws (semi-implicit: trained; uivi: the logged log q).
    public var mixSamples = 50
    /// UIVI's HMC: burn-in, kept samples, leapfrog steps and step size per training step.
    public var hmcBurnIn = 5
    public var hmcSamples = 5
    public var hmcLeapfrogSteps = 5
    public var hmcStepSize: Float = 0.1
    /// Noise rows per "epoch" (the sharder's items; an evaluation and pictures at each end).
    public var samplesPerEpoch = 50_000
    /// Samples of the held-out KL estimate (fixed noise, the same at every evaluation).
    public var evalSamples = 100_000
    /// Warm-up T: the energy is weighted by β_t = min(1, 0.01 + t/T) (0: β = 1 throughout).
    public var warmupSteps = 0

    public init() {}

    public var network: Flow2D.Config {
      var c = Flow2D.Config()
      c.target = target; c.flow = flow; c.flow.parameters = .global; c.base = base
      c.posterior = posterior; c.mixSamples = mixSamples
      c.hmc.burnIn = hmcBurnIn; c.hmc.samples = hmcSamples
      c.hmc.leapfrogSteps = hmcLeapfrogSteps; c.hmc.initialStepSize = hmcStepSize
      return c
    }

    public func validate() throws {
      if flow.length < 0 { throw ElboError("--flow-length must be ≥ 0 (got \(flow.length))") }
      do { try flow.validate(dimension: 2) } catch { throw ElboError("--flow \(flow.kind.rawValue): \(error)") }
      if samplesPerEpoch <= 0 {
        throw ElboError("--samples-per-epoch must be a positive integer (got \(samplesPerEpoch))")
      }
      if evalSamples <= 0 {
        throw ElboError("--eval-samples must be a positive integer (got \(evalSamples))")
      }
      if warmupSteps < 0 {
        throw ElboError("--warmup-steps must be ≥ 0 (got \(warmupSteps))")
      }
      if mixSamples < 0 { throw ElboError("--mix-samples must be ≥ 0 (got \(mixSamples))") }
      if hmcBurnIn < 0 { throw ElboError("--hmc-burn-in must be ≥ 0 (got \(hmcBurnIn))") }
      if hmcSamples < 1 { throw ElboError("--hmc-samples must be ≥ 1 (got \(hmcSamples))") }
      if hmcLeapfrogSteps < 1 {
        throw ElboError("--hmc-leapfrog-steps must be ≥ 1 (got \(hmcLeapfrogSteps))")
      }
      if !(hmcStepSize > 0 && hmcStepSize.isFinite) {
        throw ElboError("--hmc-step-size must be a positive number (got \(hmcStepSize))")
      }
    }
  }

  public static let name = "flow-2d"
  public static let summary = "A flow fitted to a 2-D test density (Rezende & Mohamed's U1–U4)."
  public static let discussion = """
    q_K = q₀ pushed through K global flows (--flow, --flow-length), q₀ = N(μ, diag σ²) learned
    (--base diagonal, starting at N(0, I)) or N(0, I) (--base standard), fitted to
    p(z) ∝ exp(−U(z)) by minimising KL(q_K ‖ p) = E_q[log q_K(z) + U(z)] + log Z with
    reparameterised samples (Rezende & Mohamed 2015, §6.1, Table 1: --target u1 the ring,
    u2–u4 the sinusoids; gaussian U = ½‖z‖² as a check). U2–U4 get a wall ½((|z₁| − 4)₊/0.2)²
    outside the plotted square so that Z is finite. log Z is integrated on a 2000 × 2000 grid
    over [−6, 6]²; its error is the change from 1000 × 1000. There is no data: each step draws a
    global batch of noise rows. Logged: the KL estimate, E_q[U] and the entropy −E_q[log q];
    per epoch the KL on --eval-samples fixed samples with its standard error. Picture: the
    target density and q_K side by side on [−4, 4]², one colour scale.
    --posterior gaussian fits the mean-field N(μ, diag σ²) instead; semi-implicit and uivi fit
    q(z) = ∫ N(z; MLP(ε), diag σ²) N(ε; 0, I₃) dε (Titsias & Ruiz's toy q), with SIVI's
    surrogate log (1/(K+1)) Σ_k q(z|ε_k) (--mix-samples K; the KL is then an upper bound) or
    with UIVI's score ∇_z log q(z) by HMC over q(ε|z) (--hmc-burn-in, --hmc-samples,
    --hmc-leapfrog-steps, --hmc-step-size; the logged log q is SIVI's surrogate). --target
    two-modes is an equal mixture of N(±(2, 2), I); the evaluation then also reports the share
    of q's samples within distance 2 of each mode (mass_near_lower_mode, mass_near_upper_mode;
    p itself has 0.43 on each, a q sitting on one mode about 0.86 and 0).
    """
  public static var posterior: PosteriorKind { .latent }
  /// 500 steps of 100 samples per epoch, 20 epochs: 10,000 steps at Adam lr 10⁻².
  public static var runDefaults: RunOptions {
    var o = RunOptions()
    o.epochs = 20
    o.learningRate = 1e-2
    o.logEvery = 100
    return o
  }

  public let config: Config
  public let model: Flow2D
  public let seed: UInt64
  /// log Z of the target on the grid, and the grid's error estimate.
  public let logZ: (value: Double, error: Double)

  public var store: ParameterStore { model.store }
  public var itemCount: Int { config.samplesPerEpoch }
  /// Per row: the bound −log q_K(z) − U(z) (its mean is log Z − KL), the KL estimate
  /// log q_K(z) + U(z) + log Z, the energy U(z) and the entropy term −log q_K(z).
  /// uivi adds the HMC's mean acceptance (a row's acceptance, summed like the other terms).
  public var terms: TermNames {
    TermNames(bound: "elbo", components: ["kl_estimate", "energy", "entropy"]
              + (config.posterior == .uivi ? ["hmc_acceptance"] : []))
  }
  public var dataDescription: String { "the test energy \(config.target.rawValue) (no data)" }

  public init(config: Config, seed: UInt64) throws {
    try config.validate()
    self.config = config
    self.seed = seed
    model = Flow2D(config.network, seed: seed)
    logZ = config.target.logNormalizer()
  }

  /// β_t = min(1, 0.01 + t/T) at 0-based step t (Rezende & Mohamed §6.1), or 1 without warm-up.
  public func beta(step: Int) -> Float {
    config.warmupSteps > 0 ? Float(min(1, 0.01 + Double(step) / Double(config.warmupSteps))) : 1
  }

  public func objectiveDescription(globalBatch: Int) -> [String] {
    let k = config.flow.length
    let warm = config.warmupSteps > 0
      ? "U weighted by β_t = min(1, 0.01 + t/\(config.warmupSteps)) (warm-up), then 1"
      : "β = 1"
    let objective: String
    switch config.posterior {
    case .flow:
      objective = "objective: loss = (1/B) Σ_rows [log q_K(z) + β U(z)], B = \(globalBatch) noise "
        + "rows, q_K = \(config.base == .diagonal ? "N(μ, diag σ²) (learned)" : "N(0, I)") "
        + "through K = \(k) \(config.flow.kind.rawValue) flow(s); \(warm)"
    case .gaussian:
      objective = "objective: loss = (1/B) Σ_rows [log q(z) + β U(z)], B = \(globalBatch) noise "
        + "rows, q = N(μ, diag σ²) (mean-field, learned); \(warm)"
    case .semiImplicit:
      objective = "objective: loss = (1/B) Σ_rows [log (1/(K+1)) Σ_k q(z|ε_k) + β U(z)] (SIVI's "
        + "surrogate, K = \(config.mixSamples)), B = \(globalBatch) noise rows, q(z|ε) = "
        + "N(MLP(ε), diag σ²), ε ~ N(0, I_3); \(warm); the KL is an upper bound"
    case .uivi:
      objective = "objective: loss = (1/B) Σ_rows [⟨stop(∇_z log q(z)), z⟩ + β U(z)] (UIVI: the "
        + "score by HMC over q(ε|z), \(config.hmcBurnIn) burn-in + \(config.hmcSamples) samples "
        + "of \(config.hmcLeapfrogSteps) leapfrog steps of \(config.hmcStepSize)), B = "
        + "\(globalBatch) noise rows, q(z|ε) = N(MLP(ε), diag σ²), ε ~ N(0, I_3); \(warm); the "
        + "logged log q and KL use SIVI's surrogate with K = \(config.mixSamples) (an upper bound)"
    }
    return [
      objective,
      String(format: "target %@: log Z = %.6f on a %d² grid over [−6, 6]² (change from %d²: "
               + "%.1e); KL = %@", config.target.rawValue, logZ.value,
             TestEnergy.gridCells, TestEnergy.gridCells / 2, logZ.error,
             config.posterior == .uivi ? "E[log q + U] + log Z (not the loss)"
               : "loss + log Z at β = 1"),
    ]
  }

  public func stepFields(step: Int, globalBatch: Int) -> [String: Double] {
    config.warmupSteps > 0 ? ["beta": Double(beta(step: step))] : [:]
  }

  // MARK: - Noise

  /// Noise [R, noiseWidth] for rows `items`, each row from its own address (seed, purpose,
  /// time, row); returns each row's stream after its noise (UIVI's chains continue it).
  @discardableResult
  func fillNoise(_ noise: Tensor, items: some Collection<Int>, purpose: NoisePurpose,
                 time: UInt64) -> [RandomStream] {
    let w = noise.cols
    var streams: [RandomStream] = []
    streams.reserveCapacity(items.count)
    for (row, g) in items.enumerated() {
      var rng = RandomStream(NoiseAddress(seed: seed, purpose: purpose, time: time,
                                          item: UInt32(truncatingIfNeeded: g)))
      rng.fillNormal(UnsafeMutableBufferPointer(start: noise.pointer + w * row, count: w))
      streams.append(rng)
    }
    return streams
  }

  // MARK: - Training

  public func loss(items: ArraySlice<Int>, step: Int, epoch: Int, globalBatch: Int, tape: Tape)
    -> StepLoss {
    guard !items.isEmpty else { return StepLoss(loss: nil, sums: .zero(terms)) }
    let noise = tape.tensor([items.count, model.noiseWidth])          // [R, noiseWidth]
    var streams = fillNoise(noise, items: items, purpose: .latentNoise, time: UInt64(step))
    let t = model.terms(noise: noise, streams: &streams, beta: beta(step: step),
                        normalizer: Float(globalBatch), on: tape)
    var sums = [0.0, 0.0, 0.0, 0.0]                                  // bound, kl, U, −log q
    if let a = t.acceptanceSum { sums.append(a) }
    for i in 0..<items.count {
      let logQ = Double(t.logQ.value[i]), u = Double(t.energy.value[i])
      sums[0] -= logQ + u
      sums[1] += logQ + u + logZ.value
      sums[2] += u
      sums[3] -= logQ
    }
    return StepLoss(loss: t.loss, sums: TermSums(flat: sums[...]))
  }

  // MARK: - Evaluation

  /// Σ (log q_K + U), Σ (log q_K + U)², Σ U, Σ −log q_K over evaluation samples `rows` (no
  /// communication).
  /// Two more sums: the samples within distance 2 of two-modes' mode −(2, 2) and of (2, 2)
  /// (``TestEnergy/nearMode(_:_:)``).
  func evaluationSums(rows: Range<Int>) -> [Double] {
    var sums = [0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    let tape = Tape(recording: false)
    var start = rows.lowerBound
    while start < rows.upperBound {
      let end = min(start + chunkRows, rows.upperBound)
      tape.reset()
      let noise = tape.tensor([end - start, model.noiseWidth])       // [chunk, noiseWidth]
      fillNoise(noise, items: start..<end, purpose: .evaluation, time: Self.evaluationTime)
      // uivi's q is the semi-implicit q: scored like it, by SIVI's surrogate (no chains).
      let (z, logQs) = model.sample(noise: noise, on: tape)
      let u = z.energy(config.target)
      for i in 0..<(end - start) {
        let logQ = Double(logQs.value[i]), en = Double(u.value[i])
        sums[0] += logQ + en
        sums[1] += (logQ + en) * (logQ + en)
        sums[2] += en
        sums[3] -= logQ
        let near = TestEnergy.nearMode(Double(z.value[2 * i]), Double(z.value[2 * i + 1]))
        if near == -1 { sums[4] += 1 } else if near == 1 { sums[5] += 1 }
      }
      start = end
    }
    return sums
  }

  /// The time of the evaluation noise: fixed, so every evaluation scores the same ε's.
  static let evaluationTime: UInt64 = 0
  /// Rows per chunk of evaluation and pictures (bounds the tape's memory; a semi-implicit q's
  /// K + 1 mixture components make its chunks K + 1 times larger).
  var chunkRows: Int { config.posterior == .flow || config.posterior == .gaussian
    ? 10_000 : max(1, 10_000 / (config.mixSamples + 1)) }

  /// KL(q_K ‖ p) on `evalSamples` fixed samples, split over the ranks (each sample once):
  /// the mean of log q_K(z) + U(z), plus log Z; its standard error; log Z and its grid error.
  public func evaluate(epoch: Int, communicator: Communicator) throws -> [String: Double] {
    let mine = Sharder.share(of: config.evalSamples, rank: communicator.rank,
                             size: communicator.size)
    var sums = evaluationSums(rows: mine)
    try communicator.allreduceSum(&sums, name: "KL evaluation")
    let n = Double(config.evalSamples)
    let mean = sums[0] / n
    let variance = max(0, sums[1] / n - mean * mean) * n / max(n - 1, 1)
    var out = ["kl": mean + logZ.value, "kl_std_error": (variance / n).squareRoot(),
               "test_elbo": -mean, "test_energy": sums[2] / n, "test_entropy": sums[3] / n,
               "log_z": logZ.value, "log_z_grid_error": logZ.error,
               "flow_length": Double(model.chain.steps.count)]
    if config.target == .twoModes {
      out["mass_near_lower_mode"] = sums[4] / n
      out["mass_near_upper_mode"] = sums[5] / n
    }
    return out
  }
}
