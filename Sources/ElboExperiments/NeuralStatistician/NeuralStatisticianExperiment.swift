import ElboData
import ElboDistributed
import ElboModels
import ElboReport
import ElboTrain
import Foundation

/// The Neural Statistician (``NeuralStatistician``) on a collection of data sets: the sharder's
/// items are whole data sets, a step's batch is B of them (padded to the longest, padding masked
/// out of every term), and the held-out evaluation is the silhouette of E[c|D] by label.
///
/// Noise: the ε of data set g at step t comes from RandomStream(seed, latentNoise, time: t,
/// item: g) — ε_c from its first blocks, ε_z of layer l and point j from block
/// ⌈C/4⌉ + (l·2²⁰ + j)·⌈Z/4⌉ on — so a set's noise depends neither on the ranks nor on the
/// padding of its batch.
public final class NeuralStatisticianExperiment: Experiment {
  /// neural-statistician's options (under "neural-statistician" in a config).
  public struct Config: ExperimentConfig {
    /// The training collection: ns-synthetic (generated in memory from the run's seed),
    /// fashion-sets (sets of `points` same-class Fashion-MNIST images of classes 0–5, binarised,
    /// Bernoulli observations; evaluation adds few-shot classification), or a collection file
    /// (`elbo data make …`; then `testData` names the held-out one)
    public var data = "ns-synthetic"
    /// The held-out collection file (with a file `data`; in memory: split 1 of the seed).
    public var testData = ""
    /// Training data sets and points per set (the paper: 10,000 × 200).
    public var datasets = 10_000
    public var points = 200
    /// With minPoints < points, each set's size is drawn uniformly from minPoints…points (sets
    /// of unequal sizes; nil: all sets have `points`).
    public var minPoints: Int?
    /// Held-out data sets for the silhouette and test ELBO (the paper: 1,000).
    public var testDatasets = 1_000
    public var hidden = 128
    public var hiddenLayers = 3
    public var context = 3
    public var latent = 32
    public var stochasticLayers = 3
    /// Episodes per row of the few-shot table (fashion-sets).
    public var fewShotEpisodes = 1000
    /// α₀ of the α-weighting −[(1+α)R − (C+L)/(1+α)], α = α₀/2^epoch (0: the plain −ELBO).
    public var alpha: Float = 1

    public init() {}

    /// The network for points of `dimension` (Bernoulli observations for image sets).
    public func network(dimension: Int) -> NeuralStatistician.Config {
      var c = NeuralStatistician.Config()
      c.dimension = dimension; c.hidden = hidden; c.hiddenLayers = hiddenLayers; c.context = context
      c.latent = latent; c.stochasticLayers = stochasticLayers
      c.observation = data == "fashion-sets" ? .bernoulli : .gaussian
      return c
    }

    /// α at `epoch`: halved every epoch (Edwards & Storkey's public code).
    public func alpha(epoch: Int) -> Float { alpha * Float(pow(0.5, Double(epoch))) }

    public func validate() throws {
      for (v, flag) in [(datasets, "--datasets"), (points, "--points"),
                        (testDatasets, "--test-datasets"), (hidden, "--hidden"),
                        (hiddenLayers, "--hidden-layers"), (context, "--context"),
                        (latent, "--latent"), (stochasticLayers, "--stochastic-layers")] where v <= 0 {
        throw ElboError("\(flag) must be a positive integer (got \(v))")
      }
      if testDatasets < 2 { throw ElboError("--test-datasets must be at least 2 (got \(testDatasets))") }
      if let m = minPoints, m <= 0 || m > points {
        throw ElboError("--min-points must be in 1…--points (got \(m))")
      }
      if points >= 1 << 20 { throw ElboError("--points must be below 2^20 (got \(points))") }
      if !(alpha >= 0) { throw ElboError("--alpha must be ≥ 0 (got \(alpha))") }
      if fewShotEpisodes < 0 {
        throw ElboError("--few-shot-episodes must be ≥ 0 (got \(fewShotEpisodes))")
      }
      if data != "ns-synthetic" && data != "fashion-sets" && testData.isEmpty {
        throw ElboError("--data \(data) is a file: give the held-out collection with --test-data")
      }
    }
  }

