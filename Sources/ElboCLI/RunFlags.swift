import ArgumentParser
import ElboTrain
import Foundation

extension AllreduceMethod: ExpressibleByArgument {}

/// The flags every model's `elbo train` shares; their help names model `E`'s defaults.
struct RunFlags<E: Experiment>: ParsableArguments {
  @Option(help: withDefault("Training epochs", E.runDefaults.epochs)) var epochs: Int?
  @Option(help: withDefault("GLOBAL batch size (split across ranks)", E.runDefaults.batchSize))
  var batchSize: Int?
  @Option(name: .customLong("lr"), help: withDefault("Adam learning rate", E.runDefaults.learningRate))
  var learningRate: Float?
  @Option(name: .customLong("adam-eps"), help: withDefault("Adam's ε", E.runDefaults.adamEpsilon))
  var adamEpsilon: Float?
  @Option(help: withDefault("Seed: initialisation, shuffling and all noise derive from it",
                            E.runDefaults.seed))
  var seed: UInt64?
  @Option(help: "Run directory (must be new or empty unless --resume or --overwrite; default runs/\(E.name)-<UTC time>).")
  var out: String?
  @Option(help: "OpenBLAS threads per rank (default: cores per node ÷ ranks per node).")
  var threads: Int?
  @Option(help: withDefault("Log a progress line and a metrics record every N steps",
                            E.runDefaults.logEvery))
  var logEvery: Int?
  @Option(help: withDefault("Write a checkpoint every N optimizer steps (0: only at the end)",
                            E.runDefaults.checkpointEvery))
  var checkpointEvery: Int?
  @Option(help: withDefault("Checkpoints to keep", E.runDefaults.keep)) var keep: Int?
  @Option(help: "Stop after N optimizer steps in total (evaluated and checkpointed at the end).")
  var maxSteps: Int?
  @Option(name: .customLong("nonfinite-skips"),
          help: withDefault("Consecutive non-finite steps to skip before stopping (0: stop)",
                            E.runDefaults.nonFiniteSkips))
  var nonFiniteSkips: Int?
  @Option(help: withDefault("Steps between cross-rank parameter checksums (0: never)",
                            E.runDefaults.checksumEvery))
  var checksumEvery: Int?
  @Option(help: withDefault("Redraw images/, plots/ and report.html every N steps (0: at each "
    + "epoch end)", E.runDefaults.imageEvery))
  var imageEvery: Int?
  @Option(help: withDefault("Evaluate on held-out data every N epochs and after the last step",
                            E.runDefaults.evalEvery))
  var evalEvery: Int?
  @Option(help: ArgumentHelp("Gradient exchange: sharded (reduce-scatter, each rank's Adam on "
    + "its 1/N of the parameters, all-gather; through shared memory on one node), fused (one "
    + "MPI_Allreduce after backward) or bucketed (MPI_Iallreduce per bucket, overlapped with "
    + "backward) (default \(E.runDefaults.allreduce.rawValue))."))
  var allreduce: AllreduceMethod?
  @Option(help: ArgumentHelp("Clip each element of the summed gradient to [−V, V] before the "
    + "optimizer step (default: off)."))
  var clipValue: Float?
  @Option(help: ArgumentHelp("Scale the summed gradient to L2 norm ≤ C when it is longer "
    + "(after --clip-value; default: off). The norm before clipping is logged as grad_norm."))
  var clipNorm: Float?

  /// Sets the options whose flags were given.
  func apply(to o: inout RunOptions) {
    if let epochs { o.epochs = epochs }
    if let batchSize { o.batchSize = batchSize }
    if let learningRate { o.learningRate = learningRate }
    if let adamEpsilon { o.adamEpsilon = adamEpsilon }
    if let seed { o.seed = seed }
    if let out { o.out = out }
    if let threads { o.threads = threads }
    if let logEvery { o.logEvery = logEvery }
    if let checkpointEvery { o.checkpointEvery = checkpointEvery }
    if let keep { o.keep = keep }
    if let maxSteps { o.maxSteps = maxSteps }
    if let nonFiniteSkips { o.nonFiniteSkips = nonFiniteSkips }
    if let checksumEvery { o.checksumEvery = checksumEvery }
    if let imageEvery { o.imageEvery = imageEvery }
    if let evalEvery { o.evalEvery = evalEvery }
    if let allreduce { o.allreduce = allreduce }
    if let clipValue { o.clipValue = clipValue }
    if let clipNorm { o.clipNorm = clipNorm }
  }
}

/// Flags of `elbo train` about the run rather than its options.
struct SessionFlags: ParsableArguments {
  @Option(help: ArgumentHelp("A YAML or JSON file of options (the layout of a run's "
    + "config.json: run options at the top, the model's under its name); flags override it.",
    valueName: "FILE"))
  var config: String?
  @Option(help: ArgumentHelp("Resume the run in --out from 'latest' or from a checkpoint file "
    + "(its config.json is the starting point; flags and --config override it)."))
  var resume: String?
  @Flag(help: "Replace an earlier run in --out (refused unless the directory holds only an Elbo run's files).")
  var overwrite = false
  @Option(help: ArgumentHelp("Each rank writes DIR/rank-<r>.log: host, pid, network namespace, "
    + "collectives entered and left, per-step timings (default: $ELBO_DEBUG_LOG).",
    valueName: "DIR"))
  var debugLog: String?
}

/// UTC time stamp for default run directory names (agreed by all ranks: rank 0's is broadcast).
func timestamp() -> String {
  let f = DateFormatter()
  f.dateFormat = "yyyyMMdd-HHmmss"
  f.timeZone = TimeZone(identifier: "UTC")
  let local = f.string(from: Date())
  return (try? ElboCLI.communicator.broadcast(string: local, root: 0, name: "run name")) ?? local
}
