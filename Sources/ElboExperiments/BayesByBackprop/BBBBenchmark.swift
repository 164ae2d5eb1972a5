import ElboDistributed
import ElboModels
import ElboTrain

/// `elbo bench bbb-regression`'s own figures beside the trainer's step time (batch gather,
/// weight noise, forward, backward, the exchange, Adam): the network and the PyTorch anchor
/// of the same toy and batch (1-50-50-1, 1000 points, global batch 100).
extension BBBRegressionExperiment {
  /// PyTorch 2.15 CPU, same toy and batch, examples/s by total thread count.
  static let pytorchAnchor: [Int: Double] = [1: 52106, 2: 50289]

  public func benchmarkFields(trainer: Trainer, stepMs: Double, steps: Int, warmup: Int,
                              communicator: Communicator) throws -> [String: Any] {
    let network = options.network
    var result: [String: Any] = [
      "variant": network.variant.rawValue, "estimator": network.estimator.rawValue,
      "prior": network.prior.kind.rawValue, "points": itemCount,
    ]
    if let anchor = Self.pytorchAnchor[communicator.size * BLAS.threads] {
      result["pytorch_anchor_examples_per_second"] = anchor
      result["speedup_vs_pytorch"] = round3(Double(trainer.globalBatch) / (stepMs / 1000) / anchor)
    }
    return result
  }
}
