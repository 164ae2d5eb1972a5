import ElboKit
import Foundation

/// Probabilistic PCA (Tipping & Bishop 1999) fitted as a variational autoencoder with a linear
/// Gaussian decoder: the smallest latent-variable model whose bound can be checked against its
/// exact log-likelihood.
///
/// Model (generative story):
///   z ~ p(z) = N(0, I_L)
///   x | z ~ p(x|z) = N(W z + b, σ² I_D),   σ² = exp(s), one learned scalar s
/// Guide (amortised, mean field):
///   q(z|x) = N(μ(x), diag σ_q²(x)),   [μ, log σ_q²] = A x + c   (a linear encoder)
/// Objective, per image (maximised): the ELBO with one reparameterised sample and the analytic KL,
///   log p(x|z) − KL(q(z|x) ‖ p(z)),   z = μ + σ_q ⊙ ε,   ε ~ N(0, I_L).
/// Exact marginal, for evaluation: x ~ N(b, W Wᵀ + σ² I_D) (Tipping & Bishop, eq. 4). The exact
///   posterior is Gaussian with a mean linear in x, so the guide can only lose what its diagonal
///   covariance cannot hold; Lucas et al. (NeurIPS 2019, "Don't Blame the ELBO!") show the
///   ELBO's global maximum is PPCA's maximum-likelihood solution, where the bound is tight.
///
/// Shapes: R images in the batch, D pixels (784; intensities in [0, 1], not binarised), L latents.
///   encoder: D → 2L (μ ‖ log σ_q²)    decoder: L → D (the mean W z + b)    s: [1]
public final class PPCA: Experiment, CommandLineModel {
  public struct Config: ExperimentConfig {
    /// mnist-5k, fashion-mnist, or a directory of IDX files.
    public var data = "mnist-5k"
    /// Latent units L (the dimension of the principal subspace).
    public var latent = 16

    public init() {}

    public func validate() throws {
      if latent <= 0 { throw ElboError("--latent must be a positive integer (got \(latent))") }
    }
  }

  /// `elbo-example train ppca --data … --latent …` (every flag optional: a flag left out keeps
  /// the config file's value or the default).
  public struct Flags: ModelFlags {
    @Option(help: withDefault("mnist-5k, fashion-mnist, or a directory of IDX files",
                              Config().data))
    var data: String?
    @Option(help: withDefault("Latent units", Config().latent)) var latent: Int?

    public init() {}

    public func apply(to c: inout Config) {
      if let data { c.data = data }
      if let latent { c.latent = latent }
    }
  }

  public static let name = "ppca"
  public static let summary = "Probabilistic PCA as a VAE with a linear Gaussian decoder (example)."
  public static let discussion = """
    z ~ N(0, I), x | z ~ N(W z + b, σ² I) on grey-level images; guide q(z|x) a diagonal \
    Gaussian from a linear encoder. Logged: F = −ELBO, log p(x|z), the analytic KL, the \
    surprise, σ²; per epoch: test ELBO and the exact test log-likelihood \
    log N(x | b, W Wᵀ + σ² I), in nats. Pictures: prior samples and the columns of W.
    """
  public static var runDefaults: RunOptions {
    var o = RunOptions()
    o.epochs = 20
    o.logEvery = 40
    return o
  }

  public let config: Config
  public let seed: UInt64
  public let data: ImageSplit
  public let store = ParameterStore()
  let encoder: Linear      // D → 2L
  let decoder: Linear      // L → D: weight [L, D] is Wᵀ, bias [D] is b
  let logVariance: Int     // s [1]

  public var itemCount: Int { data.train.count }
  public let terms = TermNames(bound: "elbo", components: ["log_px_given_z", "kl", "surprise"])
  public var dataDescription: String { config.data }

  public init(config: Config, seed: UInt64) throws {
    self.config = config
    self.seed = seed
    data = try DatasetCatalog.load(config.data)
    let d = data.train.dimension, l = config.latent
    encoder = Linear(store, "encoder", d, 2 * l)
    decoder = Linear(store, "decoder", l, d)
    // σ² starts at the mean pixel variance (PPCA's fit with W = 0), not 1: Adam moves s about
    // one learning rate per step, so from 0 it would take thousands of steps to get there.
    let s0 = Float(Foundation.log(PPCA.meanPixelVariance(data.train)))
    logVariance = store.declare("decoder.log_variance", [1], .constant(s0))
    store.allocate(seed: seed)
  }

  public func objectiveDescription(globalBatch: Int) -> [String] {
    ["objective elbo (one sample, analytic KL): loss = −(1/B) Σ ELBO over the global batch, "
      + "B = \(globalBatch); Gaussian likelihood with one learned variance σ² = exp(s)"]
  }

  // MARK: - The bound