  public static let name = "neural-statistician"
  public static let summary = "Neural Statistician: a context c per data set (Edwards & Storkey 2017)."
  public static let discussion = """
    A generative model of data sets: c ~ N(0, I) per set, z_L..z_1 per point given c, x given
    (z, c). q(c|D) pools a pre-pool MLP over the set's points (masked mean), then a post-pool
    MLP; q(z_l|z_{l+1}, x, c) and p(z_l|z_{l+1}, c) are MLPs on summed projections. The bound
    per set is ELBO_D = R_D − C_D − L_D: logged as reconstruction, context_kl, latent_kl (and
    per layer). Training uses the α-weighting −[(1+α)R − (C+L)/(1+α)], α halved every epoch
    (--alpha 0: the ELBO itself), and elementwise gradient clipping (--clip-value, default 0.5
    here). Items are whole data sets: --batch-size counts sets. Evaluation: the silhouette of
    E[c|D] by family on the held-out sets (also before training), the test ELBO per set; plots
    of E[c|D] coloured by family, mean and variance.
    """
  /// Edwards & Storkey's public code: batch 16 sets, Adam 10⁻³, 50 epochs, gradients clamped
  /// to [−0.5, 0.5].
  public static var runDefaults: RunOptions {
    var o = RunOptions()
    o.epochs = 50
    o.batchSize = 16
    o.learningRate = 1e-3
    o.clipValue = 0.5
    o.logEvery = 100
    return o
  }

  public let config: Config
  public let model: NeuralStatistician
  public let seed: UInt64
  public let train: SetCollection
  public let test: SetCollection
  private let communicator: Communicator
  /// The silhouette of E[c|D] on the held-out sets at initialisation.
  public private(set) var untrainedSilhouette: Double = 0
  /// The held-out sets the spatial pictures draw, read at start-up on every rank (a file's
  /// reads are collective; pictures are drawn on rank 0 alone).
  public private(set) var figureSets: [SetBatch] = []
  /// The few-shot rows evaluated at each epoch end (fashion-sets only).
  public private(set) var fewShot: [FewShotTask] = []
  /// E[c|D] of the held-out sets at the last evaluation (the pictures draw them).
  public private(set) var lastContexts: [[Double]] = []

  public var store: ParameterStore { model.store }
  public var itemCount: Int { train.count }
  public let terms: TermNames
  public var dataDescription: String {
    "\(train.name) (\(train.count) sets; \(test.count) held out in \(test.name))"
  }

  public init(config: Config, seed: UInt64) throws {
    try config.validate()
    self.config = config
    self.seed = seed
    // Opening files is collective on several ranks: every rank builds the experiment.
    communicator = try Communicator.initialize()
    if config.data == "ns-synthetic" {
      train = try SetCollection.nsSynthetic(seed: seed, split: 0, datasets: config.datasets,
                                            points: config.points, minPoints: config.minPoints)
      test = try SetCollection.nsSynthetic(seed: seed, split: 1, datasets: config.testDatasets,
                                           points: config.points, minPoints: config.minPoints)
    } else if config.data == "fashion-sets" {
      let fashion = try DatasetCatalog.load("fashion-mnist")
      let seen = Array(0..<6)
      train = try SetCollection.imageSets(fashion.train, classes: seen, setSize: config.points,
                                          seed: seed, name: "fashion-mnist classes 0–5 (train)")
      test = try SetCollection.imageSets(fashion.test, classes: seen, setSize: config.points,
                                         seed: seed, name: "fashion-mnist classes 0–5 (test)")
      let mnist = try DatasetCatalog.load("mnist-5k")
      for shots in [1, 5] {
        fewShot.append(FewShotTask(name: "fashion-mnist 6–9", key: "fashion_4way_\(shots)shot",
                                   images: fashion.test, classes: Array(6..<10), ways: 4,
                                   shots: shots))
      }
      for ways in [5, 10] {
        for shots in [1, 5] {
          fewShot.append(FewShotTask(name: "mnist-5k", key: "mnist_\(ways)way_\(shots)shot",
                                     images: mnist.test, classes: Array(0..<10), ways: ways,
                                     shots: shots))
        }
      }
    } else {
      train = try SetCollection.file(config.data, communicator: communicator)
      test = try SetCollection.file(config.testData, communicator: communicator)
    }
    if train.dimension != test.dimension {
      throw ElboError("\(test.name): points of dimension \(test.dimension), the training "
        + "collection's have \(train.dimension)")
    }
    model = NeuralStatistician(config.network(dimension: train.dimension), seed: seed)
    terms = TermNames(bound: "elbo", components: ["reconstruction", "context_kl", "latent_kl"]
                        + (1...config.stochasticLayers).reversed().map { "latent_kl_z\($0)" })
    if test.dimension == 2 {
      let held = test
      figureSets = (0..<min(Self.spatialDigits, held.count)).map { held.batch([$0]) }
    }
    lastContexts = try contexts(of: test)
    untrainedSilhouette = silhouette(lastContexts)
  }

