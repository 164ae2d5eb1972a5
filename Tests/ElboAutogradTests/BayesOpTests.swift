import ElboModels
import ElboProbability
import ElboTestSupport
import Foundation
import XCTest

/// Finite-difference gradient checks and Double-reference forward checks of the ops Bayes by
/// Backprop adds: sqrt, the fused categorical log-likelihood, the Gaussian log-density and KL of
/// a weight posterior, the scale-mixture log-density, the layer's local reparameterisation and
/// the whole BBB losses (tolerances: see `GradientCheck` and OpGradientTests).
final class BayesOpTests: XCTestCase {
  var rng = TestRandom(seed: 2015)
  let log2PiD = Foundation.log(2 * Double.pi)

  func forward(_ xs: [Tensor], _ f: (Tape, [Variable]) -> Variable) -> [Double] {
    let tape = Tape(recording: false)
    return withExtendedLifetime(tape) {
      f(tape, xs.map { tape.constant($0) }).value.array.map(Double.init)
    }
  }

  // MARK: - sqrt

  func testSqrtOnPositiveInputs() {
    for shape in [[3, 4], [7]] {
      let x = rng.tensor(shape, 0.2, 3)
      assertGradients("sqrt \(shape)", [x]) { _, v in v[0].sqrt() }
      assertClose(forward([x]) { _, v in v[0].sqrt() }, x.array.map { Double($0).squareRoot() },
                  atol: 1e-7, rtol: 1e-6)
    }
  }

  // MARK: - Categorical log-likelihood

  func testCategoricalLogLikelihood() {
    let rows = 5, classes = 4
    let logits = rng.tensor([rows, classes], -3, 3)
    let labels = Tensor([0, 3, 1, 2, 3], shape: [rows])
    assertGradients("categorical", [logits]) { _, v in
      categoricalLogLikelihood(logits: v[0], labels: labels)
    }
    var reference: [Double] = []
    for r in 0..<rows {
      let l = (0..<classes).map { Double(logits[r * classes + $0]) }
      let logZ = Foundation.log(l.map { Foundation.exp($0) }.reduce(0, +))
      reference.append(l[Int(labels[r])] - logZ)
    }
    assertClose(forward([logits]) { _, v in categoricalLogLikelihood(logits: v[0], labels: labels) },
                reference, atol: 1e-6, rtol: 1e-6)
  }

  func testCategoricalLogLikelihoodIsStableForHugeLogits() {
    let logits = Tensor([1000, 0, -1000, -1000, 0, 1000], shape: [2, 3])
    let out = forward([logits]) { _, v in
      categoricalLogLikelihood(logits: v[0], labels: Tensor([0, 1], shape: [2]))
    }
    assertClose(out, [0, -1000], atol: 1e-4)
  }

  // MARK: - Weight posterior densities

  func testNormalLogDensityAgainstReferenceAndGradients() {
    let x = rng.tensor([3, 4], -2, 2), mu = rng.tensor([3, 4], -1, 1)
    let sigma = rng.tensor([3, 4], 0.3, 1.5)
    assertGradients("normalLogDensity", [x, mu, sigma]) { _, v in
      normalLogDensity(v[0], mean: v[1], standardDeviation: v[2])
    }
    var ref = 0.0
    for i in 0..<x.count {
      let z = (Double(x[i]) - Double(mu[i])) / Double(sigma[i])
      ref += -0.5 * log2PiD - Foundation.log(Double(sigma[i])) - 0.5 * z * z
    }
    assertClose(forward([x, mu, sigma]) { _, v in
      normalLogDensity(v[0], mean: v[1], standardDeviation: v[2])
    }, [ref], atol: 1e-5, rtol: 1e-6)
  }

  func testClosedFormKLAgainstReferenceAndGradients() {
    let mu = rng.tensor([4, 3], -1, 1), sigma = rng.tensor([4, 3], 0.2, 1.5)
    let s: Float = 0.7
    assertGradients("normalKLToCentered", [mu, sigma]) { _, v in
      normalKLToCentered(mean: v[0], standardDeviation: v[1], priorStd: s)
    }
    var ref = 0.0
    for i in 0..<mu.count {
      let m = Double(mu[i]), sd = Double(sigma[i]), p = Double(s)
      ref += Foundation.log(p / sd) + (sd * sd + m * m) / (2 * p * p) - 0.5
    }
    assertClose(forward([mu, sigma]) { _, v in
      normalKLToCentered(mean: v[0], standardDeviation: v[1], priorStd: s)
    }, [ref], atol: 1e-5, rtol: 1e-6)
  }

