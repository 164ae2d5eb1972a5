import ElboModels
import ElboTestSupport
import Foundation
import XCTest

/// The ELBO and IWAE bounds of a tiny VAE (6 binary inputs, 5 tanh hidden units, 2 latents),
/// checked against log p(x) computed by quadrature over the 2-D latent space.
final class BoundTests: XCTestCase {
  static let inputs = 6, latent = 2

  /// The tiny model. Decoder weights are scaled ×3 so that p(x|z) depends strongly on z (the
  /// true posterior is narrower than the prior-like q of an untrained encoder, so the bounds
  /// are visibly apart); the encoder keeps its small initial weights, so q(z|x) stays broad and
  /// importance weights are well behaved.
  static func tinyVAE(_ objective: VAE.Objective, samples: Int = 1) -> VAE {
    var c = VAE.Config()
    c.inputs = inputs; c.hidden = 5; c.hiddenLayers = 1; c.latent = latent
    c.activation = .tanh  // smooth, so finite differences never straddle a kink
    c.objective = objective; c.samples = samples
    let vae = VAE(c, seed: 11)
    for (i, spec) in vae.store.specs.enumerated() where spec.name.hasPrefix("decoder") {
      let t = vae.store.value(i)
      for j in 0..<t.count { t[j] *= 3 }
    }
    return vae
  }

  /// All 2⁶ binary inputs, one per row.
  static let allBinary: Tensor = {
    let n = 1 << inputs
    var v = [Float](repeating: 0, count: n * inputs)
    for x in 0..<n { for d in 0..<inputs { v[x * inputs + d] = Float((x >> d) & 1) } }
    return Tensor(v, shape: [n, inputs])
  }()

  /// log p(x) for every row of `x` by the midpoint rule on an n×n grid over [−8, 8]²:
  /// log Σ_g p(x|z_g) N(z_g; 0, I) Δ². The integrand is smooth and its mass outside the box is
  /// < e^−32, so the error is far below the tolerances used (checked by refinement below).
  static func quadratureLogMarginal(_ vae: VAE, _ x: Tensor, n: Int = 400) -> [Double] {
    let delta = 16.0 / Double(n)
    let g = n * n
    var zv = [Float](repeating: 0, count: 2 * g)
    for i in 0..<n { for j in 0..<n {
      zv[2 * (i * n + j)] = Float(-8 + (Double(i) + 0.5) * delta)
      zv[2 * (i * n + j) + 1] = Float(-8 + (Double(j) + 0.5) * delta)
    } }
    let z = Tensor(zv, shape: [g, 2])
    let tape = Tape(recording: false)
    return withExtendedLifetime(tape) {
      let logits = vae.likelihood(tape.constant(z)).logits.value   // [G, D]
      // Σ_d x_d·l_d for every (grid point, x) at once: [G, D]·[X, D]ᵀ = [G, X].
      let xl = Tensor(zeros: [g, x.rows])
      BLAS.gemm(logits, x, transB: true, into: xl)
      var base = [Double](repeating: 0, count: g)   // log N(z; 0, I) − Σ_d softplus(l_d)
      for k in 0..<g {
        let z0 = Double(zv[2 * k]), z1 = Double(zv[2 * k + 1])
        var s = -0.5 * (z0 * z0 + z1 * z1) - Foundation.log(2 * Double.pi)
        for d in 0..<x.cols {
          let l = Double(logits[k * x.cols + d])
          s -= max(l, 0) + Foundation.log1p(Foundation.exp(-abs(l)))
        }
        base[k] = s
      }
      let p = xl.pointer, nx = x.rows
      return (0..<nx).map { e in
        var m = -Double.infinity
        for k in 0..<g { m = max(m, Double(p[k * nx + e]) + base[k]) }
        var s = 0.0
        for k in 0..<g { s += Foundation.exp(Double(p[k * nx + e]) + base[k] - m) }
        return m + Foundation.log(s) + Foundation.log(delta * delta)
      }
    }
  }

