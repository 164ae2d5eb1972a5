import ElboData
import ElboDistributed
import ElboModels
import ElboTrain
import Foundation

/// Bayes by Backprop (or a plain / dropout baseline) classifying images by their pixel
/// intensities in [0, 1] (Blundell et al. 2015, §5.1): batches, noise, the KL share of each
/// step, and the test-set evaluation with S weight samples.
public final class BBBClassifierExperiment: Experiment {
  /// The classifier's options (under "bbb-classifier" in a config).
  public struct Config: ExperimentConfig {
    /// fashion-mnist, mnist-5k, or a directory of IDX files.
    public var data = "fashion-mnist"
    /// The network: variant (bbb | plain | dropout), sizes, prior, estimator, ρ₀, dropout rate.
    public var network = BBBNetworkConfig()
    /// How the KL is shared over minibatches and scaled (β, warm-up).
    public var kl = KLWeighting()
    /// Weight samples S averaged at prediction.
    public var predictSamples = 10

    public init() {
      network.hidden = 400
      network.prior.kind = .scaleMixture
      kl.share = .blundell
    }

    public var options: BBBOptions {
      var o = BBBOptions()
      o.network = network; o.kl = kl; o.predictSamples = predictSamples
      return o
    }

    public func validate() throws { try options.validate() }
  }

  public static let name = "bbb-classifier"
  public static let summary = "Bayes by Backprop MLP 784-H-H-10 on images (Blundell et al. 2015, §5.1)."
  public static let posterior = PosteriorKind.weights
  public static let discussion = """
    Inputs are pixel intensities in [0, 1]; labels come from the data set. Scale-mixture prior
    by default. --variant plain / dropout train the baselines of the same size. Per epoch:
    test error, test log-likelihood (class probabilities averaged over S weight samples),
    the mean predictive entropy on correct vs misclassified test images, and the expected
    calibration error (test_ece). Pictures: plots/entropy.svg (entropy histograms),
    plots/reliability.svg (reliability diagram), images/uncertain.png (the most uncertain
    test images).
    """

  /// Configs written before models had their own sections kept these options under "bbb" and
  /// the data set at the top level.
  public static func upgradeLegacyConfig(_ object: [String: Any]) -> [String: Any] {
    guard let old = object["bbb"] as? [String: Any] else { return object }
    var out = object
    out["bbb"] = nil
    var section = old
    if let data = out.removeValue(forKey: "data") { section["data"] = data }
    out[name] = section
    return out
  }

  public let config: Config
  public var dataDescription: String { config.data }

  public let model: BBBClassifier
  public let options: BBBOptions
  public let seed: UInt64
  public let train: ImageDataset
  public let test: ImageDataset
  private let noise: BBBNoise
  private var lastKL = Double.nan
  /// The last test-set predictions and the `parameterFingerprint` they were made at.
  private var cachedPredictions: (key: [UInt64], predictions: [ClassPrediction])?

  public var store: ParameterStore { model.store }
  public var itemCount: Int { train.count }
  public var dataDigest: UInt64? { train.contentDigest }
  public let terms = TermNames(bound: "elbo", components: ["log_likelihood", "kl", "surprise"])

  public convenience init(config: Config, seed: UInt64) throws {
    try self.init(config: config, data: DatasetCatalog.load(config.data), seed: seed)
  }

  public init(config: Config, data: ImageSplit, seed: UInt64) throws {
    self.config = config
    let options = config.options
    var network = BBBClassifier.Config()
    network.network = options.network
    network.inputs = data.train.dimension
    let labels = data.train.labels + data.test.labels
    guard let maxLabel = labels.max(), let minLabel = labels.min(), minLabel >= 0 else {
      throw ElboError("the data set has no labels")
    }
    network.classes = Int(maxLabel) + 1
    model = BBBClassifier(network, seed: seed)
    self.options = options
    self.seed = seed
    train = data.train
    test = data.test
    noise = BBBNoise(seed: seed)
  }

  public func objectiveDescription(globalBatch: Int) -> [String] {
    ["data: \(train.name) (\(train.count) training, \(test.count) test images), inputs = pixel "
      + "intensities in [0, 1]; network \(model.config.sizes.map(String.init).joined(separator: "-")) "
      + "(\(options.network.activation.rawValue)); likelihood Categorical(softmax(f_w(x))); "
      + "prediction averages the class probabilities of S = "
      + "\(model.network.predictionSamples(options.predictSamples)) weight sample(s)"]
      + options.describe(examples: itemCount, globalBatch: globalBatch,
                         likelihood: "log p(y | x, w)")
  }

  public func stepFields(step: Int, globalBatch: Int) -> [String: Double] {
    bbbStepFields(options, bayesian: model.network.bayesian != nil, step: step,
                  examples: itemCount, globalBatch: globalBatch, lastKL: lastKL)
  }

  /// Copies rows `items` of `set` into x [R, D] and their labels into [R].
  func fill(_ x: Tensor, _ labels: Tensor, from set: ImageDataset, items: some Sequence<Int>) {
    let d = set.dimension
    set.pixels.withUnsafeBufferPointer { src in
      for (r, g) in items.enumerated() {
        (x.pointer + r * d).update(from: src.baseAddress! + g * d, count: d)
        labels[r] = Float(set.labels[g])
      }
    }
  }

