import ElboModels
import ElboTestSupport
import Foundation
import XCTest

/// The flow-posterior VAE: its log-weights against a hand computation in Double from the pieces
/// (encoder output, planar steps written out, decoder logits), the importance-sampled estimate
/// through the flow against quadrature (it converges to log p(x) only if log q_K is exact), the
/// loss gradient with k > 1 samples (the encoder's output repeated over samples), and the
/// free-energy warm-up.
final class FlowVAETests: XCTestCase {
  /// BoundTests' tiny VAE (6 inputs, 5 tanh hidden units, L = 2), decoder ×3, with K amortised
  /// planar flows. The encoder's u columns are scaled ×0.2 and its w columns ×4: at the raw
  /// initialisation ‖w‖ is small, and û's correction (m(wᵀu) − wᵀu)·w/‖w‖² then shifts z by
  /// O(1/‖w‖) across a thin slab, leaving a gap in q_K where the importance weights have a heavy
  /// tail (and finite differences straddle the slab). Scaled, each step is mild but not small:
  /// wᵀû ≈ m(0) = −0.31, so Σ log|det| is a few tenths of a nat.
  static func tinyFlowVAE(_ objective: VAE.Objective = .elbo, samples: Int = 1,
                          length: Int = 2) -> VAE {
    var c = VAE.Config()
    c.inputs = BoundTests.inputs; c.hidden = 5; c.hiddenLayers = 1; c.latent = BoundTests.latent
    c.activation = .tanh
    c.objective = objective; c.samples = samples
    c.flow = FlowChainSpec(kind: .planar, length: length, parameters: .amortised)
    let vae = VAE(c, seed: 11)
    for (i, spec) in vae.store.specs.enumerated() where spec.name.hasPrefix("decoder") {
      let t = vae.store.value(i)
      for j in 0..<t.count { t[j] *= 3 }
    }
    // The encoder's last layer: weight [H, W] (x·W) and bias [W]; flow columns from 2L on.
    let width = vae.encoderWidth, last = vae.encoder.layers.count
    for (i, spec) in vae.store.specs.enumerated() where spec.name.hasPrefix("encoder.fc\(last).") {
      let t = vae.store.value(i)
      for j in 0..<t.count where j % width >= 2 * c.latent {
        let column = (j % width - 2 * c.latent) % (2 * c.latent + 1)   // [u | w | b] per step
        t[j] *= column < c.latent ? 0.2 : column < 2 * c.latent ? 4 : 1
      }
    }
    return vae
  }

  /// log w[s][e] = log p(x|z_K) + log p(z_K) − log q₀(z₀) + Σ log|det|, in Double, planar
  /// steps written out from Rezende & Mohamed's eq. 10–12 and Appendix A.1.
  static func handLogWeights(_ vae: VAE, x: Tensor, noise: Tensor) -> [[Double]] {
    let k = noise.shape[0], r = x.rows, l = vae.config.latent, d = vae.config.inputs
    let tape = Tape(recording: false)
    let out = vae.encoder(tape.constant(x), vae.store).value   // [R, 2L + K(2L + 1)]
    let width = out.cols
    var w = [[Double]](repeating: [Double](repeating: 0, count: r), count: k)
    for s in 0..<k {
      for e in 0..<r {
        let o = (0..<width).map { Double(out[e * width + $0]) }
        var z = [Double](repeating: 0, count: l)
        var logQ0 = 0.0
        for u in 0..<l {
          let eps = Double(noise[(s * r + e) * l + u])
          z[u] = o[u] + exp(0.5 * o[l + u]) * eps
          logQ0 += -0.5 * (log(2 * Double.pi) + o[l + u] + eps * eps)
        }
        var logDet = 0.0
        for step in 0..<vae.config.flow.length {
          let base = 2 * l + step * (2 * l + 1)
          let uRaw = Array(o[base..<(base + l)]), ww = Array(o[(base + l)..<(base + 2 * l)])
          let b = o[base + 2 * l]
          let wu = zip(ww, uRaw).map(*).reduce(0, +), wNorm = ww.map { $0 * $0 }.reduce(0, +)
          let m = -1 + log1p(exp(wu))
          let uHat = (0..<l).map { uRaw[$0] + (m - wu) * ww[$0] / wNorm }
          let a = zip(ww, z).map(*).reduce(0, +) + b
          let h = tanh(a)
          for u in 0..<l { z[u] += uHat[u] * h }
          logDet += log(abs(1 + (1 - h * h) * zip(ww, uHat).map(*).reduce(0, +)))
        }
        let logPz = z.map { -0.5 * ($0 * $0 + log(2 * Double.pi)) }.reduce(0, +)
        let logits = vae.decoder(tape.constant(Tensor(z.map { Float($0) }, shape: [1, l])),
                                 vae.store).value
        var logPx = 0.0
        for j in 0..<d {
          let lj = Double(logits[j]), xj = Double(x[e * d + j])
          logPx += xj * lj - (max(lj, 0) + log1p(exp(-abs(lj))))
        }
        w[s][e] = logPx + logPz - logQ0 + logDet
      }
    }
    return w
  }

