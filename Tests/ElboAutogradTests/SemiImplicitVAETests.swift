import ElboModels
import ElboTestSupport
import Foundation
import XCTest

/// The VAE with a semi-implicit posterior (`--posterior semi-implicit`): the Gaussian layout is
/// untouched, switching the mixing noise off gives the ordinary (Monte Carlo) ELBO, the SIVI
/// bound rises with K, the whole loss's gradient, and the log-likelihood estimator against
/// quadrature.
final class SemiImplicitVAETests: XCTestCase {
  static let inputs = 6, latent = 2

  /// A tiny VAE (6 binary inputs, 5 tanh units, 2 latents), optionally semi-implicit with E
  /// mixing dimensions; W_ε scaled so that ε moves μ(x, ε) visibly.
  static func tiny(_ posterior: VAE.PosteriorFamily, mixing: Int = 3, k: Int = 1,
                   mixSamples: Int = 4, noiseScale: Float = 1) -> VAE {
    var c = VAE.Config()
    c.inputs = inputs; c.hidden = 5; c.hiddenLayers = 1; c.latent = latent
    c.activation = .tanh; c.samples = k
    c.posterior = posterior; c.mixingNoise = mixing; c.mixSamples = mixSamples
    let vae = VAE(c, seed: 11)
    if let w = vae.mixingWeight {
      let t = vae.store.value(w)
      for j in 0..<t.count { t[j] *= noiseScale }
    }
    return vae
  }

  /// The Gaussian VAE declares no mixing weight; a semi-implicit one declares it last, so every
  /// other tensor has the same name, shape, offset and initial value.
  func testGaussianLayoutIsUnchanged() {
    let g = SemiImplicitVAETests.tiny(.gaussian), s = SemiImplicitVAETests.tiny(.semiImplicit)
    XCTAssertNil(g.mixingWeight)
    XCTAssertEqual(s.store.specs.count, g.store.specs.count + 1)
    XCTAssertEqual(Array(s.store.specs.prefix(g.store.specs.count)), g.store.specs)
    XCTAssertEqual(s.store.specs.last?.name, "encoder.mixing.weight")
    XCTAssertEqual(Array(s.store.flatValues.prefix(g.store.count)), Array(g.store.flatValues))
  }

  /// Mixing noise off: with ε = 0 everywhere every component is q(z|x, 0) — the Gaussian VAE's
  /// q(z|x) — so the SIVI bound is the Monte Carlo ELBO log p(x|z) + log p(z) − log q(z|x)
  /// (equal up to the rounding of log((K+1)·q) − log(K+1)); with E = 0 and K = 0 it is that
  /// ELBO bit for bit. log p(x|z) and log p(z) are bitwise equal in both cases.
  func testMixingNoiseOffGivesTheGaussianELBO() {
    var rng = TestRandom(seed: 1)
    let r = 8, l = SemiImplicitVAETests.latent
    let x = rng.binary([r, SemiImplicitVAETests.inputs]), eta = rng.normal([1, r, l])
    let gaussian = SemiImplicitVAETests.tiny(.gaussian)
    let tape = Tape(recording: false)
    let g = gaussian.terms(x: x, noise: eta, normalizer: 1, on: tape)
    let mcELBO = zip(g.logLikelihood.array, g.surprise.array).map { $0 + $1 }

    for (e, kk) in [(3, 5), (0, 0), (0, 7)] {
      let vae = SemiImplicitVAETests.tiny(.semiImplicit, mixing: e, mixSamples: kk, noiseScale: 4)
      let t = vae.semiImplicitTerms(x: x, noise: eta, mixing: Tensor(zeros: [1, r, e]),
                                    mixture: Tensor(zeros: [kk, r, e]), normalizer: 1, on: tape)
      XCTAssertEqual(t.logLikelihood.array, g.logLikelihood.array, "E = \(e), K = \(kk)")
      XCTAssertEqual(t.logPrior!.array,
                     StandardNormal.logProb(
                       gaussian.posterior(tape.constant(x)).sample(noise: eta)).value
                       .reshaped([r]).array, "E = \(e), K = \(kk)")
      if kk == 0 {
        XCTAssertEqual(t.bound.array, mcELBO, "E = \(e), K = 0: bitwise the Monte Carlo ELBO")
      } else {
        assertClose(t.bound.array, mcELBO, atol: 2e-5, rtol: 1e-6)
      }
    }
    // And with the noise on, the bound differs (the test above can fail).
    let on = SemiImplicitVAETests.tiny(.semiImplicit, mixing: 3, noiseScale: 4)
    let t = on.semiImplicitTerms(x: x, noise: eta, mixing: rng.normal([1, r, 3]),
                                 mixture: rng.normal([4, r, 3]), normalizer: 1, on: tape)
    XCTAssertGreaterThan(zip(t.bound.array, mcELBO).map { abs($0 - $1) }.max()!, 1e-2)
  }

