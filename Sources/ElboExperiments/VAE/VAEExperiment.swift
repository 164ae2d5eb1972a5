import ElboData
import ElboDistributed
import ElboModels
import ElboReport
import ElboTrain
import Foundation

/// The VAE on binarised images (Kingma & Welling 2014; the importance-weighted bound of Burda
/// et al. 2016): batches, binarisation, latent noise, evaluation and pictures.
///
/// Noise is keyed by what it is for (see `NoiseAddress`): the ε of example g at step t is
/// RandomStream(seed, latentNoise, time: t, item: g), so a run's numbers do not depend on how
/// many ranks share the batch, and a resumed run redraws exactly the same noise.
public final class VAEExperiment: BinaryImageExperiment {
  /// The VAE's options: its data and the network (`VAE.Config`), flat under "vae" in a config.
  public struct Config: ExperimentConfig {
    /// fashion-mnist, mnist-5k, or a directory of IDX files.
    public var data = "fashion-mnist"
    public var binarize: Binarization = .static
    public var inputs = 784
    public var hidden = 200
    public var hiddenLayers = 2
    public var latent = 50
    public var activation: Activation = .relu
    public var objective: VAE.Objective = .elbo
    /// Samples per example in the training objective (k of IWAE; averaged for the ELBO).
    public var samples = 1
    /// The flow posterior q_K (length 0: the diagonal Gaussian alone). Configs written before
    /// flows existed have no "flow" key and keep this default.
    public var flow = FlowChainSpec()
    /// T of the free-energy warm-up β_t = min(1, 0.01 + t/T) (0: none, β = 1).
    public var klWarmup = 0
    /// q(z|x): gaussian, or semi-implicit (VAEExperiment+SemiImplicit.swift).
    public var posterior: VAE.PosteriorFamily = .gaussian
    /// K, extra mixture components of SIVI's surrogate of log q(z|x) in training.
    public var mixSamples = 50
    /// E, the dimension of the mixing noise ε the encoder reads.
    public var mixingNoise = 10
    /// M, the mixture over ε that estimates log q(z|x) in `elbo eval`'s log-likelihood.
    public var evalMixSamples = 1000
    /// UIVI's HMC on q(ε|z, x): burn-in and kept iterations, leapfrog steps, target acceptance.
    public var hmcBurnIn = 5
    public var hmcSamples = 5
    public var hmcLeapfrogSteps = 5
    public var hmcTargetAcceptance: Float = 0.9
    /// p(z): standard, dsivi-agg (pseudo-inputs through the encoder) or semi-implicit.
    public var prior: VAE.PriorFamily = .standard
    /// K of the mixture prior; ζ's dimension and T_θ's width (semi-implicit prior).
    public var priorSamples = 100
    public var priorNoise = 10
    public var priorHidden = 100

    public init() {}

    /// The network's part.
    public var network: VAE.Config {
      var c = VAE.Config()
      c.inputs = inputs; c.hidden = hidden; c.hiddenLayers = hiddenLayers; c.latent = latent
      c.activation = activation; c.objective = objective; c.samples = samples; c.flow = flow
      c.posterior = posterior; c.mixSamples = mixSamples; c.mixingNoise = mixingNoise
      c.prior = prior; c.priorSamples = priorSamples; c.priorNoise = priorNoise
      c.priorHidden = priorHidden
      return c
    }

    /// β_t at optimizer step `step` (1 without a warm-up).
    public func klWeight(step: Int) -> Float {
      klWarmup > 0 ? Float(KLWeighting.freeEnergyWarmup(step: step, steps: klWarmup)) : 1
    }

    public func validate() throws {
      func positive(_ v: Int, _ flag: String) throws {
        if v <= 0 { throw ElboError("\(flag) must be a positive integer (got \(v))") }
      }
      try positive(latent, "--latent")
      try positive(hidden, "--hidden")
      try positive(hiddenLayers, "--hidden-layers")
      try positive(samples, "--k")
      try positive(inputs, "inputs")
      if klWarmup < 0 { throw ElboError("--kl-warmup must be ≥ 0 (got \(klWarmup))") }
      do { try flow.validate(dimension: latent) } catch let e as FlowSpecError {
        throw ElboError("--flow: \(e.description)")
      }
      try validateSemiImplicit()
    }
  }