  func testPosteriorSampleAndLogProbGradientsThroughMuAndRho() {
    // log q(w) − log p(w) at w = μ + softplus(ρ)·ε: the Monte Carlo KL's full derivative.
    let mu = rng.tensor([3, 5], -1, 1), rho = rng.tensor([3, 5], -2, 1), eps = rng.normal([3, 5])
    let prior = CenteredNormalPrior(standardDeviation: 0.8)
    assertGradients("MC KL via sample", [mu, rho]) { _, v in
      let q = FactorizedNormal(mean: v[0], rho: v[1])
      let w = q.sample(noise: eps)
      return q.logProb(w) - prior.logProb(w)
    }
  }

  // MARK: - Scale mixture

  /// log[π N(x|0,σ1²) + (1−π) N(x|0,σ2²)] computed directly in Double.
  func mixtureReference(_ x: Double, _ p: ScaleMixturePrior) -> Double {
    func n(_ x: Double, _ s: Double) -> Double {
      Foundation.exp(-x * x / (2 * s * s)) / (s * (2 * Double.pi).squareRoot())
    }
    let pi = Double(p.pi)
    return Foundation.log(pi * n(x, Double(p.sigma1)) + (1 - pi) * n(x, Double(p.sigma2)))
  }

  func testScaleMixtureLogDensityMatchesTheDirectFormula() {
    // Blundell's default (π = ½, σ1 = 1, σ2 = e⁻⁶) and another grid point; x from 0 through the
    // crossover of the components (|x| ≈ 0.01) to the tails, where the direct formula in Double
    // is still exact.
    let priors = [ScaleMixturePrior(pi: 0.5, sigma1: 1, sigma2: Foundation.exp(-6)),
                  ScaleMixturePrior(pi: 0.25, sigma1: Foundation.exp(-1), sigma2: Foundation.exp(-7))]
    let xs: [Float] = [0, 1e-4, -1e-3, 0.005, -0.01, 0.0125, 0.02, -0.05, 0.3, -1, 2.5, 6]
    for p in priors {
      let x = Tensor(xs, shape: [xs.count])
      for (i, xi) in xs.enumerated() {
        let single = forward([Tensor([xi], shape: [1])]) { _, v in scaleMixtureLogDensity(v[0], p) }
        XCTAssertEqual(single[0], mixtureReference(Double(xi), p),
                       accuracy: 2e-6 * max(1, abs(mixtureReference(Double(xi), p))),
                       "x[\(i)] = \(xi), π = \(p.pi)")
      }
      let total = forward([x]) { _, v in scaleMixtureLogDensity(v[0], p) }
      let ref = xs.reduce(0.0) { $0 + mixtureReference(Double($1), p) }
      XCTAssertEqual(total[0], ref, accuracy: 1e-5 * abs(ref))
      // And through the prior type the models use.
      XCTAssertEqual(forward([x]) { _, v in p.logProb(v[0]) }[0], total[0])
    }
  }

  func testScaleMixtureGradient() {
    // A mixture whose narrow component is wide enough for central differences with h = 5e-3
    // (σ2 = e⁻⁶ would need h ≪ σ2); the derivative formula is the same for every σ.
    let p = ScaleMixturePrior(pi: 0.3, sigma1: 1.2, sigma2: 0.15)
    let x = rng.tensor([4, 6], -2, 2)
    assertGradients("scale mixture", [x]) { _, v in scaleMixtureLogDensity(v[0], p) }
    // Blundell's default, derivative against the analytic one in Double at points where it is
    // smooth on the scale of its own σ2.
    let q = ScaleMixturePrior(pi: 0.5, sigma1: 1, sigma2: Foundation.exp(-6))
    let xs: [Float] = [1e-3, -4e-3, 0.01, 0.3, -1.7]
    let tape = Tape()
    let g = Tensor(zeros: [xs.count])
    tape.backward(scaleMixtureLogDensity(tape.parameter(Tensor(xs, shape: [xs.count]), grad: g), q))
    for (i, xi) in xs.enumerated() {
      let h = 1e-7 * max(1, abs(Double(xi)))
      let d = (mixtureReference(Double(xi) + h, q) - mixtureReference(Double(xi) - h, q)) / (2 * h)
      XCTAssertEqual(Double(g[i]), d, accuracy: 1e-4 * max(1, abs(d)), "x = \(xi)")
    }
  }

  // MARK: - Bayesian layer and whole losses