  /// E L_K rises with K = 1, 5, 50, 500 on a fixed random model (Yin & Zhou, Theorem 1): one
  /// input repeated over 4000 rows, so the rows are independent draws; differences between
  /// successive K use the same z and nested components (paired), each mean more than 3 standard
  /// errors above 0.
  func testBoundRisesWithK() {
    let vae = SemiImplicitVAETests.tiny(.semiImplicit, mixing: 3, noiseScale: 6)
    // Narrow conditionals (log σ² ≈ −4) spread by ε: q(z|ψ) is far from q(z), so the surrogate's
    // gap ~ 1/K is large enough to see between K = 50 and 500.
    let bias = vae.store.value(vae.store.index(of: "encoder.fc2.bias")!)
    for u in SemiImplicitVAETests.latent..<(2 * SemiImplicitVAETests.latent) { bias[u] = -4 }
    var rng = TestRandom(seed: 2)
    let n = 4000, e = 3, l = SemiImplicitVAETests.latent
    let one = rng.binary([1, SemiImplicitVAETests.inputs])
    let x = Tensor(Array((0..<n).flatMap { _ in one.array }), shape: [n, SemiImplicitVAETests.inputs])
    let eta = rng.normal([1, n, l]), mixing = rng.normal([1, n, e]), all = rng.normal([500, n, e])
    var previous: [Double]? = nil
    for kk in [1, 5, 50, 500] {
      let tape = Tape(recording: false)
      let mixture = Tensor(Array(all.array.prefix(kk * n * e)), shape: [kk, n, e])
      let bound = vae.semiImplicitTerms(x: x, noise: eta, mixing: mixing, mixture: mixture,
                                        normalizer: 1, on: tape).bound.array.map(Double.init)
      if let previous {
        let d = zip(bound, previous).map { $0 - $1 }
        let mean = d.reduce(0, +) / Double(n)
        let sd = sqrt(d.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(n - 1))
        XCTAssertGreaterThan(mean, 3 * sd / sqrt(Double(n)),
                             "K = \(kk): E L_K − E L_previous = \(mean) ± \(sd / sqrt(Double(n)))")
      }
      previous = bound
    }
  }

  /// The loss gradient w.r.t. every parameter (W_ε included), k = 2 samples, K = 3.
  func testLossGradientMatchesFiniteDifferences() {
    let vae = SemiImplicitVAETests.tiny(.semiImplicit, mixing: 3, k: 2, mixSamples: 3,
                                        noiseScale: 2)
    var rng = TestRandom(seed: 3)
    let r = 4, e = 3
    let x = rng.binary([r, SemiImplicitVAETests.inputs]), eta = rng.normal([2, r, 2])
    let mixing = rng.normal([2, r, e]), mixture = rng.normal([3, r, e])
    let tape = Tape()
    vae.store.zeroGrad()
    tape.backward(vae.semiImplicitTerms(x: x, noise: eta, mixing: mixing, mixture: mixture,
                                        normalizer: 4, on: tape).loss)
    let analytic = vae.store.flatGrads.map(Double.init)
    let evalTape = Tape(recording: false)
    let tensors = vae.store.specs.indices.map { i in
      (vae.store.specs[i].name,
       vae.store.offsets[i]..<(vae.store.offsets[i] + vae.store.specs[i].count))
    }
    GradientCheck(relativeStep: 2e-3).assertWholeModel(
      "semi-implicit VAE loss", values: vae.store.flatValues, analytic: analytic, tensors: tensors) {
      evalTape.reset()
      let bound = vae.semiImplicitTerms(x: x, noise: eta, mixing: mixing, mixture: mixture,
                                        normalizer: 4, on: evalTape).bound
      return -bound.array.reduce(0.0) { $0 + Double($1) } / 4
    }
  }