  public static let name = "vae"
  public static let summary = "Variational autoencoder (ELBO or IWAE bound) on binarised images."
  public static let discussion = """
    Encoder 784-H-…-H → (μ, log σ²) of a diagonal Gaussian q(z|x); decoder the reverse with
    Bernoulli logits; prior N(0, I) (Kingma & Welling 2014; IWAE: Burda et al. 2016). Logged
    per window: F = −ELBO, log p(x|z), the analytic KL, the Monte Carlo surprise
    log p(z) − log q(z|x); per epoch: test ELBO, active units, the compression rate
    KL/(784 ln 2) in bits per pixel. Pictures: reconstructions and
    prior samples. `elbo eval` adds the importance-sampled test log-likelihood (--k).
    With --flow KIND --flow-length K (K > 0) the posterior is q₀ pushed through K flows
    (Rezende & Mohamed 2015): the bound, the KL (then a Monte Carlo estimate), the extra logged
    term log_det = Σ log|det ∂f_k| and `elbo eval` all use log q_K exactly. --kl-warmup T
    anneals the KL: β_t = min(1, 0.01 + t/T), logged as kl_weight.
    --posterior semi-implicit feeds mixing noise ε (--mixing-noise E) to the encoder and trains
    SIVI's bound with --mix-samples K; uivi trains the same q with UIVI's HMC score;
    hierarchical with a reverse model s(ε|z, x). --prior dsivi-agg|semi-implicit replaces
    N(0, I) by a mixture prior bounded with --prior-samples K draws. These log log_prior and
    log_q_surrogate; `elbo eval` estimates log q by a mixture over --eval-mix-samples draws.
    """

  /// Configs written before models had their own sections kept `data` and `binarize` at the
  /// top level and the network under "vae".
  public static func upgradeLegacyConfig(_ object: [String: Any]) -> [String: Any] {
    guard object["binarize"] != nil || object["bbb"] != nil else { return object }
    var out = object
    var section = object["vae"] as? [String: Any] ?? [:]
    for key in ["data", "binarize"] { if let v = out.removeValue(forKey: key) { section[key] = v } }
    out["vae"] = section
    return out
  }

  public let config: Config
  public let model: VAE
  public let seed: UInt64
  public let images: BinaryImages

  public var store: ParameterStore { model.store }
  /// With a flow, Σ log|det| is logged as `log_det`.
  public let terms: TermNames
  public var dataDescription: String { config.data }

  public func objectiveDescription(globalBatch: Int) -> [String] {
    let c = model.config
    if model.usesMixturePath { return semiImplicitObjectiveDescription(globalBatch: globalBatch) }
    guard model.hasFlow || config.klWarmup > 0 else {
      return ["objective \(c.objective.rawValue) (k = \(c.samples)): loss = −(1/B) Σ bound over "
        + "the global batch, B = \(globalBatch); KL weight 1 (analytic KL); "
        + "\(config.binarize.rawValue) binarisation"]
    }
    let f = c.flow
    let posterior = model.hasFlow
      ? "posterior q_K: N(μ(x), σ²(x)) through \(f.length) \(f.parameters.rawValue) "
        + "\(f.kind.rawValue) flow(s), log q_K = log q₀(z₀) − Σ log|det|; KL Monte Carlo "
        + "(−(log p(z_K) − log q_K(z_K|x)))"
      : "posterior N(μ(x), σ²(x)); KL analytic"
    let weight = config.klWarmup > 0
      ? "KL weight β_t = min(1, 0.01 + t/\(config.klWarmup)) (free-energy warm-up, Rezende & "
        + "Mohamed 2015; the logged bound is at β = 1; kl_weight per record)"
      : "KL weight 1"
    return ["objective \(c.objective.rawValue) (k = \(c.samples)): loss = −(1/B) Σ bound over the "
      + "global batch, B = \(globalBatch); \(weight); \(config.binarize.rawValue) binarisation",
      posterior]
  }

  public func stepFields(step: Int, globalBatch: Int) -> [String: Double] {
    var fields = config.klWarmup > 0 ? ["kl_weight": Double(config.klWeight(step: step))] : [:]
    if config.posterior == .uivi { fields["hmc_step_size"] = Double(model.hmcStepSize) }
    return fields
  }

