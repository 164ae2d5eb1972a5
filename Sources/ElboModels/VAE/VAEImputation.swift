#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

/// Which pixels of an image are missing.
///   left-half:  columns 0 ..< W/2 of every row;   top-half: rows 0 ..< H/2;
///   random-50:  each pixel independently with probability ½ (a fresh pattern per image).
public enum ImputationMask: String, CaseIterable, Sendable {
  case leftHalf = "left-half"
  case topHalf = "top-half"
  case random50 = "random-50"

  /// Writes 1 (missing) or 0 (observed) for each of the W·H pixels (row-major) of one image;
  /// random-50 reads W·H uniforms from `random`.
  public func fill(_ missing: UnsafeMutablePointer<Float>, width: Int, height: Int,
                   random: inout RandomStream) {
    let d = width * height
    switch self {
    case .leftHalf:
      for j in 0..<d { missing[j] = j % width < width / 2 ? 1 : 0 }
    case .topHalf:
      for j in 0..<d { missing[j] = j / width < height / 2 ? 1 : 0 }
    case .random50:
      random.fillUniform(UnsafeMutableBufferPointer(start: missing, count: d))
      for j in 0..<d { missing[j] = missing[j] < 0.5 ? 1 : 0 }
    }
  }
}

/// Missing-data imputation with a trained VAE (Rezende, Mohamed & Wierstra, ICML 2014, §6 and
/// Fig. 5): the encoder and the decoder, alternated, form a Markov chain over the missing
/// pixels x_m of an image whose other pixels x_o are observed:
///
///   x_m⁽⁰⁾ ~ Bernoulli(½) per pixel (the paper starts the missing values at random),
///   for t = 1 … T:   z⁽ᵗ⁾ ~ q(z | x_o, x_m⁽ᵗ⁻¹⁾),   x_m⁽ᵗ⁾ ~ p(x_m | z⁽ᵗ⁾),   x_o clamped.
///
/// The missing pixels are *sampled* from the decoder, as in the paper. If q(z|x) were the true
/// posterior this would be Gibbs sampling of p(z, x_m | x_o), whose z-marginal is p(z | x_o);
/// with an amortised q it is the paper's approximation of that chain. With a flow posterior,
/// z⁽ᵗ⁾ = z_K, the draw pushed through the flow.
///
/// Imputation log-likelihood of the true missing pixels: with C independent chains per image,
///
///   log p̂(x_m^true | x_o) at t = log (1/C) Σ_c p(x_m^true | z_c⁽ᵗ⁾)
///
/// (p(x_m|z) = Π_{j missing} Bernoulli(x_j; σ(decoder(z)_j))): consistent as C → ∞ when the z's
/// are distributed as p(z | x_o), and biased low for finite C (Jensen).
///
/// Noise (every draw keyed by what it is for, so results do not depend on chunking or ranks):
/// the stream at `address(t, image, chain)` gives ε ~ N(0, I) [L] from block 0 and the
/// pixels' uniforms [D] from block `uniformBlock`; t = 0 is the initialisation.
///
/// Shapes: N images, C chains, D pixels, L latent units; rows are image-major (i·C + c).
public final class VAEImputer {
  public let model: VAE
  /// C, chains per image.
  public let chains: Int
  /// Images whose chains run together (memory: 3·imagesPerChunk·C·D floats).
  public let imagesPerChunk: Int
  /// Where a stream's uniforms start (past any normals a latent could use).
  public static let uniformBlock: UInt32 = 1 << 24

  private let tape = Tape(recording: false)

  /// - Parameters: chains C ≥ 1; imagesPerChunk ≥ 1.
  public init(model: VAE, chains: Int, imagesPerChunk: Int = 32) {
    precondition(chains >= 1 && imagesPerChunk >= 1, "imputation needs C ≥ 1 and chunks ≥ 1")
    self.model = model
    self.chains = chains
    self.imagesPerChunk = imagesPerChunk
  }

  public struct Result {
    /// log p̂(x_m^true | x_o) of each image [N] at each iteration of `reported`.
    public var logLikelihood: [[Double]]
    /// The imputed images [N, D]: x_o where observed; where missing, the mean over the C chains
    /// of σ(decoder(z⁽ᵀ⁾)), i.e. the chains' estimate of p(x_j = 1 | x_o).
    public var imputed: [Float]
  }

