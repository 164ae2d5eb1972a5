import ElboData
import ElboDistributed
import ElboModels
import ElboTrain
import Foundation

/// Deep Prior (``DeepPrior``) on a collection of regression tasks (`elbo data make harmonic`),
/// sharded by task: the sharder's items are the tasks of the training collection, a global
/// batch is B whole tasks, and each rank reads only its tasks' rows from the file at every step
/// (``CollectionFile/read(datasets:)``, collective: a rank with no task reads an empty
/// selection).
///
/// Noise: the ε of task j at step t is RandomStream(seed, latentNoise, time: t, item: j) — keyed
/// by the task, never by rank — so 1 and N ranks take the same steps.
public final class DeepPriorExperiment: Experiment {
  /// The options under "deep-prior" in a config.
  public struct Config: ExperimentConfig {
    /// The training and test collections (HDF5 files of `elbo data make harmonic`).
    public var collection = ""
    public var testCollection = ""
    /// The task encoder: standard (q = N(μ, diag σ²)), or followed by planar or IAF flows.
    public var encoder: Encoder = .standard
    /// K, flows after q₀ for --encoder planar|iaf.
    public var flowLength = 4
    public var latent = 8
    public var hidden = 64
    /// Evaluation: the first `contextPoints` points of a task are its context S, the rest are
    /// held out and predicted; S samples of z ~ q(z|S) are averaged per prediction.
    public var contextPoints = 10
    public var predictSamples = 20
    /// Training tasks evaluated for the train MSE (the first ones of the collection).
    public var trainEvalTasks = 500

    public init() {}

    public var network: DeepPrior.Config {
      var c = DeepPrior.Config()
      c.latent = latent; c.hidden = hidden
      switch encoder {
      case .standard: c.flow = FlowChainSpec()
      case .planar: c.flow = FlowChainSpec(kind: .planar, length: flowLength)
      case .iaf:
        c.flow = FlowChainSpec(kind: .iaf, length: flowLength)
        c.flow.iafHidden = hidden; c.flow.iafContext = hidden
      }
      return c
    }

    public func validate() throws {
      if collection.isEmpty {
        throw ElboError("--collection FILE.h5 is required (make one with `elbo data make "
          + "harmonic --out FILE.h5`)")
      }
      if testCollection.isEmpty {
        throw ElboError("--test-collection FILE.h5 is required (e.g. `elbo data make harmonic "
          + "--seed 1 --datasets 500 --out TEST.h5`)")
      }
      for (v, flag) in [(latent, "--latent"), (hidden, "--hidden"),
                        (contextPoints, "--context-points"), (predictSamples, "--predict-samples"),
                        (trainEvalTasks, "--train-eval-tasks")] where v <= 0 {
        throw ElboError("\(flag) must be a positive integer (got \(v))")
      }
      if encoder != .standard && flowLength <= 0 {
        throw ElboError("--flow-length must be ≥ 1 with --encoder \(encoder.rawValue)")
      }
      do { try network.flow.validate(dimension: latent) } catch {
        throw ElboError("--encoder \(encoder.rawValue): \(error)")
      }
    }
  }

  public enum Encoder: String, Codable, CaseIterable, Sendable { case standard, planar, iaf }

  public static let name = "deep-prior"
  public static let summary = "Deep Prior: a task latent z for few-shot regression (harmonic tasks)."
  public static let discussion = """
    Tasks from a collection file (`elbo data make harmonic --out FILE.h5`), sharded by task: each
    rank reads only its tasks' rows. q(z|S) from a set encoder over the task's (x, y) pairs
    (per-point MLP, mean over the real points, MLP → μ, log σ²), optionally followed by K planar
    or IAF flows (--encoder, --flow-length); p(y|x, z) = N(μ, σ²) from one MLP of [x, z].
    ELBO = Σ_tasks [E_q Σ_points log p(y|x, z) − KL(q(z|S) ‖ N(0, I))], KL analytic for the
    standard encoder and log q_K − log p (one sample) with flows. Logged: the ELBO, the
    log-likelihood, the KL and Σ log|det|. Evaluation: each task's first --context-points points
    are its context, the rest are predicted by the predictive mean over --predict-samples z's:
    train and test MSE on those held-out points and the test log-likelihood per held-out point
    (nats). Picture: test tasks with 1, 2, 4, 8, 16 context points and posterior predictive
    samples with ±2σ bands.
    """
  /// 2,000 tasks at 20 per batch: 100 steps per epoch.
  public static var runDefaults: RunOptions {
    var o = RunOptions()
    o.epochs = 30
    o.batchSize = 20
    o.learningRate = 1e-3
    o.logEvery = 50
    o.evalEvery = 10
    return o
  }

