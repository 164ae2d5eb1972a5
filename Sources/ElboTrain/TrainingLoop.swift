import ElboCheckpoint
import ElboDistributed
import ElboModels
import Foundation

/// The data-parallel training loop (DESIGN.md, "one training step on every rank").
///
/// Each step, on every rank:  this rank's share of the global batch → loss (its terms summed)
/// → backward into the flat gradient → all-reduce (sum; losses are already divided by the global
/// batch), or reduce-scatter with the sharded method → non-finite guard → optimizer update (of
/// this rank's shard, then all-gather of the parameters, with the sharded method) → checkpoint
/// if due.
/// Every rank makes the same collective calls in the same order; decisions that end or skip a
/// step are taken on all-reduced values, so all ranks take them together.
public final class TrainingLoop {
  public let options: TrainingOptions
  public let workload: Workload
  public let optimizer: Optimizer
  public let communicator: Communicator
  public let run: RunDirectory
  public private(set) var step = 0
  private let log: MetricsLog
  private let sharder: Sharder
  private let checkpoints: CheckpointStore
  /// Backward, the gradient reduction and the optimizer step (fused, bucketed-overlapped or
  /// sharded, see AllreduceMethod).
  private let gradients: GradientSync
  private var consecutiveNonFinite = 0
  /// Printed lines go here (rank 0 only).
  private let say: (String) -> Void
  /// The live progress line (rank 0, stdout a terminal); nil: plain periodic lines instead.
  private let progress: ProgressLine?
  /// Images, plots and report.html (rank 0 only).
  private let outputs: RunOutputs?

  /// - Parameter progress: a terminal line to draw progress on (used on rank 0 only); without
  ///   one, progress is printed as a plain line every `logEvery` steps.
  public init(options: TrainingOptions, workload: Workload, communicator: Communicator,
              run: RunDirectory, say: @escaping (String) -> Void,
              progress: ProgressLine? = nil) throws {
    self.options = options
    self.workload = workload
    self.communicator = communicator
    self.run = run
    let bar = communicator.rank == 0 ? progress : nil
    self.progress = bar
    // A printed line first erases the progress line, which is redrawn at the next step.
    self.say = communicator.rank == 0 ? { bar?.clear(); say($0) } : { _ in }
    outputs = communicator.rank == 0 ? RunOutputs(run: run, workload: workload, say: self.say) : nil
    optimizer = Adam(parameterCount: workload.store.count, learningRate: options.learningRate,
                     epsilon: options.adamEpsilon)
    sharder = Sharder(itemCount: workload.itemCount, seed: options.seed)
    checkpoints = CheckpointStore(directory: run.checkpoints, communicator: communicator,
                                  keep: options.keep)
    gradients = try GradientSync(options.allreduce, store: workload.store,
                                 communicator: communicator)
    log = try MetricsLog(path: communicator.rank == 0 ? run.metricsFile : nil)
    guard sharder.stepsPerEpoch(globalBatch: options.batchSize) > 0 else {
      throw ElboError("--batch-size \(options.batchSize) is larger than the training set "
        + "(\(workload.itemCount) items)")
    }
    // Every rank starts from rank 0's parameters (they agree by construction — initialisation
    // is keyed by the seed — but a broadcast makes it a guarantee, not a convention).
    try communicator.broadcast(workload.store.flatValues, root: 0, name: "initial parameters")
  }

  public var stepsPerEpoch: Int { sharder.stepsPerEpoch(globalBatch: options.batchSize) }
  public var totalSteps: Int {
    let full = options.epochs * stepsPerEpoch
    return min(full, options.maxSteps ?? full)
  }

  // MARK: - The loop

