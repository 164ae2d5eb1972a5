import ElboModels
import ElboTestSupport
import Foundation
import XCTest

/// Bayes by Backprop's analogue of the compression rate, KL(q(w) ‖ p(w)): the closed form
/// against the Gaussian KL written out here, and the Monte Carlo estimate (a scale mixture
/// whose two scales are equal is that same Gaussian) against the closed form.
final class WeightCompressionTests: XCTestCase {
  func network(prior: WeightPrior) -> (BayesianMLP, ParameterStore) {
    let store = ParameterStore()
    let mlp = BayesianMLP(store, "net", sizes: [3, 4, 2], activation: .relu, prior: prior,
                          estimator: .weight, rhoInit: -2)
    store.allocate(seed: 3)
    // Spread the ρ's so that the σ's differ.
    for layer in mlp.layers {
      for index in [layer.weightRho, layer.biasRho] {
        let rho = store.value(index).buffer
        for i in rho.indices { rho[i] = -3 + Float(i % 5) * 0.5 }
      }
    }
    return (mlp, store)
  }

  func address(_ i: Int) -> NoiseAddress {
    NoiseAddress(seed: 1, purpose: .evaluation, item: UInt32(i))
  }

  func testClosedFormAndMonteCarloWeightKL() {
    let s: Float = 0.7
    let (gaussian, store) = network(prior: CenteredNormalPrior(standardDeviation: s))
    // Σ_i log(s/σ_i) + (σ_i² + μ_i²)/(2s²) − ½, σ = softplus(ρ).
    var exact = 0.0
    for layer in gaussian.layers {
      for (mean, rho) in [(layer.weightMean, layer.weightRho), (layer.biasMean, layer.biasRho)] {
        let mu = store.value(mean).buffer, r = store.value(rho).buffer
        for i in mu.indices {
          let sigma = log1p(exp(Double(r[i]))), m = Double(mu[i]), sd = Double(s)
          exact += log(sd / sigma) + (sigma * sigma + m * m) / (2 * sd * sd) - 0.5
        }
      }
    }
    let closed = gaussian.weightKL(store: store, samples: 1, address: address)
    XCTAssertFalse(closed.monteCarlo)
    XCTAssertEqual(closed.nats, exact, accuracy: 1e-4 * exact)

    // The same Gaussian as a mixture of two equal components: no closed form is used, and
    // the mean over 2000 draws lands within ~4 standard errors (SD of one draw ≈ √(26/2)).
    // (The same names, shapes and seed: the same μ and ρ.)
    let (mixture, mixtureStore) = network(prior: ScaleMixturePrior(pi: 0.5, sigma1: s, sigma2: s))
    XCTAssertEqual(Array(mixtureStore.flatValues), Array(store.flatValues))
    let mc = mixture.weightKL(store: mixtureStore, samples: 2000, address: address)
    XCTAssertTrue(mc.monteCarlo)
    XCTAssertEqual(mc.nats, exact, accuracy: 4 * (26.0 / 2).squareRoot() / 2000.0.squareRoot())
  }
}