  public let config: Config
  public let model: DeepPrior
  public let seed: UInt64
  public let train: DataSetSource
  public let test: DataSetSource
  /// The test tasks' generating parameters (harmonic files), for the picture's true curves.
  let testParams: CollectionMetadata?
  /// The test tasks of the picture, read at start-up (rank 0 draws without communicating).
  let figureTasks: [Tensor]
  private let communicator: Communicator?

  public var store: ParameterStore { model.store }
  public var itemCount: Int { train.count }
  public let terms = TermNames(bound: "elbo", components: ["log_likelihood", "kl", "log_det"])
  public var dataDescription: String {
    "\(train.count) training tasks (\(config.collection)), \(test.count) test tasks"
  }

  /// Opens the collections (collective on several ranks: every rank builds the experiment).
  public convenience init(config: Config, seed: UInt64) throws {
    try config.validate()
    let world = try Communicator.initialize()
    try self.init(config: config, seed: seed,
              train: try CollectionFile(path: config.collection, communicator: world),
              test: try CollectionFile(path: config.testCollection, communicator: world),
              communicator: world)
  }

  /// The experiment on given sources (tests: in-memory collections on one rank).
  public init(config: Config, seed: UInt64, train: DataSetSource, test: DataSetSource,
              communicator: Communicator? = nil) throws {
    self.config = config
    self.seed = seed
    self.train = train
    self.test = test
    self.communicator = communicator
    for (s, name) in [(train, config.collection), (test, config.testCollection)]
    where s.dimension != 2 {
      throw ElboError("\(name): deep-prior needs (x, y) points, the collection has dimension "
        + "\(s.dimension)")
    }
    model = DeepPrior(config.network, seed: seed)
    testParams = (test as? CollectionFile)?.metadata["params"]
      ?? (test as? InMemoryCollection)?.collection.metadata["params"]
    figureTasks = try test.read(datasets: Array(0..<min(2, test.count)))
  }

  public func objectiveDescription(globalBatch: Int) -> [String] {
    let m = model.config
    let q = model.hasFlow
      ? "q₀ = N(μ, diag σ²) then K = \(m.flow.length) \(m.flow.kind.rawValue) flow(s); KL = "
        + "log q_K(z_K) − log N(z_K; 0, I), one sample"
      : "q = N(μ, diag σ²), KL analytic"
    return [
      "objective: loss = −(1/B) Σ_tasks [Σ_points log N(y | μ(x, z), σ²(x, z)) − KL(q(z|S) ‖ "
        + "N(0, I))], B = \(globalBatch) tasks, z ~ q(z|S) once per task and step; \(q)",
      "model: latent L = \(m.latent), hidden \(m.hidden) (\(m.activation.rawValue)); padding "
        + "points are masked out of the pooling and the likelihood",
    ]
  }

  // MARK: - Noise

  /// ε [B, L] for tasks `tasks`, row r from (seed, purpose, time, task).
  func noise(tasks: [Int], purpose: NoisePurpose, time: UInt64, tape: Tape) -> Tensor {
    let l = model.config.latent
    let e = tape.tensor([tasks.count, l])
    for (r, j) in tasks.enumerated() {
      var rng = RandomStream(NoiseAddress(seed: seed, purpose: purpose, time: time,
                                          item: UInt32(truncatingIfNeeded: j)))
      rng.fillNormal(UnsafeMutableBufferPointer(start: e.pointer + r * l, count: l))
    }
    return e
  }

  /// Reads tasks; a failed read cannot be thrown from `loss`, so it ends the job in one line.
  func read(_ source: DataSetSource, _ tasks: [Int]) -> [Tensor] {
    do { return try source.read(datasets: tasks) } catch {
      if let communicator { communicator.abort("\(error)", code: 2) }
      FileHandle.standardError.write(Data("elbo: \(error)\n".utf8))
      exit(2)
    }
  }

  // MARK: - Training

  public func loss(items: ArraySlice<Int>, step: Int, epoch: Int, globalBatch: Int, tape: Tape)
    -> StepLoss {
    let tasks = Array(items)
    let sets = read(train, tasks)  // every rank reads, even with no task (collective)
    guard !tasks.isEmpty else { return StepLoss(loss: nil, sums: .zero(terms)) }
    let batch = SetBatch(sets, datasets: tasks)
    let t = model.terms(points: batch.points, mask: batch.mask,
                        noise: noise(tasks: tasks, purpose: .latentNoise, time: UInt64(step),
                                     tape: tape),
                        normalizer: Float(globalBatch), on: tape)
    let sums = TermSums(bound: sumDouble(t.elbo),
                        components: [sumDouble(t.logLikelihood), sumDouble(t.kl),
                                     sumDouble(t.logDet)])
    return StepLoss(loss: t.loss, sums: sums)
  }

  // MARK: - Evaluation