  public func objectiveDescription(globalBatch: Int) -> [String] {
    ["objective: per set ELBO_D = R_D − C_D − L_D (one sample of c and z, analytic KLs); loss = "
      + "−(1/(B·M)) Σ_sets [(1+α)R_D − (C_D + L_D)/(1+α)], B = \(globalBatch) sets, M = "
      + "\(config.points) points per set, α = \(config.alpha)/2^epoch"
      + (config.alpha == 0 ? " = 0 (the ELBO itself)" : "") + "; padding never counted",
     "logged sums are per set: elbo = reconstruction − context_kl − latent_kl"]
  }

  public func stepFields(step: Int, globalBatch: Int) -> [String: Double] {
    let perEpoch = max(train.count / globalBatch, 1)
    return ["alpha": Double(config.alpha(epoch: step / perEpoch))]
  }

  // MARK: - Noise

  /// ε_c [B, C] and ε_z per layer [B·N, Z] for sets `sets` padded to N points (padding rows 0).
  func noise(_ sets: some Collection<Int>, of collection: SetCollection, points n: Int,
             purpose: NoisePurpose, time: UInt64, tape: Tape) -> NeuralStatistician.Noise {
    let b = sets.count, c = config.context, z = config.latent, layers = config.stochasticLayers
    let eps = tape.tensor([b, c])
    let latents = (0..<layers).map { _ in tape.tensor([b * n, z], zeroed: true) }
    let contextBlocks = (c + 3) / 4, latentBlocks = (z + 3) / 4
    for (row, g) in sets.enumerated() {
      let address = NoiseAddress(seed: seed, purpose: purpose, time: time,
                                 item: UInt32(truncatingIfNeeded: g))
      var rng = RandomStream(address)
      rng.fillNormalFast(UnsafeMutableBufferPointer(start: eps.pointer + row * c, count: c))
      let real = collection.size(g)
      for l in 0..<layers {
        for j in 0..<real {
          var r = RandomStream(address, startBlock: UInt32(contextBlocks + ((l << 20) + j) * latentBlocks))
          r.fillNormalFast(UnsafeMutableBufferPointer(start: latents[l].pointer + (row * n + j) * z,
                                                  count: z))
        }
      }
    }
    return NeuralStatistician.Noise(context: eps, latents: latents)
  }

  // MARK: - Training

  public func loss(items: ArraySlice<Int>, step: Int, epoch: Int, globalBatch: Int, tape: Tape)
    -> StepLoss {
    // Read before the empty check: a file's read is collective (an empty share still takes part).
    let batch = train.batch(Array(items))
    guard !items.isEmpty else { return StepLoss(loss: nil, sums: .zero(terms)) }
    let eps = noise(items, of: train, points: batch.maxPoints, purpose: .latentNoise,
                    time: UInt64(step), tape: tape)
    let t = model.terms(points: batch.points, mask: batch.mask, noise: eps, alpha: config.alpha(epoch: epoch),
                        normalizer: Float(globalBatch * config.points), on: tape)
    return StepLoss(loss: t.loss, sums: TermSums(
      bound: sumDouble(t.bound),
      components: ([t.reconstruction, t.contextKL, t.latentKL] + t.latentKLs).map(sumDouble)))
  }

  // MARK: - Evaluation

  /// Sets per chunk of an evaluation (bounds the tape's memory).
  static let chunkSets = 100

