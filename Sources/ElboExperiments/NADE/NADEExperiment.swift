import ElboData
import ElboDistributed
import ElboModels
import ElboTrain
import Foundation

/// NADE (Larochelle & Murray 2011) on binarised images: batches, exact test log-likelihood,
/// pictures. No latent variable and no bound — the loss is the exact negative log-likelihood,
/// so the trainer's "bound" term is log p(x) itself.
///
/// Noise: dynamic binarisation is keyed by (seed, epoch, example) (``BinaryImages``); samples
/// by (seed, evaluation, time, sample index). Nothing depends on the rank, so a run's numbers
/// are the same on any number of ranks and after a resume.
public final class NADEExperiment: BinaryImageExperiment {
  /// NADE's options, flat under "nade" in a config.
  public struct Config: ExperimentConfig {
    /// fashion-mnist, mnist-5k, or a directory of IDX files.
    public var data = "fashion-mnist"
    public var binarize: Binarization = .static
    /// D, pixels per image.
    public var inputs = 784
    /// H, sigmoid hidden units (500 in the paper).
    public var hidden = 500

    public init() {}

    public var network: NADE.Config { NADE.Config(inputs: inputs, hidden: hidden) }

    public func validate() throws {
      if hidden <= 0 { throw ElboError("--hidden must be a positive integer (got \(hidden))") }
      if inputs <= 0 { throw ElboError("inputs must be a positive integer (got \(inputs))") }
    }
  }

  public static let name = "nade"
  public static let summary = "NADE: exact autoregressive likelihood of binarised images."
  public static let discussion = """
    p(x) = Π_d σ(b_d + V_d·h_d)^x_d (1 − σ(…))^(1−x_d), h_d = σ(c + W_<d x_<d), W tied over
    the D conditionals (Larochelle & Murray 2011), one fused O(HD) op. The loss is the exact
    −log p(x) (no posterior, no surprise plot). Logged per window: log_likelihood (and F =
    −log p); per epoch: test_log_likelihood and test_nll (nats, exact). Pictures: 64 ancestral
    samples (fixed noise) and test digits beside their conditionals p(x_d = 1 | x_<d).
    """
  public static var posterior: PosteriorKind { .none }

  public let config: Config
  public let model: NADE
  public let seed: UInt64
  public let images: BinaryImages

  public var store: ParameterStore { model.store }
  public let terms = TermNames(bound: "log_likelihood", components: [])
  public var dataDescription: String { config.data }

  public init(config: Config, seed: UInt64) throws {
    self.config = config
    self.seed = seed
    images = try BinaryImages(data: config.data, binarization: config.binarize, seed: seed,
                              expectedDimension: config.inputs, model: "NADE")
    model = NADE(config.network, seed: seed)
  }

  public func objectiveDescription(globalBatch: Int) -> [String] {
    ["objective: exact log-likelihood (no bound): loss = −(1/B) Σ log p(x) over the global "
      + "batch, B = \(globalBatch); H = \(config.hidden); \(config.binarize.rawValue) binarisation"]
  }

  // MARK: - Training

  public func loss(items: ArraySlice<Int>, step: Int, epoch: Int, globalBatch: Int, tape: Tape)
    -> StepLoss {
    guard !items.isEmpty else { return StepLoss(loss: nil, sums: .zero(terms)) }
    let x = tape.tensor([items.count, config.inputs])                  // [R, D]
    images.fillTrain(x, items: items, epoch: epoch)
    let t = model.terms(x: x, normalizer: Float(globalBatch), on: tape)
    return StepLoss(loss: t.loss, sums: TermSums(bound: sumDouble(t.logLikelihood),
                                                 components: []))
  }

  // MARK: - Evaluation

  /// Exact test log-likelihood, each rank on its share of the test set, every example counted
  /// once whatever the number of ranks (one all-reduce).
  public func evaluate(epoch: Int, communicator: Communicator) throws -> [String: Double] {
    let mine = Sharder.share(of: test.count, rank: communicator.rank, size: communicator.size)
    let sum = testLogLikelihoodSum(rows: mine)
    let total = try communicator.allreduceSum(sum, name: "test-set evaluation")
    let ll = total / Double(test.count)
    return ["test_log_likelihood": ll, "test_nll": -ll]
  }

  /// Σ log p(x) over the binary test rows `rows`, in chunks on a tape that records nothing.
  func testLogLikelihoodSum(rows: Range<Int>) -> Double {
    let tape = Tape(recording: false)
    var sum = 0.0, start = rows.lowerBound
    while start < rows.upperBound {
      let end = min(start + 500, rows.upperBound)
      tape.reset()
      let x = tape.tensor([end - start, config.inputs])                // [chunk, D]
      images.fillTest(x, rows: start..<end)
      sum += sumDouble(model.terms(x: x, normalizer: 1, on: tape).logLikelihood)
      start = end
    }
    return sum
  }
}
