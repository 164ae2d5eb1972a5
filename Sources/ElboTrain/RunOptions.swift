import ElboModels

/// The options every run has, whatever the model: the schedule, the optimizer, the run
/// directory and the engine. With the model's own `Config` they make a run's resolved config
/// (``RunConfig``), saved as `config.json` and inside every checkpoint.
public struct RunOptions: Codable, Sendable, Equatable {
  public var epochs = 10
  /// Global batch: split across ranks, so the learning curve does not depend on their number.
  public var batchSize = 100
  public var learningRate: Float = 1e-3
  /// Adam's ε. Note: with a loss summed (not averaged) over a batch of B, PyTorch's ε = 1e-8
  /// acts like ε = 1e-8/B here, since Elbo's loss is the batch mean.
  public var adamEpsilon: Float = 1e-8
  public var seed: UInt64 = 0
  public var out = ""
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
  /// Clip each element of the reduced gradient to [−V, V] (nil: no elementwise clipping).
  public var clipValue: Float?
  /// Scale the reduced gradient to L2 norm ≤ C when it is longer (nil: no norm clipping).
  public var clipNorm: Float?

  public init() {}

  /// The gradient clipping these options ask for.
  public var clipping: GradientClipping { GradientClipping(value: clipValue, norm: clipNorm) }

  /// The keys of a config file that are run options (the rest belong to the model).
  public static var keys: Set<String> {
    Set(CodingKeys.allCases.map(\.stringValue))
  }

  enum CodingKeys: String, CodingKey, CaseIterable {
    case epochs, batchSize, learningRate, adamEpsilon, seed, out, threads, logEvery,
         checkpointEvery, keep, maxSteps, nonFiniteSkips, checksumEvery, imageEvery, evalEvery,
         allreduce, clipValue, clipNorm
  }

  /// Checks values a flag parser cannot; the message names the flag.
  public func validate() throws {
    func positive(_ v: Int, _ flag: String) throws {
      if v <= 0 { throw ElboError("\(flag) must be a positive integer (got \(v))") }
    }
    try positive(epochs, "--epochs")
    try positive(batchSize, "--batch-size")
    try positive(logEvery, "--log-every")
    try positive(keep, "--keep")
    if checkpointEvery < 0 { throw ElboError("--checkpoint-every must be ≥ 0 (got \(checkpointEvery))") }
    if imageEvery < 0 { throw ElboError("--image-every must be ≥ 0 (got \(imageEvery))") }
    if checksumEvery < 0 { throw ElboError("--checksum-every must be ≥ 0 (got \(checksumEvery))") }
    if nonFiniteSkips < 0 { throw ElboError("--nonfinite-skips must be ≥ 0 (got \(nonFiniteSkips))") }
    try positive(evalEvery, "--eval-every")
    if let t = threads { try positive(t, "--threads") }
    if let m = maxSteps { try positive(m, "--max-steps") }
    if !(adamEpsilon > 0) || !adamEpsilon.isFinite {
      throw ElboError("--adam-eps must be a positive number (got \(adamEpsilon))")
    }
    for (value, flag) in [(clipValue, "--clip-value"), (clipNorm, "--clip-norm")] {
      if let v = value, !(v > 0) || !v.isFinite {
        throw ElboError("\(flag) must be a positive number (got \(v))")
      }
    }
    if !(learningRate > 0) || !learningRate.isFinite {
      throw ElboError("--lr must be a positive number (got \(learningRate))")
    }
  }
}
