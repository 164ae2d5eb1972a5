import ElboData
import ElboDistributed
import ElboModels
import ElboTrain
import Foundation

/// Real NVP (Dinh et al. 2017) density estimation on a 2-D toy or on 8-bit images.
///
/// Toys (two-moons, checkerboard, 8-gaussians): the points are y; the loss is −log p(y) (nats).
/// Images: each pixel v is dequantised, x = (v + u)/256, and logit-transformed
/// (``LogitTransform``, α = 0.05); the loss is −log p(x) = −(log p(y) + log|dy/dx|), and the
/// report gives bits per dimension of the discrete pixels, −(log p(x) − D log 256)/(D ln 2).
///
/// Noise: the dequantisation of training example g in epoch e is keyed by (seed, dequantisation,
/// e, g), the test set's by a fixed time; toy points by (seed, dataGeneration, split, i); samples
/// by (seed, sampling, row). Nothing depends on the rank, so runs agree on any number of ranks
/// and after a resume.
public final class RealNVPExperiment: Experiment {
  /// Real NVP's options, under "realnvp" in a config.
  public struct Config: ExperimentConfig {
    /// two-moons, checkerboard, 8-gaussians, fashion-mnist, mnist-5k, or a directory of IDX files.
    public var data = "two-moons"
    /// K, coupling layers.
    public var couplings = 8
    /// Hidden widths of every coupling MLP.
    public var hidden = [256, 256]
    public var mask: CouplingMask = .alternating
    public var activation: Activation = .relu
    /// α of the logit transform (images).
    public var alpha = 0.05
    /// Points generated for a toy's training and test sets.
    public var toyTrain = 20_000
    public var toyTest = 5_000

    public init() {}

    public func validate() throws {
      if couplings < 1 { throw ElboError("--couplings must be ≥ 1 (got \(couplings))") }
      if hidden.isEmpty || hidden.contains(where: { $0 < 1 }) {
        throw ElboError("--hidden must list positive widths (got \(hidden))")
      }
      if !(alpha > 0 && alpha < 0.5) {
        throw ElboError("--alpha must be in (0, 0.5) (got \(alpha))")
      }
      if toyTrain < 1 || toyTest < 1 {
        throw ElboError("--toy-train and --toy-test must be positive")
      }
    }
  }

  /// The data as the model sees it: toy points, or pixel values 0…255.
  enum Data {
    case toy(Toy2D, train: [Float], test: [Float])
    case images(train: [Float], test: [Float], rows: Int, cols: Int)
  }

  public static let name = "realnvp"
  public static let summary = "Real NVP: affine-coupling density estimation (2-D toys, images)."
  public static let discussion = """
    log p(y) = log N(f(y); 0, I) + Σ_k Σ_j s_kj, f a chain of K affine couplings with MLP
    coupling networks, alternating masks and tanh-bounded log-scales (Dinh et al. 2017). Toys
    (two-moons, checkerboard, 8-gaussians) are generated from the seed; images are dequantised,
    x = (v + u)/256, and logit-transformed, y = logit(α + (1 − 2α)x), the Jacobian included.
    Logged: log_likelihood (nats; images: of x on the unit cube) and, for images, bits_per_dim;
    per epoch: test_log_likelihood, test_nll and test_bits_per_dim (images) or, for toys with a
    known density, true_test_nll. Pictures: toys: data, model density and samples side by side;
    images: samples (logit undone) beside training images.
    """
  public static var posterior: PosteriorKind { .none }

  public let config: Config
  public let model: RealNVP
  public let seed: UInt64
  let data: Data
  let transform: LogitTransform

  public var store: ParameterStore { model.store }
  public let terms: TermNames
  public var dataDescription: String { config.data }
  public var itemCount: Int { trainCount }
  public var dataDigest: UInt64? {
    switch data {
    case let .toy(_, train, _): return ContentDigest.of(train)
    case let .images(train, _, _, _): return ContentDigest.of(train)
    }
  }
  let trainCount: Int, testCount: Int
  /// D.
  var dimension: Int { model.config.dimension }
  var isImages: Bool { if case .images = data { return true } else { return false } }

  /// The time of the test set's dequantisation noise.
  static let testSetTime: UInt64 = UInt64.max >> 16

  public init(config: Config, seed: UInt64) throws {
    self.config = config
    self.seed = seed
    transform = LogitTransform(alpha: config.alpha)
    var network = RealNVP.Config()
    if let toy = Toy2D(rawValue: config.data) {
      data = .toy(toy, train: toy.points(count: config.toyTrain, seed: seed, split: .train),
                  test: toy.points(count: config.toyTest, seed: seed, split: .test))
      network.dimension = 2
      (trainCount, testCount) = (config.toyTrain, config.toyTest)
      terms = TermNames(bound: "log_likelihood", components: [])
    } else {
      let split: ImageSplit
      do { split = try DatasetCatalog.load(config.data) } catch {
        throw ElboError("--data \(config.data): \(error) (toys: "
          + Toy2D.allCases.map(\.rawValue).joined(separator: ", ") + ")")
      }
      // Back to the 8-bit values v the files hold (intensities are v/255).
      let bytes = { (p: [Float]) in p.map { ($0 * 255).rounded() } }
      data = .images(train: bytes(split.train.pixels), test: bytes(split.test.pixels),
                     rows: split.train.rows, cols: split.train.cols)
      network.dimension = split.train.dimension
      (trainCount, testCount) = (split.train.count, split.test.count)
      terms = TermNames(bound: "log_likelihood", components: ["bits_per_dim"])
    }
    network.couplings = config.couplings
    network.hidden = config.hidden
    network.mask = config.mask
    network.activation = config.activation
    model = RealNVP(network, seed: seed)
  }