  func testLocalReparameterisationGradients() {
    let store = ParameterStore()
    let layer = BayesianLinear(store, "l", 4, 3, rhoInit: -1)
    store.allocate(seed: 3)
    let x = rng.tensor([5, 4], -1.5, 1.5), eps = rng.normal([5, 3])
    let inputs = [x, store.value(layer.weightMean).clone(), store.value(layer.weightRho).clone(),
                  store.value(layer.biasMean).clone(), store.value(layer.biasRho).clone()]
    assertGradients("local reparameterisation", inputs) { _, v in
      let q = LayerPosterior(weight: FactorizedNormal(mean: v[1], rho: v[2]),
                             bias: FactorizedNormal(mean: v[3], rho: v[4]))
      return layer(v[0], posterior: q, noise: eps)
    }
  }

  /// `terms` gives the loss to differentiate and, for the numeric side, its parts
  /// (log-likelihood per row, KL) from which the loss is summed again in Double:
  /// (klScale·KL − Σ_rows log-likelihood) / normalizer (MinibatchELBO).
  func checkWholeLoss(_ name: String, store: ParameterStore, klScale: Double, normalizer: Double,
                      _ terms: (Tape) -> BBBTerms) {
    let tape = Tape()
    store.zeroGrad()
    tape.backward(terms(tape).loss)
    let analytic = store.flatGrads.map(Double.init)
    let evalTape = Tape(recording: false)
    let tensors = store.specs.indices.map { i in
      (store.specs[i].name, store.offsets[i]..<(store.offsets[i] + store.specs[i].count))
    }
    GradientCheck().assertWholeModel(name, values: store.flatValues, analytic: analytic,
                                     tensors: tensors) {
      evalTape.reset()
      let t = terms(evalTape)
      let ll = t.logLikelihood.array.reduce(0.0) { $0 + Double($1) }
      return (klScale * (t.kl ?? 0) - ll) / normalizer
    }
  }

  /// Smooth pieces (tanh, a mixture prior with a moderate narrow scale) so that central
  /// differences are accurate; every parameter (μ, ρ of every W and b, log σ_y) is checked.
  func networkConfig(_ estimator: BayesianMLP.Estimator, _ prior: WeightPriorConfig.Kind)
    -> BBBNetworkConfig {
    var c = BBBNetworkConfig()
    c.hidden = 5
    c.activation = .tanh
    c.estimator = estimator
    c.rhoInit = -1.5
    c.prior.kind = prior
    c.prior.gaussianStd = 0.9
    c.prior.negLogSigma1 = 0
    c.prior.negLogSigma2 = 1.5
    return c
  }

  func noise(_ net: BayesianMLP, rows: Int) -> NetworkNoise {
    NetworkNoise(weights: net.weightNoiseShapes.map { rng.normal($0) },
                 preactivations: net.layerWidths.map { rng.normal([rows, $0]) })
  }

  func testRegressionLossGradientForBothEstimatorsAndPriors() {
    for estimator in BayesianMLP.Estimator.allCases {
      for prior in WeightPriorConfig.Kind.allCases {
        var config = BBBRegression.Config()
        config.network = networkConfig(estimator, prior)
        let model = BBBRegression(config, seed: 4)
        let x = rng.tensor([6, 1], 0, 0.5), y = rng.tensor([6, 1], -0.5, 1)
        let eps = noise(model.network.bayesian!, rows: 6)
        checkWholeLoss("regression \(estimator) \(prior)", store: model.store, klScale: 0.3,
                       normalizer: 6) { tape in
          model.terms(x: x, y: y, noise: eps, klScale: 0.3, normalizer: 6, on: tape)
        }
      }
    }
  }

  func testClassifierLossGradientForEveryVariant() {
    let labels = Tensor([0, 2, 1, 2], shape: [4])
    for variant in NetworkVariant.allCases {
      var config = BBBClassifier.Config()
      config.inputs = 5
      config.classes = 3
      config.network = networkConfig(.local, .scaleMixture)
      config.network.variant = variant
      let model = BBBClassifier(config, seed: 5)
      let x = rng.tensor([4, 5], 0, 1)
      var eps = NetworkNoise()
      if let b = model.network.bayesian { eps = noise(b, rows: 4) }
      if variant == .dropout {
        // One inverted-dropout mask (0 or 1/(1 − ½)) per hidden layer.
        eps.dropoutMasks = (0..<2).map { _ in
          Tensor(rng.uniform(20, 0, 1).map { $0 < 0.5 ? 0 : 2 }, shape: [4, 5])
        }
      }
      checkWholeLoss("classifier \(variant)", store: model.store, klScale: 0.5, normalizer: 4) {
        tape in
        model.terms(x: x, labels: labels, noise: eps, klScale: 0.5, normalizer: 4, on: tape)
      }
    }
  }
}
