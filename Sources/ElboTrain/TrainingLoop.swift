import ElboCheckpoint
import ElboDistributed
import ElboModels
import Foundation

/// The data-parallel training loop: ``Trainer/step(_:)`` until the last step, and around it the
/// logging windows, the epoch-end evaluation, the pictures, the non-finite policy (skip or stop)
/// and the checkpoints.
///
/// Every rank makes the same collective calls in the same order; decisions that end or skip a
/// step are taken on all-reduced values, so all ranks take them together.
public final class TrainingLoop {
  public let options: RunOptions
  public let experiment: any Experiment
  public let trainer: Trainer
  public let communicator: Communicator
  public let run: RunDirectory
  /// The resolved config (`config.json`), stored in every checkpoint.
  public let configJSON: String
  public private(set) var step = 0
  private let log: MetricsLog
  private let checkpoints: CheckpointStore
  private var consecutiveNonFinite = 0
  /// Printed lines go here (rank 0 only).
  private let say: (String) -> Void
  /// The live progress line (rank 0, stdout a terminal); nil: plain periodic lines instead.
  private let progress: ProgressLine?
  /// Images, plots and report.html (rank 0 only).
  private let outputs: RunOutputs?

  /// - Parameter progress: a terminal line to draw progress on (used on rank 0 only); without
  ///   one, progress is printed as a plain line every `logEvery` steps.
  public init(options: RunOptions, experiment: any Experiment, configJSON: String,
              communicator: Communicator, run: RunDirectory, say: @escaping (String) -> Void,
              progress: ProgressLine? = nil) throws {
    self.options = options
    self.experiment = experiment
    self.configJSON = configJSON
    self.communicator = communicator
    self.run = run
    let bar = communicator.rank == 0 ? progress : nil
    self.progress = bar
    // A printed line first erases the progress line, which is redrawn at the next step.
    self.say = communicator.rank == 0 ? { bar?.clear(); say($0) } : { _ in }
    outputs = communicator.rank == 0
      ? RunOutputs(run: run, experiment: experiment,
                   posterior: type(of: experiment).posterior, say: self.say)
      : nil
    let optimizer = Adam(parameterCount: experiment.store.count,
                         learningRate: options.learningRate, epsilon: options.adamEpsilon)
    trainer = try Trainer(experiment: experiment, globalBatch: options.batchSize,
                          optimizer: optimizer, method: options.allreduce,
                          clipping: options.clipping, seed: options.seed,
                          communicator: communicator)
    checkpoints = CheckpointStore(directory: run.checkpoints, communicator: communicator,
                                  keep: options.keep)
    log = try MetricsLog(path: communicator.rank == 0 ? run.metricsFile : nil)
    // Every rank starts from rank 0's parameters (they agree by construction — initialisation
    // is keyed by the seed — but a broadcast makes it a guarantee, not a convention).
    try communicator.broadcast(experiment.store.flatValues, root: 0, name: "initial parameters")
  }

  public var optimizer: Optimizer { trainer.optimizer }
  public var stepsPerEpoch: Int { trainer.stepsPerEpoch }
  public var totalSteps: Int {
    let full = options.epochs * stepsPerEpoch
    return min(full, options.maxSteps ?? full)
  }

  // MARK: - The loop