  /// Runs `body` on this rank's share of `collection`'s sets, chunk by chunk; every rank runs
  /// the same number of chunks (a file's reads are collective), a finished rank with none.
  func forEachChunk(of collection: SetCollection,
                    _ body: (_ sets: [Int], _ batch: SetBatch) -> Void) {
    let mine = Sharder.share(of: collection.count, rank: communicator.rank, size: communicator.size)
    let most = (collection.count + communicator.size - 1) / communicator.size
    let chunks = (most + Self.chunkSets - 1) / Self.chunkSets
    for k in 0..<chunks {
      let lo = min(mine.lowerBound + k * Self.chunkSets, mine.upperBound)
      let sets = Array(lo..<min(lo + Self.chunkSets, mine.upperBound))
      let batch = collection.batch(sets)
      if !sets.isEmpty { body(sets, batch) }
    }
  }

  /// E[c|D] of every set of `collection` (collective: each rank its share, then summed into
  /// every rank's copy).
  public func contexts(of collection: SetCollection) throws -> [[Double]] {
    let c = config.context
    var flat = [Double](repeating: 0, count: collection.count * c)
    let tape = Tape(recording: false)
    forEachChunk(of: collection) { sets, batch in
      tape.reset()
      let mean = model.contextPosterior(points: batch.points, mask: batch.mask, on: tape).mean.value
      for (row, s) in sets.enumerated() {
        for k in 0..<c { flat[s * c + k] = Double(mean[row * c + k]) }
      }
    }
    if communicator.size > 1 { try communicator.allreduceSum(&flat, name: "context means") }
    return (0..<collection.count).map { Array(flat[($0 * c)..<(($0 + 1) * c)]) }
  }

  /// The silhouette of contexts by the held-out sets' labels.
  func silhouette(_ contexts: [[Double]]) -> Double {
    silhouetteScore(contexts, labels: test.labels) ?? 0
  }

  /// Silhouette of E[c|D] by label on the held-out sets (now and untrained), and the held-out
  /// ELBO per set and its terms (each rank its share of the sets, summed over ranks).
  public func evaluate(epoch: Int, communicator: Communicator) throws -> [String: Double] {
    var sums = [Double](repeating: 0, count: 4)                       // elbo, R, C, L
    let tape = Tape(recording: false)
    forEachChunk(of: test) { sets, batch in
      tape.reset()
      let eps = noise(sets, of: test, points: batch.maxPoints, purpose: .evaluation, time: 0,
                      tape: tape)
      let t = model.terms(points: batch.points, mask: batch.mask, noise: eps, normalizer: 1,
                          on: tape)
      for (i, v) in [t.bound, t.reconstruction, t.contextKL, t.latentKL].enumerated() {
        sums[i] += sumDouble(v)
      }
    }
    try communicator.allreduceSum(&sums, name: "neural statistician evaluation")
    lastContexts = try contexts(of: test)
    let n = Double(test.count)
    let out = try fewShotMetrics(communicator: communicator)
    return out.merging(["silhouette": silhouette(lastContexts),
            "silhouette_untrained": untrainedSilhouette,
            "test_elbo": sums[0] / n, "test_reconstruction": sums[1] / n,
            "test_context_kl": sums[2] / n, "test_latent_kl": sums[3] / n]) { a, _ in a }
  }

  /// Few-shot accuracy of the model and of the pixel nearest neighbour per row, with standard
  /// errors √(p(1 − p)/n) (episodes split over the ranks, counts summed).
  func fewShotMetrics(communicator: Communicator) throws -> [String: Double] {
    guard !fewShot.isEmpty, config.fewShotEpisodes > 0 else { return [:] }
    let n = config.fewShotEpisodes
    let mine = Sharder.share(of: n, rank: communicator.rank, size: communicator.size)
    var counts: [Double] = []
    for task in fewShot {
      let (c, b) = task.score(model, episodes: mine, seed: seed)
      counts += [Double(c), Double(b)]
    }
    try communicator.allreduceSum(&counts, name: "few-shot counts")
    var out: [String: Double] = [:]
    for (i, task) in fewShot.enumerated() {
      for (j, suffix) in ["", "_pixel_nn"].enumerated() {
        let p = counts[2 * i + j] / Double(n)
        out["fewshot_\(task.key)\(suffix)"] = p
        out["fewshot_\(task.key)\(suffix)_se"] = (p * (1 - p) / Double(n)).squareRoot()
      }
    }
    return out
  }
}
