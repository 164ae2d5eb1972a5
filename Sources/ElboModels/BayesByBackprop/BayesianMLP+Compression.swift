/// The weight-posterior analogue of the compression rate for Bayes by Backprop (Hinton & van
/// Camp 1993; Blundell et al. 2015, §2: the complexity cost is a description length):
///
///   KL(q(w|θ) ‖ p(w)) / (P ln 2)   bits per weight,
///
/// the bits needed to communicate the weight posterior, spread over the P weights and biases.
/// It is per parameter, not per data dimension as the latent models' rate: there is one w for
/// the whole data set, not one z per example.
extension BayesianMLP {
  /// KL(q(w) ‖ p(w)) over every weight and bias, nats: the closed form for a Gaussian prior;
  /// for a prior without one (the scale mixture), the mean of log q(w) − log p(w) over
  /// `samples` draws w ~ q, draw s of tensor t keyed by `address(s·2L + t)`.
  public func weightKL(store: ParameterStore, samples: Int,
                       address: (Int) -> NoiseAddress) -> (nats: Double, monteCarlo: Bool) {
    precondition(samples >= 1, "the Monte Carlo KL needs ≥ 1 sample")
    let tape = Tape(recording: false)
    var total = 0.0, monteCarlo = false
    for (l, layer) in layers.enumerated() {
      let q = layer.posterior(store, on: tape)
      for (t, post) in [q.weight, q.bias].enumerated() {
        if let analytic = prior.klFrom(post) {
          total += Double(analytic.value[0])
          continue
        }
        monteCarlo = true
        var sum = 0.0
        for s in 0..<samples {
          let eps = tape.tensor(post.mean.value.shape)
          var rng = RandomStream(address(s * 2 * layers.count + 2 * l + t))
          rng.fillNormal(eps.buffer)
          let w = post.sample(noise: eps)
          sum += Double((post.logProb(w) - prior.logProb(w)).value[0])
        }
        total += sum / Double(samples)
      }
    }
    return (total, monteCarlo)
  }
}
