#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif
import CKernels

/// The importance-sampled log-likelihood of a VAE (Burda et al. 2016, §5; K = 5000 gives their
/// "test log-likelihood"), chunked so that memory stays bounded and nothing is allocated after the
/// first chunk:
///
///   log p̂(x) = log (1/K) Σ_{s=1..K} p(x, z_s)/q(z_s|x),   z_s = μ(x) + σ(x) ⊙ ε_s,  ε_s ~ N(0, I)
///   log w_s  = log p(x|z_s) + Σ_u [ ½ ε_su² − ½ z_su² + ½ log σ²_u(x) ]   (the 2π terms cancel)
///
/// With a flow posterior q_K, z_s = f(z₀_s) for z₀_s = μ + σ ⊙ ε_s, and log q_K(z_s) =
/// log q₀(z₀_s) − Σ_k log|det ∂f_k|, so
///   log w_s  = log p(x|z_s) + Σ_u [ ½ ε_su² − ½ z_su² + ½ log σ²_u(x) ] + Σ_k log|det ∂f_k|.
/// The flow runs on the decoder's tape, block by block, on the block's rows of z₀ beside the
/// encoder's output (its context) repeated for each row's example.
///
/// Noise keying (the same as `VAEExperiment.fillNoise`): ε_s of item g is the normals of blocks
/// s·⌈L/4⌉ … of the stream at `address(g)`, drawn with `RandomStream.fillNormalFast` (the same
/// Philox words as `fillNormal`, each value within 1e-6·max(1, |ε|) of it). So the
/// estimate of an example does not depend on the chunk sizes, on which rank holds it, or on the
/// other examples of its chunk; the chunks are merged with `StreamingLogMeanExp` in Double.
///
/// Work per chunk of R examples and S samples (R·S decoder rows, example-major: row e·S + s):
/// the encoder once per R examples (on a non-recording tape whose arena is reused), the noise
/// and z for all R·S rows, then the decoder in blocks of `rowsPerBlock` rows on a second tape
/// (so each block's activations stay in cache), and log p(x|z) per row straight from the logits
/// with `ek_bernoulli_logits_rowsum_fast` against the example's x (no tiled copy of x).
/// `ELBO_EVAL_PROFILE=1` makes `elbo eval` print the time of each part and of sgemm alone.
///
/// Shapes: D inputs, L latent units, H hidden units; x [R, D], z [R·S, L], logits [M, D].
public final class VAELogLikelihoodEvaluator {
  public let model: VAE
  /// Examples encoded together (R).
  public let examplesPerChunk: Int
  /// Samples per example drawn together (S); K is covered in ⌈K/S⌉ rounds.
  public let samplesPerChunk: Int
  /// Decoder rows per GEMM block (M).
  public let rowsPerBlock: Int

  private let encoderTape = Tape(recording: false)
  private let decoderTape = Tape(recording: false)
  private var z: [Float] = []            // [R·S, L]
  private var latentTerm: [Float] = []   // [R·S]  Σ_u ½ε² − ½z² + ½ log σ² (flow: no −½z₀²)
  private var logWeights: [Float] = []   // [R·S]
  private var normals: [Float] = []      // [S, 4⌈L/4⌉]  one example's ε, as drawn
  private var sigma: [Float] = []        // [L]  one example's σ(x)
  private var accumulator = StreamingLogMeanExp(examples: 0)
  /// CPU seconds per part (encoder, noise and z, decoder, log p(x|z), log-mean-exp).
  public private(set) var sections: [String: Double] = [:]
  /// The GEMM shapes (m, n, k) this evaluator ran, with their counts, for timing sgemm alone.
  public private(set) var gemmShapes: [GEMMShape: Int] = [:]

  /// Storages held by the encoder's and the decoder's tape (for tests that nothing grows).
  public var arenaSizes: (Int, Int) { (encoderTape.arenaSize, decoderTape.arenaSize) }

  public struct GEMMShape: Hashable, Sendable {
    public let m: Int, n: Int, k: Int
  }

  /// - Parameters:
  ///   - examplesPerChunk: R ≥ 1; `samplesPerChunk`: S ≥ 1 (capped at K); `rowsPerBlock`: M ≥ 1.
  public init(model: VAE, examplesPerChunk: Int = 50, samplesPerChunk: Int = 1000,
              rowsPerBlock: Int = 512) {
    precondition(examplesPerChunk >= 1 && samplesPerChunk >= 1 && rowsPerBlock >= 1,
                 "chunk sizes must be ≥ 1")
    self.model = model
    self.examplesPerChunk = examplesPerChunk
    self.samplesPerChunk = samplesPerChunk
    self.rowsPerBlock = rowsPerBlock
  }

