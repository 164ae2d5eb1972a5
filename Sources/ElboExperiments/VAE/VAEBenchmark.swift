import ElboDistributed
import ElboModels
import Foundation

import ElboTrain

/// `elbo bench vae`'s own figures beside the trainer's step time: in the same process, the
/// BLAS-bound limit — the sum of `cblas_sgemm` times at exactly the step's GEMM shapes — and
/// the fraction of it the step reaches, the PyTorch anchor's ratio, and on several ranks every
/// exchange method (``AllreduceMethod``: fused, bucketed-overlapped, sharded through shared
/// memory and through MPI) timed side by side against a raw `MPI_Allreduce` of the same bytes,
/// so the results are ratios that machine noise affects little.
extension VAEExperiment {
  /// PyTorch 2.15 CPU on this machine kind (ANCHORS.md), examples/s by thread count.
  static let pytorchAnchor: [Int: Double] = [1: 20486, 2: 29318]

  public func benchmarkFields(trainer: Trainer, stepMs: Double, steps: Int, warmup: Int,
                              communicator: Communicator) throws -> [String: Any] {
    let size = communicator.size, batchSize = trainer.globalBatch
    let rows = Sharder.share(of: batchSize, rank: communicator.rank, size: size).count
    let limit = VAEExperiment.blasBoundLimit(rows: rows, config: model.config)
    let examplesPerSecond = Double(batchSize) / (stepMs / 1000)
    var result: [String: Any] = [
      "latent": model.config.latent, "hidden": model.config.hidden,
      "flow": model.hasFlow ? model.config.flow.kind.rawValue : "none",
      "flow_length": model.config.flow.length,
      "gemm_mflop_per_step": round3(limit.flops * Double(size) / 1e6),
      "blas_bound_ms": round3(limit.ms), "blas_gflops": round1(limit.flops / limit.ms / 1e6),
      "fraction_of_blas_bound": round3(limit.ms / stepMs),
    ]
    // The anchor is the plain VAE's; a flow VAE is compared with launch/reference's
    // pytorch_vae_flow.py measured in the same run (launch/bench-vs-pytorch --flow).
    if !model.hasFlow, !model.usesMixturePath,
       let anchor = VAEExperiment.pytorchAnchor[size * BLAS.threads] {
      result["pytorch_anchor_examples_per_second"] = anchor
      result["speedup_vs_pytorch"] = round3(examplesPerSecond / anchor)
    }
    if let exchange = trainer.gradients.exchange { result["shard_transport"] = exchange.transport }
    guard size > 1 else { return result }
    for (k, v) in try compareMethods(trainer: trainer, steps: steps, warmup: warmup,
                                     communicator: communicator) {
      result[k] = v
    }
    return result
  }

