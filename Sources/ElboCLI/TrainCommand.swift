import ArgumentParser
import ElboData
import ElboDistributed
import ElboModels
import ElboTrain
import Foundation

extension Activation: ExpressibleByArgument {}
extension VAE.Objective: ExpressibleByArgument {}
extension Binarization: ExpressibleByArgument {}
extension AllreduceMethod: ExpressibleByArgument {}

struct Train: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Train a model.",
    subcommands: [TrainVAE.self, TrainBBBRegression.self, TrainBBBClassifier.self])
}

/// Flags shared by every model's training command.
struct RunFlags: ParsableArguments {
  @Option(help: "Training epochs (default 10; bbb-regression 500).") var epochs: Int?
  @Option(help: "GLOBAL batch size (split across ranks).") var batchSize = 100
  @Option(name: .customLong("lr"), help: "Adam learning rate (default 1e-3; bbb-regression 1e-2).")
  var learningRate: Float?
  @Option(name: .customLong("adam-eps"), help: "Adam's ε.") var adamEpsilon: Float = 1e-8
  @Option(help: "Seed: initialisation, shuffling and all noise derive from it.")
  var seed: UInt64 = 0
  @Option(help: "Run directory (must be new or empty unless --resume or --overwrite).")
  var out: String?
  @Option(help: "OpenBLAS threads per rank (default: cores per node ÷ ranks per node).")
  var threads: Int?
  @Option(help: "Log a progress line and a metrics record every N steps.") var logEvery = 100
  @Option(help: "Write a checkpoint every N optimizer steps (0: only at the end).")
  var checkpointEvery = 0
  @Option(help: "Checkpoints to keep.") var keep = 3
  @Option(help: "Stop after N optimizer steps in total (a checkpoint is written).")
  var maxSteps: Int?
  @Option(help: "Resume the run in --out from 'latest' or from a checkpoint file.")
  var resume: String?
  @Option(name: .customLong("nonfinite-skips"),
          help: "Consecutive non-finite steps to skip before stopping (default 0: stop).")
  var nonFiniteSkips = 0
  @Option(help: ArgumentHelp("Redraw images/, plots/ and report.html every N steps (0: at each "
    + "epoch end; default 0, bbb-regression 1000)."))
  var imageEvery: Int?
  @Option(help: ArgumentHelp("Evaluate on held-out data every N epochs and after the last step "
    + "(default 1; bbb-regression 10)."))
  var evalEvery: Int?
  @Flag(help: "Replace an earlier run in --out (refused unless the directory holds only an Elbo run's files).")
  var overwrite = false
  @Option(help: ArgumentHelp("Gradient all-reduce: sharded (reduce-scatter, each rank's Adam on "
    + "its 1/N of the parameters, all-gather; through shared memory on one node), fused (one "
    + "MPI_Allreduce after backward) or bucketed (MPI_Iallreduce per bucket, overlapped with "
    + "backward); `elbo bench vae` times all three."))
  var allreduce = AllreduceMethod.trainerDefault
  @Option(help: ArgumentHelp("Each rank writes DIR/rank-<r>.log: host, pid, network namespace, "
    + "collectives entered and left, per-step timings (default: $ELBO_DEBUG_LOG).",
    valueName: "DIR"))
  var debugLog: String?

  /// Copies the flags every model shares into `o`.
  /// A flag left out keeps the value already in `o` (the model's default).
  func apply(to o: inout TrainingOptions) {
    if let epochs { o.epochs = epochs }
    o.batchSize = batchSize
    if let learningRate { o.learningRate = learningRate }
    o.adamEpsilon = adamEpsilon
    o.seed = seed
    o.out = out ?? "runs/\(o.model)-\(timestamp())"
    o.threads = threads
    o.logEvery = logEvery
    o.checkpointEvery = checkpointEvery
    o.keep = keep
    o.maxSteps = maxSteps
    o.nonFiniteSkips = nonFiniteSkips
    if let imageEvery { o.imageEvery = imageEvery }
    if let evalEvery { o.evalEvery = evalEvery }
    o.allreduce = allreduce
  }

  /// Validates `o` and trains it, honouring --resume and --overwrite.
  func train(_ o: TrainingOptions) throws {
    try o.validate()
    if let debugLog { try communicator.openDebugLog(directory: debugLog) }
    try Session.train(o, resume: resume, overwrite: overwrite, communicator: communicator)
  }
}

struct TrainVAE: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "vae",
    abstract: "Variational autoencoder (ELBO or IWAE bound) on binarised images.",
    discussion: """
      Encoder 784-H-…-H → (μ, log σ²) of a diagonal Gaussian q(z|x); decoder the reverse with
      Bernoulli logits; prior N(0, I). Logged per window: F = −ELBO, log p(x|z), the analytic
      KL, the Monte Carlo surprise log p(z) − log q(z|x); per epoch: test ELBO, active units.
      """)

  @Option(help: "fashion-mnist, mnist-5k, or a directory of IDX files.") var data = "fashion-mnist"
  @Option(help: "Latent units.") var latent = 50
  @Option(help: "Hidden units per layer.") var hidden = 200
  @Option(help: "Hidden layers in encoder and decoder.") var hiddenLayers = 2
  @Option(help: "relu, tanh, elu, softplus or sigmoid.") var activation: Activation = .relu
  @Option(help: "elbo or iwae.") var objective: VAE.Objective = .elbo
  @Option(help: "Samples per example (k of the IWAE bound).") var k = 1
  @Option(help: "static (threshold 0.5) or dynamic (resampled each epoch).")
  var binarize: Binarization = .static
  @OptionGroup var flags: RunFlags

  func run() throws {
    var o = TrainingOptions()
    o.model = "vae"
    flags.apply(to: &o)
    o.data = data
    o.binarize = binarize
    o.vae.latent = latent
    o.vae.hidden = hidden
    o.vae.hiddenLayers = hiddenLayers
    o.vae.activation = activation
    o.vae.objective = objective
    o.vae.samples = k
    try flags.train(o)
  }
}

/// UTC time stamp for default run directory names (agreed by all ranks: rank 0's is broadcast).
func timestamp() -> String {
  let f = DateFormatter()
  f.dateFormat = "yyyyMMdd-HHmmss"
  f.timeZone = TimeZone(identifier: "UTC")
  let local = f.string(from: Date())
  return (try? communicator.broadcast(string: local, root: 0, name: "run name")) ?? local
}
