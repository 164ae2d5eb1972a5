import ElboModels
import ElboTestSupport
import Foundation
import XCTest

/// The imputation chain of Rezende et al. (2014, §6): observed pixels are never written, the
/// estimator of log p(x_m | x_o) is exact where the answer is known (a decoder that ignores z),
/// the masks hide what they say, and the marginal baseline is its formula.
final class VAEImputationTests: XCTestCase {
  var rng = TestRandom(seed: 2014_0116)

  /// A tiny VAE over 16 "pixels" (a 4 × 4 image), with or without a flow posterior.
  func tinyVAE(flow: FlowChainSpec = FlowChainSpec()) -> VAE {
    var c = VAE.Config()
    c.inputs = 16; c.hidden = 8; c.hiddenLayers = 1; c.latent = 3; c.flow = flow
    return VAE(c, seed: 7)
  }

  func binary(_ n: Int) -> [Float] { rng.uniform(n, 0, 1).map { $0 < 0.5 ? 0 : 1 } }

  func normals(_ n: Int) -> [Float] {
    var s = rng.stream()
    var out = [Float](repeating: 0, count: n)
    out.withUnsafeMutableBufferPointer { s.fillNormal($0) }
    return out
  }

  /// Over many transitions, with and without a flow: every observed pixel keeps its true value,
  /// every missing one is 0 or 1, and the missing ones do move (so the check can fail).
  func testTheChainNeverChangesObservedPixels() {
    for flow in [FlowChainSpec(), FlowChainSpec(kind: .planar, length: 2)] {
      let model = tinyVAE(flow: flow)
      let imputer = VAEImputer(model: model, chains: 1)
      let m = 12, d = 16, l = 3
      let truth = binary(m * d), missing = binary(m * d)
      var x = truth
      for j in 0..<(m * d) where missing[j] == 1 { x[j] = 1 - truth[j] }
      var changed = 0
      for _ in 0..<20 {
        let before = x
        let normals = normals(m * l)
        let uniforms = rng.uniform(m * d, 0, 1)
        let (logP, means) = imputer.transition(x: &x, missing: missing, truth: truth,
                                               normals: normals, uniforms: uniforms)
        XCTAssertEqual(logP.count, m)
        XCTAssertEqual(means.count, m * d)
        for j in 0..<(m * d) {
          if missing[j] == 0 {
            XCTAssertEqual(x[j], truth[j], "observed pixel \(j) written (flow \(flow.length))")
          } else {
            XCTAssertTrue(x[j] == 0 || x[j] == 1)
            if x[j] != before[j] { changed += 1 }
          }
        }
        XCTAssertTrue(logP.allSatisfy { $0 < 0 && $0.isFinite })
      }
      XCTAssertGreaterThan(changed, 0, "the chain never moved a missing pixel")
    }
  }

  /// With the decoder's last weight matrix zero, p(x|z) = Π Bernoulli(σ(b_j)) whatever z, so
  /// log p(x_m | x_o) = Σ_{j missing} log Bernoulli(x_j; σ(b_j)) exactly, at every iteration
  /// and for any C. Summing over the observed pixels too, or averaging probabilities wrongly
  /// over chains, would miss it.
  func testADecoderThatIgnoresZGivesTheExactConditional() {
    let model = tinyVAE(flow: FlowChainSpec(kind: .radial, length: 1))
    let last = model.decoder.layers.last!
    model.store.value(last.weight).buffer.update(repeating: 0)
    let bias = model.store.value(last.bias).buffer
    for j in 0..<16 { bias[j] = Float(j) / 4 - 2 }
    let n = 5, d = 16
    let truth = binary(n * d), missing = binary(n * d)
    let imputer = VAEImputer(model: model, chains: 3, imagesPerChunk: 2)
    let result = imputer.run(truth: truth, missing: missing, iterations: 4, reported: [1, 4],
                             address: { NoiseAddress(seed: 9, purpose: .evaluation,
                                                     time: UInt64($0), item: UInt32($1 * 3 + $2)) })
    for i in 0..<n {
      var exact = 0.0
      for j in 0..<d where missing[i * d + j] == 1 {
        let p = 1 / (1 + exp(-Double(bias[j])))
        exact += truth[i * d + j] == 1 ? log(p) : log(1 - p)
      }
      for slot in 0..<2 {
        XCTAssertEqual(result.logLikelihood[slot][i], exact, accuracy: 1e-4, "image \(i)")
      }
      // The imputed image: the truth where observed, σ(b_j) where missing.
      for j in 0..<d {
        let want = missing[i * d + j] == 1 ? Float(1 / (1 + exp(-Double(bias[j]))))
          : truth[i * d + j]
        XCTAssertEqual(result.imputed[i * d + j], want, accuracy: 1e-5)
      }
    }
  }