  /// Every exchange method's step, in interleaved blocks (and a block of raw all-reduces of the
  /// same bytes after each round) so that the shared machine's noise hits them alike. Their
  /// comparison uses the median block: a burst of other work (which stalls whichever rank it
  /// lands on, and so the exchange) spoils a few blocks, not it.
  func compareMethods(trainer: Trainer, steps: Int, warmup: Int,
                      communicator: Communicator) throws -> [String: Any] {
    let b = trainer.globalBatch
    var labels = AllreduceMethod.allCases.map(\.rawValue)
    var trainers = try AllreduceMethod.allCases.map {
      try Trainer(experiment: self, globalBatch: b, optimizer: Adam(parameterCount: store.count),
                  method: $0, bucketFloats: trainer.bucketFloats, seed: seed,
                  communicator: communicator)
    }
    // The sharded method moving its shards through shared memory is also timed through MPI's
    // collectives ("sharded_mpi"), to show what the transport buys.
    if let s = labels.firstIndex(of: "sharded"),
       trainers[s].gradients.exchange is SharedMemoryShardExchange {
      labels.append("sharded_mpi")
      trainers.append(try Trainer(experiment: self, globalBatch: b,
                                  optimizer: Adam(parameterCount: store.count), method: .sharded,
                                  sharedMemory: false, seed: seed, communicator: communicator))
    }
    // Per method: backward, reduction (or bucket wait, or reduce-scatter), optimizer, gather.
    var phase = [[Double]](repeating: [0, 0, 0, 0], count: trainers.count)
    var wall = [Double](repeating: 0, count: trainers.count)
    var blockMs = [[Double]](repeating: [], count: trainers.count)
    var step = [Int](repeating: 0, count: trainers.count)
    func oneStep(_ m: Int, record: Bool) throws {
      let s = try trainers[m].step(step[m]).seconds
      step[m] += 1
      if record {
        phase[m][0] += s.backward; phase[m][1] += s.reduce
        phase[m][2] += s.update; phase[m][3] += s.gather
      }
    }
    let probe = Tensor(zeros: [store.count])
    var rawAllreduce = 0.0
    func rawBlock(_ n: Int) throws {
      let t0 = now()
      for _ in 0..<n { try communicator.allreduceSum(probe.buffer, name: "raw all-reduce") }
      rawAllreduce += now() - t0
    }
    for m in trainers.indices { for _ in 0..<warmup { try oneStep(m, record: false) } }
    try rawBlock(5)
    rawAllreduce = 0
    let block = max(1, min(20, steps / 10))
    var done = 0
    while done < steps {
      let n = min(block, steps - done)
      for m in trainers.indices {
        try communicator.barrier(name: "benchmark block")
        let start = now()
        for _ in 0..<n { try oneStep(m, record: true) }
        wall[m] += now() - start
        blockMs[m].append((now() - start) * 1000 / Double(n))
      }
      try communicator.barrier(name: "benchmark block")
      try rawBlock(n)
      done += n
    }
    let ms = { (seconds: Double) in round3(seconds * 1000 / Double(steps)) }
    let commMs = { (m: Int) in (phase[m][1] + phase[m][3]) * 1000 / Double(steps) }
    let raw = rawAllreduce * 1000 / Double(steps)
    var result: [String: Any] = ["raw_allreduce_ms": round3(raw)]
    let mine = labels.firstIndex(of: trainer.method.rawValue) ?? 0
    if raw > 0 { result["allreduce_vs_raw"] = round3(commMs(mine) / raw) }
    for (m, name) in labels.enumerated() {
      result["\(name)_step_ms"] = ms(wall[m])
      result["\(name)_examples_per_second"] = round1(Double(b * steps) / wall[m])
      result["\(name)_median_block_step_ms"] = round3(median(blockMs[m]))
      result["\(name)_backward_ms"] = ms(phase[m][0])
      result["\(name)_allreduce_ms"] = round3(commMs(m))
      result["\(name)_optimizer_ms"] = ms(phase[m][2])
      switch trainers[m].method {
      case .bucketed:
        result["bucket_floats"] = trainer.bucketFloats
        result["buckets"] = trainers[m].gradients.bucketCount
      case .sharded:
        result["\(name)_reduce_scatter_ms"] = ms(phase[m][1])
        result["\(name)_allgather_ms"] = ms(phase[m][3])
        if raw > 0 { result["\(name)_comm_vs_raw"] = round3(commMs(m) / raw) }
        if let exchange = trainers[m].gradients.exchange {
          result["\(name)_transport"] = exchange.transport
        }
      case .fused:
        break
      }
    }
    let fused = median(blockMs[labels.firstIndex(of: "fused")!])
    for (m, name) in labels.enumerated() where name != "fused" {
      result["\(name)_vs_fused"] = round3(median(blockMs[m]) / fused)
    }
    return result
  }

  /// Times each GEMM of one training step at its exact shape (rows = this rank's batch share):
  /// per layer in→out the forward x·W [R×in·in×out], the weight gradient xᵀ·dy [in×R·R×out], and
  /// — except for the first encoder layer, whose input is data — the input gradient dy·Wᵀ.
  /// (Encoder and decoder only: a flow's own products, e.g. IAF's MADEs, are not counted.)
  static func blasBoundLimit(rows r: Int, config c: VAE.Config) -> (ms: Double, flops: Double) {
    let h = Array(repeating: c.hidden, count: c.hiddenLayers)
    let width = 2 * c.latent + c.flow.contextWidth(dimension: c.latent)
    let enc = [c.inputs] + h + [width], dec = [c.latent] + h + [c.inputs]
    var shapes: [(m: Int, n: Int, k: Int, ta: Bool, tb: Bool)] = []
    for (sizes, isEncoder) in [(enc, true), (dec, false)] {
      for i in 0..<(sizes.count - 1) {
        let nIn = sizes[i], nOut = sizes[i + 1]
        shapes.append((r, nOut, nIn, false, false))         // forward
        shapes.append((nIn, nOut, r, true, false))          // dW = xᵀ·dy
        if !(isEncoder && i == 0) { shapes.append((r, nIn, nOut, false, true)) }  // dx = dy·Wᵀ
      }
    }
    var total = 0.0, flops = 0.0
    for s in shapes {
      let a = Tensor(zeros: [s.ta ? s.k : s.m, s.ta ? s.m : s.k])
      let b = Tensor(zeros: [s.tb ? s.n : s.k, s.tb ? s.k : s.n])
      let out = Tensor(zeros: [s.m, s.n])
      for i in 0..<a.count { a[i] = Float(i % 7) * 0.01 }
      for i in 0..<b.count { b[i] = Float(i % 5) * 0.01 }
      func call() { BLAS.gemm(a, transA: s.ta, b, transB: s.tb, into: out, beta: 1) }
      for _ in 0..<20 { call() }
      // Best of 5 runs of 50 calls: the attainable speed at this shape.
      var best = Double.infinity
      for _ in 0..<5 {
        let t0 = now()
        for _ in 0..<50 { call() }
        best = min(best, (now() - t0) / 50)
      }
      total += best
      flops += 2 * Double(s.m) * Double(s.n) * Double(s.k)
    }
    return (total * 1000, flops)
  }
}