  func logMeanExp(_ v: ArraySlice<Double>) -> Double {
    let m = v.max()!
    return m + Foundation.log(v.reduce(0) { $0 + Foundation.exp($1 - m) } / Double(v.count))
  }

  // MARK: - (a) IWAE with k = 1 is the single-sample ELBO

  func testIWAEWithOneSampleEqualsTheManualSingleSampleELBO() {
    let vae = BoundTests.tinyVAE(.iwae)
    var rng = TestRandom(seed: 3)
    let x = rng.binary([8, 6]), eps = rng.normal([1, 8, 2])
    let tape = Tape(recording: false)
    withExtendedLifetime(tape) {
      let bound = vae.terms(x: x, noise: eps, normalizer: 1, on: tape).bound.array
      // Manual: z = μ + σ·ε in Float (as the model computes it), everything after in Double.
      let manual = manualLogWeights(vae, x, eps, k: 1, on: tape)[0]
      // Values are O(5) nats computed in Float: a few ulp ≈ 1e-6; 1e-5 leaves room for the
      // rounding of the sums of ~10 terms.
      assertClose(bound.map(Double.init), manual, atol: 1e-5, rtol: 1e-5)
    }
  }

  // MARK: - (b), (c) E[ELBO] ≤ E[IWAE_k] ↑ in k ≤ log p(x)

  func testIWAEExpectationIncreasesWithKAndStaysBelowLogMarginal() {
    let iwae = BoundTests.tinyVAE(.iwae), elbo = BoundTests.tinyVAE(.elbo)
    let x = BoundTests.allBinary, nx = x.rows
    let logPx = BoundTests.quadratureLogMarginal(iwae, x)
    var rng = TestRandom(seed: 4)
    let reps = 100, k = 50
    // Per (x, draw): L_1, L_5, L_50 from nested prefixes of the same 50 samples (common random
    // numbers: each is still an unbiased draw of its own bound), and the analytic-KL ELBO with
    // the first sample.
    var d15: [Double] = [], d550: [Double] = [], gap: [Double] = [], dElbo: [Double] = []
    var elboMinusL1: [Double] = []
    let tape = Tape(recording: false)
    for _ in 0..<reps {
      tape.reset()
      let eps = rng.normal([k, nx, 2])
      let lw = iwae.logWeights(x: x, noise: eps, on: tape)
      let first = Tensor(Array(eps.array.prefix(nx * 2)), shape: [1, nx, 2])
      let e = elbo.terms(x: x, noise: first, normalizer: 1, on: tape).bound
      for i in 0..<nx {
        let w = (0..<k).map { Double(lw[$0 * nx + i]) }
        let l1 = w[0], l5 = logMeanExp(w[0..<5]), l50 = logMeanExp(w[0..<50])
        d15.append(l5 - l1); d550.append(l50 - l5); gap.append(logPx[i] - l50)
        dElbo.append(l5 - Double(e[i])); elboMinusL1.append(Double(e[i]) - l1)
      }
    }
    func stats(_ v: [Double]) -> (mean: Double, se: Double) {
      let m = v.reduce(0, +) / Double(v.count)
      let s2 = v.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(v.count - 1)
      return (m, (s2 / Double(v.count)).squareRoot())
    }
    // Each mean is over 6400 (x, draw) pairs; the SE from the sample variance also counts the
    // fixed spread between x's, so "beyond 4 SE" is conservative.
    let a = stats(d15), b = stats(d550), c = stats(gap), d = stats(dElbo), f = stats(elboMinusL1)
    XCTAssertGreaterThan(a.mean, 4 * a.se, "E[L5 − L1] = \(a.mean) ± \(a.se)")
    XCTAssertGreaterThan(b.mean, 4 * b.se, "E[L50 − L5] = \(b.mean) ± \(b.se)")
    XCTAssertGreaterThan(c.mean, -4 * c.se, "E[log p(x) − L50] = \(c.mean) ± \(c.se)")
    // And L50 has closed most of the ELBO's gap (measured here: ≈ 0.04 of ≈ 1 nat).
    XCTAssertLessThan(c.mean, 0.1, "E[log p(x) − L50] = \(c.mean)")
    XCTAssertGreaterThan(d.mean, 4 * d.se, "E[L5 − ELBO] = \(d.mean) ± \(d.se)")
    // The analytic-KL ELBO and L_1 estimate the same bound.
    XCTAssertEqual(f.mean, 0, accuracy: 4 * f.se, "E[ELBO − L1] = \(f.mean) ± \(f.se)")
  }

