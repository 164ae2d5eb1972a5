import ElboDistributed
import ElboModels
import ElboTrain
import Foundation

/// `elbo bench made`'s own figures: the step's matrix-product work and the rate it reaches
/// (no PyTorch anchor has been measured for MADE).
extension MADEExperiment {
  public func benchmarkFields(trainer: Trainer, stepMs: Double, steps: Int, warmup: Int,
                              communicator: Communicator) throws -> [String: Any] {
    // Per layer in→out on B rows: forward, dW = xᵀ·dy and (except the first layer and the
    // direct connection, whose input is data) dx = dy·Wᵀ, 2·B·in·out flops each.
    let b = Double(trainer.globalBatch)
    let widths = [config.inputs] + config.hidden + [config.inputs]
    var flops = 0.0
    for l in 0..<(widths.count - 1) {
      flops += Double(l == 0 ? 2 : 3) * 2 * b * Double(widths[l] * widths[l + 1])
    }
    if config.direct { flops += 2 * 2 * b * Double(config.inputs * config.inputs) }
    return ["hidden": config.hidden, "masks": config.masks,
            "gemm_gflop_per_step": round3(flops / 1e9),
            "gemm_gflops": round1(flops / (stepMs / 1000) / 1e9)]
  }
}
