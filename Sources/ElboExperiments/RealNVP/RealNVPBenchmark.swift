import ElboDistributed
import ElboModels
import ElboTrain
import Foundation

/// `elbo bench realnvp`'s own figures: the step's matrix-product work and the rate it reaches.
extension RealNVPExperiment {
  public func benchmarkFields(trainer: Trainer, stepMs: Double, steps: Int, warmup: Int,
                              communicator: Communicator) throws -> [String: Any] {
    // Per coupling layer in→out on B rows: forward, dW = xᵀ·dy and dx = dy·Wᵀ (every input
    // depends on earlier couplings' parameters except the very first), 2·B·in·out flops each.
    let b = Double(trainer.globalBatch), d = dimension
    let widths = [d] + config.hidden + [2 * d]
    var flops = 0.0
    for k in 0..<config.couplings {
      for l in 0..<(widths.count - 1) {
        flops += Double(k == 0 && l == 0 ? 2 : 3) * 2 * b * Double(widths[l] * widths[l + 1])
      }
    }
    return ["dimension": d, "couplings": config.couplings, "hidden": config.hidden,
            "parameters": store.count,
            "gemm_gflop_per_step": round3(flops / 1e9),
            "gemm_gflops": round1(flops / (stepMs / 1000) / 1e9)]
  }
}