  public init(config: Config, seed: UInt64) throws {
    self.config = config
    self.seed = seed
    images = try BinaryImages(data: config.data, binarization: config.binarize, seed: seed,
                              expectedDimension: config.inputs, model: "VAE")
    model = VAE(config.network, seed: seed)
    terms = TermNames(bound: "elbo", components: ["log_px_given_z", "kl", "surprise"]
                        + (model.hasFlow ? ["log_det"] : [])
                        + (model.usesMixturePath ? ["log_prior", "log_q_surrogate"] : [])
                        + (config.posterior == .uivi ? ["hmc_acceptance"] : []))
  }

  // MARK: - Batches and noise

  /// Copies rows `items` of the training set into `x` [R, D], binarising dynamically if asked.
  func fillBatch(_ x: Tensor, items: ArraySlice<Int>, epoch: Int) {
    images.fillTrain(x, items: items, epoch: epoch)
  }

  /// ε [k, R, L] for `items`: sample s of item g comes from blocks s·⌈L/4⌉… of the address
  /// (seed, purpose, time, g).
  func fillNoise(_ noise: Tensor, items: ArraySlice<Int>, purpose: NoisePurpose, time: UInt64) {
    let k = noise.shape[0], r = noise.shape[1], l = noise.shape[2]
    let blocksPerSample = (l + 3) / 4
    for (row, g) in items.enumerated() {
      for s in 0..<k {
        var rng = RandomStream(NoiseAddress(seed: seed, purpose: purpose, time: time,
                                            item: UInt32(g)),
                               startBlock: UInt32(s * blocksPerSample))
        rng.fillNormal(UnsafeMutableBufferPointer(start: noise.pointer + (s * r + row) * l,
                                                  count: l))
      }
    }
  }

  // MARK: - Training

  public func loss(items: ArraySlice<Int>, step: Int, epoch: Int, globalBatch: Int, tape: Tape)
    -> StepLoss {
    guard !items.isEmpty else { return StepLoss(loss: nil, sums: .zero(terms)) }
    if model.usesMixturePath {
      return semiImplicitLoss(items: items, step: step, epoch: epoch, globalBatch: globalBatch,
                              tape: tape)
    }
    let r = items.count, cfg = model.config
    let x = tape.tensor([r, cfg.inputs])
    fillBatch(x, items: items, epoch: epoch)
    let noise = tape.tensor([cfg.samples, r, cfg.latent])
    fillNoise(noise, items: items, purpose: .latentNoise, time: UInt64(step))
    let t = model.terms(x: x, noise: noise, normalizer: Float(globalBatch),
                        klWeight: config.klWeight(step: step), on: tape)
    return StepLoss(loss: t.loss, sums: TermSums(
      bound: sumDouble(t.bound),
      components: ([t.logLikelihood, t.kl, t.surprise] + (model.hasFlow ? [t.logDet] : []))
        .map(sumDouble)))
  }

  /// Test-set ELBO (one sample; analytic KL, or Monte Carlo with a flow) and active units (of
  /// μ(x), with a flow of μ(x) pushed through it), and the compression rate
  /// (test_kl / (D ln 2) bits per pixel), each rank on its share of the
  /// test set, every example counted once whatever the number of ranks.
  public func evaluate(epoch: Int, communicator: Communicator) throws -> [String: Double] {
    if model.usesMixturePath {
      return try semiImplicitEvaluate(epoch: epoch, communicator: communicator)
    }
    let mine = Sharder.share(of: test.count, rank: communicator.rank, size: communicator.size)
    let l = model.config.latent, d = test.dimension
    var sums = [Double](repeating: 0, count: 5 + 2 * l)  // bound, ll, kl, surprise, logDet, Σμ, Σμ²
    let tape = Tape(recording: false)
    let chunk = 1000
    var start = mine.lowerBound
    while start < mine.upperBound {
      let end = min(start + chunk, mine.upperBound)
      tape.reset()
      let x = tape.tensor([end - start, d])
      images.fillTest(x, rows: start..<end)
      let noise = tape.tensor([1, end - start, l])
      fillNoise(noise, items: ArraySlice(start..<end), purpose: .evaluation,
                time: UInt64(epoch))
      let t = model.terms(x: x, noise: noise, normalizer: 1, on: tape)
      for (i, term) in [t.bound, t.logLikelihood, t.kl, t.surprise, t.logDet].enumerated() {
        sums[i] += sumDouble(term)
      }
      // Active units of the latent the decoder sees: with a flow, μ(x) pushed through it.
      let mu = model.hasFlow ? model.centralLatent(tape.constant(x)).value : t.posteriorMean
      ActiveUnits.accumulate(mu, rows: end - start, latent: l, into: &sums, at: 5)
      start = end
    }
    var total = sums
    try communicator.allreduceSum(&total, name: "test-set evaluation")
    let n = Double(test.count)
    let active = ActiveUnits.count(total, at: 5, latent: l, examples: n)
    var metrics = ["test_elbo": total[0] / n, "test_log_px_given_z": total[1] / n,
                   "test_kl": total[2] / n, "test_surprise": total[3] / n,
                   "active_units": Double(active)]
    if model.hasFlow { metrics["test_log_det"] = total[4] / n }
    // Bits per pixel to send q(z|x) (seed 001): from the same KL as test_kl.
    metrics.merge(CompressionRate(dimension: d, klNats: total[2] / n).metrics) { a, _ in a }
    return metrics
  }

