import ElboModels

/// Everything that defines a training run, resolved (defaults filled in) and saved as
/// `config.json` in the run directory and inside every checkpoint.
public struct TrainingOptions: Codable, Sendable, Equatable {
  public var model = "vae"
  public var data = "fashion-mnist"
  public var epochs = 10
  /// Global batch: split across ranks, so the learning curve does not depend on their number.
  public var batchSize = 100
  public var learningRate: Float = 1e-3
  /// Adam's ε. Note: with a loss summed (not averaged) over a batch of B, PyTorch's ε = 1e-8
  /// acts like ε = 1e-8/B here, since Elbo's loss is the batch mean.
  public var adamEpsilon: Float = 1e-8
  public var seed: UInt64 = 0
  public var binarize: Binarization = .static
  public var vae = VAE.Config()
  /// Bayes by Backprop (models bbb-regression, bbb-classifier).
  public var bbb = BBBOptions()
  public var out = "runs/vae"
  /// OpenBLAS threads per rank (nil: cores per node ÷ ranks per node).
  public var threads: Int?
  /// Progress line and metrics record every this many steps.
  public var logEvery = 100
  /// Checkpoint every this many steps (0: only at the end).
  public var checkpointEvery = 0
  /// Checkpoints kept on disk.
  public var keep = 3
  /// Stop after this many optimizer steps in total (checkpointing at the end).
  public var maxSteps: Int?
  /// Consecutive non-finite steps to skip before stopping (0: stop at the first).
  public var nonFiniteSkips = 0
  /// Steps between cross-rank parameter checksums (silent-divergence detector).
  public var checksumEvery = 500
  /// Refresh images/, plots/ and report.html every this many steps (0: at each epoch end);
  /// always at the end of training too.
  public var imageEvery = 0
  /// Evaluate on held-out data every this many epochs (and always after the last step).
  public var evalEvery = 1
  /// How the gradient is summed over ranks (same result up to float summation order).
  public var allreduce = AllreduceMethod.trainerDefault

  public init() {}

  /// Decodes a stored config; keys it lacks (written by an older Elbo) keep their defaults.
  public init(from decoder: Decoder) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    func get<T: Decodable>(_ key: CodingKeys, _ value: inout T) throws {
      if let v = try c.decodeIfPresent(T.self, forKey: key) { value = v }
    }
    try get(.model, &model); try get(.data, &data); try get(.epochs, &epochs)
    try get(.batchSize, &batchSize); try get(.learningRate, &learningRate)
    try get(.adamEpsilon, &adamEpsilon); try get(.seed, &seed); try get(.binarize, &binarize)
    try get(.vae, &vae); try get(.bbb, &bbb); try get(.out, &out)
    threads = try c.decodeIfPresent(Int.self, forKey: .threads)
    try get(.logEvery, &logEvery); try get(.checkpointEvery, &checkpointEvery)
    try get(.keep, &keep)
    maxSteps = try c.decodeIfPresent(Int.self, forKey: .maxSteps)
    try get(.nonFiniteSkips, &nonFiniteSkips); try get(.checksumEvery, &checksumEvery)
    try get(.imageEvery, &imageEvery); try get(.evalEvery, &evalEvery)
    try get(.allreduce, &allreduce)
  }

  /// Checks values a flag parser cannot; the message names the flag.
  public func validate() throws {
    func positive(_ v: Int, _ flag: String) throws {
      if v <= 0 { throw ElboError("\(flag) must be a positive integer (got \(v))") }
    }
    try positive(epochs, "--epochs")
    try positive(batchSize, "--batch-size")
    try positive(vae.latent, "--latent")
    try positive(vae.hidden, "--hidden")
    try positive(vae.samples, "--k")
    try positive(logEvery, "--log-every")
    try positive(keep, "--keep")
    if checkpointEvery < 0 { throw ElboError("--checkpoint-every must be ≥ 0 (got \(checkpointEvery))") }
    if imageEvery < 0 { throw ElboError("--image-every must be ≥ 0 (got \(imageEvery))") }
    try positive(evalEvery, "--eval-every")
    if let t = threads { try positive(t, "--threads") }
    if let m = maxSteps { try positive(m, "--max-steps") }
    if !(adamEpsilon > 0) || !adamEpsilon.isFinite {
      throw ElboError("--adam-eps must be a positive number (got \(adamEpsilon))")
    }
    if !(learningRate > 0) || !learningRate.isFinite {
      throw ElboError("--lr must be a positive number (got \(learningRate))")
    }
    if model.hasPrefix("bbb") { try bbb.validate() }
  }
}