  /// The log-likelihood estimator against log p(x) by quadrature (BoundTests): with S = 2000
  /// draws and M = 500 components it is within 0.05 nats, and below log p(x) + 3 SE (it is a
  /// stochastic lower bound); with S = 1, M = 0 it is the single-sample bound L_0, far below.
  func testLogLikelihoodEstimatorAgainstQuadrature() {
    let vae = SemiImplicitVAETests.tiny(.semiImplicit, mixing: 3, noiseScale: 3)
    for (i, spec) in vae.store.specs.enumerated() where spec.name.hasPrefix("decoder") {
      let t = vae.store.value(i)
      for j in 0..<t.count { t[j] *= 3 }
    }
    let rows = [5, 22, 63]
    let x = Tensor(rows.flatMap { Array(BoundTests.allBinary.array[($0 * 6)..<($0 * 6 + 6)]) },
                   shape: [rows.count, 6])
    let exact = BoundTests.quadratureLogMarginal(vae, x)
    var rng = TestRandom(seed: 4)
    let tape = Tape(recording: false)
    for i in rows.indices {
      let xi = Tensor(Array(x.array[(i * 6)..<(i * 6 + 6)]), shape: [1, 6])
      var estimates: [Double] = []
      for _ in 0..<5 {
        tape.reset()
        estimates.append(vae.semiImplicitLogLikelihood(
          x: xi, noise: rng.normal([2000, 1, 2]), mixing: rng.normal([2000, 1, 3]),
          mixture: rng.normal([500, 1, 3]), on: tape))
      }
      let mean = estimates.reduce(0, +) / 5
      let sd = sqrt(estimates.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 4)
      XCTAssertEqual(mean, exact[i], accuracy: 0.05, "row \(rows[i])")
      XCTAssertLessThan(mean, exact[i] + 3 * sd / sqrt(5) + 1e-3, "row \(rows[i]): a lower bound")
      tape.reset()
      let single = vae.semiImplicitLogLikelihood(
        x: xi, noise: rng.normal([1, 1, 2]), mixing: rng.normal([1, 1, 3]),
        mixture: Tensor(zeros: [0, 1, 3]), on: tape)
      XCTAssertLessThan(single, exact[i], "row \(rows[i]): L_0 is below log p(x)")
    }
  }

  /// UIVI's loss differs from SIVI's only in the entropy term, which does not reach the decoder:
  /// the decoder's gradient is the same bit for bit (same z); the encoder's is not (the score
  /// replaces the surrogate), and log h gets no gradient from the tape (the experiment sets it).
  func testUIVIDecoderGradientIsSIVIs() {
    var c = VAE.Config()
    c.inputs = SemiImplicitVAETests.inputs; c.hidden = 5; c.hiddenLayers = 1
    c.latent = SemiImplicitVAETests.latent; c.activation = .tanh
    c.posterior = .uivi; c.mixingNoise = 3
    let vae = VAE(c, seed: 11)
    var rng = TestRandom(seed: 5)
    let r = 4
    let x = rng.binary([r, SemiImplicitVAETests.inputs]), eta = rng.normal([1, r, 2])
    let mixing = rng.normal([1, r, 3]), mixture = rng.normal([3, r, 3])
    func grads(_ uivi: Bool) -> [Float] {
      let tape = Tape()
      vae.store.zeroGrad()
      if uivi {
        var streams = (0..<r).map { RandomStream(NoiseAddress(seed: 1, purpose: .evaluation,
                                                              item: UInt32($0))) }
        var hmc = HamiltonianMonteCarlo.Settings()
        hmc.burnIn = 2; hmc.samples = 3
        tape.backward(vae.uiviTerms(x: x, noise: eta, mixing: mixing, mixture: mixture,
                                    normalizer: 4, hmc: hmc, streams: &streams, on: tape)
                        .terms.loss)
      } else {
        tape.backward(vae.semiImplicitTerms(x: x, noise: eta, mixing: mixing, mixture: mixture,
                                            normalizer: 4, on: tape).loss)
      }
      return Array(vae.store.flatGrads)
    }
    let u = grads(true), s = grads(false)
    for (i, spec) in vae.store.specs.enumerated() {
      let range = vae.store.offsets[i]..<(vae.store.offsets[i] + spec.count)
      if spec.name.hasPrefix("decoder") {
        XCTAssertEqual(Array(u[range]), Array(s[range]), spec.name)
      } else if spec.name == VAE.hmcStepSizeName {
        XCTAssertEqual(Array(u[range]), [0])
      }
    }
    let encoder = vae.store.specs.indices.filter { vae.store.specs[$0].name.hasPrefix("encoder") }
      .flatMap { i in (vae.store.offsets[i]..<(vae.store.offsets[i] + vae.store.specs[i].count)) }
    XCTAssertGreaterThan(encoder.map { abs(u[$0] - s[$0]) }.max()!, 1e-4,
                         "the entropy gradients differ")
  }
}

