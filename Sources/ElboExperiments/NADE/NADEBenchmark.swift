import CKernels
import ElboDistributed
import ElboModels
import ElboTrain
import Foundation

/// `elbo bench nade`'s own figures beside the trainer's step time: the PyTorch anchor's ratio,
/// the step's floating-point work (``NADEKernelBenchmark/flopsPerUnit(ones:)`` per example,
/// pixel and hidden unit, at the training data's fraction of ones), the core's FMA throughput
/// measured in this process (`ek_measure_fma_gflops`), the fraction of it the step reaches, and
/// the fused op alone (forward + backward on synthetic data with the same fraction of ones, in
/// thread CPU time) to show the trainer's overhead and what a loaded machine's wall clock adds.
extension NADEExperiment {
  /// PyTorch 2.15 CPU, H = 500, batch 100 (ANCHORS.md): examples/s by thread count.
  static let pytorchAnchor: [Int: Double] = [1: 439, 2: 776]

  public func benchmarkFields(trainer: Trainer, stepMs: Double, steps: Int, warmup: Int,
                              communicator: Communicator) throws -> [String: Any] {
    let size = communicator.size, b = trainer.globalBatch
    let d = config.inputs, h = config.hidden
    let ones = Double(images.trainPixels.reduce(0, +)) / Double(images.trainPixels.count)
    let perUnit = NADEKernelBenchmark.flopsPerUnit(ones: ones)
    let flopsPerStep = perUnit * Double(b * d * h)
    let reached = flopsPerStep / (stepMs / 1000) / 1e9
    // The op is single-threaded: each rank's step runs on one core, so the attainable rate is
    // ranks × one core's FMA throughput.
    let peak = ek_measure_fma_gflops(0.5)
    let kernel = NADEKernelBenchmark.run(hidden: h, inputs: d,
                                         batch: Sharder.share(of: b, rank: 0, size: size).count,
                                         steps: 10, ones: ones)
    let examplesPerSecond = Double(b) / (stepMs / 1000)
    var result: [String: Any] = [
      "hidden": h, "inputs": d, "ones_fraction": round3(ones),
      "flops_per_unit": round3(perUnit), "gflop_per_step": round3(flopsPerStep / 1e9),
      "gflops": round1(reached), "fma_gflops_per_core": round1(peak),
      "fraction_of_fma_peak": round3(reached / (peak * Double(size))),
      // The fused op alone, in this thread's CPU time (immune to other jobs' time slices,
      // unlike step_ms, which is wall time): what the step would cost without the trainer.
      "kernel_ms_per_step": round3(kernel["msPerStep"]!),
      "kernel_fraction_of_fma_peak": round3(kernel["gflops"]! / peak),
    ]
    // The anchor holds for its own shape only: H = 500, D = 784, batch 100.
    if h == 500, d == 784, b == 100,
       let anchor = NADEExperiment.pytorchAnchor[size * BLAS.threads] {
      result["pytorch_anchor_examples_per_second"] = anchor
      result["speedup_vs_pytorch"] = round3(examplesPerSecond / anchor)
    }
    return result
  }
}
