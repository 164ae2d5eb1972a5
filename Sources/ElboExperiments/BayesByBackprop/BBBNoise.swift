import ElboTrain
import ElboModels

/// The random numbers of the Bayes-by-Backprop workloads, each keyed by what it is for
/// (`NoiseAddress`), never by rank — so every rank draws the same weight sample for a step,
/// the per-example noise of example g does not depend on which rank holds g, and a resumed run
/// redraws exactly what the uninterrupted run drew:
///
/// - weight ε of tensor t at training step s: (seed, weightNoise, time: s, item: t);
/// - weight ε of prediction sample k (S samples, T tensors): (seed, evaluation, time: 0,
///   item: k·T + t) — the same S samples at every evaluation, so epoch-to-epoch changes are the
///   model's, not the noise's;
/// - local reparameterisation ε of example g at step s, all layers in order:
///   (seed, activationNoise, time: s, item: g);
/// - dropout uniforms of example g at step s, all hidden layers in order: (seed, dropout, s, g).
struct BBBNoise {
  let seed: UInt64

  /// A full weight sample's ε in arena tensors.
  func weights(_ shapes: [[Int]], purpose: NoisePurpose, time: UInt64, firstItem: Int,
               tape: Tape) -> [Tensor] {
    shapes.enumerated().map { t, shape in
      let eps = tape.tensor(shape)
      var rng = RandomStream(NoiseAddress(seed: seed, purpose: purpose, time: time,
                                          item: UInt32(firstItem + t)))
      rng.fillNormalFast(eps.buffer)
      return eps
    }
  }

  /// Training-step weight noise.
  func trainingWeights(_ shapes: [[Int]], step: Int, tape: Tape) -> [Tensor] {
    weights(shapes, purpose: .weightNoise, time: UInt64(step), firstItem: 0, tape: tape)
  }

  /// Prediction sample k's weight noise.
  func predictionWeights(_ shapes: [[Int]], sample k: Int, tape: Tape) -> [Tensor] {
    weights(shapes, purpose: .evaluation, time: 0, firstItem: k * shapes.count, tape: tape)
  }

  /// Local-reparameterisation ε: one [R, width] per layer; row r belongs to item items[r].
  func preactivations(widths: [Int], items: ArraySlice<Int>, step: Int, tape: Tape) -> [Tensor] {
    let r = items.count
    let out = widths.map { tape.tensor([r, $0]) }
    for (row, g) in items.enumerated() {
      var rng = RandomStream(NoiseAddress(seed: seed, purpose: .activationNoise,
                                          time: UInt64(step), item: UInt32(g)))
      for (l, w) in widths.enumerated() {
        rng.fillNormalFast(UnsafeMutableBufferPointer(start: out[l].pointer + row * w, count: w))
      }
    }
    return out
  }

  /// Inverted-dropout masks: one [R, width] per hidden layer, 0 with probability p, else 1/(1−p).
  func dropoutMasks(widths: [Int], rate p: Float, items: ArraySlice<Int>, step: Int,
                    tape: Tape) -> [Tensor] {
    let r = items.count, keep = 1 / (1 - p)
    let out = widths.map { tape.tensor([r, $0]) }
    for (row, g) in items.enumerated() {
      var rng = RandomStream(NoiseAddress(seed: seed, purpose: .dropout, time: UInt64(step),
                                          item: UInt32(g)))
      for (l, w) in widths.enumerated() {
        let m = out[l].pointer + row * w
        for j in 0..<w { m[j] = rng.uniform() < p ? 0 : keep }
      }
    }
    return out
  }

  /// Everything `network` needs for a training step on `items`.
  func training(_ network: BBBNetwork, items: ArraySlice<Int>, step: Int, tape: Tape)
    -> NetworkNoise {
    switch network {
    case .bayesian(let b):
      // The local estimator also draws a weight sample: for the Monte Carlo KL of a prior
      // without a closed form, and for the logged surprise (see BayesianMLP.forward).
      var noise = NetworkNoise(weights: trainingWeights(b.weightNoiseShapes, step: step,
                                                        tape: tape))
      if b.estimator == .local {
        noise.preactivations = preactivations(widths: b.layerWidths, items: items, step: step,
                                              tape: tape)
      }
      return noise
    case .point(_, let rate):
      guard rate > 0 else { return NetworkNoise() }
      return NetworkNoise(dropoutMasks: dropoutMasks(widths: network.hiddenWidths, rate: rate,
                                                     items: items, step: step, tape: tape))
    }
  }

  /// Prediction sample k's weight noise ([] for point networks, which are deterministic).
  func prediction(_ network: BBBNetwork, sample k: Int, tape: Tape) -> [Tensor] {
    guard let b = network.bayesian else { return [] }
    return predictionWeights(b.weightNoiseShapes, sample: k, tape: tape)
  }
}

extension BBBNetwork {
  /// Prediction samples worth drawing: S for the Bayesian network, 1 for a point network.
  func predictionSamples(_ s: Int) -> Int { bayesian == nil ? 1 : s }
}
