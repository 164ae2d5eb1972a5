import ElboModels
import ElboTestSupport
import Foundation
import XCTest

/// The chunked importance-sampling evaluation: the streaming log-mean-exp against a one-shot
/// computation in Double, and `VAELogLikelihoodEvaluator` against the model's own `logWeights`,
/// against quadrature, and against itself under other chunkings and shardings.
final class ImportanceSamplingEvaluatorTests: XCTestCase {
  // MARK: - StreamingLogMeanExp

  /// log (1/K) Σ e^{w} in Double, all at once.
  static func oneShot(_ w: [Float]) -> Double {
    let m = Double(w.max()!)
    return m + log(w.reduce(0.0) { $0 + exp(Double($1) - m) }) - log(Double(w.count))
  }

  func testStreamingLogMeanExpEqualsOneShotForUnevenChunksAndALateMaximum() {
    var rng = TestRandom(seed: 21)
    let k = 1000, examples = 3
    var weights = (0..<examples).map { _ in rng.normal([k]).array.map { $0 * 20 - 150 } }
    weights[0][900] = weights[0].max()! + 30   // a new maximum in the last chunk
    weights[1][3] = weights[1].max()! + 5      // the maximum in the second chunk
    weights[2][0] = -.infinity                 // a zero weight
    let chunks = [1, 7, 300, 2, 590, 100]      // uneven; sums to K
    XCTAssertEqual(chunks.reduce(0, +), k)
    var acc = StreamingLogMeanExp(examples: examples)
    var first = 0
    for c in chunks {
      for e in [2, 0, 1] {  // any order of examples
        weights[e].withUnsafeBufferPointer {
          acc.add(example: e, weights: UnsafeBufferPointer(rebasing: $0[first..<(first + c)]))
        }
      }
      first += c
    }
    let exact = weights.map(ImportanceSamplingEvaluatorTests.oneShot)
    assertClose(acc.estimates, exact, atol: 0, rtol: 1e-13)
    XCTAssertEqual(acc.counts, [k, k, k])
  }

  func testStreamingLogMeanExpEdgeCases() {
    var acc = StreamingLogMeanExp(examples: 3)
    let ninf: [Float] = [-.infinity, -.infinity], one: [Float] = [2], nan: [Float] = [.nan]
    ninf.withUnsafeBufferPointer { acc.add(example: 0, weights: $0) }
    ninf.withUnsafeBufferPointer { acc.add(example: 1, weights: $0) }
    one.withUnsafeBufferPointer { acc.add(example: 1, weights: $0) }  // −∞, −∞, then 2
    nan.withUnsafeBufferPointer { acc.add(example: 2, weights: $0) }
    one.withUnsafeBufferPointer { acc.add(example: 2, weights: $0) }
    let e = acc.estimates
    XCTAssertEqual(e[0], -.infinity)
    XCTAssertEqual(e[1], 2 - log(3), accuracy: 1e-15)
    XCTAssertTrue(e[2].isNaN)
  }

  // MARK: - VAELogLikelihoodEvaluator

  /// A small VAE whose latent size (5) is not a multiple of 4, so the noise stride is exercised.
  static func model(latent: Int = 5) -> VAE {
    var c = VAE.Config()
    c.inputs = 12; c.hidden = 9; c.hiddenLayers = 2; c.latent = latent
    return VAE(c, seed: 3)
  }

  static func address(_ item: Int) -> NoiseAddress {
    NoiseAddress(seed: 99, purpose: .evaluation, time: UInt64.max >> 16, item: UInt32(item))
  }

  /// The model's tape-built log-weights with the evaluator's noise keying, merged in Double at
  /// once: the reference implementation.
  static func reference(_ vae: VAE, x: Tensor, items: Range<Int>, samples k: Int) -> [Double] {
    let r = x.rows, l = vae.config.latent, stride = 4 * ((l + 3) / 4)
    let noise = Tensor(zeros: [k, r, l])
    for (row, g) in items.enumerated() {
      var rng = RandomStream(address(g))
      var eps = [Float](repeating: 0, count: k * stride)
      eps.withUnsafeMutableBufferPointer { rng.fillNormalFast($0) }
      for s in 0..<k {
        for u in 0..<l { noise[(s * r + row) * l + u] = eps[s * stride + u] }
      }
    }
    let w = vae.logWeights(x: x, noise: noise, on: Tape(recording: false))  // [k, R]
    return (0..<r).map { e in oneShot((0..<k).map { w[$0 * r + e] }) }
  }