  /// Trains until `totalSteps`; returns the final metrics.
  @discardableResult
  public func train() throws -> [String: Double] {
    let store = workload.store
    let tape = Tape()
    let b = options.batchSize, rank = communicator.rank, size = communicator.size
    let mine = Sharder.share(of: b, rank: rank, size: size)
    let terms = workload.termNames
    var permutation: [Int] = []
    var permutationEpoch = -1
    var window = [Double](repeating: 0, count: terms.count)
    var windowExamples = 0
    var windowStart = Date()
    var epochSums = [Double](repeating: 0, count: terms.count)
    var epochExamples = 0
    var epochSeconds = 0.0
    var lastEval: [String: Double] = [:]
    // For the progress line: steps and time since this process started training.
    let startStep = step, started = Date()
    var lastF: Double? = nil
    sayHeader()

    while step < totalSteps {
      let epoch = step / stepsPerEpoch, inEpoch = step % stepsPerEpoch
      if epoch != permutationEpoch {
        permutation = sharder.permutation(epoch: epoch)
        permutationEpoch = epoch
      }
      let items = permutation[(inEpoch * b + mine.lowerBound)..<(inEpoch * b + mine.upperBound)]

      let t0 = now()
      tape.reset()
      store.zeroGrad()
      let (loss, localSums) = workload.loss(items: items, step: step, epoch: epoch,
                                            globalBatch: b, tape: tape)
      let t1 = now()
      let (backward, reduce) = try gradients.backwardAndReduce(loss, on: tape)
      // The loss terms and, per parameter tensor, whether this rank's part of the reduced
      // gradient is non-finite: one small all-reduce, after which every rank knows both.
      var sums = localSums + gradients.nonFiniteFlags()
      try communicator.allreduceSum(&sums, name: "loss terms")

      if let bad = nonFiniteTerm(sums) {
        try handleNonFinite(bad, epoch: epoch)
        step += 1
        continue
      }
      consecutiveNonFinite = 0
      let (update, gather) = try gradients.update(optimizer)
      step += 1
      if let debugLog = communicator.debugLog {
        let ms = { (seconds: Double) in String(format: "%.3f ms", seconds * 1000) }
        var line = "step \(step) epoch \(epoch + 1) items \(items.count): loss \(ms(t1 - t0)), "
          + "backward \(ms(backward)), "
        switch gradients.method {
        case .fused, .bucketed: line += "gradient all-reduce \(ms(reduce)), "
        case .sharded where gradients.exchangesShards:
          line += "gradient reduce-scatter \(ms(reduce)), parameter all-gather \(ms(gather)), "
        case .sharded: break  // one rank: nothing to exchange
        }
        line += "optimizer \(ms(update))"
        if gradients.method == .bucketed {
          line += " (buckets started during backward: "
            + "\(gradients.startedDuringBackward)/\(gradients.bucketCount))"
        }
        debugLog.write(line)
      }

      for i in 0..<terms.count { window[i] += sums[i]; epochSums[i] += sums[i] }
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
      if step % options.logEvery == 0 || step == totalSteps || step % stepsPerEpoch == 0 {
        let seconds = Date().timeIntervalSince(windowStart)
        epochSeconds += seconds
        logWindow(window, examples: windowExamples, seconds: seconds, epoch: epoch)
        lastF = -window[0] / Double(max(windowExamples, 1))
        window = [Double](repeating: 0, count: terms.count)
        windowExamples = 0
        windowStart = Date()
      }
      if options.checksumEvery > 0 && step % options.checksumEvery == 0 {
        try communicator.parameterChecksumsAgree(UnsafeBufferPointer(store.flatValues),
                                                 name: "parameters")
      }
      if step % stepsPerEpoch == 0 {
        // Held-out evaluation every `evalEvery` epochs and after the last step (same decision
        // on every rank: it is collective).
        let evalDue = (epoch + 1) % options.evalEvery == 0 || step == totalSteps
        if evalDue { lastEval = try workload.evaluate(epoch: epoch, communicator: communicator) }
        // The epoch's training averages (over the steps this process ran) beside the test ones.
        let n = Double(max(epochExamples, 1))
        var record = evalDue ? lastEval : [:]
        for (name, v) in zip(terms, epochSums) { record["train_\(name)"] = v / n }
        record["train_examples_per_second"] = Double(epochExamples) / max(epochSeconds, 1e-9)
        logEpoch(epoch: epoch, metrics: record)
        epochSums = [Double](repeating: 0, count: terms.count)
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
    }
    progress?.finish()
    try saveCheckpoint()
    if let report = outputs?.refresh(step: step, final: true) { say("report: \(report)") }
    return lastEval
  }

  /// Whether images, plots and the report are redrawn after the step just taken: every
  /// `imageEvery` steps, or at each epoch end (after its evaluation is logged) when 0.
  private var imagesDue: Bool {
    options.imageEvery > 0 ? step % options.imageEvery == 0 : step % stepsPerEpoch == 0
  }

  // MARK: - Non-finite guard

  /// The first term whose global sum is NaN or ±∞, else "gradient of <tensor>" for the first
  /// parameter tensor whose reduced gradient is: `sums` is the all-reduced loss terms followed
  /// by the summed ``GradientSync/nonFiniteFlags()``, the same on every rank.
  private func nonFiniteTerm(_ sums: [Double]) -> String? {
    // Components first (log-likelihood, KL, …): they say *which* part went bad; the bound,
    // their sum, only if all of them look finite.
    let terms = workload.termNames
    let named = Array(zip(terms, sums))
    for (name, v) in named.dropFirst() + named.prefix(1) where !v.isFinite { return name }
    return gradients.nonFiniteTensor(sums[terms.count...])
  }

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
    say("elbo: training \(workload.modelName) on \(o.data): \(workload.itemCount) items, "
      + "global batch \(o.batchSize) over \(communicator.size) rank(s), \(stepsPerEpoch) "
      + "steps/epoch, \(totalSteps) steps, \(workload.store.count) parameters, "
      + "\(BLAS.threads) BLAS thread(s)/rank, \(gradients.summary)")
    for line in workload.objectiveDescription(globalBatch: o.batchSize) { say("elbo: \(line)") }
  }

