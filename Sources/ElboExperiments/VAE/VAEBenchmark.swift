import ElboDistributed
import ElboModels
import Foundation

/// `elbo bench vae`: times the full training step of the VAE (forward, backward, all-reduce,
/// Adam) — on several ranks with each method of ``AllreduceMethod`` (fused, bucketed-overlapped,
/// sharded), side by side, and a raw `MPI_Allreduce` of the same bytes — and, in the same
/// process, the BLAS-bound limit — the sum of `cblas_sgemm` times at exactly the step's GEMM
/// shapes — so the result is a ratio that machine noise affects little.
public enum VAEBenchmark {
  /// PyTorch 2.15 CPU on this machine kind (ANCHORS.md), examples/s by thread count.
  static let pytorchAnchor: [Int: Double] = [1: 20486, 2: 29318]

  public static func run(batchSize: Int, latent: Int, hidden: Int, steps: Int, warmup: Int,
                         bucketFloats: Int = AllreduceMethod.defaultBucketFloats,
                         communicator: Communicator) throws -> [String: Any] {
    var config = VAE.Config()
    config.latent = latent
    config.hidden = hidden
    let model = VAE(config, seed: 0)
    let store = model.store
    let optimizer = Adam(parameterCount: store.count)
    let rank = communicator.rank, size = communicator.size
    let rows = Sharder.share(of: batchSize, rank: rank, size: size).count

    // Synthetic binary data (the step's cost does not depend on the pixel values).
    let x = Tensor(zeros: [rows, config.inputs])
    var rng = RandomStream(NoiseAddress(seed: 1, purpose: .benchmark, item: UInt32(rank)))
    for i in 0..<x.count { x[i] = rng.uniform() < 0.3 ? 1 : 0 }
    let noise = Tensor(zeros: [1, rows, latent])
    rng.fillNormal(noise.buffer)

    // With several ranks every method is timed, in interleaved blocks of steps (and a block of
    // raw all-reduces of the same bytes after each round) so that the shared machine's noise
    // hits them alike; the trainer's method is reported first and gives the headline figures.
    // Their comparison uses the median block: a burst of other work on a shared machine (which
    // stalls whichever rank it lands on, and so the all-reduce) spoils a few blocks, not it.
    let methods = size > 1
      ? [AllreduceMethod.trainerDefault] + AllreduceMethod.allCases.filter { $0 != .trainerDefault }
      : [AllreduceMethod.trainerDefault]
    var syncs = try methods.map {
      try GradientSync($0, store: store, communicator: communicator, bucketFloats: bucketFloats)
    }
    // Labels in the JSON line; the sharded method moving its shards through shared memory is
    // also timed through MPI's collectives ("sharded_mpi"), to show what the transport buys.
    var labels = methods.map(\.rawValue)
    if let s = methods.firstIndex(of: .sharded), syncs[s].exchange is SharedMemoryShardExchange {
      labels.append("sharded_mpi")
      syncs.append(try GradientSync(.sharded, store: store, communicator: communicator,
                                    sharedMemory: false))
    }
    let tape = Tape()
    // Per method: forward, backward, all-reduce (fused), bucket wait (bucketed) or
    // reduce-scatter (sharded), optimizer, parameter all-gather (sharded).
    var phase = [[Double]](repeating: [0, 0, 0, 0, 0], count: syncs.count)
    var wall = [Double](repeating: 0, count: syncs.count)
    var blockMs = [[Double]](repeating: [], count: syncs.count)  // per block, ms per step
    func oneStep(_ m: Int, record: Bool) throws {
      let t0 = now()
      tape.reset()
      store.zeroGrad()
      let terms = model.terms(x: x, noise: noise, normalizer: Float(batchSize), on: tape)
      let t1 = now()
      let (backward, reduce) = try syncs[m].backwardAndReduce(terms.loss, on: tape)
      let (update, gather) = try syncs[m].update(optimizer)
      if record {
        phase[m][0] += t1 - t0; phase[m][1] += backward; phase[m][2] += reduce
        phase[m][3] += update; phase[m][4] += gather
      }
    }
    // Raw all-reduce of the same bytes, for the communication overhead ratio.
    let probe = Tensor(zeros: [store.count])
    var rawAllreduce = 0.0
    func rawBlock(_ n: Int) throws {
      let t0 = now()
      for _ in 0..<n { try communicator.allreduceSum(probe.buffer, name: "raw all-reduce") }
      rawAllreduce += now() - t0
    }
    for m in syncs.indices { for _ in 0..<warmup { try oneStep(m, record: false) } }
    if size > 1 { try rawBlock(5); rawAllreduce = 0 }
    let block = max(1, min(20, steps / 10))
    var done = 0
    while done < steps {
      let n = min(block, steps - done)
      for m in syncs.indices {
        try communicator.barrier(name: "benchmark block")
        let start = now()
        for _ in 0..<n { try oneStep(m, record: true) }
        wall[m] += now() - start
        blockMs[m].append((now() - start) * 1000 / Double(n))
      }
      if size > 1 {
        try communicator.barrier(name: "benchmark block")
        try rawBlock(n)
      }
      done += n
    }
    let ms = { (seconds: Double) in round3(seconds * 1000 / Double(steps)) }
    let stepMs = wall[0] * 1000 / Double(steps)
    rawAllreduce = rawAllreduce * 1000 / Double(steps)  // ms per all-reduce
    // Communication per step: the reduction (or wait) plus, sharded, the parameter all-gather.
    let commMs = { (m: Int) in (phase[m][2] + phase[m][4]) * 1000 / Double(steps) }

    let limit = blasBoundLimit(rows: rows, config: config)
    let examplesPerSecond = Double(batchSize) / (stepMs / 1000)
    var result: [String: Any] = [
      "model": "vae", "batch_size": batchSize, "latent": latent, "hidden": hidden,
      "threads": BLAS.threads, "ranks": size, "steps": steps,
      "allreduce": labels[0],
      "examples_per_second": round1(examplesPerSecond), "step_ms": round3(stepMs),
      "forward_ms": ms(phase[0][0]), "backward_ms": ms(phase[0][1]),
      "allreduce_ms": round3(commMs(0)), "optimizer_ms": ms(phase[0][3]),
      "gemm_mflop_per_step": round3(limit.flops * Double(size) / 1e6),
      "blas_bound_ms": round3(limit.ms), "blas_gflops": round1(limit.flops / limit.ms / 1e6),
      "fraction_of_blas_bound": round3(limit.ms / stepMs),
      "openblas_core": BLAS.coreName,
    ]
    if size > 1 { result["raw_allreduce_ms"] = round3(rawAllreduce) }
    if size > 1 && rawAllreduce > 0 {
      result["allreduce_vs_raw"] = round3(commMs(0) / rawAllreduce)
    }
    if let exchange = syncs[0].exchange { result["shard_transport"] = exchange.transport }
    // The side-by-side comparison: step time of each method; for the bucketed one its backward
    // (with bucket starts) and the wait left after backward; for the sharded one the
    // reduce-scatter and all-gather against the raw all-reduce, and its optimizer share.
    if syncs.count > 1 {
      for (m, name) in labels.enumerated() {
        result["\(name)_step_ms"] = ms(wall[m])
        result["\(name)_examples_per_second"] = round1(Double(batchSize * steps) / wall[m])
        result["\(name)_median_block_step_ms"] = round3(median(blockMs[m]))
        result["\(name)_backward_ms"] = ms(phase[m][1])
        result["\(name)_allreduce_ms"] = round3(commMs(m))
        result["\(name)_optimizer_ms"] = ms(phase[m][3])
        switch syncs[m].method {
        case .bucketed:
          result["bucket_floats"] = bucketFloats
          result["buckets"] = syncs[m].bucketCount
        case .sharded:
          result["\(name)_reduce_scatter_ms"] = ms(phase[m][2])
          result["\(name)_allgather_ms"] = ms(phase[m][4])
          if rawAllreduce > 0 { result["\(name)_comm_vs_raw"] = round3(commMs(m) / rawAllreduce) }
          if let exchange = syncs[m].exchange { result["\(name)_transport"] = exchange.transport }
        case .fused:
          break
        }
      }
      // Ratios of the median blocks.
      let fused = median(blockMs[labels.firstIndex(of: "fused")!])
      for (m, name) in labels.enumerated() where name != "fused" {
        result["\(name)_vs_fused"] = round3(median(blockMs[m]) / fused)
      }
    }
    let anchorThreads = size * BLAS.threads
    if let anchor = pytorchAnchor[anchorThreads] {
      result["pytorch_anchor_examples_per_second"] = anchor
      result["speedup_vs_pytorch"] = round3(examplesPerSecond / anchor)
    }
    return result
  }

  /// Times each GEMM of one training step at its exact shape (rows = this rank's batch share):
  /// per layer in→out the forward x·W [R×in·in×out], the weight gradient xᵀ·dy [in×R·R×out], and
  /// — except for the first encoder layer, whose input is data — the input gradient dy·Wᵀ.
  static func blasBoundLimit(rows r: Int, config c: VAE.Config) -> (ms: Double, flops: Double) {
    let h = Array(repeating: c.hidden, count: c.hiddenLayers)
    let enc = [c.inputs] + h + [2 * c.latent], dec = [c.latent] + h + [c.inputs]
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

/// Seconds on a monotonic clock.
func now() -> Double {
  var ts = timespec()
  clock_gettime(CLOCK_MONOTONIC, &ts)
  return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}
func median(_ v: [Double]) -> Double {
  let s = v.sorted()
  return s.isEmpty ? .nan : s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}
func round1(_ v: Double) -> Double { (v * 10).rounded() / 10 }
func round3(_ v: Double) -> Double { (v * 1000).rounded() / 1000 }