  /// Runs the chains of N images for T iterations.
  /// - Parameters:
  ///   - truth: the true binary images [N, D]; missing: 1 where a pixel is missing [N, D].
  ///   - iterations: T ≥ 1; reported: the iterations (in 1…T) whose log-likelihood is kept.
  ///   - address: the noise address of (t, image i ∈ 0..<N, chain c).
  public func run(truth: [Float], missing: [Float], iterations: Int, reported: [Int],
                  address: (_ t: Int, _ image: Int, _ chain: Int) -> NoiseAddress) -> Result {
    let d = model.config.inputs, n = truth.count / d
    precondition(truth.count == n * d && missing.count == n * d, "truth and mask must be [N, D]")
    precondition(iterations >= 1 && reported.allSatisfy { (1...iterations).contains($0) },
                 "iterations must be ≥ 1 and reported ones in 1…T")
    var result = Result(logLikelihood: reported.map { _ in [] }, imputed: truth)
    var start = 0
    while start < n {
      let end = min(start + imagesPerChunk, n)
      chunk(images: start..<end, truth: truth, missing: missing, iterations: iterations,
            reported: reported, address: address, into: &result)
      start = end
    }
    return result
  }

  // MARK: - One chunk of images

  private func chunk(images: Range<Int>, truth: [Float], missing: [Float], iterations: Int,
                     reported: [Int], address: (Int, Int, Int) -> NoiseAddress,
                     into result: inout Result) {
    let d = model.config.inputs, l = model.config.latent, c = chains
    let m = images.count * c
    var x = [Float](repeating: 0, count: m * d)         // [M, D] the chains' states
    var miss = [Float](repeating: 0, count: m * d)      // [M, D]
    var tru = [Float](repeating: 0, count: m * d)       // [M, D]
    var normals = [Float](repeating: 0, count: m * l)   // [M, L]
    var uniforms = [Float](repeating: 0, count: m * d)  // [M, D]
    for (k, i) in images.enumerated() {
      for ch in 0..<c {
        let row = (k * c + ch) * d
        for j in 0..<d {
          tru[row + j] = truth[i * d + j]
          miss[row + j] = missing[i * d + j]
        }
      }
    }
    // t = 0: the missing pixels start at Bernoulli(½); the observed ones at their values.
    drawUniforms(&uniforms, images: images, t: 0, address: address)
    for r in 0..<(m * d) { x[r] = miss[r] == 1 ? (uniforms[r] < 0.5 ? 1 : 0) : tru[r] }

    for t in 1...iterations {
      drawUniforms(&uniforms, images: images, t: t, address: address)
      for (k, i) in images.enumerated() {
        for ch in 0..<c {
          var rng = RandomStream(address(t, i, ch))
          let row = k * c + ch
          normals.withUnsafeMutableBufferPointer {
            rng.fillNormal(UnsafeMutableBufferPointer(rebasing: $0[(row * l)..<((row + 1) * l)]))
          }
        }
      }
      let (logP, means) = transition(x: &x, missing: miss, truth: tru, normals: normals,
                                     uniforms: uniforms)
      if let slot = reported.firstIndex(of: t) {
        for k in 0..<images.count {
          result.logLikelihood[slot].append(logMeanExp(logP[(k * c)..<((k + 1) * c)]))
        }
      }
      if t == iterations {
        for (k, i) in images.enumerated() {
          for j in 0..<d where missing[i * d + j] == 1 {
            var s = 0 as Float
            for ch in 0..<c { s += means[(k * c + ch) * d + j] }
            result.imputed[i * d + j] = s / Float(c)
          }
        }
      }
    }
  }

  /// The pixels' uniforms of iteration t for every chain of `images` [M, D].
  private func drawUniforms(_ u: inout [Float], images: Range<Int>, t: Int,
                            address: (Int, Int, Int) -> NoiseAddress) {
    let d = model.config.inputs, c = chains
    u.withUnsafeMutableBufferPointer { ub in
      for (k, i) in images.enumerated() {
        for ch in 0..<c {
          var rng = RandomStream(address(t, i, ch), startBlock: VAEImputer.uniformBlock)
          let row = k * c + ch
          rng.fillUniform(UnsafeMutableBufferPointer(rebasing: ub[(row * d)..<((row + 1) * d)]))
        }
      }
    }
  }

