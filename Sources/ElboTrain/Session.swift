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

  /// The workload `options.model` names. Each model adds its case here (and its
  /// `elbo train <model>` subcommand); the loop, checkpoints and outputs are shared.
  static func makeWorkload(_ options: TrainingOptions) throws -> Workload {
    switch options.model {
    case "vae": return try vaeWorkload(options)
    case BBBRegressionWorkload.name:
      return BBBRegressionWorkload(options: options.bbb, seed: options.seed)
    case BBBClassifierWorkload.name:
      return try BBBClassifierWorkload(options: options.bbb, data: DatasetCatalog.load(options.data),
                                       seed: options.seed)
    default: throw ElboError("unknown model '\(options.model)'")
    }
  }

  /// Builds the VAE workload for `options` (loads and binarises the data).
  static func vaeWorkload(_ options: TrainingOptions) throws -> VAEWorkload {
    let data = try DatasetCatalog.load(options.data)
    guard data.train.dimension == options.vae.inputs else {
      throw ElboError("--data \(options.data): images have \(data.train.dimension) pixels; "
        + "the VAE expects \(options.vae.inputs)")
    }
    let model = VAE(options.vae, seed: options.seed)
    return VAEWorkload(model: model, data: data, binarization: options.binarize,
                       seed: options.seed)
  }

  // MARK: - train

  /// Trains `options.model` into the run directory `options.out`.
  /// - Parameters:
  ///   - resume: "latest" or a checkpoint path to continue from (the directory is reused).
  ///   - overwrite: replace an earlier run in `options.out` (refused if the directory holds
  ///     anything that is not an Elbo run's; an error together with `resume`).
  public static func train(_ options: TrainingOptions, resume: String?, overwrite: Bool = false,
                           communicator: Communicator) throws {
    if overwrite && resume != nil {
      throw ElboError("--overwrite and --resume cannot be combined: --resume continues the run "
        + "in --out, --overwrite deletes it")
    }
    configureThreads(options.threads, communicator)
    let say = printer(communicator)
    let run = RunDirectory(path: options.out)
    // Run-directory checks happen on rank 0; the verdict is shared so that all ranks stop
    // together with the same message.
    var problem: String? = nil
    if communicator.rank == 0 {
      do {
        if resume == nil { try run.createForNewRun(overwrite: overwrite) } else { try run.ensureWritable() }
        try JSONEncoder.sorted.encode(options).write(to: URL(fileURLWithPath: run.configFile))
      } catch {
        problem = "\(error)"
      }
    }
    let verdict = try communicator.broadcast(string: problem ?? "", root: 0, name: "run directory check")
    if !verdict.isEmpty { throw ElboError(verdict) }

    let workload = try makeWorkload(options)
    let loop = try TrainingLoop(options: options, workload: workload, communicator: communicator,
                                run: run, say: say,
                                progress: communicator.rank == 0 ? ProgressLine.standardOutput(ranks: communicator.size) : nil)
    if let resume { try loop.resume(from: resume) }
    let final = try loop.train()
    if let elbo = final["test_elbo"] {
      say(String(format: "done: test ELBO %.3f nats (F = %.3f), %d active units; run in %@",
                 elbo, -elbo, Int(final["active_units"] ?? 0), options.out))
    } else if !final.isEmpty {
      say("done: " + final.keys.sorted().map { "\($0) \(String(format: "%.4g", final[$0]!))" }
        .joined(separator: "  ") + "; run in \(options.out)")
    }
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

  /// `elbo eval`: the VAE's importance-sampled test log-likelihood (`samples` = k), or for the
  /// other models their epoch-end test metrics from the checkpoint (`predictSamples` overrides
  /// the run's S weight samples of a BBB network).
  public static func evaluate(target: String, samples: Int, predictSamples: Int? = nil,
                              threads: Int?, communicator: Communicator) throws {
    configureThreads(threads, communicator)
    let path = try checkpointPath(target, communicator)
    let state = try CheckpointStore.read(path: path)
    var options: TrainingOptions
    do {
      options = try JSONDecoder().decode(TrainingOptions.self, from: Data(state.configJSON.utf8))
    } catch {
      throw ElboError("\(path): the stored config cannot be read (\(error))")
    }
    switch state.model {
    case "vae":
      try evaluateVAE(options, state: state, path: path, target: target, samples: samples,
                      communicator: communicator)
    case BBBRegressionWorkload.name, BBBClassifierWorkload.name:
      if let s = predictSamples { options.bbb.predictSamples = s }
      let workload = try makeWorkload(options)
      try StoredTensors(state).restoreParameters(of: workload.store)
      try evaluateTestMetrics(workload, state: state, path: path, target: target,
                              communicator: communicator)
    default:
      throw ElboError("\(path): holds a '\(state.model)' checkpoint; eval supports 'vae', "
        + "'\(BBBRegressionWorkload.name)' and '\(BBBClassifierWorkload.name)'")
    }
  }

  /// The workload's own test-set evaluation (collective), printed as a line and a JSON record.
  static func evaluateTestMetrics(_ workload: Workload, state: CheckpointState, path: String,
                                  target: String, communicator: Communicator) throws {
    let say = printer(communicator)
    let t0 = Date()
    let metrics = try workload.evaluate(epoch: Int(state.epoch), communicator: communicator)
    let seconds = Date().timeIntervalSince(t0)
    say("\(workload.modelName) at step \(state.step): " + metrics.keys.sorted()
      .map { "\($0) \(String(format: "%.4g", metrics[$0]!))" }.joined(separator: "  "))
    var record: [String: Any] = ["kind": "eval", "checkpoint": path, "seconds": seconds,
                                 "step": Int(state.step), "model": workload.modelName]
    for (k, v) in metrics { record[k] = v }
    if communicator.rank == 0,
       let data = try? JSONSerialization.data(withJSONObject: record, options: [.sortedKeys]) {
      say(String(decoding: data, as: UTF8.self))
    }
    try keepInRun(record, target: target, communicator: communicator)
  }

  static func evaluateVAE(_ options: TrainingOptions, state: CheckpointState, path: String,
                          target: String, samples: Int, communicator: Communicator) throws {
    let say = printer(communicator)
    let workload = try vaeWorkload(options)
    try StoredTensors(state).restoreParameters(of: workload.store)
    let t0 = Date()
    let elbo = try workload.evaluate(epoch: 0, communicator: communicator)
    let bar = EvaluationProgress.standardOutput(title: "log-likelihood k = \(samples)",
                                                rank: communicator.rank, ranks: communicator.size)
    let ll = try workload.testLogLikelihood(samples: samples, communicator: communicator,
                                            progress: bar.map { b in { b.update(done: $0,
                                                                                total: $1) } })
    let seconds = Date().timeIntervalSince(t0)
    say(String(format: "test log-likelihood %.3f nats (importance sampling, k = %d, %d test "
      + "images, %.1f s); test ELBO %.3f; active units %d", ll, samples,
      workload.test.count, seconds, elbo["test_elbo"] ?? .nan, Int(elbo["active_units"] ?? 0)))
    let record: [String: Any] = ["kind": "eval", "checkpoint": path, "k": samples,
                                 "test_log_likelihood": ll,
                                 "test_elbo": elbo["test_elbo"] ?? Double.nan,
                                 "active_units": elbo["active_units"] ?? 0,
                                 "seconds": seconds, "step": Int(state.step)]
    if communicator.rank == 0,
       let data = try? JSONSerialization.data(withJSONObject: record, options: [.sortedKeys]) {
      say(String(decoding: data, as: UTF8.self))
    }
    try keepInRun(record, target: target, communicator: communicator)
  }

  /// Evaluating a run directory keeps the result there: in its metrics and its report.
  static func keepInRun(_ record: [String: Any], target: String,
                        communicator: Communicator) throws {
    let say = printer(communicator)
    if communicator.rank == 0, FileManager.default.fileExists(atPath: target + "/metrics.jsonl") {
      try MetricsLog(path: target + "/metrics.jsonl").write(record)
      do {
        try RunReport.rebuild(runDirectory: target)
        say("report: \(target)/\(RunReport.reportFile)")
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

  public static func benchmark(batchSize: Int, latent: Int, hidden: Int, threads: Int?,
                               steps: Int, warmup: Int, bucketFloats: Int,
                               communicator: Communicator) throws {
    configureThreads(threads, communicator)
    let r = try VAEBenchmark.run(batchSize: batchSize, latent: latent, hidden: hidden,
                                 steps: steps, warmup: warmup, bucketFloats: bucketFloats,
                                 communicator: communicator)
    if communicator.rank == 0 {
      let data = try JSONSerialization.data(withJSONObject: r, options: [.sortedKeys])
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

  public static func benchmarkBBBRegression(options: BBBOptions, batchSize: Int, threads: Int?,
                                            steps: Int, warmup: Int,
                                            communicator: Communicator) throws {
    configureThreads(threads, communicator)
    let r = try BBBBenchmark.run(options: options, batchSize: batchSize, steps: steps,
                                 warmup: warmup, communicator: communicator)
    if communicator.rank == 0 {
      let data = try JSONSerialization.data(withJSONObject: r, options: [.sortedKeys])
      print(String(decoding: data, as: UTF8.self))
    }
  }
}