  func testQuadratureMarginalSumsToOneOverAllBinaryInputs() {
    let vae = BoundTests.tinyVAE(.iwae)
    let logPx = BoundTests.quadratureLogMarginal(vae, BoundTests.allBinary)
    // Σ_x p(x|z) = 1 for every z, so the sum is the grid's mass of N(0, I): 1 − O(e^−32).
    XCTAssertEqual(logPx.reduce(0) { $0 + Foundation.exp($1) }, 1, accuracy: 1e-5)
    // And the grid is fine enough: halving the resolution changes log p(x) by < 1e-3 nats.
    let coarse = BoundTests.quadratureLogMarginal(vae, BoundTests.allBinary, n: 200)
    assertClose(coarse, logPx, atol: 1e-3)
  }

  func testImportanceSampledLogLikelihoodMatchesQuadrature() {
    let vae = BoundTests.tinyVAE(.iwae)
    let rows = [0, 5, 42, 63]
    let x = Tensor(rows.flatMap { r in (0..<6).map { BoundTests.allBinary[r * 6 + $0] } },
                   shape: [rows.count, 6])
    let exact = BoundTests.quadratureLogMarginal(vae, x)
    var estimator = ImportanceSampledLogLikelihood(examples: rows.count)
    var rng = TestRandom(seed: 5)
    let tape = Tape(recording: false)
    var all = [[Double]](repeating: [], count: rows.count)  // every log-weight, per example
    for _ in 0..<10 {  // K = 5000 in chunks of 500
      tape.reset()
      let lw = vae.logWeights(x: x, noise: rng.normal([500, rows.count, 2]), on: tape)
      estimator.add(logWeights: lw)
      for s in 0..<500 { for e in rows.indices { all[e].append(Double(lw[s * rows.count + e])) } }
    }
    // Tolerance from the estimator's own variance. With w_s = p(x, z_s)/q(z_s|x) and
    // p̂ = (1/K) Σ w_s, Var(p̂) = Var(w)/K, so by the delta method
    //   SE(log p̂) ≈ √(Var(w)/K) / p̂,   bias E[log p̂] − log p(x) ≈ −Var(w)/(2K p̂²) = −SE²/2,
    // with Var(w) the sample variance of the 5000 weights (in units of their maximum, which
    // cancels). Allowed: 4 SE + SE²/2 + 1e-3 (the quadrature's own error, bounded by the
    // refinement test above). A wrong weight (a missing log p(z) or log q term) is O(1) nats.
    let tolerance: [Double] = all.map { lw in
      let m = lw.max()!, w = lw.map { Foundation.exp($0 - m) }, k = Double(w.count)
      let mean = w.reduce(0, +) / k
      let variance = w.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / (k - 1)
      let se = (variance / k).squareRoot() / mean
      return 4 * se + se * se / 2 + 1e-3
    }
    for e in rows.indices {
      XCTAssertEqual(estimator.estimates[e], exact[e], accuracy: tolerance[e],
                     "row \(rows[e]): importance-sampled vs quadrature log p(x)")
      // The one-shot log-mean-exp of the same weights in Double is the streamed estimate.
      XCTAssertEqual(estimator.estimates[e], logMeanExp(all[e][...]), accuracy: 1e-9)
    }
    // ≈ 0.04–0.05 nats here: far below the O(1) nats of a wrong weight.
    XCTAssertLessThan(tolerance.max()!, 0.1, "the tolerance stays meaningful: \(tolerance)")
  }

