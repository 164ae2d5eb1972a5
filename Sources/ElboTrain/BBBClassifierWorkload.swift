import ElboData
import ElboDistributed
import ElboModels
import Foundation

/// Bayes by Backprop (or a plain / dropout baseline) classifying images by their pixel
/// intensities in [0, 1] (Blundell et al. 2015, §5.1): batches, noise, the KL share of each
/// step, and the test-set evaluation with S weight samples.
public final class BBBClassifierWorkload: Workload {
  public static let name = "bbb-classifier"

  public let model: BBBClassifier
  public let options: BBBOptions
  public let seed: UInt64
  public let train: ImageDataset
  public let test: ImageDataset
  private let noise: BBBNoise
  private var lastKL = Double.nan

  public var modelName: String { Self.name }
  public var store: ParameterStore { model.store }
  public var itemCount: Int { train.count }
  public let termNames = ["elbo", "log_likelihood", "kl", "surprise"]

  public init(options: BBBOptions, data: ImageSplit, seed: UInt64) throws {
    var config = BBBClassifier.Config()
    config.network = options.network
    config.inputs = data.train.dimension
    let labels = data.train.labels + data.test.labels
    guard let maxLabel = labels.max(), let minLabel = labels.min(), minLabel >= 0 else {
      throw ElboError("the data set has no labels")
    }
    config.classes = Int(maxLabel) + 1
    model = BBBClassifier(config, seed: seed)
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
    -> (loss: Variable?, termSums: [Double]) {
    guard !items.isEmpty else { return (nil, [0, 0, 0, 0]) }
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
    return (t.loss, bbbTermSums(t, share: share, rowShare: rowShare))
  }

  // MARK: - Evaluation

  /// Test error, test log-likelihood log p̄(y|x) with p̄ = (1/S) Σ_s softmax(f_{w_s}(x)), and the
  /// mean predictive entropy H[p̄] on correctly and wrongly classified test images. Each rank
  /// takes a contiguous share of the test set with the SAME S weight samples; the sums are
  /// all-reduced, so every test image counts once whatever the number of ranks.
  public func evaluate(epoch: Int, communicator: Communicator) throws -> [String: Double] {
    let mine = Sharder.share(of: test.count, rank: communicator.rank, size: communicator.size)
    let c = model.config.classes, d = test.dimension
    let s = model.network.predictionSamples(options.predictSamples)
    var probabilities = [Double](repeating: 0, count: mine.count * c)  // Σ_s softmax [n, C]
    let tape = Tape(recording: false)
    let chunk = 1000
    probabilities.withUnsafeMutableBufferPointer { probs in
      for k in 0..<s {
        var start = mine.lowerBound
        while start < mine.upperBound {
          let end = min(start + chunk, mine.upperBound)
          tape.reset()
          // The sample's weight noise is redrawn per chunk (a pure function of k), which keeps
          // memory to one chunk; its cost is small next to the chunk's forward pass.
          let eps = noise.prediction(model.network, sample: k, tape: tape)
          let x = tape.tensor([end - start, d]), labels = tape.tensor([end - start])
          fill(x, labels, from: test, items: start..<end)
          model.accumulateProbabilities(
            x: x, weightNoise: eps, into: probs.baseAddress! + (start - mine.lowerBound) * c,
            on: tape)
          start = end
        }
      }
    }
    // [errors, Σ log p̄(y), Σ H correct, n correct, Σ H wrong, n wrong]
    var sums = [Double](repeating: 0, count: 6)
    for (i, g) in mine.enumerated() {
      let p = probabilities[(i * c)..<((i + 1) * c)].map { $0 / Double(s) }
      var best = 0, entropy = 0.0
      for j in 0..<c {
        if p[j] > p[best] { best = j }
        if p[j] > 0 { entropy -= p[j] * log(p[j]) }
      }
      let label = Int(test.labels[g])
      sums[1] += log(max(p[label], Double.leastNormalMagnitude))
      if best == label {
        sums[2] += entropy; sums[3] += 1
      } else {
        sums[0] += 1; sums[4] += entropy; sums[5] += 1
      }
    }
    try communicator.allreduceSum(&sums, name: "test-set evaluation")
    let n = Double(test.count)
    let hCorrect = sums[2] / max(sums[3], 1), hWrong = sums[4] / max(sums[5], 1)
    return ["test_error": sums[0] / n, "test_log_likelihood": sums[1] / n,
            "entropy_correct": hCorrect, "entropy_misclassified": hWrong,
            "entropy_ratio": hWrong / hCorrect, "predict_samples": Double(s)]
  }
}