  /// With the encoder's last weight matrix zero, q(z|x) = N(μ, σ²) whatever x, so every chain's
  /// z is an independent draw from it and the estimate log (1/C) Σ_c p(x_m | z_c) converges to
  /// log ∫ N(z; μ, σ²) p(x_m | z) dz, here a 1-D integral done on a grid with the model's own
  /// decoder. The decoder is made to depend strongly on z, so that the mean of the logs (the
  /// wrong estimator) is far from it.
  func testTheEstimatorConvergesToTheIntegralOverTheLatent() {
    var c = VAE.Config()
    c.inputs = 64; c.hidden = 8; c.hiddenLayers = 1; c.latent = 1
    let model = VAE(c, seed: 5)
    let encoderOut = model.encoder.layers.last!
    model.store.value(encoderOut.weight).buffer.update(repeating: 0)
    let eb = model.store.value(encoderOut.bias).buffer
    eb[0] = 0.3; eb[1] = log(0.8 * 0.8)                        // μ = 0.3, σ = 0.8
    let w1 = model.store.value(model.decoder.layers[0].weight).buffer
    for i in w1.indices { w1[i] *= 6 }
    let d = 64
    let truth = binary(d), missing = binary(d)

    // log ∫ N(z; μ, σ²) p(x_m|z) dz on 4001 points over μ ± 8σ (log-sum-exp in Double).
    let tape = Tape(recording: false)
    let points = 4001, lo = 0.3 - 8 * 0.8, step = 16 * 0.8 / Double(points - 1)
    let z = tape.tensor([points, 1])
    for i in 0..<points { z[i] = Float(lo + Double(i) * step) }
    let logits = model.decoder(tape.constant(z), model.store).value
    var terms = [Double](repeating: 0, count: points)
    for i in 0..<points {
      let zi = lo + Double(i) * step, u = (zi - 0.3) / 0.8
      var lp = -0.5 * u * u - log(0.8) - 0.5 * log(2 * Double.pi) + log(step)
      for j in 0..<d where missing[j] == 1 {
        let v = Double(logits[i * d + j])
        lp += Double(truth[j]) * v - (max(v, 0) + log1p(exp(-abs(v))))
      }
      terms[i] = lp
    }
    let top = terms.max()!
    let exact = top + log(terms.reduce(0) { $0 + exp($1 - top) })

    let chains = 4000
    let imputer = VAEImputer(model: model, chains: chains, imagesPerChunk: 1)
    let result = imputer.run(truth: truth, missing: missing, iterations: 2, reported: [1, 2],
                             address: { NoiseAddress(seed: 8, purpose: .evaluation,
                                                     time: UInt64($0), item: UInt32($2)) })
    XCTAssertEqual(result.logLikelihood[0][0], exact, accuracy: 0.05)
    XCTAssertEqual(result.logLikelihood[1][0], exact, accuracy: 0.05)

    // The mean of log p(x_m|z) over the same kind of draws is well below: the test can tell.
    var meanLog = 0.0
    for i in 0..<points {
      let zi = lo + Double(i) * step, u = (zi - 0.3) / 0.8
      let weight = exp(-0.5 * u * u) / (0.8 * (2 * Double.pi).squareRoot()) * step
      meanLog += weight * (terms[i] - log(weight))
    }
    XCTAssertLessThan(meanLog, exact - 0.5, "the decoder should depend on z strongly")
  }