  /// `elbo eval`: the importance-sampled test log-likelihood with k = `--k` samples, beside
  /// the test ELBO and the active units.
  public func headlineMetrics(_ options: EvaluationOptions, communicator: Communicator,
                              progress: ProgressHandler?) throws -> [String: Double] {
    var metrics = try evaluate(epoch: 0, communicator: communicator)
    let k = options.importanceSamples
    if model.usesMixturePath {
      metrics["test_log_likelihood"] = try semiImplicitLogLikelihood(
        samples: k, mixture: config.evalMixSamples, communicator: communicator, progress: progress)
      metrics["k"] = Double(k)
      metrics["eval_mix_samples"] = Double(config.evalMixSamples)
      return metrics
    }
    metrics["test_log_likelihood"] = try testLogLikelihood(samples: k, communicator: communicator,
                                                          progress: progress)
    metrics["k"] = Double(k)
    return metrics
  }

  /// Importance-sampled test log-likelihood (Burda et al. 2016, §5) with `samples` samples per
  /// example, sharded over ranks. Returns the mean over the whole test set, in nats.
  public func testLogLikelihood(samples: Int, communicator: Communicator,
                                progress: ((Int, Int) -> Void)? = nil) throws -> Double {
    let mine = Sharder.share(of: test.count, rank: communicator.rank, size: communicator.size)
    let evaluator = VAELogLikelihoodEvaluator(model: model)
    let estimates = images.testBinary.withUnsafeBufferPointer { x in
      evaluator.logLikelihoods(
        x: x.baseAddress! + mine.lowerBound * test.dimension, items: mine, samples: samples,
        address: { NoiseAddress(seed: seed, purpose: .evaluation, time: UInt64.max >> 16,
                                item: UInt32($0)) },
        progress: { progress?($0, mine.count) })
    }
    if VAELogLikelihoodEvaluator.profiling, communicator.rank == 0 {
      print(evaluator.profileSummary())
    }
    let sum = estimates.reduce(0, +)
    let total = try communicator.allreduceSum(sum, name: "log-likelihood evaluation")
    return total / Double(test.count)
  }
}

// MARK: - Pictures (seed 004, 3.f.iv)

extension VAEExperiment {
  /// Training images shown beside their reconstructions, and prior samples shown.
  static let imageColumns = 8, reconstructionRows = 2, sampleRows = 8
  /// The `time` of the prior samples' noise address: fixed, so that every grid shows the same
  /// z's decoded by the current decoder and successive grids are comparable. (Evaluation noise
  /// uses time = epoch and 2⁴⁸ − 1; 2⁴⁷ is far from both.)
  static let sampleNoiseTime: UInt64 = 1 << 47