  /// Sums over the held-out points of `tasks`: squared error of the predictive mean, the
  /// predictive log-likelihood log (1/S) Σ_s N(y | μ_s, σ²_s), and the count of points.
  /// Context = a task's first `context` points (at most all but one), held out = the rest.
  func predictionSums(_ sets: [Tensor], tasks: [Int], context: Int) -> [Double] {
    var sums = [0.0, 0.0, 0.0]
    let chunk = 100
    var start = 0
    while start < sets.count {
      let end = min(start + chunk, sets.count)
      let p = predict(Array(sets[start..<end]), tasks: Array(tasks[start..<end]),
                      context: context)
      for (j, set) in sets[start..<end].enumerated() {
        let n = set.shape[0], c = min(context, n - 1)
        guard c >= 1 else { continue }
        for i in c..<n {
          let y = Double(set[2 * i + 1])
          let e = y - p.mean[j][i - c]
          sums[0] += e * e
          sums[1] += p.logLikelihood[j][i - c]
          sums[2] += 1
        }
      }
      start = end
    }
    return sums
  }

  /// Predictions at each task's held-out points given its first `context` points: the
  /// predictive mean (1/S) Σ_s μ_s and log (1/S) Σ_s N(y | μ_s, σ²_s), per held-out point.
  func predict(_ sets: [Tensor], tasks: [Int], context: Int)
    -> (mean: [[Double]], logLikelihood: [[Double]]) {
    let cuts = sets.map { min(context, max($0.shape[0] - 1, 0)) }
    let contexts = zip(sets, cuts).map { rows($0, 0..<$1) }
    let heldOut = zip(sets, cuts).map { rows($0, $1..<$0.shape[0]) }
    let ctx = SetBatch(contexts, datasets: tasks)
    let held = SetBatch(heldOut, datasets: tasks)
    let tape = Tape(recording: false)
    let out = model.encode(points: ctx.points, mask: ctx.mask, on: tape)
    let (x, y) = model.columns(held.points, tape)
    let b = sets.count, n = held.maxPoints, s = config.predictSamples
    var mean = [[Double]](repeating: [Double](repeating: 0, count: n), count: b)
    var logs = [[Double]](repeating: [], count: b)
    for sample in 0..<s {
      let e = noise(tasks: tasks, purpose: .evaluation, time: UInt64(sample), tape: tape)
      let z = model.posteriorSample(out, noise: e).z
      let p = model.predictive(x: x, z: z)
      let lp = p.logProb(tape.constant(y.reshaped([b * n, 1]))).value
      for j in 0..<b {
        if sample == 0 { logs[j] = [Double](repeating: 0, count: n) }
        for i in 0..<n {
          mean[j][i] += Double(p.mean.value[j * n + i]) / Double(s)
          logs[j][i] = sample == 0 ? Double(lp[j * n + i])
            : logAddExp(logs[j][i], Double(lp[j * n + i]))
        }
      }
    }
    let logS = Foundation.log(Double(s))
    return (zip(mean, held.counts).map { Array($0.prefix($1)) },
            zip(logs, held.counts).map { l, c in l.prefix(c).map { $0 - logS } })
  }

  /// Rows `range` of a set [n, D].
  func rows(_ t: Tensor, _ range: Range<Int>) -> Tensor {
    let d = t.shape[1]
    return Tensor(Array(t.buffer[(range.lowerBound * d)..<(range.upperBound * d)]),
                  shape: [range.count, d])
  }

  /// Train and test MSE of the predictive mean on held-out points and the test log-likelihood
  /// per held-out point; each rank predicts its share of the tasks (one collective read each).
  public func evaluate(epoch: Int, communicator world: Communicator) throws -> [String: Double] {
    let c = config.contextPoints
    let trainTasks = Array(Sharder.share(of: min(config.trainEvalTasks, train.count),
                                         rank: world.rank, size: world.size))
    let testTasks = Array(Sharder.share(of: test.count, rank: world.rank, size: world.size))
    var sums = predictionSums(try train.read(datasets: trainTasks), tasks: trainTasks,
                              context: c)
      + predictionSums(try test.read(datasets: testTasks), tasks: testTasks, context: c)
    try world.allreduceSum(&sums, name: "deep-prior evaluation")
    return ["train_mse": sums[0] / max(sums[2], 1),
            "test_mse": sums[3] / max(sums[5], 1),
            "test_log_likelihood": sums[4] / max(sums[5], 1),
            "context_points": Double(c), "predict_samples": Double(config.predictSamples)]
  }

  public func headlineMetrics(_ options: EvaluationOptions, communicator: Communicator,
                              progress: ProgressHandler?) throws -> [String: Double] {
    try evaluate(epoch: 0, communicator: communicator)
  }
}

/// log(eᵃ + eᵇ) without overflow.
func logAddExp(_ a: Double, _ b: Double) -> Double {
  let m = max(a, b)
  return m + log(exp(a - m) + exp(b - m))
}