  /// Trains until `totalSteps`; returns the final metrics (the last held-out evaluation,
  /// which always follows the last step).
  @discardableResult
  public func train() throws -> [String: Double] {
    let store = experiment.store
    let b = options.batchSize
    let names = experiment.terms.all
    var window = [Double](repeating: 0, count: names.count)
    var windowExamples = 0
    var windowStart = Date()
    // Norm clipping: the window's gradient norms (before clipping) and how many were clipped.
    var windowNorm = 0.0, windowNormMax = 0.0, windowClipped = 0, windowSteps = 0
    var epochSums = [Double](repeating: 0, count: names.count)
    var epochExamples = 0
    var epochSeconds = 0.0
    var lastEval: [String: Double] = [:]
    // For the progress line: steps and time since this process started training.
    let startStep = step, started = Date()
    var lastF: Double? = nil
    sayHeader()

    while step < totalSteps {
      let epoch = step / stepsPerEpoch
      let outcome = try trainer.step(step)
      if let bad = outcome.nonFinite {
        try handleNonFinite(bad, epoch: epoch)
        step += 1
        try stopIfRequested(outcome)
        continue
      }
      consecutiveNonFinite = 0
      step += 1
      if let debugLog = communicator.debugLog { debugLog.write(timingLine(outcome, epoch: epoch)) }

      let sums = outcome.sums.flat
      for i in 0..<names.count { window[i] += sums[i]; epochSums[i] += sums[i] }
      if let norm = outcome.gradientNorm, let c = options.clipNorm {
        windowNorm += norm; windowNormMax = max(windowNormMax, norm); windowSteps += 1
        if norm > Double(c) { windowClipped += 1 }
      }
      windowExamples += b
      epochExamples += b
      if let progress {
        let seconds = Date().timeIntervalSince(windowStart)
        let f = windowExamples > 0 ? -window[0] / Double(windowExamples) : lastF
        let perStep = Date().timeIntervalSince(started) / Double(step - startStep)
        progress.update(force: step == totalSteps) { width in
          ProgressBar.render(epoch: epoch + 1, epochs: (totalSteps + stepsPerEpoch - 1) / stepsPerEpoch,
                             step: step, totalSteps: totalSteps, secondsPerStep: perStep,
                             examplesPerSecond: seconds > 0 ? Double(windowExamples) / seconds : nil,
                             loss: f, width: width)
        }
      }
      let epochEnd = step % stepsPerEpoch == 0
      if step % options.logEvery == 0 || step == totalSteps || epochEnd {
        let seconds = Date().timeIntervalSince(windowStart)
        epochSeconds += seconds
        var extra: [String: Double] = [:]
        if windowSteps > 0 {
          extra = ["grad_norm": windowNorm / Double(windowSteps), "grad_norm_max": windowNormMax,
                   "clipped_steps": Double(windowClipped)]
          (windowNorm, windowNormMax, windowClipped, windowSteps) = (0, 0, 0, 0)
        }
        logWindow(window, examples: windowExamples, seconds: seconds, epoch: epoch, extra: extra)
        lastF = -window[0] / Double(max(windowExamples, 1))
        window = [Double](repeating: 0, count: names.count)
        windowExamples = 0
        windowStart = Date()
      }
      if options.checksumEvery > 0 && step % options.checksumEvery == 0 {
        try communicator.parameterChecksumsAgree(UnsafeBufferPointer(store.flatValues),
                                                 name: "parameters")
      }
      // An epoch record at each epoch end, and after the last step when it falls inside an
      // epoch (--max-steps), so that a run always ends with the evaluation of its final
      // parameters. Held-out evaluation every `evalEvery` epochs and after the last step (the
      // same decision on every rank: it is collective).
      if epochEnd || step == totalSteps {
        let evalDue = (epoch + 1) % options.evalEvery == 0 || step == totalSteps
        if evalDue {
          lastEval = try experiment.evaluate(epoch: epoch, communicator: communicator)
        }
        // The epoch's training averages (over the steps this process ran) beside the test ones.
        let n = Double(max(epochExamples, 1))
        var record = evalDue ? lastEval : [:]
        for (name, v) in zip(names, epochSums) { record["train_\(name)"] = v / n }
        record["train_examples_per_second"] = Double(epochExamples) / max(epochSeconds, 1e-9)
        logEpoch(epoch: epoch, metrics: record, partial: !epochEnd)
        epochSums = [Double](repeating: 0, count: names.count)
        epochExamples = 0
        epochSeconds = 0
        windowStart = Date()
      }
      if imagesDue && step < totalSteps, let report = outputs?.refresh(step: step, final: false) {
        say("step \(step): images, plots and \((report as NSString).lastPathComponent) redrawn")
      }
      if options.checkpointEvery > 0 && step % options.checkpointEvery == 0 && step < totalSteps {
        try saveCheckpoint()
      }
      if step < totalSteps { try stopIfRequested(outcome) }
    }
    progress?.finish()
    try saveCheckpoint()
    if let report = outputs?.refresh(step: step, final: true) { say("report: \(report)") }
    return lastEval
  }

  /// The per-step timing line of the debug log.
  private func timingLine(_ o: Trainer.Outcome, epoch: Int) -> String {
    let ms = { (seconds: Double) in String(format: "%.3f ms", seconds * 1000) }
    let g = trainer.gradients
    var line = "step \(step) epoch \(epoch + 1) items \(o.items): loss \(ms(o.seconds.loss)), "
      + "backward \(ms(o.seconds.backward)), "
    switch g.method {
    case .fused, .bucketed: line += "gradient all-reduce \(ms(o.seconds.reduce)), "
    case .sharded where g.exchangesShards:
      line += "gradient reduce-scatter \(ms(o.seconds.reduce)), parameter all-gather "
        + "\(ms(o.seconds.gather)), "
    case .sharded: break  // one rank: nothing to exchange
    }
    line += "optimizer \(ms(o.seconds.update))"
    if g.method == .bucketed {
      line += " (buckets started during backward: \(g.startedDuringBackward)/\(g.bucketCount))"
    }
    return line
  }

