import ElboData
import ElboDistributed
import ElboModels
import ElboReport

/// How pixel intensities in [0, 1] become binary observations.
public enum Binarization: String, Codable, Sendable, CaseIterable {
  /// x = 1 where intensity > 0.5, once (the PyTorch anchor's setting).
  case `static`
  /// x ~ Bernoulli(intensity), drawn anew each epoch (Burda et al.'s setting); the test set is
  /// drawn once, with a fixed key, so that evaluations are comparable.
  case dynamic
}

/// The VAE on an image data set: batches, binarisation, latent noise and evaluation.
///
/// Noise is keyed by what it is for (see `NoiseAddress`): the ε of example g at step t is
/// RandomStream(seed, latentNoise, time: t, item: g), so a run's numbers do not depend on how
/// many ranks share the batch, and a resumed run redraws exactly the same noise.
public final class VAEWorkload: Workload {
  public let model: VAE
  public let seed: UInt64
  public let binarization: Binarization
  public let train: ImageDataset
  public let test: ImageDataset
  /// Inputs the model sees: binarised once (static) or the raw intensities (dynamic).
  private let trainPixels: [Float]
  private let testBinary: [Float]

  public var modelName: String { "vae" }
  public var store: ParameterStore { model.store }
  public var itemCount: Int { train.count }
  public let termNames = ["elbo", "log_px_given_z", "kl", "surprise"]

  public func objectiveDescription(globalBatch: Int) -> [String] {
    let c = model.config
    return ["objective \(c.objective.rawValue) (k = \(c.samples)): loss = −(1/B) Σ bound over the "
      + "global batch, B = \(globalBatch); KL weight 1 (analytic KL)"]
  }

  public init(model: VAE, data: ImageSplit, binarization: Binarization, seed: UInt64) {
    self.model = model
    self.seed = seed
    self.binarization = binarization
    train = data.train
    test = data.test
    switch binarization {
    case .static:
      trainPixels = binarizeStatic(data.train.pixels)
      testBinary = binarizeStatic(data.test.pixels)
    case .dynamic:
      trainPixels = data.train.pixels
      testBinary = VAEWorkload.sample(data.test.pixels, dimension: data.test.dimension,
                                      address: { NoiseAddress(seed: seed, purpose: .binarization,
                                                              time: UInt64.max >> 16, item: $0) })
    }
  }

  /// Draws x ~ Bernoulli(intensity) for every row, the row's uniforms keyed by `address(row)`.
  static func sample(_ pixels: [Float], dimension: Int,
                     address: (UInt32) -> NoiseAddress) -> [Float] {
    var out = [Float](repeating: 0, count: pixels.count)
    var u = [Float](repeating: 0, count: dimension)
    for row in 0..<(pixels.count / dimension) {
      var rng = RandomStream(address(UInt32(row)))
      u.withUnsafeMutableBufferPointer { rng.fillUniform($0) }
      for j in 0..<dimension { out[row * dimension + j] = u[j] < pixels[row * dimension + j] ? 1 : 0 }
    }
    return out
  }

  // MARK: - Batches and noise

  /// Copies rows `items` of the training set into `x` [R, D], binarising dynamically if asked.
  func fillBatch(_ x: Tensor, items: ArraySlice<Int>, epoch: Int) {
    let d = train.dimension
    let xp = x.pointer
    trainPixels.withUnsafeBufferPointer { src in
      for (r, g) in items.enumerated() {
        let row = xp + r * d, from = src.baseAddress! + g * d
        switch binarization {
        case .static:
          row.update(from: from, count: d)
        case .dynamic:
          var rng = RandomStream(NoiseAddress(seed: seed, purpose: .binarization,
                                              time: UInt64(epoch), item: UInt32(g)))
          rng.fillUniform(UnsafeMutableBufferPointer(start: row, count: d))
          for j in 0..<d { row[j] = row[j] < from[j] ? 1 : 0 }
        }
      }
    }
  }