/// DSIVI mixture priors in the VAE: N(0, I) keeps the layout, dsivi-agg with a Gaussian encoder
/// is the exact mixture of the encoder's q(z|u_k), and the loss gradient reaches the prior's
/// parameters (finite differences, both priors, both posteriors).
final class MixturePriorVAETests: XCTestCase {
  static func tiny(_ prior: VAE.PriorFamily, posterior: VAE.PosteriorFamily = .gaussian) -> VAE {
    var c = VAE.Config()
    c.inputs = 6; c.hidden = 5; c.hiddenLayers = 1; c.latent = 2; c.activation = .tanh
    c.prior = prior; c.priorSamples = 3; c.priorNoise = 2; c.priorHidden = 4
    c.posterior = posterior; c.mixingNoise = 2; c.mixSamples = 2
    return VAE(c, seed: 12)
  }

  func testStandardPriorKeepsTheLayoutAndMixturePriorsComeLast() {
    let plain = MixturePriorVAETests.tiny(.standard)
    XCTAssertNil(plain.prior)
    for prior in [VAE.PriorFamily.dsiviAgg, .semiImplicit] {
      let v = MixturePriorVAETests.tiny(prior)
      XCTAssertEqual(Array(v.store.specs.prefix(plain.store.specs.count)), plain.store.specs)
      XCTAssertTrue(v.store.specs.last!.name.hasPrefix("prior."), "\(prior)")
    }
  }

  /// log p(z) = log (1/K) Σ_k N(z; μ(u_k), σ²(u_k)), computed here from the encoder directly.
  func testAggregatePriorIsTheExactMixtureOfTheEncoder() {
    let vae = MixturePriorVAETests.tiny(.dsiviAgg)
    var rng = TestRandom(seed: 1)
    let z = rng.normal([5, 2])
    let tape = Tape(recording: false)
    let got = vae.priorLogDensity(tape.constant(z), noise: nil).value.array
    let u = vae.store.value(vae.prior!.pseudoInputs!)
    let q = vae.posterior(tape.constant(u))
    let mu = q.mean.value.array, lv = q.logVariance.value.array
    for n in 0..<5 {
      var terms: [Double] = []
      for k in 0..<3 {
        var t = 0.0
        for d in 0..<2 {
          let v = Double(lv[k * 2 + d]), diff = Double(z[n * 2 + d]) - Double(mu[k * 2 + d])
          t += -0.5 * (log(2 * Double.pi) + v + diff * diff / exp(v))
        }
        terms.append(t)
      }
      let top = terms.max()!
      let want = top + log(terms.reduce(0) { $0 + exp($1 - top) } / 3)
      XCTAssertEqual(Double(got[n]), want, accuracy: 1e-4, "row \(n)")
    }
  }

  func testLossGradientReachesThePrior() {
    for (prior, posterior) in [(VAE.PriorFamily.dsiviAgg, VAE.PosteriorFamily.gaussian),
                               (.semiImplicit, .gaussian), (.dsiviAgg, .semiImplicit),
                               (.semiImplicit, .semiImplicit)] {
      let vae = MixturePriorVAETests.tiny(prior, posterior: posterior)
      var rng = TestRandom(seed: 2)
      let r = 3, e = vae.mixingDimension
      let x = rng.binary([r, 6]), eta = rng.normal([1, r, 2])
      let mixing = rng.normal([1, r, e]), mixture = rng.normal([vae.mixtureSamples, r, e])
      let priorNoise = vae.priorNoiseShape.map { rng.normal($0) }
      let tape = Tape()
      vae.store.zeroGrad()
      tape.backward(vae.semiImplicitTerms(x: x, noise: eta, mixing: mixing, mixture: mixture,
                                          priorNoise: priorNoise, normalizer: 3, on: tape).loss)
      let analytic = vae.store.flatGrads.map(Double.init)
      let evalTape = Tape(recording: false)
      let tensors = vae.store.specs.indices.map { i in
        (vae.store.specs[i].name,
         vae.store.offsets[i]..<(vae.store.offsets[i] + vae.store.specs[i].count))
      }
      let priorRange = tensors.filter { $0.0.hasPrefix("prior.") }.map(\.1)
      XCTAssertGreaterThan(priorRange.flatMap { Array(analytic[$0]) }.map(abs).max()!, 1e-6,
                           "\(prior)/\(posterior): the prior's parameters get a gradient")
      GradientCheck(relativeStep: 2e-3).assertWholeModel(
        "\(prior) prior, \(posterior) posterior", values: vae.store.flatValues,
        analytic: analytic, tensors: tensors) {
        evalTape.reset()
        let bound = vae.semiImplicitTerms(x: x, noise: eta, mixing: mixing, mixture: mixture,
                                          priorNoise: priorNoise, normalizer: 3, on: evalTape).bound
        return -bound.array.reduce(0.0) { $0 + Double($1) } / 3
      }
    }
  }
}