  /// log p̂(x) for each of `count` examples whose inputs are rows of `x` [count, D], example i
  /// being item `items.lowerBound + i` for the noise.
  ///
  /// - Parameters:
  ///   - samples: K ≥ 1 importance samples per example.
  ///   - address: the noise address of an item (its ε_s are blocks s·⌈L/4⌉… of it).
  ///   - progress: called after each chunk of examples with the number of examples done.
  public func logLikelihoods(x: UnsafePointer<Float>, items: Range<Int>, samples: Int,
                             address: (Int) -> NoiseAddress,
                             progress: ((Int) -> Void)? = nil) -> [Double] {
    precondition(samples >= 1, "importance sampling needs K ≥ 1 samples")
    let d = model.config.inputs
    var out: [Double] = []
    out.reserveCapacity(items.count)
    var start = items.lowerBound
    while start < items.upperBound {
      let end = min(start + examplesPerChunk, items.upperBound)
      out += chunk(x: x + (start - items.lowerBound) * d, items: start..<end, samples: samples,
                   address: address)
      start = end
      progress?(start - items.lowerBound)
    }
    return out
  }

  // MARK: - One chunk of examples

  private func chunk(x: UnsafePointer<Float>, items: Range<Int>, samples k: Int,
                     address: (Int) -> NoiseAddress) -> [Double] {
    let r = items.count, l = model.config.latent, d = model.config.inputs
    let s = min(samplesPerChunk, k)
    let stride = 4 * ((l + 3) / 4)                 // normals per sample as drawn
    let blocksPerSample = stride / 4
    if z.count < r * s * l {
      z = Array(repeating: 0, count: r * s * l)
      latentTerm = Array(repeating: 0, count: r * s)
      logWeights = Array(repeating: 0, count: r * s)
      normals = Array(repeating: 0, count: s * stride)
      sigma = Array(repeating: 0, count: l)
    }
    accumulator.reset(examples: r)

    // Encoder, once for the R examples: μ, log σ² [R, L].
    var t0 = clock()
    encoderTape.reset()
    let xt = encoderTape.tensor([r, d])
    xt.pointer.update(from: x, count: r * d)
    let (q, context) = model.encode(encoderTape.constant(xt))
    let mu = q.mean.value.pointer, logVar = q.logVariance.value.pointer
    let flow = model.hasFlow, width = model.encoderWidth
    let contextRows = context.value.pointer  // [R, 2L + C]
    note(rows: r, encoder: true)
    var t1 = clock()
    sections["encoder", default: 0] += t1 - t0

    var first = 0
    while first < k {
      let count = min(s, k - first)
      let rows = r * count
      // z and the latent part of log w for rows e·count + j.
      t0 = clock()
      z.withUnsafeMutableBufferPointer { zb in
        latentTerm.withUnsafeMutableBufferPointer { lt in
          normals.withUnsafeMutableBufferPointer { nb in
           sigma.withUnsafeMutableBufferPointer { sigma in
            for e in 0..<r {
              var rng = RandomStream(address(items.lowerBound + e),
                                     startBlock: UInt32(first * blocksPerSample))
              rng.fillNormalFast(UnsafeMutableBufferPointer(rebasing: nb[0..<(count * stride)]))
              let m = mu + e * l, lv = logVar + e * l, sd = sigma.baseAddress!
              var half = 0.0 as Float                   // ½ Σ_u log σ²_u
              for u in 0..<l {
                half += 0.5 * lv[u]
                sd[u] = expf(0.5 * lv[u])
              }
              for j in 0..<count {
                let eps = nb.baseAddress! + j * stride
                let row = e * count + j
                let zr = zb.baseAddress! + row * l
                var acc = half
                if flow {
                  // −½ z² is of z_K: added after the flow, per block.
                  for u in 0..<l {
                    zr[u] = m[u] + sd[u] * eps[u]
                    acc += 0.5 * eps[u] * eps[u]
                  }
                } else {
                  for u in 0..<l {
                    let zu = m[u] + sd[u] * eps[u]
                    zr[u] = zu
                    acc += 0.5 * (eps[u] * eps[u] - zu * zu)
                  }
                }
                lt[row] = acc
              }
            }
           }
          }
        }
      }
      t1 = clock()
      sections["noise and z", default: 0] += t1 - t0

      // Decoder and log p(x|z), in blocks of M rows.
      var b = 0
      while b < rows {
        let m = min(rowsPerBlock, rows - b)
        t0 = clock()
        decoderTape.reset()
        let zt = decoderTape.tensor([m, l])
        z.withUnsafeBufferPointer { zt.pointer.update(from: $0.baseAddress! + b * l, count: m * l) }
        var latent = decoderTape.constant(zt)                 // z₀ [M, L]
        var flowTerm: UnsafeMutablePointer<Float>?            // [M] Σ log|det| − ½ Σ z_K²
        if flow {
          let ct = decoderTape.tensor([m, width])             // each row's example's context
          for i in 0..<m {
            (ct.pointer + i * width).update(from: contextRows + ((b + i) / count) * width,
                                            count: width)
          }
          let (zK, logDet) = model.flow.forward(latent, context: decoderTape.constant(ct))
          let term = decoderTape.tensor([m]), zp = zK.value.pointer, ld = logDet.value.pointer
          for i in 0..<m {
            var acc = ld[i]
            for u in 0..<l { acc -= 0.5 * zp[i * l + u] * zp[i * l + u] }
            term[i] = acc
          }
          latent = zK
          flowTerm = term.pointer
        }
        let logits = model.decoder(latent, model.store).value.pointer  // [M, D]
        note(rows: m, encoder: false)
        t1 = clock()
        sections["decoder", default: 0] += t1 - t0
        logWeights.withUnsafeMutableBufferPointer { lw in
          for i in 0..<m {
            let row = b + i, e = row / count
            ek_bernoulli_logits_rowsum_fast(logits + i * d, x + e * d, lw.baseAddress! + row,
                                            1, d)
            lw[row] += latentTerm[row]
            if let flowTerm { lw[row] += flowTerm[i] }
          }
        }
        t0 = clock()
        sections["log p(x|z)", default: 0] += t0 - t1
        b += m
      }

      t0 = clock()
      logWeights.withUnsafeBufferPointer { lw in
        for e in 0..<r {
          let mine = lw[(e * count)..<((e + 1) * count)]
          accumulator.add(example: e, weights: UnsafeBufferPointer(rebasing: mine))
        }
      }
      sections["log-mean-exp", default: 0] += clock() - t0
      first += count
    }
    return accumulator.estimates
  }