  // MARK: - One transition of the chain

  /// One step of M chains: z ~ q(z | x) (z = μ + σ ⊙ ε, through the flow if there is one), then
  /// each missing pixel x_j ← [u_j < σ(decoder(z)_j)]; observed pixels are not written.
  ///
  /// - Parameters:
  ///   - x: the states [M, D], updated in place; missing: 1 where missing [M, D];
  ///     truth: the true pixels [M, D]; normals: ε [M, L]; uniforms: u ∈ [0, 1) [M, D].
  /// - Returns: log p(x_m^true | z) per row [M] (Σ over missing pixels of
  ///   x_j·ℓ_j − softplus(ℓ_j), ℓ = decoder(z)), and the decoder means σ(ℓ) [M, D].
  public func transition(x: inout [Float], missing: [Float], truth: [Float], normals: [Float],
                         uniforms: [Float]) -> (logP: [Double], means: [Float]) {
    let d = model.config.inputs, l = model.config.latent, m = x.count / d
    precondition(missing.count == m * d && truth.count == m * d && uniforms.count == m * d
                 && normals.count == m * l, "transition: shapes must be [M, D] and [M, L]")
    tape.reset()
    let xt = tape.tensor([m, d])
    x.withUnsafeBufferPointer { xt.pointer.update(from: $0.baseAddress!, count: m * d) }
    let eps = tape.tensor([1, m, l])
    normals.withUnsafeBufferPointer { eps.pointer.update(from: $0.baseAddress!, count: m * l) }
    let z = model.hasFlow
      ? model.flowSample(x: tape.constant(xt), noise: eps).z                   // [M, L]
      : model.posterior(tape.constant(xt)).sample(noise: eps).reshaped([m, l])  // [M, L]
    let logits = model.decoder(z, model.store).value.pointer                    // [M, D]
    var logP = [Double](repeating: 0, count: m)
    var means = [Float](repeating: 0, count: m * d)
    for r in 0..<m {
      var acc = 0.0
      for j in (r * d)..<((r + 1) * d) {
        let v = logits[j]
        let p = 1 / (1 + expf(-v))
        means[j] = p
        guard missing[j] == 1 else { continue }
        let softplus = max(v, 0) + log1pf(expf(-abs(v)))
        acc += Double(truth[j] * v - softplus)
        x[j] = uniforms[j] < p ? 1 : 0
      }
      logP[r] = acc
    }
    return (logP, means)
  }
}

/// The model-free baseline of imputation: each pixel independently Bernoulli(p̂_j), p̂_j its
/// frequency in the training images with add-one smoothing, (Σ_n x_nj + 1)/(N + 2) (so no
/// pixel has probability 0 or 1); log p(x_m^true) = Σ_{j missing} log Bernoulli(x_j; p̂_j).
public struct MarginalImputationBaseline: Sendable {
  /// p̂_j [D].
  public let probabilities: [Double]

  /// - Parameter pixels: the training images [N, D], values in [0, 1] (binary, or intensities
  ///   whose mean is the marginal of their dynamic binarisation).
  public init(pixels: [Float], dimension d: Int) {
    let n = pixels.count / d
    var sums = [Double](repeating: 0, count: d)
    for i in 0..<n { for j in 0..<d { sums[j] += Double(pixels[i * d + j]) } }
    probabilities = sums.map { ($0 + 1) / Double(n + 2) }
  }

  /// log p(x_m^true) of one image: truth and missing are its D pixels.
  public func logLikelihood(truth: ArraySlice<Float>, missing: ArraySlice<Float>) -> Double {
    var s = 0.0
    for (j, (t, m)) in zip(truth, missing).enumerated() where m == 1 {
      s += t == 1 ? log(probabilities[j]) : log(1 - probabilities[j])
    }
    return s
  }
}

/// log (1/n) Σ exp(v), stably.
func logMeanExp(_ v: ArraySlice<Double>) -> Double {
  let top = v.max() ?? -.infinity
  guard top.isFinite else { return top }
  var s = 0.0
  for e in v { s += exp(e - top) }
  return top + log(s / Double(v.count))
}
