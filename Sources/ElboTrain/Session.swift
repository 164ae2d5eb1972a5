import ElboCheckpoint
import ElboData
import ElboDistributed
import ElboModels
import ElboReport
import Foundation

/// What each `elbo` command does, from resolved options to its printed result. Kept here (not in
/// the executable) so that tests can run a whole command in-process.
public enum Session {
  /// Prints on rank 0 only.
  static func printer(_ communicator: Communicator) -> (String) -> Void {
    communicator.rank == 0 ? { print($0) } : { _ in }
  }

  static func configureThreads(_ requested: Int?, _ communicator: Communicator) {
    BLAS.threads = requested ?? communicator.defaultThreadsPerRank()
  }

  // MARK: - Configs

  /// A model's defaults: its run defaults and its `Config()`.
  public static func defaultConfig<E: Experiment>(_ type: E.Type) -> RunConfig<E.Config> {
    RunConfig(model: E.name, options: E.runDefaults, config: E.Config())
  }

  /// The config stored in a checkpoint or a run's `config.json` (written by this or an older
  /// Elbo: keys it no longer knows are dropped, keys it lacks keep their defaults).
  public static func storedConfig<E: Experiment>(_ type: E.Type, json: String,
                                                 source: String) throws -> RunConfig<E.Config> {
    var config = defaultConfig(E.self)
    guard let object = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any]
    else { throw ElboError("\(source): the stored config is not a JSON object") }
    try config.apply(E.upgradeLegacyConfig(object), source: source, strict: false)
    return config
  }

  // MARK: - train

  /// Trains model `E` with `config` into the run directory `config.options.out`.
  /// - Parameters:
  ///   - resume: "latest" or a checkpoint path to continue from (the directory is reused).
  ///   - overwrite: replace an earlier run in `options.out` (refused if the directory holds
  ///     anything that is not an Elbo run's; an error together with `resume`).
  /// - Returns: the final held-out metrics.
  @discardableResult
  public static func train<E: Experiment>(_ type: E.Type, _ config: RunConfig<E.Config>,
                                          resume: String?, overwrite: Bool = false,
                                          communicator: Communicator) throws -> [String: Double] {
    if overwrite && resume != nil {
      throw ElboError("--overwrite and --resume cannot be combined: --resume continues the run "
        + "in --out, --overwrite deletes it")
    }
    try config.options.validate()
    try config.config.validate()
    let options = config.options
    configureThreads(options.threads, communicator)
    let say = printer(communicator)
    let run = RunDirectory(path: options.out)
    let json = String(decoding: try config.jsonData(), as: UTF8.self)
    let experiment = try E(config: config.config, seed: options.seed)
    // Before anything else collective: the same build, configuration, model and data everywhere.
    try RunIdentity(experiment: experiment, configJSON: json).checkAgreement(communicator)
    // Run-directory checks happen on rank 0; the verdict is shared so that all ranks stop
    // together with the same message.
    var problem: String? = nil
    if communicator.rank == 0 {
      do {
        if resume == nil { try run.createForNewRun(overwrite: overwrite) } else { try run.ensureWritable() }
        try Data(json.utf8).write(to: URL(fileURLWithPath: run.configFile))
      } catch {
        problem = "\(error)"
      }
    }
    let verdict = try communicator.broadcast(string: problem ?? "", root: 0, name: "run directory check")
    if !verdict.isEmpty { throw ElboError(verdict) }
    say("elbo: config \(try config.compactJSON())")

    let loop = try TrainingLoop(options: options, experiment: experiment, configJSON: json,
                                communicator: communicator, run: run, say: say,
                                progress: communicator.rank == 0 ? ProgressLine.standardOutput(ranks: communicator.size) : nil)
    if let resume { try loop.resume(from: resume) }
    // From here a SIGTERM/SIGUSR1 stops the run at a step boundary with a checkpoint.
    StopSignals.install()
    let final = try loop.train()
    if !final.isEmpty {
      say("done: " + final.keys.sorted().map { "\($0) \(String(format: "%.4g", final[$0]!))" }
        .joined(separator: "  ") + "; run in \(options.out)")
    }
    return final
  }

  // MARK: - eval

  /// Finds the checkpoint for a run directory, its `latest`, or a checkpoint path.
  static func checkpointPath(_ target: String, _ communicator: Communicator) throws -> String {
    var isDir: ObjCBool = false
    guard FileManager.default.fileExists(atPath: target, isDirectory: &isDir) else {
      throw ElboError("\(target): no such run directory or checkpoint")
    }
    let directories: [String]
    if isDir.boolValue {
      directories = [target + "/checkpoints", target]
    } else if (target as NSString).lastPathComponent == "latest" {
      directories = [(target as NSString).deletingLastPathComponent]
    } else {
      return target
    }
    for dir in directories {
      let store = CheckpointStore(directory: dir, communicator: communicator)
      if let path = store.latestPath() { return path }
    }
    throw ElboError("\(target): no checkpoint found (expected \(target)/checkpoints/latest)")
  }

  /// The experiment type that wrote a checkpoint.
  static func experimentType(of state: CheckpointState, path: String,
                             among experiments: [any Experiment.Type]) throws -> any Experiment.Type {
    var names: [String] = []
    for type in experiments {
      if type.name == state.model { return type }
      names.append(type.name)
    }
    throw ElboError("\(path): holds a '\(state.model)' checkpoint; this elbo knows "
      + names.joined(separator: ", "))
  }

  /// The model of a checkpoint, rebuilt from its stored config with its stored parameters.
  static func restoredExperiment<E: Experiment>(_ type: E.Type, state: CheckpointState,
                                                path: String) throws -> (E, RunConfig<E.Config>) {
    let config = try storedConfig(E.self, json: state.configJSON, source: path)
    let experiment = try E(config: config.config, seed: config.options.seed)
    try StoredTensors(state).restoreParameters(of: experiment.store)
    return (experiment, config)
  }

  /// The model of a run directory or checkpoint with its stored parameters, and its step, for a
  /// command that evaluates it in its own way (`elbo evidence RUN`).
  public static func restore(target: String, experiments: [any Experiment.Type],
                             communicator: Communicator) throws -> (experiment: any Experiment, step: Int) {
    let path = try checkpointPath(target, communicator)
    let state = try CheckpointStore.read(path: path)
    let type = try experimentType(of: state, path: path, among: experiments)
    func open<E: Experiment>(_ type: E.Type) throws -> any Experiment {
      try restoredExperiment(E.self, state: state, path: path).0
    }
    return (try open(type), Int(state.step))
  }

  /// `elbo eval`: the model's headline test metrics at a checkpoint, on one line, or with
  /// `json` as ONE JSON line (`kind`, `model`, `step`, `checkpoint`, `seconds` and the metrics,
  /// snake_case); also appended to the run's metrics.jsonl (collective).
  public static func evaluate(target: String, options: EvaluationOptions, threads: Int?,
                              json: Bool = false, experiments: [any Experiment.Type],
                              communicator: Communicator) throws {
    configureThreads(threads, communicator)
    let path = try checkpointPath(target, communicator)
    let state = try CheckpointStore.read(path: path)
    let type = try experimentType(of: state, path: path, among: experiments)
    try evaluate(type, state: state, path: path, target: target, options: options, json: json,
                 communicator: communicator)
  }

  static func evaluate<E: Experiment>(_ type: E.Type, state: CheckpointState, path: String,
                                      target: String, options: EvaluationOptions, json: Bool,
                                      communicator: Communicator) throws {
    let say = printer(communicator)
    let (experiment, _) = try restoredExperiment(E.self, state: state, path: path)
    // Rank 0 shows progress: a bar on a terminal, else plain lines on stderr (stdout carries
    // only the result, e.g. for `elbo eval --json | jq`).
    let progress = communicator.rank == 0
      ? EvaluationProgress(title: "eval \(E.name)",
                           line: ProgressLine.standardOutput(ranks: communicator.size),
                           printLine: { fputs($0 + "\n", stderr) })
      : nil
    let t0 = Date()
    let metrics = try experiment.headlineMetrics(options, communicator: communicator,
                                                 progress: progress.map { p in { p.update(done: $0, total: $1) } })
    let seconds = Date().timeIntervalSince(t0)
    var record: [String: Any] = ["kind": "eval", "checkpoint": path, "seconds": seconds,
                                 "step": Int(state.step), "model": E.name]
    for (k, v) in metrics { record[k] = v }
    if json {
      if communicator.rank == 0 {
        let data = try JSONSerialization.data(withJSONObject: record, options: [.sortedKeys])
        say(String(decoding: data, as: UTF8.self))
      }
    } else {
      say("\(E.name) at step \(state.step) (\(String(format: "%.1f", seconds)) s): "
        + metrics.keys.sorted().map { "\($0) \(String(format: "%.6g", metrics[$0]!))" }
          .joined(separator: "  "))
    }
    try keepInRun(record, target: target, quiet: json, communicator: communicator)
  }

  // MARK: - sample

  /// `elbo sample`: `count` draws from a trained generative model, as a PNG grid at `out`
  /// (default: the run's images/samples-<step>.png). Rank 0 draws; the others wait.
  public static func sample(target: String, count: Int, out: String?, seed: UInt64?,
                            experiments: [any Experiment.Type],
                            communicator: Communicator) throws {
    let path = try checkpointPath(target, communicator)
    let state = try CheckpointStore.read(path: path)
    let type = try experimentType(of: state, path: path, among: experiments)
    try sample(type, state: state, path: path, target: target, count: count, out: out,
               seed: seed, communicator: communicator)
  }

  static func sample<E: Experiment>(_ type: E.Type, state: CheckpointState, path: String,
                                    target: String, count: Int, out: String?, seed: UInt64?,
                                    communicator: Communicator) throws {
    let (experiment, config) = try restoredExperiment(E.self, state: state, path: path)
    var problem = ""
    if communicator.rank == 0 {
      do {
        guard let artifact = try experiment.samples(count: count, seed: seed ?? config.options.seed)
        else { throw ElboError("\(E.name) is not a generative model: it draws no samples") }
        guard case .png(let png) = artifact.content else {
          throw ElboError("\(E.name) drew its samples as \(artifact.fileName), not a PNG")
        }
        var isDir: ObjCBool = false
        let runDir = FileManager.default.fileExists(atPath: target, isDirectory: &isDir)
          && isDir.boolValue ? target : nil
        let file = out ?? (runDir.map { "\($0)/images/samples-step\(state.step).png" }
          ?? "samples-step\(state.step).png")
        if FileManager.default.fileExists(atPath: file) {
          throw ElboError("--out \(file): exists; choose another file")
        }
        let dir = (file as NSString).deletingLastPathComponent
        if !dir.isEmpty {
          try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        }
        try png.write(to: URL(fileURLWithPath: file))
        print("wrote \(file): \(artifact.caption)")
      } catch {
        problem = "\(error)"
      }
    }
    let verdict = try communicator.broadcast(string: problem, root: 0, name: "sample")
    if !verdict.isEmpty { throw ElboError(verdict) }
  }

  /// Evaluating a run directory keeps the result there: in its metrics and its report.
  static func keepInRun(_ record: [String: Any], target: String, quiet: Bool = false,
                        communicator: Communicator) throws {
    let say = printer(communicator)
    if communicator.rank == 0, FileManager.default.fileExists(atPath: target + "/metrics.jsonl") {
      try MetricsLog(path: target + "/metrics.jsonl").write(record)
      do {
        try RunReport.rebuild(runDirectory: target)
        if !quiet { say("report: \(target)/\(RunReport.reportFile)") }
      } catch {
        say("warning: report not rebuilt: \(error)")
      }
    }
  }

  // MARK: - report

  /// Rebuilds a run directory's training curves (plots/) and report.html from its files:
  /// metrics.jsonl, config.json, artifacts.json, images/ and plots/ (rank 0 writes).
  public static func report(_ directory: String, communicator: Communicator) throws {
    guard communicator.rank == 0 else { return }
    for path in try RunReport.rebuild(runDirectory: directory) { print("wrote \(path)") }
  }

  // MARK: - inspect

  public static func inspect(_ target: String, communicator: Communicator) throws {
    let path = try checkpointPath(target, communicator)
    let s = try CheckpointStore.read(path: path)
    let say = printer(communicator)
    say("checkpoint \(path)")
    say("  format version \(s.formatVersion), model '\(s.model)', step \(s.step), epoch \(s.epoch), "
      + "position in epoch \(s.positionInEpoch), seed \(s.seed), written by \(s.rngState.count) rank(s)")
    for t in s.tensors {
      let finite = t.data.allSatisfy { $0.isFinite }
      var sq = 0.0
      for v in t.data { sq += Double(v) * Double(v) }
      say("  \(t.name)  \(t.shape)  rms \(String(format: "%.4g", (sq / Double(max(t.data.count, 1))).squareRoot()))"
        + (finite ? "" : "  NON-FINITE"))
    }
    for k in s.scalars.keys.sorted() { say("  \(k) = \(s.scalars[k]!)") }
    say("  config: \(s.configJSON.replacingOccurrences(of: "\n", with: " "))")
  }

  // MARK: - bench

  /// `elbo bench <model>`: times the trainer's own step (``Trainer/step(_:)``, the default
  /// exchange method) on the model's data and prints ONE JSON line: examples/s, ms per step and
  /// its phases, and the model's own figures (``Experiment/benchmarkFields``).
  public static func benchmark<E: Experiment>(_ type: E.Type, _ config: RunConfig<E.Config>,
                                              steps: Int, warmup: Int,
                                              bucketFloats: Int = AllreduceMethod.defaultBucketFloats,
                                              communicator: Communicator) throws {
    try config.options.validate()
    try config.config.validate()
    configureThreads(config.options.threads, communicator)
    let experiment = try E(config: config.config, seed: config.options.seed)
    let b = config.options.batchSize
    let trainer = try Trainer(experiment: experiment, globalBatch: b,
                              optimizer: Adam(parameterCount: experiment.store.count,
                                              learningRate: config.options.learningRate),
                              method: config.options.allreduce, bucketFloats: bucketFloats,
                              seed: config.options.seed, communicator: communicator)
    var phases = [Double](repeating: 0, count: 5)
    var step = 0
    for _ in 0..<warmup { _ = try trainer.step(step); step += 1 }
    try communicator.barrier(name: "benchmark start")
    let start = now()
    for _ in 0..<steps {
      let s = try trainer.step(step).seconds
      for (i, v) in [s.loss, s.backward, s.reduce, s.update, s.gather].enumerated() { phases[i] += v }
      step += 1
    }
    let stepMs = (now() - start) * 1000 / Double(steps)
    let perStep = { (v: Double) in round3(v * 1000 / Double(steps)) }
    var result: [String: Any] = [
      "model": E.name, "batch_size": b, "parameters": experiment.store.count,
      "threads": BLAS.threads, "ranks": communicator.size, "steps": steps,
      "allreduce": trainer.method.rawValue,
      "step_ms": round3(stepMs), "examples_per_second": round1(Double(b) / (stepMs / 1000)),
      "forward_ms": perStep(phases[0]), "backward_ms": perStep(phases[1]),
      "allreduce_ms": perStep(phases[2] + phases[4]), "optimizer_ms": perStep(phases[3]),
      "openblas_core": BLAS.coreName,
    ]
    for (k, v) in try experiment.benchmarkFields(trainer: trainer, stepMs: stepMs, steps: steps,
                                                  warmup: warmup, communicator: communicator) {
      result[k] = v
    }
    if communicator.rank == 0 {
      let data = try JSONSerialization.data(withJSONObject: result, options: [.sortedKeys])
      print(String(decoding: data, as: UTF8.self))
    }
  }

  public static func checkpointBenchmark(sizeMiB: Int, directory: String, repeats: Int,
                                         communicator: Communicator) throws {
    let r = try CheckpointBenchmark.run(sizeMiB: sizeMiB, directory: directory, repeats: repeats,
                                        communicator: communicator)
    if communicator.rank == 0 {
      let data = try JSONSerialization.data(withJSONObject: r, options: [.sortedKeys])
      print(String(decoding: data, as: UTF8.self))
    }
  }

}