  private func logWindow(_ w: [Double], examples: Int, seconds: Double, epoch: Int) {
    let n = Double(max(examples, 1))
    // "epoch" is 1-based in every record, as in the printed lines.
    var rec: [String: Any] = ["kind": "train", "step": step, "epoch": epoch + 1,
                              "examples_per_second": Double(examples) / max(seconds, 1e-9)]
    for (name, v) in zip(workload.termNames, w) { rec[name] = v / n }
    rec["neg_elbo"] = -w[0] / n
    for (k, v) in workload.stepFields(step: step - 1, globalBatch: options.batchSize) { rec[k] = v }
    log.write(rec)
    // On a terminal the progress line shows this; logs and pipes get a line per window.
    guard progress == nil else { return }
    let terms = zip(workload.termNames.dropFirst(), w.dropFirst())
      .map { "\($0) \(fmt($1 / n))" }.joined(separator: "  ")
    say("step \(step)/\(totalSteps)  epoch \(epoch + 1)  F=−ELBO \(fmt(-w[0] / n))  \(terms)  "
      + "\(Int(Double(examples) / max(seconds, 1e-9))) ex/s")
  }

  private func logEpoch(epoch: Int, metrics: [String: Double]) {
    var rec: [String: Any] = ["kind": "epoch", "epoch": epoch + 1, "step": step]
    for (k, v) in metrics { rec[k] = v }
    log.write(rec)
    let text = metrics.keys.sorted().map { "\($0) \(fmt(metrics[$0]!))" }.joined(separator: "  ")
    say("epoch \(epoch + 1) done: \(text)")
  }

  private func fmt(_ v: Double) -> String { String(format: "%.3f", v) }

  // MARK: - Checkpoints

  /// Writes the whole training state collectively (see CheckpointStore).
  public func saveCheckpoint() throws {
    let path = try checkpoints.save(captureState())
    say("checkpoint: \(path)")
  }

  func captureState() throws -> CheckpointState {
    let store = workload.store
    // Sharded: each rank has advanced only its shard of the optimizer state; make it whole.
    try gradients.gatherOptimizerState(optimizer)
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
    let config = String(decoding: try JSONEncoder.sorted.encode(options), as: UTF8.self)
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
      formatVersion: 1, model: workload.modelName, configJSON: config, step: Int64(step),
      epoch: Int64(epoch), positionInEpoch: Int64((step % stepsPerEpoch) * options.batchSize),
      seed: options.seed, tensors: tensors, scalars: scalars, rngState: rows)
  }

  /// Restores parameters, optimizer moments and counters from `state`.
  public func restore(_ state: CheckpointState) throws {
    let store = workload.store
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
    let state = try checkpoints.load(pathOrLatest, expectModel: workload.modelName)
    if let note = checkpoints.fallbackNote { say("warning: \(note)") }
    try restore(state)
    say("resumed from step \(step) (epoch \(step / stepsPerEpoch + 1))")
  }
}

extension JSONEncoder {
  /// Sorted keys, so that configs are stable and diffable.
  static var sorted: JSONEncoder {
    let e = JSONEncoder()
    e.outputFormatting = [.sortedKeys, .prettyPrinted]
    return e
  }
}