  /// Whether images, plots and the report are redrawn after the step just taken: every
  /// `imageEvery` steps, or at each epoch end (after its evaluation is logged) when 0.
  private var imagesDue: Bool {
    options.imageEvery > 0 ? step % options.imageEvery == 0 : step % stepsPerEpoch == 0
  }

  // MARK: - Preemption

  /// After a step whose all-reduce says a rank received a stop signal: checkpoint (collective,
  /// every rank alike), redraw the report, and throw ``StopRequested``.
  private func stopIfRequested(_ outcome: Trainer.Outcome) throws {
    guard outcome.stopRanks > 0 else { return }
    progress?.finish()
    log.write(["kind": "stopped", "step": step, "epoch": step / stepsPerEpoch + 1,
               "stop_signal_ranks": outcome.stopRanks])
    let path = try checkpoints.save(captureState())
    outputs?.refresh(step: step, final: true)
    throw StopRequested(step: step, ranks: outcome.stopRanks, checkpoint: path)
  }

  // MARK: - Non-finite guard

  /// Skips the step (parameters untouched) or stops, the same way on every rank.
  private func handleNonFinite(_ term: String, epoch: Int) throws {
    consecutiveNonFinite += 1
    log.write(["kind": "nonfinite", "step": step, "epoch": epoch + 1, "term": term])
    if consecutiveNonFinite > options.nonFiniteSkips {
      // The curves up to here are what one looks at next: draw them before stopping.
      outputs?.refresh(step: step, final: true)
      throw ElboError("non-finite \(term) at step \(step + 1) (epoch \(epoch + 1)); stopped before it "
        + "reached the parameters. The last checkpoint is intact. Try a lower --lr, or "
        + "--nonfinite-skips N to skip up to N such steps")
    }
    say("warning: non-finite \(term) at step \(step); step skipped "
      + "(\(consecutiveNonFinite)/\(options.nonFiniteSkips))")
  }

  // MARK: - Reporting

  private func sayHeader() {
    let o = options
    let name = type(of: experiment).name
    say("elbo: training \(name) on \(experiment.dataDescription): \(experiment.itemCount) items, "
      + "global batch \(o.batchSize) over \(communicator.size) rank(s), \(stepsPerEpoch) "
      + "steps/epoch, \(totalSteps) steps, \(experiment.store.count) parameters, "
      + "\(BLAS.threads) BLAS thread(s)/rank, \(trainer.exchangeSummary)")
    for line in experiment.objectiveDescription(globalBatch: o.batchSize) { say("elbo: \(line)") }
    if o.clipValue != nil || o.clipNorm != nil {
      var parts: [String] = []
      if let v = o.clipValue { parts.append("each element to [−\(v), \(v)]") }
      if let c = o.clipNorm { parts.append("the whole vector to L2 norm ≤ \(c) (grad_norm logged)") }
      say("elbo: gradient clipping of the summed gradient: " + parts.joined(separator: ", then "))
    }
  }

  private func logWindow(_ w: [Double], examples: Int, seconds: Double, epoch: Int,
                         extra: [String: Double]) {
    let n = Double(max(examples, 1))
    // "epoch" is 1-based in every record, as in the printed lines.
    var rec: [String: Any] = ["kind": "train", "step": step, "epoch": epoch + 1,
                              "examples_per_second": Double(examples) / max(seconds, 1e-9)]
    let names = experiment.terms.all
    for (name, v) in zip(names, w) { rec[name] = v / n }
    rec["neg_elbo"] = -w[0] / n
    for (k, v) in experiment.stepFields(step: step - 1, globalBatch: options.batchSize) { rec[k] = v }
    for (k, v) in extra { rec[k] = v }
    log.write(rec)
    // On a terminal the progress line shows this; logs and pipes get a line per window.
    guard progress == nil else { return }
    let terms = zip(names.dropFirst(), w.dropFirst())
      .map { "\($0) \(fmt($1 / n))" }.joined(separator: "  ")
    // F is the loss: −ELBO for a bound, −log p for an exact likelihood.
    let f = names[0] == "elbo" ? "F=−ELBO" : "F=−\(names[0])"
    say("step \(step)/\(totalSteps)  epoch \(epoch + 1)  \(f) \(fmt(-w[0] / n))  \(terms)  "
      + "\(Int(Double(examples) / max(seconds, 1e-9))) ex/s")
  }

