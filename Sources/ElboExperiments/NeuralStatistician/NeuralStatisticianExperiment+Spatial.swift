import ElboData
import ElboModels
import ElboReport
import ElboTrain

/// Spatial MNIST pictures (the paper's Figure 4) for collections of 2-D point sets: held-out
/// digits beside sets sampled conditioned on them (seed 000's Algorithm 2), and 6-point
/// summaries — greedily keep the point whose addition brings q(c|subset) closest in KL to
/// q(c|all). Each digit is drawn in its own 32-wide slot along x.
extension NeuralStatisticianExperiment {
  /// Digits drawn per picture.
  static let spatialDigits = 6

  /// The greedy summary of one set (rows [n, D]): the indices of `size` points.
  public func summary(of set: Tensor, size: Int) -> [Int] {
    let n = set.shape[0], d = set.shape[1], tape = Tape(recording: false)
    func posteriors(_ subsets: [[Int]]) -> (mu: [Float], lv: [Float]) {
      tape.reset()
      let m = subsets.map(\.count).max() ?? 1
      let x = tape.tensor([subsets.count, m, d], zeroed: true)
      let mask = tape.tensor([subsets.count, m], zeroed: true)
      for (b, s) in subsets.enumerated() {
        for (j, i) in s.enumerated() {
          (x.pointer + (b * m + j) * d).update(from: set.pointer + i * d, count: d)
          mask[b * m + j] = 1
        }
      }
      let q = model.contextPosterior(points: x, mask: mask, on: tape)
      return (q.mean.value.array, q.logVariance.value.array)
    }
    let all = posteriors([Array(0..<n)]), c = config.context
    var chosen: [Int] = []
    while chosen.count < min(size, n) {
      let candidates = (0..<n).filter { !chosen.contains($0) }
      let q = posteriors(candidates.map { chosen + [$0] })
      var best = 0, bestKL = Double.infinity
      for r in candidates.indices {
        var kl = 0.0  // KL(q(c|subset) ‖ q(c|all))
        for k in 0..<c {
          let la = Double(q.lv[r * c + k]), lb = Double(all.lv[k])
          let dm = Double(q.mu[r * c + k] - all.mu[k])
          kl += 0.5 * (lb - la + (exp(la) + dm * dm) / exp(lb) - 1)
        }
        if kl < bestKL { bestKL = kl; best = r }
      }
      chosen.append(candidates[best])
    }
    return chosen
  }

  /// The spatial pictures, or none when the points are not 2-D.
  func spatialArtifacts() -> [Artifact] {
    guard test.dimension == 2 else { return [] }
    let sets = figureSets
    var samples = Plot(title: "Held-out digits and sets sampled given them (Algorithm 2)",
                       xLabel: "x (one 32-wide slot per digit)", yLabel: "y")
    var summaries = Plot(title: "6-point summaries (closest q(c|subset) to q(c|all))",
                         xLabel: "x (one 32-wide slot per digit)", yLabel: "y")
    var dataX: [Double] = [], dataY: [Double] = [], sampleX: [Double] = [], sampleY: [Double] = []
    var keptX: [Double] = [], keptY: [Double] = []
    let tape = Tape(recording: false)
    for (slot, batch) in sets.enumerated() {
      let n = batch.counts[0], shift = Double(32 * slot), p = batch.points
      for j in 0..<n { dataX.append(Double(p[2 * j]) + shift); dataY.append(Double(p[2 * j + 1])) }
      tape.reset()
      let k = n
      var rng = RandomStream(NoiseAddress(seed: seed, purpose: .sampling, item: UInt32(slot)))
      let eps = tape.tensor([1, config.context])
      rng.fillNormal(eps.buffer)
      let latents = (0..<config.stochasticLayers).map { _ -> Tensor in
        let t = tape.tensor([k, config.latent])
        rng.fillNormal(t.buffer)
        return t
      }
      let x = model.conditionalSamples(points: batch.points, mask: batch.mask,
                                       contextNoise: eps, latentNoise: latents, on: tape)
      for j in 0..<k {
        sampleX.append(Double(x[2 * j]) + shift); sampleY.append(Double(x[2 * j + 1]))
      }
      let set = Tensor(Array(p.array[0..<(2 * n)]), shape: [n, 2])
      for j in summary(of: set, size: 6) {
        keptX.append(Double(set[2 * j]) + shift); keptY.append(Double(set[2 * j + 1]))
      }
    }
    samples.points("held-out digit", x: dataX, y: dataY)
    samples.points("sampled given it", x: sampleX.map { $0 }, y: sampleY.map { $0 - 32 })
    summaries.points("digit", x: dataX, y: dataY)
    summaries.points("6-point summary", x: keptX, y: keptY)
    return [
      Artifact(fileName: "conditional-samples.svg",
               caption: "Top: held-out digits as point sets; bottom (shifted down by 32): sets "
                 + "sampled from the model given each (c ~ q(c|D), then z and x from the prior).",
               content: .svg(samples.svg(width: 960, height: 420))),
      Artifact(fileName: "summaries.svg",
               caption: "Each digit's 6-point summary: points kept greedily so that q(c|subset) "
                 + "is closest in KL to q(c|all points).",
               content: .svg(summaries.svg(width: 960, height: 260))),
    ]
  }
}

#if canImport(Glibc)
import Glibc
#endif