  /// ε [k, R, L] for `items`: sample s of item g comes from blocks s·⌈L/4⌉… of the address
  /// (seed, purpose, time, g).
  func fillNoise(_ noise: Tensor, items: ArraySlice<Int>, purpose: NoisePurpose, time: UInt64,
                 firstSample: Int = 0) {
    let k = noise.shape[0], r = noise.shape[1], l = noise.shape[2]
    let blocksPerSample = (l + 3) / 4
    for (row, g) in items.enumerated() {
      for s in 0..<k {
        var rng = RandomStream(NoiseAddress(seed: seed, purpose: purpose, time: time,
                                            item: UInt32(g)),
                               startBlock: UInt32((firstSample + s) * blocksPerSample))
        rng.fillNormal(UnsafeMutableBufferPointer(start: noise.pointer + (s * r + row) * l,
                                                  count: l))
      }
    }
  }

  // MARK: - Workload

  public func loss(items: ArraySlice<Int>, step: Int, epoch: Int, globalBatch: Int, tape: Tape)
    -> (loss: Variable?, termSums: [Double]) {
    guard !items.isEmpty else { return (nil, [0, 0, 0, 0]) }
    let r = items.count, cfg = model.config
    let x = tape.tensor([r, cfg.inputs])
    fillBatch(x, items: items, epoch: epoch)
    let noise = tape.tensor([cfg.samples, r, cfg.latent])
    fillNoise(noise, items: items, purpose: .latentNoise, time: UInt64(step))
    let t = model.terms(x: x, noise: noise, normalizer: Float(globalBatch), on: tape)
    return (t.loss, [t.bound, t.logLikelihood, t.kl, t.surprise].map(sumDouble))
  }

  /// Test-set ELBO (one sample, analytic KL) and active units, each rank on its share of the
  /// test set, every example counted once whatever the number of ranks.
  public func evaluate(epoch: Int, communicator: Communicator) throws -> [String: Double] {
    let mine = Sharder.share(of: test.count, rank: communicator.rank, size: communicator.size)
    let l = model.config.latent, d = test.dimension
    var sums = [Double](repeating: 0, count: 4 + 2 * l)  // bound, ll, kl, surprise, Σμ, Σμ²
    let tape = Tape(recording: false)
    let chunk = 1000
    var start = mine.lowerBound
    while start < mine.upperBound {
      let end = min(start + chunk, mine.upperBound)
      tape.reset()
      let x = tape.tensor([end - start, d])
      testBinary.withUnsafeBufferPointer {
        x.pointer.update(from: $0.baseAddress! + start * d, count: (end - start) * d)
      }
      let noise = tape.tensor([1, end - start, l])
      fillNoise(noise, items: ArraySlice(start..<end), purpose: .evaluation,
                time: UInt64(epoch))
      let t = model.terms(x: x, noise: noise, normalizer: 1, on: tape)
      for (i, term) in [t.bound, t.logLikelihood, t.kl, t.surprise].enumerated() {
        sums[i] += sumDouble(term)
      }
      let mu = t.posteriorMean.pointer
      for row in 0..<(end - start) {
        for u in 0..<l {
          let v = Double(mu[row * l + u])
          sums[4 + u] += v
          sums[4 + l + u] += v * v
        }
      }
      start = end
    }
    var total = sums
    try communicator.allreduceSum(&total, name: "test-set evaluation")
    let n = Double(test.count)
    // Active units (Burda et al. 2016, §5.2): A_u = Var_x E_q[z_u | x] > 0.01.
    var active = 0
    for u in 0..<l {
      let mean = total[4 + u] / n
      if total[4 + l + u] / n - mean * mean > 0.01 { active += 1 }
    }
    return ["test_elbo": total[0] / n, "test_log_px_given_z": total[1] / n,
            "test_kl": total[2] / n, "test_surprise": total[3] / n,
            "active_units": Double(active)]
  }

  /// Importance-sampled test log-likelihood (Burda et al. 2016, §5) with `samples` samples per
  /// example, sharded over ranks. Returns the mean over the whole test set, in nats.
  public func testLogLikelihood(samples: Int, communicator: Communicator,
                                progress: ((Int, Int) -> Void)? = nil) throws -> Double {
    let mine = Sharder.share(of: test.count, rank: communicator.rank, size: communicator.size)
    let evaluator = VAELogLikelihoodEvaluator(model: model)
    let estimates = testBinary.withUnsafeBufferPointer { x in
      evaluator.logLikelihoods(
        x: x.baseAddress! + mine.lowerBound * test.dimension, items: mine, samples: samples,
        address: { NoiseAddress(seed: seed, purpose: .evaluation, time: UInt64.max >> 16,
                                item: UInt32($0)) },
        progress: { progress?($0, mine.count) })
    }
    if VAELogLikelihoodEvaluator.profiling, communicator.rank == 0 {
      print(evaluator.profileSummary())
    }
    let sum = estimates.reduce(0, +)
    let total = try communicator.allreduceSum(sum, name: "log-likelihood evaluation")
    return total / Double(test.count)
  }
}