  /// - Parameter partial: the run stopped inside the epoch (`--max-steps`).
  private func logEpoch(epoch: Int, metrics: [String: Double], partial: Bool) {
    var rec: [String: Any] = ["kind": "epoch", "epoch": epoch + 1, "step": step]
    if partial { rec["partial_epoch"] = 1 }
    for (k, v) in metrics { rec[k] = v }
    log.write(rec)
    let text = metrics.keys.sorted().map { "\($0) \(fmt(metrics[$0]!))" }.joined(separator: "  ")
    say("epoch \(epoch + 1) \(partial ? "stopped at step \(step)" : "done"): \(text)")
  }

  private func fmt(_ v: Double) -> String { String(format: "%.3f", v) }

  // MARK: - Checkpoints

  /// Writes the whole training state collectively (see CheckpointStore).
  public func saveCheckpoint() throws {
    let path = try checkpoints.save(captureState())
    say("checkpoint: \(path)")
  }

  func captureState() throws -> CheckpointState {
    let store = experiment.store
    // Sharded: each rank has advanced only its shard of the optimizer state; make it whole.
    try trainer.gatherOptimizerState()
    var tensors: [CheckpointTensor] = []
    for (i, spec) in store.specs.enumerated() {
      tensors.append(CheckpointTensor(name: "params/\(spec.name)", shape: spec.shape,
                                      data: store.value(i).array))
    }
    for (name, buffer) in optimizer.stateBuffers {
      for (i, spec) in store.specs.enumerated() {
        let slice = buffer[store.offsets[i]..<(store.offsets[i] + spec.count)]
        tensors.append(CheckpointTensor(name: "optimizer/\(name)/\(spec.name)",
                                        shape: spec.shape, data: Array(slice)))
      }
    }
    var scalars: [String: Double] = [:]
    for (k, v) in optimizer.stateScalars { scalars["optimizer/\(k)"] = v }
    scalars["optimizer/lr"] = Double(optimizer.learningRate)
    let config = configJSON
    // Noise is counter-based: a rank's generator state is fully given by (seed, step, epoch).
    // It is stored per rank anyway, so that a reader sees every rank's position explicitly.
    let epoch = step / stepsPerEpoch
    let rngRow: [UInt64] = [options.seed, UInt64(step), UInt64(epoch),
                            UInt64(communicator.rank)]
    let flat = try communicator.allgather(rngRow, name: "checkpoint RNG state")
    let rows = stride(from: 0, to: flat.count, by: rngRow.count).map {
      Array(flat[$0..<($0 + rngRow.count)])
    }
    return CheckpointState(
      formatVersion: 1, model: type(of: experiment).name, configJSON: config, step: Int64(step),
      epoch: Int64(epoch), positionInEpoch: Int64((step % stepsPerEpoch) * options.batchSize),
      seed: options.seed, tensors: tensors, scalars: scalars, rngState: rows)
  }

  /// Restores parameters, optimizer moments and counters from `state`.
  public func restore(_ state: CheckpointState) throws {
    let store = experiment.store
    let stored = StoredTensors(state)
    try stored.restoreParameters(of: store)
    for (name, buffer) in optimizer.stateBuffers {
      for (i, spec) in store.specs.enumerated() {
        try stored.copy("optimizer/\(name)/\(spec.name)",
                        into: buffer.baseAddress! + store.offsets[i], shape: spec.shape)
      }
    }
    var scalars: [String: Double] = [:]
    for (k, v) in state.scalars where k.hasPrefix("optimizer/") {
      scalars[String(k.dropFirst("optimizer/".count))] = v
    }
    optimizer.stateScalars = scalars
    step = Int(state.step)
    // The sampler position follows from the step: epoch = step ÷ steps/epoch. With another
    // number of ranks the same global batch is simply re-split (Sharder.share).
    if Int(state.positionInEpoch) != (step % stepsPerEpoch) * options.batchSize {
      throw ElboError("checkpoint position \(state.positionInEpoch) does not match step "
        + "\(state.step) with --batch-size \(options.batchSize): resume with the batch size "
        + "the run was started with")
    }
  }

  /// Loads `pathOrLatest` (collectively) and restores from it.
  public func resume(from pathOrLatest: String) throws {
    let state = try checkpoints.load(pathOrLatest, expectModel: type(of: experiment).name)
    if let note = checkpoints.fallbackNote { say("warning: \(note)") }
    try restore(state)
    say("resumed from step \(step) (epoch \(step / stepsPerEpoch + 1))")
  }
}
