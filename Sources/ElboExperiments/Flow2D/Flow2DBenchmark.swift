import ElboDistributed
import ElboModels
import ElboTrain
import Foundation

/// `elbo bench flow-2d`'s own figures: the chain, and the step's time per sample and flow
/// (there is no matrix product to bound the step: a 2-D flow step is a few elementwise ops per
/// sample; the trainer already reports examples, i.e. samples, per second).
extension Flow2DExperiment {
  public func benchmarkFields(trainer: Trainer, stepMs: Double, steps: Int, warmup: Int,
                              communicator: Communicator) throws -> [String: Any] {
    ["target": config.target.rawValue, "flow": config.flow.kind.rawValue,
     "flow_length": config.flow.length,
     "us_per_sample_per_flow": round3(stepMs * 1000 / Double(trainer.globalBatch)
                                        / Double(max(config.flow.length, 1)))]
  }
}
