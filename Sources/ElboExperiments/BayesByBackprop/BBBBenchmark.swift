import ElboDistributed
import ElboModels
import Foundation

/// `elbo bench bbb-regression`: times the whole training step of Bayes by Backprop on the
/// regression toy (1-50-50-1, 1000 points, global batch 100 by default) exactly as the training
/// loop runs it — batch gather, weight noise, forward, backward, the all-reduces of the loss
/// terms and of the gradient, Adam — against the PyTorch anchor of ANCHORS.md.
public enum BBBBenchmark {
  /// PyTorch 2.15 CPU, same toy and batch (ANCHORS.md), examples/s by total thread count.
  static let pytorchAnchor: [Int: Double] = [1: 52106, 2: 50289]

  public static func run(options: BBBOptions, batchSize: Int, steps: Int, warmup: Int,
                         communicator: Communicator) throws -> [String: Any] {
    let workload = BBBRegressionWorkload(options: options, seed: 0)
    let store = workload.store
    let optimizer = Adam(parameterCount: store.count)
    let sharder = Sharder(itemCount: workload.itemCount, seed: 0)
    let m = sharder.stepsPerEpoch(globalBatch: batchSize)
    guard m > 0 else {
      throw ElboError("--batch-size \(batchSize) is larger than the data (\(workload.itemCount))")
    }
    let mine = Sharder.share(of: batchSize, rank: communicator.rank, size: communicator.size)
    var permutation = sharder.permutation(epoch: 0)
    let tape = Tape()
    var phase = [Double](repeating: 0, count: 4)  // forward, backward, all-reduce, optimizer
    var step = 0
    func oneStep(record: Bool) throws {
      let epoch = step / m, inEpoch = step % m
      if inEpoch == 0 { permutation = sharder.permutation(epoch: epoch) }
      let items = permutation[(inEpoch * batchSize + mine.lowerBound)..<(inEpoch * batchSize
                                                                        + mine.upperBound)]
      let t0 = now()
      tape.reset()
      store.zeroGrad()
      var (loss, sums) = workload.loss(items: items, step: step, epoch: epoch,
                                       globalBatch: batchSize, tape: tape)
      let t1 = now()
      if let loss { tape.backward(loss) }
      let t2 = now()
      try communicator.allreduceSum(&sums, name: "loss terms")
      try communicator.allreduceSum(store.flatGrads, name: "gradient all-reduce")
      let t3 = now()
      optimizer.update(store.flatValues, UnsafeBufferPointer(store.flatGrads))
      let t4 = now()
      if record {
        phase[0] += t1 - t0; phase[1] += t2 - t1; phase[2] += t3 - t2; phase[3] += t4 - t3
      }
      step += 1
    }
    for _ in 0..<warmup { try oneStep(record: false) }
    try communicator.barrier(name: "benchmark start")
    let start = now()
    for _ in 0..<steps { try oneStep(record: true) }
    let stepMs = (now() - start) * 1000 / Double(steps)
    let examplesPerSecond = Double(batchSize) / (stepMs / 1000)
    let perStep = { (v: Double) in round3(v * 1000 / Double(steps)) }
    var result: [String: Any] = [
      "model": BBBRegressionWorkload.name, "variant": options.network.variant.rawValue,
      "estimator": options.network.estimator.rawValue, "prior": options.network.prior.kind.rawValue,
      "batch_size": batchSize, "points": workload.itemCount, "parameters": store.count,
      "threads": BLAS.threads, "ranks": communicator.size, "steps": steps,
      "step_ms": round3(stepMs), "examples_per_second": round1(examplesPerSecond),
      "forward_ms": perStep(phase[0]), "backward_ms": perStep(phase[1]),
      "allreduce_ms": perStep(phase[2]), "optimizer_ms": perStep(phase[3]),
    ]
    if let anchor = pytorchAnchor[communicator.size * BLAS.threads] {
      result["pytorch_anchor_examples_per_second"] = anchor
      result["speedup_vs_pytorch"] = round3(examplesPerSecond / anchor)
    }
    return result
  }
}