  /// The encoder grows by K(2L + 1) columns; the model's log-weights and its training bounds
  /// (ELBO, IWAE-k) are the hand computation's.
  func testLogWeightsAndBoundsEqualTheHandComputation() {
    let vae = FlowVAETests.tinyFlowVAE()
    XCTAssertEqual(vae.encoderWidth, 2 * 2 + 2 * (2 * 2 + 1))
    var rng = TestRandom(seed: 5)
    let x = rng.binary([4, 6]), k = 3, noise = rng.normal([k, 4, 2])
    let hand = FlowVAETests.handLogWeights(vae, x: x, noise: noise)
    let got = vae.logWeights(x: x, noise: noise, on: Tape(recording: false))   // [k, R]
    assertClose(got.array.map(Double.init), hand.flatMap { $0 }, atol: 1e-4)

    for objective in VAE.Objective.allCases {
      let model = FlowVAETests.tinyFlowVAE(objective, samples: k)
      let t = model.terms(x: x, noise: noise, normalizer: 4, on: Tape(recording: false))
      let want = (0..<4).map { e -> Double in
        let ws = (0..<k).map { hand[$0][e] }
        switch objective {
        case .elbo: return ws.reduce(0, +) / Double(k)
        case .iwae: return ImportanceSamplingEvaluatorTests.oneShot(ws.map(Float.init))
        }
      }
      assertClose(t.bound.array.map(Double.init), want, atol: 1e-4, "\(objective) bound")
      // log p(x|z) − KL estimate is the bound for the ELBO; KL = −surprise (Monte Carlo).
      if objective == .elbo {
        assertClose(zip(t.logLikelihood.array, t.kl.array).map { Double($0 - $1) }, want,
                    atol: 1e-4, "log p(x|z) − KL")
      }
      assertClose(t.kl.array, t.surprise.array.map { -$0 }, atol: 0)
      // And the flow does something: Σ log|det| is not negligible.
      XCTAssertGreaterThan(t.logDet.array.map(abs).max()!, 1e-3)
    }
  }

  /// `elbo eval`'s evaluator draws z from q_K and scores it under q_K: its per-example estimate
  /// is the log-mean-exp of the hand log-weights with the evaluator's noise keying.
  func testEvaluatorThroughTheFlowEqualsTheHandLogWeights() {
    let vae = FlowVAETests.tinyFlowVAE(length: 3)
    var rng = TestRandom(seed: 9)
    let x = rng.binary([5, 6]), k = 23, items = 40..<45
    let r = x.rows, l = 2, stride = 4
    let noise = Tensor(zeros: [k, r, l])
    for (row, g) in items.enumerated() {
      var s = RandomStream(ImportanceSamplingEvaluatorTests.address(g))
      var eps = [Float](repeating: 0, count: k * stride)
      eps.withUnsafeMutableBufferPointer { s.fillNormalFast($0) }
      for j in 0..<k { for u in 0..<l { noise[(j * r + row) * l + u] = eps[j * stride + u] } }
    }
    let hand = FlowVAETests.handLogWeights(vae, x: x, noise: noise)
    let want = (0..<r).map { e in
      ImportanceSamplingEvaluatorTests.oneShot((0..<k).map { Float(hand[$0][e]) })
    }
    let got = VAELogLikelihoodEvaluator(model: vae, examplesPerChunk: 2, samplesPerChunk: 7,
                                        rowsPerBlock: 5)
      .logLikelihoods(x: x.pointer, items: items, samples: k,
                      address: ImportanceSamplingEvaluatorTests.address)
    assertClose(got, want, atol: 1e-4)
  }

  /// Every kind of flow, amortised and global, through the VAE: the evaluator's estimate is the
  /// log-mean-exp of the model's own log-weights (the tape-built q_K), and Σ log|det| enters.
  func testEveryFlowKindEvaluatesAsItsLogWeights() {
    var rng = TestRandom(seed: 12)
    let x = rng.binary([4, 12]), k = 9
    for kind in FlowKind.allCases {
      for source in FlowParameterSource.allCases {
        var c = VAE.Config()
        c.inputs = 12; c.hidden = 7; c.hiddenLayers = 1; c.latent = 3; c.activation = .tanh
        c.flow = FlowChainSpec(kind: kind, length: 2, parameters: source)
        c.flow.iafHidden = 6; c.flow.iafContext = 4; c.flow.sylvesterReflections = 2
        let vae = VAE(c, seed: 4)
        let want = ImportanceSamplingEvaluatorTests.reference(vae, x: x, items: 3..<7, samples: k)
        let got = VAELogLikelihoodEvaluator(model: vae, examplesPerChunk: 3, samplesPerChunk: 4,
                                            rowsPerBlock: 5)
          .logLikelihoods(x: x.pointer, items: 3..<7, samples: k,
                          address: ImportanceSamplingEvaluatorTests.address)
        assertClose(got, want, atol: 1e-4, "\(kind.rawValue) \(source.rawValue)")
        let t = vae.terms(x: x, noise: rng.normal([1, 4, 3]), normalizer: 1,
                          on: Tape(recording: false))
        XCTAssertGreaterThan(t.logDet.array.map(abs).max()!, 1e-4, "\(kind.rawValue) log|det|")
      }
    }
  }