  /// The chunking of images changes no number beyond rounding (every draw is keyed by image
  /// and chain), and a different seed does (so the keying is not vacuous).
  func testResultsDoNotDependOnChunking() {
    let model = tinyVAE()
    let n = 7, d = 16
    let truth = binary(n * d), missing = binary(n * d)
    func run(_ chunk: Int, seed: UInt64 = 3) -> [[Double]] {
      VAEImputer(model: model, chains: 4, imagesPerChunk: chunk)
        .run(truth: truth, missing: missing, iterations: 3, reported: [1, 2, 3],
             address: { NoiseAddress(seed: seed, purpose: .evaluation, time: UInt64($0),
                                     item: UInt32($1 * 4 + $2)) }).logLikelihood
    }
    // Equal up to rounding: the GEMMs' row counts differ, and with them BLAS's blocking.
    let whole = run(7).flatMap { $0 }
    assertClose(run(2).flatMap { $0 }, whole, atol: 1e-5)
    assertClose(run(1).flatMap { $0 }, whole, atol: 1e-5)
    let other = run(7, seed: 4).flatMap { $0 }
    XCTAssertGreaterThan(zip(other, whole).map { abs($0 - $1) }.max()!, 1e-3)
  }

  /// left-half and top-half hide exactly half the pixels, in the right place; random-50 about
  /// half, differently for different streams.
  func testMasksHideWhatTheySay() {
    var m = [Float](repeating: 0, count: 28 * 28)
    var s = rng.stream()
    ImputationMask.leftHalf.fill(&m, width: 28, height: 28, random: &s)
    XCTAssertEqual(m.reduce(0, +), 392)
    XCTAssertEqual(m[0], 1); XCTAssertEqual(m[13], 1); XCTAssertEqual(m[14], 0)
    XCTAssertEqual(m[27 * 28 + 13], 1); XCTAssertEqual(m[27 * 28 + 14], 0)
    ImputationMask.topHalf.fill(&m, width: 28, height: 28, random: &s)
    XCTAssertEqual(m.reduce(0, +), 392)
    XCTAssertEqual(m[13 * 28 + 27], 1); XCTAssertEqual(m[14 * 28], 0)
    ImputationMask.random50.fill(&m, width: 28, height: 28, random: &s)
    let first = m
    XCTAssertEqual(Double(m.reduce(0, +)), 392, accuracy: 4 * 14)  // 4 standard deviations
    ImputationMask.random50.fill(&m, width: 28, height: 28, random: &s)
    XCTAssertNotEqual(m, first)
    XCTAssertNil(ImputationMask(rawValue: "right-half"))
  }

  /// p̂_j = (Σ x_j + 1)/(N + 2) and the log-likelihood sums over missing pixels only.
  func testMarginalBaselineIsItsFormula() {
    // Three 2-pixel images: pixel 0 on in 3 of 3, pixel 1 in 1 of 3.
    let b = MarginalImputationBaseline(pixels: [1, 0, 1, 1, 1, 0], dimension: 2)
    XCTAssertEqual(b.probabilities[0], 4.0 / 5, accuracy: 1e-12)
    XCTAssertEqual(b.probabilities[1], 2.0 / 5, accuracy: 1e-12)
    XCTAssertEqual(b.logLikelihood(truth: [0, 1], missing: [1, 1]), log(0.2) + log(0.4),
                   accuracy: 1e-12)
    XCTAssertEqual(b.logLikelihood(truth: [0, 1], missing: [0, 1]), log(0.4), accuracy: 1e-12)
  }
}