  // MARK: - The chunked merge is the one-shot computation

  /// Uneven chunks (2, 5, 1, 3 samples) of hand-made log-weights for 3 examples: example 0 meets
  /// a new maximum 50 nats up in the third chunk (the running sum must be rescaled, not
  /// overflowed or dropped), example 1 in the last chunk, example 2 starts with a chunk of
  /// zero weights (−∞). Against log (1/K) Σ exp computed at once in Double: equal to ~1e-12.
  func testChunkedImportanceSamplingEqualsOneShotInDouble() {
    var rng = TestRandom(seed: 12)
    let chunks = [2, 5, 1, 3], n = 3
    var blocks: [[Float]] = chunks.map { c in rng.uniform(c * n, -30, -5) }
    blocks[2][0] = 20                        // example 0: new maximum in chunk 3
    blocks[3][2 * n + 1] = 8                 // example 1: new maximum in the last chunk
    for s in 0..<chunks[0] { blocks[0][s * n + 2] = -.infinity }  // example 2: zero weights
    var estimator = ImportanceSampledLogLikelihood(examples: n)
    for (c, b) in zip(chunks, blocks) { estimator.add(logWeights: Tensor(b, shape: [c, n])) }
    let oneShot: [Double] = (0..<n).map { e in
      let v = zip(chunks, blocks).flatMap { c, b in (0..<c).map { Double(b[$0 * n + e]) } }
      let m = v.max()!
      return m + Foundation.log(v.reduce(0) { $0 + Foundation.exp($1 - m) }) - Foundation.log(11)
    }
    XCTAssertEqual(estimator.estimates.count, n)
    for e in 0..<n {
      XCTAssertEqual(estimator.estimates[e], oneShot[e], accuracy: 1e-12 * max(1, abs(oneShot[e])),
                     "example \(e)")
    }
    XCTAssertEqual(estimator.estimates[0], 20 - Foundation.log(11), accuracy: 1e-9)
  }

  // MARK: - IWAE with k > 1: the training bound is the log-mean-exp of the log-weights

  /// log w_{s,r} = log p(x_r|z) + log p(z) − log q(z|x_r) at z = μ + σ·ε_{s,r}, in Double from the
  /// model's Float z and logits, laid out [k][R] (with k = 1: the single-sample ELBO's terms).
  func manualLogWeights(_ vae: VAE, _ x: Tensor, _ eps: Tensor, k: Int, on tape: Tape)
    -> [[Double]] {
    let rows = x.rows
    let q = vae.posterior(tape.constant(x))
    let mu = q.mean.value, lv = q.logVariance.value
    return (0..<k).map { s in
      let z = Tensor(zeros: [rows, 2])
      for i in 0..<(rows * 2) {
        z[i] = mu[i] + Float(Foundation.exp(Double(0.5 * lv[i]))) * eps[s * rows * 2 + i]
      }
      let logits = vae.likelihood(tape.constant(z)).logits.value
      return (0..<rows).map { r in
        var logPxz = 0.0
        for d in 0..<6 {
          let l = Double(logits[r * 6 + d]), t = Double(x[r * 6 + d])
          logPxz += t * l - (max(l, 0) + Foundation.log1p(Foundation.exp(-abs(l))))
        }
        var logPz = 0.0, logQ = 0.0
        for d in 0..<2 {
          let zd = Double(z[r * 2 + d]), m = Double(mu[r * 2 + d]), v = Double(lv[r * 2 + d])
          logPz += -0.5 * (zd * zd + Foundation.log(2 * Double.pi))
          logQ += -0.5 * ((zd - m) * (zd - m) / Foundation.exp(v) + v + Foundation.log(2 * Double.pi))
        }
        return logPxz + logPz - logQ
      }
    }
  }

