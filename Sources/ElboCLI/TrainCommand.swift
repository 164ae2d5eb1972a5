import ArgumentParser
import ElboTrain
import Foundation

/// `elbo train`: one subcommand per model of the registry.
struct Train: ParsableCommand {
  static var configuration: CommandConfiguration {
    CommandConfiguration(abstract: "Train a model.",
                         subcommands: ElboCLI.trainCommands)
  }
}

/// `elbo train <model>`: the model's flags, the run flags with its defaults, and the session.
struct TrainModel<E: CommandLineModel>: ParsableCommand {
  static var configuration: CommandConfiguration {
    CommandConfiguration(commandName: E.name, abstract: E.summary, discussion: E.discussion)
  }

  @OptionGroup(title: "Model options") var model: E.Flags
  @OptionGroup(title: "Run options") var runFlags: RunFlags<E>
  @OptionGroup var session: SessionFlags

  func run() throws {
    let communicator = ElboCLI.communicator!
    let config = try resolvedConfig()
    if let debugLog = session.debugLog { try communicator.openDebugLog(directory: debugLog) }
    try Session.train(E.self, config, resume: session.resume, overwrite: session.overwrite,
                      communicator: communicator)
  }

  /// Model defaults < the run's own config.json (with --resume) < --config FILE < flags.
  func resolvedConfig() throws -> RunConfig<E.Config> {
    var config = Session.defaultConfig(E.self)
    var fromFile = config
    if let file = session.config { try fromFile.apply(file: file) }
    if session.resume != nil {
      guard let out = runFlags.out ?? (fromFile.options.out.isEmpty ? nil : fromFile.options.out)
      else { throw ElboError("--resume needs --out: the run directory to continue") }
      // Rank 0 reads the run's config and hands it to the others (it rewrites the file
      // soon after, so other ranks must not read it themselves).
      let saved = out + "/config.json"
      let communicator = ElboCLI.communicator!
      let local = communicator.rank == 0
        ? FileManager.default.contents(atPath: saved).map { String(decoding: $0, as: UTF8.self) }
        : nil
      let text = try communicator.broadcast(string: local ?? "", root: 0, name: "run config")
      if !text.isEmpty {
        config = try Session.storedConfig(E.self, json: text, source: saved)
      }
    }
    if let file = session.config { try config.apply(file: file) }
    runFlags.apply(to: &config.options)
    model.apply(to: &config.config)
    if config.options.out.isEmpty { config.options.out = "runs/\(E.name)-\(timestamp())" }
    return config
  }
}

/// `elbo bench`: one subcommand per model, and the checkpoint benchmark.
struct Bench: ParsableCommand {
  static var configuration: CommandConfiguration {
    CommandConfiguration(abstract: "Benchmarks; each prints ONE JSON line.",
                         subcommands: ElboCLI.benchCommands + [BenchCheckpoint.self])
  }
}

/// `elbo bench <model>`: the trainer's own step on the model's data, timed.
struct BenchModel<E: CommandLineModel>: ParsableCommand {
  static var configuration: CommandConfiguration {
    CommandConfiguration(
      commandName: E.name,
      abstract: "Training-step speed of \(E.name): the trainer's own step (batch, loss, "
        + "backward, exchange, optimizer), timed, with the model's own reference figures.")
  }

  @OptionGroup(title: "Model options") var model: E.Flags
  @Option(help: "Global batch size (default \(E.runDefaults.batchSize)).") var batchSize: Int?
  @Option(help: "OpenBLAS threads per rank.") var threads: Int?
  @Option(help: "Timed steps.") var steps = 500
  @Option(help: "Warm-up steps.") var warmup = 50
  @Option(help: "Gradient exchange (default \(E.runDefaults.allreduce.rawValue)).")
  var allreduce: AllreduceMethod?
  @Option(help: "Floats per bucket of the bucketed exchange.")
  var bucketFloats = AllreduceMethod.defaultBucketFloats
  @Option(help: "A YAML or JSON file of options, as for `elbo train` (flags override it).",
          completion: .file())
  var config: String?

  func run() throws {
    for (v, flag) in [(steps, "--steps"), (bucketFloats, "--bucket-floats")] where v <= 0 {
      throw ElboError("\(flag) must be a positive integer (got \(v))")
    }
    var c = Session.defaultConfig(E.self)
    if let config { try c.apply(file: config) }
    if let batchSize { c.options.batchSize = batchSize }
    if let threads { c.options.threads = threads }
    if let allreduce { c.options.allreduce = allreduce }
    model.apply(to: &c.config)
    try Session.benchmark(E.self, c, steps: steps, warmup: max(0, warmup),
                          bucketFloats: bucketFloats, communicator: ElboCLI.communicator)
  }
}
