import ElboModels
import ElboTrain
import Foundation

/// Weight draws of the Monte Carlo weight KL (scale-mixture prior) in the evaluation's record.
let weightKLSamples = 8

/// The BBB analogue of the compression rate (`BayesianMLP.weightKL`), for the evaluation's
/// record: `weight_kl_nats` = KL(q(w) ‖ p(w)), `compression_bits_per_weight` = that over
/// (P ln 2), `weight_kl_monte_carlo` = 1 when it is the mean over `weightKLSamples` draws
/// (a prior without a closed form), 0 when exact. Nothing for a network without a weight
/// posterior (plain, dropout). Every rank computes the same value (no collectives); the draws
/// are keyed by the seed alone, so they are the same at every evaluation.
func weightCompressionMetrics(_ network: BBBNetwork, store: ParameterStore,
                              seed: UInt64) -> [String: Double] {
  guard let bayesian = network.bayesian else { return [:] }
  let (kl, monteCarlo) = bayesian.weightKL(store: store, samples: weightKLSamples) {
    NoiseAddress(seed: seed, purpose: .evaluation, time: 1 << 45, item: UInt32($0))
  }
  let p = Double(bayesian.weightCount)
  return ["weight_kl_nats": kl, "compression_bits_per_weight": kl / (p * log(2.0)),
          "weight_kl_monte_carlo": monteCarlo ? 1 : 0]
}