  /// The per-image ELBO and its parts for images x [R, D] and noise ε [R, L], each [R].
  func elbo(_ x: Tensor, noise: Tensor, on tape: Tape)
    -> (bound: Variable, logLikelihood: Variable, kl: Variable, surprise: Variable) {
    let l = config.latent
    let h = encoder(tape.constant(x), store)                                  // [R, 2L]
    let q = DiagonalNormal(mean: h.columns(0..<l), logVariance: h.columns(l..<(2 * l)))
    let z = q.sample(noise: noise)                                            // [R, L]
    let logPxz = gaussianLogProb(x, mean: decoder(z, store), on: tape)        // [R]
    let kl = q.klToStandardNormal()                                           // [R]
    let surprise = StandardNormal.logProb(z) - q.logProb(z)                   // [R]
    return (Bound.elbo(logLikelihood: logPxz, kl: kl), logPxz, kl, surprise)
  }

  /// log N(x | m, σ² I) = −½ [‖x − m‖² / σ² + D log σ² + D log 2π] per row: x [R, D] → [R].
  func gaussianLogProb(_ x: Tensor, mean m: Variable, on tape: Tape) -> Variable {
    let s = store.variable(logVariance, on: tape)                             // [1]
    let d = Float(x.cols)
    let squaredError = (tape.constant(x) - m).square().sum(axis: -1)          // [R]
    return (squaredError * (-s).exp() + d * s).affine(scale: -0.5, shift: -0.5 * d * log2Pi)
  }

  public func loss(items: ArraySlice<Int>, step: Int, epoch: Int, globalBatch: Int, tape: Tape)
    -> StepLoss {
    guard !items.isEmpty else { return StepLoss(loss: nil, sums: .zero(terms)) }
    let x = rows(data.train, items, on: tape)                                 // [R, D]
    let noise = normalNoise(items, seed: seed, purpose: .latentNoise, time: UInt64(step),
                            on: tape)                                         // [R, L]
    let t = elbo(x, noise: noise, on: tape)
    return StepLoss(loss: t.bound.sum().affine(scale: -1 / Float(globalBatch)),
                    sums: TermSums(bound: sumDouble(t.bound.value),
                                   components: [t.logLikelihood, t.kl, t.surprise]
                                     .map { sumDouble($0.value) }))
  }

  /// The learned observation variance σ², beside the loss in every `train` record.
  public func stepFields(step: Int, globalBatch: Int) -> [String: Double] {
    ["sigma2": Double(Foundation.exp(store.value(logVariance)[0]))]
  }

  // MARK: - Evaluation

  /// Test-set ELBO (one sample) and exact log-likelihood, in nats per image; each rank takes
  /// its share of the test set, so every image counts once whatever the number of ranks.
  public func evaluate(epoch: Int, communicator: Communicator) throws -> [String: Double] {
    let test = data.test
    let mine = Sharder.share(of: test.count, rank: communicator.rank, size: communicator.size)
    let tape = Tape(recording: false)
    var sums = [Double](repeating: 0, count: 5)  // elbo, log p(x|z), kl, surprise, log p(x)
    for start in stride(from: mine.lowerBound, to: mine.upperBound, by: 500) {
      let chunk = start..<min(start + 500, mine.upperBound)
      tape.reset()
      let x = rows(test, chunk, on: tape)
      let noise = normalNoise(chunk, seed: seed, purpose: .evaluation, time: UInt64(epoch),
                              on: tape)
      let t = elbo(x, noise: noise, on: tape)
      for (i, term) in [t.bound, t.logLikelihood, t.kl, t.surprise].enumerated() {
        sums[i] += sumDouble(term.value)
      }
      sums[4] += exactLogLikelihood(x)
    }
    try communicator.allreduceSum(&sums, name: "test-set evaluation")
    let n = Double(test.count)
    return ["test_elbo": sums[0] / n, "test_log_px_given_z": sums[1] / n, "test_kl": sums[2] / n,
            "test_surprise": sums[3] / n, "test_log_likelihood": sums[4] / n]
  }

  /// Σ over the rows of x [R, D] of the exact log p(x) = log N(x | b, W Wᵀ + σ² I_D), in Double,
  /// through the L×L matrix M = Wᵀ W + σ² I_L and the Woodbury identity (y = x − b, u = Wᵀ y):
  ///   log det(W Wᵀ + σ² I_D) = (D − L) log σ² + log det M,
  ///   yᵀ (W Wᵀ + σ² I_D)⁻¹ y = (‖y‖² − uᵀ M⁻¹ u) / σ².
  func exactLogLikelihood(_ x: Tensor) -> Double {
    let l = config.latent, d = x.cols
    let wt = store.value(decoder.weight).pointer                              // Wᵀ [L, D]
    let b = store.value(decoder.bias).pointer                                 // [D]
    let sigma2 = Double(Foundation.exp(store.value(logVariance)[0]))
    // C: the Cholesky factor of M (M = C Cᵀ), lower triangle of a row-major [L, L].
    var c = [Double](repeating: 0, count: l * l)
    for i in 0..<l {
      for j in 0...i {
        var m = i == j ? sigma2 : 0
        for k in 0..<d { m += Double(wt[i * d + k]) * Double(wt[j * d + k]) }
        c[i * l + j] = m
      }
    }
    for j in 0..<l {
      for k in 0..<j { c[j * l + j] -= c[j * l + k] * c[j * l + k] }
      c[j * l + j] = c[j * l + j].squareRoot()
      for i in (j + 1)..<l {
        for k in 0..<j { c[i * l + j] -= c[i * l + k] * c[j * l + k] }
        c[i * l + j] /= c[j * l + j]
      }
    }
    var logDetM = 0.0
    for j in 0..<l { logDetM += 2 * Foundation.log(c[j * l + j]) }
    let normalizer = -0.5 * (Double(d) * Double(log2Pi) + Double(d - l) * Foundation.log(sigma2)
      + logDetM)
    var total = 0.0
    var y = [Double](repeating: 0, count: d), v = [Double](repeating: 0, count: l)
    for r in 0..<x.rows {
      var yy = 0.0
      for k in 0..<d {
        y[k] = Double(x.pointer[r * d + k]) - Double(b[k])
        yy += y[k] * y[k]
      }
      // v = C⁻¹ u by forward substitution, so that uᵀ M⁻¹ u = ‖v‖².
      var vv = 0.0
      for i in 0..<l {
        var ui = 0.0
        for k in 0..<d { ui += Double(wt[i * d + k]) * y[k] }
        for k in 0..<i { ui -= c[i * l + k] * v[k] }
        v[i] = ui / c[i * l + i]
        vv += v[i] * v[i]
      }
      total += normalizer - 0.5 * (yy - vv) / sigma2
    }
    return total
  }