  func testEvaluatorMatchesTheModelsLogWeights() {
    let vae = ImportanceSamplingEvaluatorTests.model()
    var rng = TestRandom(seed: 4)
    let x = rng.binary([7, 12]), k = 37
    let want = ImportanceSamplingEvaluatorTests.reference(vae, x: x, items: 10..<17, samples: k)
    let evaluator = VAELogLikelihoodEvaluator(model: vae, examplesPerChunk: 3,
                                              samplesPerChunk: 10, rowsPerBlock: 7)
    let got = evaluator.logLikelihoods(x: x.pointer, items: 10..<17, samples: k,
                                       address: ImportanceSamplingEvaluatorTests.address)
    // Float log-weights computed in another order (ε² against (z − μ)²/σ²): ~1e-5 nats.
    assertClose(got, want, atol: 1e-4)
  }

  func testEstimateDoesNotDependOnChunkSizesOrSharding() {
    let vae = ImportanceSamplingEvaluatorTests.model(latent: 3)
    var rng = TestRandom(seed: 8)
    let x = rng.binary([7, 12]), k = 41
    func run(_ r: Int, _ s: Int, _ m: Int, _ items: Range<Int>) -> [Double] {
      VAELogLikelihoodEvaluator(model: vae, examplesPerChunk: r, samplesPerChunk: s,
                                rowsPerBlock: m)
        .logLikelihoods(x: x.pointer + (items.lowerBound - 100) * 12, items: items, samples: k,
                        address: ImportanceSamplingEvaluatorTests.address)
    }
    // The noise and the merge do not depend on the chunking at all (the merge to ~1e-13); what
    // remains is sgemm's rounding, which in OpenBLAS depends on the number of rows in the call
    // (~1e-7 nats here), so the estimates agree to float rounding, far below Monte Carlo error.
    let oneShot = run(7, 41, 1000, 100..<107)
    for (r, s, m) in [(3, 10, 5), (2, 7, 1), (1, 1, 3), (4, 40, 64), (7, 13, 91)] {
      assertClose(run(r, s, m, 100..<107), oneShot, atol: 1e-6,
                  "R = \(r), S = \(s), M = \(m)")
    }
    // Two "ranks" holding 100..<103 and 103..<107 get the same per-example estimates.
    assertClose(run(2, 9, 4, 100..<103) + run(3, 20, 11, 103..<107), oneShot, atol: 1e-6)
  }

  func testNoiseKeyingDoesNotDependOnChunking() {
    // Sample s of an item is blocks s·⌈L/4⌉…; drawing samples 0..<41 at once or one at a time
    // from their start blocks gives the same bits.
    let address = ImportanceSamplingEvaluatorTests.address(3), stride = 8
    var all = [Float](repeating: 0, count: 41 * stride)
    var r0 = RandomStream(address)
    all.withUnsafeMutableBufferPointer { r0.fillNormalFast($0) }
    for s in 0..<41 {
      var r = RandomStream(address, startBlock: UInt32(s * stride / 4))
      var one = [Float](repeating: 0, count: stride)
      one.withUnsafeMutableBufferPointer { r.fillNormalFast($0) }
      XCTAssertEqual(one, Array(all[(s * stride)..<((s + 1) * stride)]), "sample \(s)")
    }
  }

  func testEvaluatorMatchesQuadrature() {
    // Burda et al.'s estimator converges to log p(x); the tiny 2-latent VAE's log p(x) is
    // known by quadrature (see BoundTests), so a wrong log-weight term (O(1) nats) fails.
    let vae = BoundTests.tinyVAE(.iwae)
    let rows = [0, 5, 42, 63]
    let x = Tensor(rows.flatMap { r in (0..<6).map { BoundTests.allBinary[r * 6 + $0] } },
                   shape: [rows.count, 6])
    let exact = BoundTests.quadratureLogMarginal(vae, x)
    let got = VAELogLikelihoodEvaluator(model: vae, examplesPerChunk: 3, samplesPerChunk: 700)
      .logLikelihoods(x: x.pointer, items: 0..<rows.count, samples: 5000,
                      address: ImportanceSamplingEvaluatorTests.address)
    assertClose(got, exact, atol: 0.05)
  }

  func testNoAllocationAfterTheFirstChunk() {
    let vae = ImportanceSamplingEvaluatorTests.model()
    var rng = TestRandom(seed: 2)
    let x = rng.binary([9, 12])
    let evaluator = VAELogLikelihoodEvaluator(model: vae, examplesPerChunk: 4, samplesPerChunk: 6,
                                              rowsPerBlock: 5)
    _ = evaluator.logLikelihoods(x: x.pointer, items: 0..<4, samples: 13,
                                 address: ImportanceSamplingEvaluatorTests.address)
    let arenas = evaluator.arenaSizes
    _ = evaluator.logLikelihoods(x: x.pointer, items: 0..<9, samples: 13,
                                 address: ImportanceSamplingEvaluatorTests.address)
    XCTAssertEqual(evaluator.arenaSizes.0, arenas.0)
    XCTAssertEqual(evaluator.arenaSizes.1, arenas.1)
  }
}