  // MARK: - Profiling

  /// Records the GEMMs an encoder (R rows) or decoder (M rows) pass runs.
  private func note(rows: Int, encoder: Bool) {
    let mlp = encoder ? model.encoder : model.decoder
    for layer in mlp.layers {
      gemmShapes[GEMMShape(m: rows, n: layer.outputs, k: layer.inputs), default: 0] += 1
    }
  }

  /// Seconds `cblas_sgemm` alone takes for every GEMM this evaluator ran (same shapes, same
  /// counts, on scratch operands): the floor the evaluation's time is compared with.
  public func sgemmSeconds() -> Double {
    var total = 0.0
    for (shape, count) in gemmShapes {
      let a = [Float](repeating: 0.01, count: shape.m * shape.k)
      let w = [Float](repeating: 0.02, count: shape.k * shape.n)
      var c = [Float](repeating: 0, count: shape.m * shape.n)
      let t0 = clock()
      a.withUnsafeBufferPointer { ap in
        w.withUnsafeBufferPointer { wp in
          c.withUnsafeMutableBufferPointer { cp in
            for _ in 0..<count {
              BLAS.gemm(m: shape.m, n: shape.n, k: shape.k, a: ap.baseAddress!, lda: shape.k,
                        transA: false, b: wp.baseAddress!, ldb: shape.n, transB: false,
                        c: cp.baseAddress!, ldc: shape.n, alpha: 1, beta: 1)
            }
          }
        }
      }
      total += clock() - t0
    }
    return total
  }

  /// Whether `ELBO_EVAL_PROFILE` asks for `profileSummary()` after an evaluation.
  public static var profiling: Bool { getenv("ELBO_EVAL_PROFILE") != nil }

  /// One line per section, the sgemm floor and the ratio (CPU seconds of this process, so that
  /// other load on the machine changes them little).
  public func profileSummary() -> String {
    let total = sections.values.reduce(0, +), floor = sgemmSeconds()
    let parts = sections.keys.sorted().map { String(format: "%@ %.2f s", $0, sections[$0]!) }
    let shapes = gemmShapes.keys.sorted { ($0.m, $0.n, $0.k) < ($1.m, $1.n, $1.k) }
      .map { "\($0.m)×\($0.k)·\($0.k)×\($0.n) ×\(gemmShapes[$0]!)" }
    return "importance sampling: " + parts.joined(separator: ", ")
      + String(format: "; total %.2f s; sgemm alone at the same shapes %.2f s; ratio %.2f", total,
               floor, total / floor)
      + "\n  GEMMs: " + shapes.joined(separator: ", ")
  }

  /// CPU seconds of this process (all threads).
  private func clock() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
  }
}
