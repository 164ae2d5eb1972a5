import ElboDistributed
import ElboModels
import ElboReport
import ElboTrain
import Foundation

/// `elbo impute` on a VAE run: the encoder–decoder chain of Rezende et al. (2014, §6) on N
/// binary test images spread evenly over the test set (`VAEImputer`), beside the training
/// set's per-pixel marginal.
///
/// Noise: the mask of test image g (random-50) is the stream (seed, evaluation, 2⁴⁶ − 1, g);
/// chain c of image g at iteration t draws from (seed, evaluation, 2⁴⁶ + t, g·C + c) — far
/// from the epoch evaluations (time = epoch), the test log-likelihood (2⁴⁸ − 1) and the
/// pictures (2⁴⁷). Each rank imputes a contiguous share of the N images; the sums are
/// all-reduced, so the figures do not depend on the number of ranks.
extension VAEExperiment: ImputingExperiment {
  public static var imputationMasks: [String] {
    var names: [String] = []
    for mask in ImputationMask.allCases { names.append(mask.rawValue) }
    return names
  }

  static let imputationNoiseTime: UInt64 = 1 << 46
  /// Images shown in the picture (rank 0's first ones), in blocks of `imageColumns`.
  static let imputationShown = 16

  /// The iterations whose log-likelihood is printed: 1, 2, 5, 10, 20, 50, … below T, and T.
  static func reportedIterations(_ t: Int) -> [Int] {
    var out: [Int] = []
    var decade = 1
    while decade < t {
      for m in [1, 2, 5] where m * decade < t { out.append(m * decade) }
      decade *= 10
    }
    return out + [t]
  }

  public func impute(_ request: ImputationRequest, seed: UInt64,
                     communicator: Communicator) throws -> ImputationOutcome {
    guard let mask = ImputationMask(rawValue: request.mask) else {
      throw ElboError("--mask \(request.mask): unknown; choose "
        + VAEExperiment.imputationMasks.joined(separator: ", "))
    }
    let n = request.images, c = request.chains, d = test.dimension
    guard n <= test.count else {
      throw ElboError("-n \(n): the test set of \(config.data) has \(test.count) images")
    }
    let mine = Sharder.share(of: n, rank: communicator.rank, size: communicator.size)

    // The true images and their masks [share, D].
    var truth = [Float](repeating: 0, count: mine.count * d)
    var missing = [Float](repeating: 0, count: mine.count * d)
    // Image i of the N is test image i·⌊count/N⌋: spread over a set that may be sorted by class.
    let spacing = test.count / n
    for (k, i) in mine.enumerated() {
      let g = i * spacing
      for j in 0..<d { truth[k * d + j] = images.testBinary[g * d + j] }
      var rng = RandomStream(NoiseAddress(seed: seed, purpose: .evaluation,
                                          time: VAEExperiment.imputationNoiseTime - 1,
                                          item: UInt32(g)))
      missing.withUnsafeMutableBufferPointer {
        mask.fill($0.baseAddress! + k * d, width: test.cols, height: test.rows, random: &rng)
      }
    }

    let reported = VAEExperiment.reportedIterations(request.iterations)
    let imputer = VAEImputer(model: model, chains: c)
    let first = mine.lowerBound
    let result = imputer.run(
      truth: truth, missing: missing, iterations: request.iterations, reported: reported,
      address: { t, i, ch in
        NoiseAddress(seed: seed, purpose: .evaluation,
                     time: VAEExperiment.imputationNoiseTime + UInt64(t),
                     item: UInt32((first + i) * spacing * c + ch))
      })
    let baseline = MarginalImputationBaseline(pixels: images.trainPixels, dimension: d)

    // Sums over this rank's images: log p̂ at each reported t, the baseline, missing pixels.
    var sums = result.logLikelihood.map { $0.reduce(0, +) }
    var baselineSum = 0.0
    for k in 0..<mine.count {
      baselineSum += baseline.logLikelihood(truth: truth[(k * d)..<((k + 1) * d)],
                                            missing: missing[(k * d)..<((k + 1) * d)])
    }
    sums += [baselineSum, Double(missing.reduce(0, +))]
    try communicator.allreduceSum(&sums, name: "imputation log-likelihood")
    let perImage = sums.map { $0 / Double(n) }

    let picture = communicator.rank == 0
      ? imputationPicture(truth: truth, missing: missing, imputed: result.imputed,
                          mask: mask, request: request)
      : nil
    return ImputationOutcome(
      iterations: reported, logLikelihood: Array(perImage[0..<reported.count]),
      baseline: perImage[reported.count], missingPerImage: perImage[reported.count + 1],
      description: [
        "chain (Rezende et al. 2014, §6): missing pixels start at Bernoulli(½); then T times "
          + "z ~ q(z|x)" + (model.hasFlow ? " (through the flow, z = z_K)" : "")
          + ", missing pixels resampled from p(x|z), observed pixels clamped",
        "log p(x_missing | x_observed) ≈ log (1/C) Σ_c p(x_missing^true | z_c), z_c the latent "
          + "of chain c at iteration T, C = \(c); nats per image, mean over the images",
        "baseline: each missing pixel Bernoulli(p̂_j), p̂_j its training-set frequency "
          + "(add-one smoothed)",
      ],
      picture: picture)
  }

  /// Rows of up to 8 images: observed (missing pixels grey), imputed (the chains' mean
  /// σ(decoder(z)) at T where missing), truth; blocks of three rows for more images.
  func imputationPicture(truth: [Float], missing: [Float], imputed: [Float],
                         mask: ImputationMask, request: ImputationRequest) -> Artifact {
    let d = test.dimension, cols = VAEExperiment.imageColumns
    // Whole blocks of `cols` images (a short last block would break the grid's rows).
    var shown = min(VAEExperiment.imputationShown, truth.count / d)
    if shown > cols { shown -= shown % cols }
    func row(_ k: Int, _ v: [Float]) -> [Float] { Array(v[(k * d)..<((k + 1) * d)]) }
    var tiles: [[Float]] = []
    for start in stride(from: 0, to: shown, by: cols) {
      let block = start..<min(start + cols, shown)
      for k in block {
        tiles.append((0..<d).map { missing[k * d + $0] == 1 ? 0.5 : truth[k * d + $0] })
      }
      for k in block { tiles.append(row(k, imputed)) }
      for k in block { tiles.append(row(k, truth)) }
    }
    let png = PNG.grid(tiles, imageWidth: test.cols, imageHeight: test.rows,
                       columns: min(cols, max(shown, 1)))
    return Artifact(
      fileName: "impute-\(mask.rawValue).png",
      caption: "Test images with the \(mask.rawValue) mask: observed (missing pixels grey), "
        + "imputed (mean over \(request.chains) chains of σ(decoder(z)) after "
        + "\(request.iterations) iterations), truth — three rows per block",
      content: .png(png))
  }
}