  /// For k = 5 the bound the training loss uses equals log (1/k) Σ_s w_s of the evaluation path's
  /// log-weights for the same noise (so the −log k term and the sample axis are right), and those
  /// log-weights equal the manual Double computation.
  func testIWAEWithFiveSamplesIsTheLogMeanExpOfTheLogWeights() {
    let k = 5
    let vae = BoundTests.tinyVAE(.iwae, samples: k)
    var rng = TestRandom(seed: 13)
    let x = rng.binary([8, 6]), eps = rng.normal([k, 8, 2])
    let tape = Tape(recording: false)
    withExtendedLifetime(tape) {
      let t = vae.terms(x: x, noise: eps, normalizer: 8, on: tape)
      let lw = vae.logWeights(x: x, noise: eps, on: tape)
      XCTAssertEqual(lw.shape, [k, 8])
      let manual = manualLogWeights(vae, x, eps, k: k, on: tape)
      // Log-weights are O(5) nats from Float forwards: a few ulp ≈ 1e-6 each; 1e-5 as above.
      assertClose(lw.array.map(Double.init), manual.flatMap { $0 }, atol: 1e-5, rtol: 1e-5,
                  "evaluation log-weights vs manual")
      let fromEval = (0..<8).map { r in logMeanExp((0..<k).map { Double(lw[$0 * 8 + r]) }[...]) }
      let fromManual = (0..<8).map { r in logMeanExp((0..<k).map { manual[$0][r] }[...]) }
      assertClose(t.bound.array.map(Double.init), fromEval, atol: 1e-5, rtol: 1e-5,
                  "training IWAE-5 bound vs log-mean-exp of the evaluation log-weights")
      assertClose(t.bound.array.map(Double.init), fromManual, atol: 1e-5, rtol: 1e-5,
                  "training IWAE-5 bound vs manual")
      // The loss is −Σ bound / normalizer.
      XCTAssertEqual(Double(t.loss.scalar), -fromManual.reduce(0, +) / 8, accuracy: 1e-5)
      // And k matters: the bound is not the mean log-weight (the ELBO estimate) nor lacks −log k.
      let meanLW = (0..<8).map { r in (0..<k).map { manual[$0][r] }.reduce(0, +) / Double(k) }
      XCTAssertGreaterThan(zip(fromManual, meanLW).map { $0 - $1 }.min()!, 1e-4)
    }
  }

  // MARK: - (d) Gradients of the loss w.r.t. all parameters

  func checkLossGradient(_ objective: VAE.Objective) {
    let vae = BoundTests.tinyVAE(objective, samples: 3)
    var rng = TestRandom(seed: 6)
    let x = rng.binary([4, 6]), eps = rng.normal([3, 4, 2])
    let tape = Tape()
    vae.store.zeroGrad()
    tape.backward(vae.terms(x: x, noise: eps, normalizer: 4, on: tape).loss)
    let analytic = vae.store.flatGrads.map(Double.init)
    let evalTape = Tape(recording: false)
    let tensors = vae.store.specs.indices.map { i in
      (vae.store.specs[i].name, vae.store.offsets[i]..<(vae.store.offsets[i] + vae.store.specs[i].count))
    }
    // loss = −Σ_rows bound / 4, the sum taken in Double over the per-example bounds.
    GradientCheck().assertWholeModel("\(objective) loss", values: vae.store.flatValues,
                                     analytic: analytic, tensors: tensors) {
      evalTape.reset()
      let bound = vae.terms(x: x, noise: eps, normalizer: 4, on: evalTape).bound
      return -bound.array.reduce(0.0) { $0 + Double($1) } / 4
    }
  }

  func testELBOLossGradientMatchesFiniteDifferences() { checkLossGradient(.elbo) }
  func testIWAELossGradientMatchesFiniteDifferences() { checkLossGradient(.iwae) }
}