  /// Two grids, computed on a tape of their own that records nothing (so the training tape,
  /// the gradients and every random stream of training are untouched):
  ///  - reconstructions.png: rows of 8 training images (the same ones every time),
  ///    each followed by a row of their reconstructions σ(decoder(μ(x))) from the posterior mean;
  ///  - samples.png: 64 decoder means σ(decoder(z)) for z ~ N(0, I) with a fixed noise address.
  public func artifacts(step: Int, final: Bool) throws -> [Artifact] {
    let cols = VAEExperiment.imageColumns, d = train.dimension
    let shown = min(cols * VAEExperiment.reconstructionRows, train.count)
    let tape = Tape(recording: false)

    // Reconstructions of `shown` training images spread evenly over the set (a set sorted by
    // class then shows several classes), as the model sees them.
    let picked = images.shownTrainingRows(shown)
    let x = tape.tensor([shown, d])
    for (r, i) in picked.enumerated() {
      for j in 0..<d { x.pointer[r * d + j] = images.trainPixels[i * d + j] }
    }
    let mean = (model.isSemiImplicit ? model.semiImplicitCentralLatent(tape.constant(x))
                : model.centralLatent(tape.constant(x))).value        // [shown, L]
    let reconstructed = model.decode(mean, on: tape)                  // [shown, D]
    func tile(_ t: Tensor, _ r: Int) -> [Float] {
      Array(UnsafeBufferPointer(start: t.pointer + r * d, count: d))
    }
    var tiles: [[Float]] = []
    for rowStart in stride(from: 0, to: shown, by: cols) {
      let row = rowStart..<min(rowStart + cols, shown)
      for r in row { tiles.append(tile(x, r)) }
      for r in row { tiles.append(tile(reconstructed, r)) }
    }
    let reconstructions = PNG.grid(tiles, imageWidth: train.cols, imageHeight: train.rows,
                                   columns: cols)

    // Decoder means at fixed z ~ N(0, I).
    let samples = priorSampleGrid(count: cols * VAEExperiment.sampleRows, seed: seed,
                                  time: VAEExperiment.sampleNoiseTime)
    return [
      Artifact(fileName: "reconstructions.png",
               caption: "Training images (odd rows) and their reconstructions σ(decoder(μ(x))) "
                 + "from the posterior mean (the row below each)"
                 + (model.hasFlow ? "; with the flow, μ(x) pushed through it" : ""),
               content: .png(reconstructions)),
      Artifact(fileName: "samples.png",
               caption: "Decoder means σ(decoder(z)) for 64 draws z ~ N(0, I) from the prior, "
                 + "the same draws every time",
               content: .png(samples)),
    ]
  }

  /// `elbo sample`: decoder means σ(decoder(z)) of `count` draws z ~ N(0, I) keyed by `seed`.
  public func samples(count: Int, seed: UInt64) throws -> Artifact? {
    Artifact(fileName: "samples.png",
             caption: "Decoder means σ(decoder(z)) for \(count) draws z ~ N(0, I) (seed \(seed))",
             content: .png(priorSampleGrid(count: count, seed: seed, time: VAEExperiment.sampleNoiseTime + 1)))
  }

  /// A PNG grid of the decoder means of `count` prior draws keyed by (seed, time).
  func priorSampleGrid(count n: Int, seed: UInt64, time: UInt64) -> Data {
    let tape = Tape(recording: false)
    let l = model.config.latent, d = train.dimension
    let z = tape.tensor([n, l])
    for i in 0..<n {
      var rng = RandomStream(NoiseAddress(seed: seed, purpose: .evaluation, time: time,
                                          item: UInt32(i)))
      rng.fillNormal(UnsafeMutableBufferPointer(start: z.pointer + i * l, count: l))
    }
    let means = model.decode(z, on: tape)                             // [n, D]
    let tiles = (0..<n).map { Array(UnsafeBufferPointer(start: means.pointer + $0 * d, count: d)) }
    return PNG.grid(tiles, imageWidth: train.cols, imageHeight: train.rows,
                    columns: min(n, VAEExperiment.imageColumns))
  }
}

/// Active units (Burda et al. 2016, §5.2): A_u = Var_x E_q[z_u | x] > 0.01. A test-set pass adds
/// Σ_x μ_u and Σ_x μ_u² into 2L slots of the buffer it all-reduces (from `offset` on), so the
/// count is over the whole test set whatever the ranks.
enum ActiveUnits {
  /// Adds the rows of μ [rows, L] to sums[offset ..< offset + L] and their squares to the next L.
  static func accumulate(_ mu: Tensor, rows: Int, latent l: Int, into sums: inout [Double],
                         at offset: Int) {
    let p = mu.pointer
    for row in 0..<rows {
      for u in 0..<l {
        let v = Double(p[row * l + u])
        sums[offset + u] += v
        sums[offset + l + u] += v * v
      }
    }
  }

  /// The units whose mean over `examples` has variance > 0.01, from the reduced sums.
  static func count(_ total: [Double], at offset: Int, latent l: Int, examples n: Double) -> Int {
    var active = 0
    for u in 0..<l {
      let mean = total[offset + u] / n
      if total[offset + l + u] / n - mean * mean > 0.01 { active += 1 }
    }
    return active
  }
}