  // MARK: - Training

  public func loss(items: ArraySlice<Int>, step: Int, epoch: Int, globalBatch: Int, tape: Tape)
    -> StepLoss {
    guard !items.isEmpty else { return StepLoss(loss: nil, sums: .zero(terms)) }
    let r = items.count
    let x = tape.tensor([r, train.dimension]), labels = tape.tensor([r])
    fill(x, labels, from: train, items: items)
    let m = max(itemCount / globalBatch, 1)
    let share = options.kl.share(minibatch: step % m, of: m)
    let rowShare = Double(r) / Double(globalBatch)
    let klScale = Float(options.kl.weight(step: step, stepsPerEpoch: m) * rowShare)
    let t = model.terms(x: x, labels: labels,
                        noise: noise.training(model.network, items: items, step: step, tape: tape),
                        klScale: klScale, normalizer: Float(globalBatch), on: tape)
    lastKL = t.kl ?? .nan
    return StepLoss(loss: t.loss, sums: bbbTermSums(t, share: share, rowShare: rowShare))
  }

  // MARK: - Evaluation

  /// Test error, test log-likelihood log p̄(y|x) with p̄ = (1/S) Σ_s softmax(f_{w_s}(x)), the
  /// mean predictive entropy H[p̄] on correctly and wrongly classified test images, and the
  /// expected calibration error (`ReliabilityBins`). Each rank computes p̄ for a contiguous share
  /// of the test set with the SAME S weight samples; the shares are gathered (an all-reduce of
  /// [N, C] in which each rank fills its own rows), so every rank then summarises the whole test
  /// set in the same order, and the metrics do not depend on the number of ranks. The
  /// predictions are kept for `artifacts`, which draws them without computing them again.
  public func evaluate(epoch: Int, communicator: Communicator) throws -> [String: Double] {
    let mine = Sharder.share(of: test.count, rank: communicator.rank, size: communicator.size)
    let c = model.config.classes
    var probabilities = [Double](repeating: 0, count: test.count * c)  // Σ_s softmax [N, C]
    probabilities.withUnsafeMutableBufferPointer { accumulateProbabilities(mine, into: $0) }
    if communicator.size > 1 {
      try communicator.allreduceSum(&probabilities, name: "test-set predictive probabilities")
    }
    let predictions = summarise(probabilities)
    cachedPredictions = (parameterFingerprint(), predictions)
    var metrics = classifierTestMetrics(predictions)
    metrics["predict_samples"] = Double(predictionSamples)
    metrics.merge(weightCompressionMetrics(model.network, store: store, seed: seed)) { a, _ in a }
    return metrics
  }

  /// S: the weight samples a prediction averages (1 for the plain and dropout networks, whose
  /// prediction is deterministic).
  var predictionSamples: Int { model.network.predictionSamples(options.predictSamples) }

  /// Adds Σ_s softmax(f_{w_s}(x)) of test images `items` into rows `items` of `probabilities`
  /// [N, C]. Sample k's weight noise is keyed by k alone, so every call and every rank uses the
  /// same S samples.
  func accumulateProbabilities(_ items: Range<Int>,
                               into probabilities: UnsafeMutableBufferPointer<Double>) {
    let c = model.config.classes, d = test.dimension
    let tape = Tape(recording: false)
    let chunk = 1000
    for k in 0..<predictionSamples {
      var start = items.lowerBound
      while start < items.upperBound {
        let end = min(start + chunk, items.upperBound)
        tape.reset()
        // The sample's weight noise is redrawn per chunk (a pure function of k), which keeps
        // memory to one chunk; its cost is small next to the chunk's forward pass.
        let eps = noise.prediction(model.network, sample: k, tape: tape)
        let x = tape.tensor([end - start, d]), labels = tape.tensor([end - start])
        fill(x, labels, from: test, items: start..<end)
        model.accumulateProbabilities(x: x, weightNoise: eps,
                                      into: probabilities.baseAddress! + start * c, on: tape)
        start = end
      }
    }
  }

  /// One `ClassPrediction` per test image from Σ_s softmax [N, C].
  func summarise(_ probabilities: [Double]) -> [ClassPrediction] {
    let c = model.config.classes, s = Double(predictionSamples)
    return (0..<test.count).map { i in
      ClassPrediction(probabilities: probabilities[(i * c)..<((i + 1) * c)].map { $0 / s },
                      label: Int(test.labels[i]))
    }
  }

  /// The predictions of the whole test set at the current parameters, computed on this rank
  /// alone (no collectives): the last evaluation's when the parameters have not changed since.
  public func testPredictions() -> [ClassPrediction] {
    let key = parameterFingerprint()
    if let cached = cachedPredictions, cached.key == key { return cached.predictions }
    var probabilities = [Double](repeating: 0, count: test.count * model.config.classes)
    probabilities.withUnsafeMutableBufferPointer {
      accumulateProbabilities(0..<test.count, into: $0)
    }
    let predictions = summarise(probabilities)
    cachedPredictions = (key, predictions)
    return predictions
  }

  /// What the predictions depend on: the parameters' bit patterns (a hash) and S.
  func parameterFingerprint() -> [UInt64] {
    let (hash, _) = Communicator.checksum(UnsafeBufferPointer(store.flatValues))
    return [hash, UInt64(predictionSamples)]
  }
}
