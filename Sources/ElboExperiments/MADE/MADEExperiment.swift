import ElboData
import ElboDistributed
import ElboModels
import ElboTrain
import Foundation

/// MADE (Germain et al. 2015) on binarised images: batches under the step's mask, the
/// M-mask test log-likelihood, pictures.
///
/// Noise: the training mask of step t is `MADE.trainingMaskIndex(step: t)` (keyed by seed and
/// step), dynamic binarisation by (seed, epoch, example), samples by (seed, sample index) —
/// never by rank, so runs are identical on any number of ranks and after a resume.
public final class MADEExperiment: BinaryImageExperiment {
  /// MADE's options, flat under "made" in a config.
  public struct Config: ExperimentConfig {
    /// fashion-mnist, mnist-5k, or a directory of IDX files.
    public var data = "fashion-mnist"
    public var binarize: Binarization = .static
    /// D, pixels per image.
    public var inputs = 784
    /// Hidden widths, one per layer (Germain et al.: [500] or [500, 500]).
    public var hidden = [500]
    public var activation: Activation = .relu
    /// Masks drawn from per minibatch (Germain et al.'s best one-layer MNIST result: 32).
    public var masks = 32
    /// Each mask also draws its own input ordering.
    public var orderAgnostic = false
    /// M, masks averaged (log-mean-exp) by the test log-likelihood.
    public var testMasks = 8
    /// Direct masked input→output connections.
    public var direct = false

    public init() {}

    public var network: MADE.Config {
      var c = MADE.Config()
      c.inputs = inputs; c.hidden = hidden; c.activation = activation; c.masks = masks
      c.orderAgnostic = orderAgnostic; c.testMasks = testMasks; c.directConnections = direct
      return c
    }

    public func validate() throws {
      if hidden.isEmpty || hidden.contains(where: { $0 <= 0 }) {
        throw ElboError("--hidden must be positive widths separated by commas, e.g. 500 or "
          + "500,500 (got \(hidden.map(String.init).joined(separator: ",")))")
      }
      if masks <= 0 { throw ElboError("--masks must be a positive integer (got \(masks))") }
      if testMasks <= 0 {
        throw ElboError("--test-masks must be a positive integer (got \(testMasks))")
      }
      if orderAgnostic && masks == 1 {
        throw ElboError("--order-agnostic needs --masks > 1 (one mask keeps the natural order)")
      }
      if inputs <= 0 { throw ElboError("inputs must be a positive integer (got \(inputs))") }
    }
  }

  public static let name = "made"
  public static let summary = "MADE: masked autoencoder, exact likelihood per mask, on binarised images."
  public static let discussion = """
    Masked MLP 784-H-…-784 with Bernoulli outputs whose masks make output d depend only on
    inputs before d in the mask's ordering (Germain et al. 2015). Each minibatch uses one of
    --masks masks, drawn by the step; the loss is the exact −log p(x | mask). Logged per window:
    log_likelihood under the step's mask; per epoch: test_log_likelihood = log-mean-exp over
    --test-masks masks, test_log_likelihood_mask0 (one mask) and test_nll (nats). Pictures: 64
    ancestral samples under mask 0 and test digits beside their conditionals under mask 0.
    """
  public static var posterior: PosteriorKind { .none }

  public let config: Config
  public let model: MADE
  public let seed: UInt64
  public let images: BinaryImages

  public var store: ParameterStore { model.store }
  public let terms = TermNames(bound: "log_likelihood", components: [])
  public var dataDescription: String { config.data }

  public init(config: Config, seed: UInt64) throws {
    self.config = config
    self.seed = seed
    images = try BinaryImages(data: config.data, binarization: config.binarize, seed: seed,
                              expectedDimension: config.inputs, model: "MADE")
    model = MADE(config.network, seed: seed)
  }

  public func objectiveDescription(globalBatch: Int) -> [String] {
    ["objective: exact log-likelihood under the step's mask (one of \(config.masks), drawn "
      + "per step\(config.orderAgnostic ? ", each with its own ordering" : ", natural ordering")"
      + "): loss = −(1/B) Σ log p(x | mask) over the global batch, B = \(globalBatch); test: "
      + "log-mean-exp over \(model.testMaskIndices.count) masks; "
      + "\(config.binarize.rawValue) binarisation"]
  }

  // MARK: - Training

  public func loss(items: ArraySlice<Int>, step: Int, epoch: Int, globalBatch: Int, tape: Tape)
    -> StepLoss {
    guard !items.isEmpty else { return StepLoss(loss: nil, sums: .zero(terms)) }
    let x = tape.tensor([items.count, config.inputs])                  // [R, D]
    images.fillTrain(x, items: items, epoch: epoch)
    let t = model.terms(x: x, maskIndex: model.trainingMaskIndex(step: UInt64(step)),
                        normalizer: Float(globalBatch), on: tape)
    return StepLoss(loss: t.loss, sums: TermSums(bound: sumDouble(t.logLikelihood),
                                                 components: []))
  }

  // MARK: - Evaluation

  /// The test log-likelihood averaged over the test masks (log-mean-exp, ``MADE/testLogLikelihood``)
  /// and under mask 0 alone, each rank on its share of the test set, every example counted once
  /// whatever the number of ranks (one all-reduce).
  public func evaluate(epoch: Int, communicator: Communicator) throws -> [String: Double] {
    let mine = Sharder.share(of: test.count, rank: communicator.rank, size: communicator.size)
    var sums = [0.0, 0.0]                                  // Σ log-mean-exp, Σ log p(x | mask 0)
    let tape = Tape(recording: false)
    var start = mine.lowerBound
    while start < mine.upperBound {
      let end = min(start + 500, mine.upperBound)
      let x = Tensor(zeros: [end - start, config.inputs])              // [chunk, D]
      images.fillTest(x, rows: start..<end)
      sums[0] += model.testLogLikelihood(x).reduce(0, +)
      tape.reset()
      sums[1] += sumDouble(model.logLikelihood(x, maskIndex: 0, on: tape).value)
      start = end
    }
    try communicator.allreduceSum(&sums, name: "test-set evaluation")
    let n = Double(test.count)
    return ["test_log_likelihood": sums[0] / n, "test_nll": -sums[0] / n,
            "test_log_likelihood_mask0": sums[1] / n,
            "test_masks": Double(model.testMaskIndices.count)]
  }
}