// MARK: - Pictures (seed 004, 3.f.iv)

extension VAEWorkload {
  /// Training images shown beside their reconstructions, and prior samples shown.
  static let imageColumns = 8, reconstructionRows = 2, sampleRows = 8
  /// The `time` of the prior samples' noise address: fixed, so that every grid shows the same
  /// z's decoded by the current decoder and successive grids are comparable. (Evaluation noise
  /// uses time = epoch and 2⁴⁸ − 1; 2⁴⁷ is far from both.)
  static let sampleNoiseTime: UInt64 = 1 << 47

  /// Two grids, computed on a tape of their own that records nothing (so the training tape,
  /// the gradients and every random stream of training are untouched):
  ///  - reconstructions.png: rows of 8 training images (the same ones every time),
  ///    each followed by a row of their reconstructions σ(decoder(μ(x))) from the posterior mean;
  ///  - samples.png: 64 decoder means σ(decoder(z)) for z ~ N(0, I) with a fixed noise address.
  public func artifacts(step: Int, final: Bool) throws -> [Artifact] {
    let cols = VAEWorkload.imageColumns, d = train.dimension, l = model.config.latent
    let shown = min(cols * VAEWorkload.reconstructionRows, train.count)
    let tape = Tape(recording: false)

    // Reconstructions of `shown` training images spread evenly over the set (a set sorted by
    // class then shows several classes), as the model sees them.
    let picked = (0..<shown).map { $0 * (train.count / shown) }
    let x = tape.tensor([shown, d])
    for (r, i) in picked.enumerated() {
      for j in 0..<d { x.pointer[r * d + j] = trainPixels[i * d + j] }
    }
    let mean = model.posterior(tape.constant(x)).mean.value           // [shown, L]
    let reconstructed = model.decode(mean, on: tape)                  // [shown, D]
    func tile(_ t: Tensor, _ r: Int) -> [Float] {
      Array(UnsafeBufferPointer(start: t.pointer + r * d, count: d))
    }
    var tiles: [[Float]] = []
    for rowStart in stride(from: 0, to: shown, by: cols) {
      let row = rowStart..<min(rowStart + cols, shown)
      for r in row { tiles.append(tile(x, r)) }
      for r in row { tiles.append(tile(reconstructed, r)) }
    }
    let reconstructions = PNG.grid(tiles, imageWidth: train.cols, imageHeight: train.rows,
                                   columns: cols)

    // Decoder means at fixed z ~ N(0, I).
    let n = cols * VAEWorkload.sampleRows
    let z = tape.tensor([n, l])
    for i in 0..<n {
      var rng = RandomStream(NoiseAddress(seed: seed, purpose: .evaluation,
                                          time: VAEWorkload.sampleNoiseTime, item: UInt32(i)))
      rng.fillNormal(UnsafeMutableBufferPointer(start: z.pointer + i * l, count: l))
    }
    let means = model.decode(z, on: tape)                             // [n, D]
    let samples = PNG.grid((0..<n).map { tile(means, $0) }, imageWidth: train.cols, imageHeight: train.rows, columns: cols)
    return [
      Artifact(fileName: "reconstructions.png",
               caption: "Training images (odd rows) and their reconstructions σ(decoder(μ(x))) "
                 + "from the posterior mean (the row below each)",
               content: .png(reconstructions)),
      Artifact(fileName: "samples.png",
               caption: "Decoder means σ(decoder(z)) for 64 draws z ~ N(0, I) from the prior, "
                 + "the same draws every time",
               content: .png(samples)),
    ]
  }
}

/// Σ of a tensor's elements in Double.
func sumDouble(_ t: Tensor) -> Double {
  var s = 0.0
  for i in 0..<t.count { s += Double(t[i]) }
  return s
}