  // MARK: - Pictures

  /// The `time` of the prior draws' noise address: fixed, so successive grids show the same z.
  static let sampleTime: UInt64 = 1 << 47

  /// Prior samples, and the L columns of W as images (grey 0, white/black ± the largest |w|).
  public func artifacts(step: Int, final: Bool) throws -> [Artifact] {
    let d = data.train.dimension
    let w = store.value(decoder.weight)                                       // Wᵀ [L, D]
    let scale = max(w.array.map(abs).max() ?? 1, 1e-12)
    let columns = (0..<config.latent).map { i in (0..<d).map { 0.5 + 0.5 * w[i * d + $0] / scale } }
    return [priorMeans(count: 64, seed: seed),
            Artifact(fileName: "components.png",
                     caption: "The columns of W: the principal subspace the decoder spans",
                     content: .png(grid(columns)))]
  }

  /// `elbo-example sample`: decoder means W z + b of `count` draws z ~ N(0, I).
  public func samples(count: Int, seed: UInt64) throws -> Artifact? {
    priorMeans(count: count, seed: seed)
  }

  func priorMeans(count: Int, seed: UInt64) -> Artifact {
    let tape = Tape(recording: false), d = data.train.dimension
    let z = normalNoise(0..<count, seed: seed, purpose: .sampling, time: PPCA.sampleTime,
                        on: tape)                                             // [count, L]
    let means = decoder(tape.constant(z), store).value                        // [count, D]
    let tiles = (0..<count).map { Array(UnsafeBufferPointer(start: means.pointer + $0 * d,
                                                            count: d)) }
    return Artifact(fileName: "samples.png",
                    caption: "Decoder means W z + b of \(count) draws z ~ N(0, I) (seed \(seed))",
                    content: .png(grid(tiles)))
  }

  // MARK: - Helpers

  /// Rows `items` of `set` as a tensor [R, D] in the tape's arena.
  func rows(_ set: ImageDataset, _ items: some Collection<Int>, on tape: Tape) -> Tensor {
    let d = set.dimension
    let x = tape.tensor([items.count, d])
    set.pixels.withUnsafeBufferPointer { src in
      for (r, g) in items.enumerated() {
        (x.pointer + r * d).update(from: src.baseAddress! + g * d, count: d)
      }
    }
    return x
  }

  /// ε ~ N(0, I) [R, L]; row r is drawn from the address (seed, purpose, time, items[r]), so the
  /// noise of an image does not depend on how many ranks share the batch.
  func normalNoise(_ items: some Collection<Int>, seed: UInt64, purpose: NoisePurpose,
                   time: UInt64, on tape: Tape) -> Tensor {
    let l = config.latent
    let eps = tape.tensor([items.count, l])
    for (r, g) in items.enumerated() {
      var rng = RandomStream(NoiseAddress(seed: seed, purpose: purpose, time: time,
                                          item: UInt32(g)))
      rng.fillNormal(UnsafeMutableBufferPointer(start: eps.pointer + r * l, count: l))
    }
    return eps
  }

  /// (1/D) Σ_d Var(x_d) over the images of `set`.
  static func meanPixelVariance(_ set: ImageDataset) -> Double {
    let d = set.dimension, n = Double(set.count)
    var sum = [Double](repeating: 0, count: d), sumSquares = [Double](repeating: 0, count: d)
    for (i, v) in set.pixels.enumerated() {
      sum[i % d] += Double(v)
      sumSquares[i % d] += Double(v) * Double(v)
    }
    return (0..<d).map { sumSquares[$0] / n - (sum[$0] / n) * (sum[$0] / n) }.reduce(0, +) / Double(d)
  }

  func grid(_ tiles: [[Float]]) -> Data {
    PNG.grid(tiles, imageWidth: data.train.cols, imageHeight: data.train.rows, columns: 8)
  }
}