  /// With K = 2 planar flows, the importance-sampled estimate converges to log p(x) by
  /// quadrature (a log q_K off by any Σ log|det| term would bias it by O(that term)), and it
  /// stays above the mean one-sample ELBO.
  func testImportanceSampledEstimateThroughTheFlowMatchesQuadrature() {
    let vae = FlowVAETests.tinyFlowVAE()
    let rows = [0, 5, 42, 63]
    let x = Tensor(rows.flatMap { r in (0..<6).map { BoundTests.allBinary[r * 6 + $0] } },
                   shape: [rows.count, 6])
    let exact = BoundTests.quadratureLogMarginal(vae, x)
    let got = VAELogLikelihoodEvaluator(model: vae, examplesPerChunk: 4, samplesPerChunk: 1000)
      .logLikelihoods(x: x.pointer, items: 0..<rows.count, samples: 5000,
                      address: ImportanceSamplingEvaluatorTests.address)
    assertClose(got, exact, atol: 0.05)
    var rng = TestRandom(seed: 3)
    let tape = Tape(recording: false)
    let t = vae.terms(x: x, noise: rng.normal([200, rows.count, 2]), normalizer: 1, on: tape)
    let elbo = t.bound.array   // mean over 200 samples
    // Σ log|det| is ≫ the tolerance: leaving it out of log q_K would fail above.
    XCTAssertGreaterThan(t.logDet.array.map(abs).min()!, 0.2)
    for i in rows.indices {
      XCTAssertGreaterThan(got[i], Double(elbo[i]), "IS estimate ≥ ELBO for row \(rows[i])")
    }
  }

  /// The loss gradient w.r.t. every parameter, with k = 3 samples (the encoder's output is
  /// repeated over the samples, so its gradient is summed back), for both objectives.
  func testLossGradientWithSamplesMatchesFiniteDifferences() {
    for objective in VAE.Objective.allCases {
      let vae = FlowVAETests.tinyFlowVAE(objective, samples: 3)
      var rng = TestRandom(seed: 6)
      let x = rng.binary([4, 6]), eps = rng.normal([3, 4, 2])
      let tape = Tape()
      vae.store.zeroGrad()
      tape.backward(vae.terms(x: x, noise: eps, normalizer: 4, on: tape).loss)
      let analytic = vae.store.flatGrads.map(Double.init)
      let evalTape = Tape(recording: false)
      let tensors = vae.store.specs.indices.map { i in
        (vae.store.specs[i].name,
         vae.store.offsets[i]..<(vae.store.offsets[i] + vae.store.specs[i].count))
      }
      GradientCheck(relativeStep: 2e-3).assertWholeModel("flow \(objective) loss", values: vae.store.flatValues,
                                       analytic: analytic, tensors: tensors) {
        evalTape.reset()
        let bound = vae.terms(x: x, noise: eps, normalizer: 4, on: evalTape).bound
        return -bound.array.reduce(0.0) { $0 + Double($1) } / 4
      }
    }
  }

  /// β_t = min(1, 0.01 + t/T); the loss is −Σ(log p(x|z) − β·KL)/n while the reported bound
  /// stays the β = 1 bound, with and without a flow.
  func testWarmupWeightsTheKLInTheLossOnly() {
    XCTAssertEqual(KLWeighting.freeEnergyWarmup(step: 0, steps: 100), 0.01, accuracy: 1e-12)
    XCTAssertEqual(KLWeighting.freeEnergyWarmup(step: 49, steps: 100), 0.5, accuracy: 1e-12)
    XCTAssertEqual(KLWeighting.freeEnergyWarmup(step: 99, steps: 100), 1, accuracy: 1e-12)
    XCTAssertEqual(KLWeighting.freeEnergyWarmup(step: 500, steps: 100), 1)
    var rng = TestRandom(seed: 2)
    let x = rng.binary([4, 6]), noise = rng.normal([1, 4, 2])
    for length in [0, 2] {
      let vae = FlowVAETests.tinyFlowVAE(length: length)
      let tape = Tape(recording: false)
      let full = vae.terms(x: x, noise: noise, normalizer: 4, on: tape)
      let warm = vae.terms(x: x, noise: noise, normalizer: 4, klWeight: 0.25, on: tape)
      XCTAssertEqual(warm.bound.array, full.bound.array)
      var sum = 0.0
      for (ll, kl) in zip(full.logLikelihood.array, full.kl.array) {
        sum += Double(ll) - 0.25 * Double(kl)
      }
      let want = -sum / 4
      XCTAssertEqual(Double(warm.loss.scalar), want, accuracy: 1e-4, "K = \(length)")
      XCTAssertGreaterThan(abs(Double(warm.loss.scalar - full.loss.scalar)), 1e-3)
    }
  }
}