  public func objectiveDescription(globalBatch: Int) -> [String] {
    let arch = "K = \(config.couplings) affine couplings (\(config.mask.rawValue) masks), MLP "
      + "\([dimension] + config.hidden + [2 * dimension]) \(config.activation.rawValue), "
      + "s = σ⊙tanh(ŝ) with a learned σ"
    if isImages {
      return ["objective: exact log-likelihood of dequantised, logit-transformed pixels: loss = "
                + "−(1/B) Σ [log N(f(y); 0, I) + log|det ∂f/∂y| + log|dy/dx|] over the global "
                + "batch, B = \(globalBatch); x = (v + u)/256, y = logit(\(config.alpha) + "
                + "(1 − 2·\(config.alpha))x); bits/dim = −(log p(x) − D log 256)/(D ln 2), "
                + "D = \(dimension)", arch]
    }
    return ["objective: exact log-likelihood of the \(config.data) points: loss = −(1/B) Σ "
              + "[log N(f(y); 0, I) + log|det ∂f/∂y|] over the global batch, B = \(globalBatch)",
            arch]
  }

  // MARK: - Batches

  /// Fills y [R, D] with the rows `items` of the training (or test) set and returns each
  /// row's log|dy/dx| (0 for toys). Images: dequantised with noise keyed by (seed, epoch, item).
  func fill(_ y: Tensor, items: some Collection<Int>, test: Bool, epoch: Int) -> [Double] {
    let d = dimension
    switch data {
    case let .toy(_, train, testPoints):
      let src = test ? testPoints : train
      for (r, g) in items.enumerated() {
        y[r * d] = src[g * d]
        y[r * d + 1] = src[g * d + 1]
      }
      return [Double](repeating: 0, count: items.count)
    case let .images(train, testPixels, _, _):
      let src = test ? testPixels : train
      var u = [Float](repeating: 0, count: d)
      var logJacobians: [Double] = []
      logJacobians.reserveCapacity(items.count)
      src.withUnsafeBufferPointer { pixels in
        u.withUnsafeMutableBufferPointer { ub in
          for (r, g) in items.enumerated() {
            var rng = RandomStream(NoiseAddress(
              seed: seed, purpose: .dequantisation,
              time: test ? RealNVPExperiment.testSetTime : UInt64(epoch), item: UInt32(g)))
            rng.fillUniform(ub)
            logJacobians.append(transform.forward(
              pixels: pixels.baseAddress! + g * d, uniforms: ub.baseAddress!,
              out: y.pointer + r * d, count: d))
          }
        }
      }
      return logJacobians
    }
  }

  /// log p per row on `tape`: the model's log p(y) plus the constant log|dy/dx|.
  func logLikelihood(items: some Collection<Int>, test: Bool, epoch: Int, tape: Tape)
    -> Variable {
    let y = tape.tensor([items.count, dimension])                       // [R, D]
    let logJacobian = fill(y, items: items, test: test, epoch: epoch)
    let ld = tape.tensor([items.count])                                 // [R]
    for (r, v) in logJacobian.enumerated() { ld[r] = Float(v) }
    return model.logDensity(tape.constant(y)) + tape.constant(ld)
  }

  /// Bits/dim from a sum of log p(x) over n examples (images).
  func bitsPerDim(sum: Double, count n: Int) -> Double {
    LogitTransform.bitsPerDimension(logDensity: sum / Double(n), dimension: dimension)
  }

  // MARK: - Training

  public func loss(items: ArraySlice<Int>, step: Int, epoch: Int, globalBatch: Int, tape: Tape)
    -> StepLoss {
    guard !items.isEmpty else { return StepLoss(loss: nil, sums: .zero(terms)) }
    let ll = logLikelihood(items: items, test: false, epoch: epoch, tape: tape)   // [R]
    let sum = sumDouble(ll.value)
    // Σ_rows bits/dim: affine in log p, so the trainer's per-term sums stay exact.
    let components = isImages
      ? [Double(items.count) * bitsPerDim(sum: sum, count: items.count)] : []
    return StepLoss(loss: ll.sum().affine(scale: -1 / Float(globalBatch)),
                    sums: TermSums(bound: sum, components: components))
  }

  // MARK: - Evaluation

  /// Test log-likelihood (and bits/dim for images; the true density's NLL on the same points for
  /// toys that have one), each rank on its share of the test set, one all-reduce.
  public func evaluate(epoch: Int, communicator: Communicator) throws -> [String: Double] {
    let mine = Sharder.share(of: testCount, rank: communicator.rank, size: communicator.size)
    var sums = [testLogLikelihoodSum(rows: mine), 0]
    if case let .toy(toy, _, test) = data, toy.logDensity(0, 0) != nil {
      for i in mine { sums[1] += toy.logDensity(Double(test[2 * i]), Double(test[2 * i + 1]))! }
    }
    try communicator.allreduceSum(&sums, name: "test-set evaluation")
    let n = Double(testCount), ll = sums[0] / n
    var out = ["test_log_likelihood": ll, "test_nll": -ll]
    switch data {
    case .images: out["test_bits_per_dim"] = bitsPerDim(sum: sums[0], count: testCount)
    case let .toy(toy, _, _): if toy.logDensity(0, 0) != nil { out["true_test_nll"] = -sums[1] / n }
    }
    return out
  }

  /// Σ log p over the test rows `rows`, in chunks on a tape that records nothing.
  func testLogLikelihoodSum(rows: Range<Int>) -> Double {
    let tape = Tape(recording: false)
    var sum = 0.0, start = rows.lowerBound
    while start < rows.upperBound {
      let end = min(start + 500, rows.upperBound)
      tape.reset()
      sum += sumDouble(logLikelihood(items: start..<end, test: true, epoch: 0, tape: tape).value)
      start = end
    }
    return sum
  }
}
