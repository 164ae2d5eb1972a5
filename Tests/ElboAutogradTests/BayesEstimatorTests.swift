import ElboModels
import ElboProbability
import ElboTestSupport
import Foundation
import XCTest

/// The Bayes-by-Backprop estimators against answers known in closed form. Monte Carlo means are
/// compared within 4 standard errors (a false alarm has probability < 1e-4 per comparison; the
/// draws are seeded, so a pass is reproducible), and a wrong term — a missing log σ, a KL
/// counted twice, a variance in place of a standard deviation — moves them by many.
final class BayesEstimatorTests: XCTestCase {
  var rng = TestRandom(seed: 1505)

  /// Running mean and standard error of a stream of Doubles (Welford).
  struct Moments {
    var n = 0.0, mean = 0.0, m2 = 0.0
    mutating func add(_ x: Double) {
      n += 1
      let d = x - mean
      mean += d / n
      m2 += d * (x - mean)
    }
    var variance: Double { m2 / (n - 1) }
    var standardError: Double { (variance / n).squareRoot() }
  }

  func posterior(_ shape: [Int], on tape: Tape) -> (FactorizedNormal, Tensor, Tensor) {
    let mu = rng.tensor(shape, -0.8, 0.8), rho = rng.tensor(shape, -2, 0.5)
    return (FactorizedNormal(mean: tape.constant(mu), rho: tape.constant(rho)), mu, rho)
  }

  // MARK: - KL: closed form vs Monte Carlo

  func testClosedFormKLMatchesMonteCarloKL() {
    let tape = Tape(recording: false)
    let (q, mu, rho) = posterior([3, 4], on: tape)
    let prior = CenteredNormalPrior(standardDeviation: 0.6)
    let closed = Double(prior.klFrom(q)!.scalar)
    // The closed form written out here in Double from μ and ρ (σ = log(1 + e^ρ)):
    //   KL(N(μ, σ²) ‖ N(0, s²)) = Σ log(s/σ) + (σ² + μ²)/(2s²) − 1/2.
    let s2 = 0.36
    let written = zip(mu.array, rho.array).reduce(0.0) { acc, p in
      let m = Double(p.0), sd = Foundation.log1p(Foundation.exp(Double(p.1)))
      return acc + Foundation.log(0.6 / sd) + (sd * sd + m * m) / (2 * s2) - 0.5
    }
    XCTAssertEqual(closed, written, accuracy: 1e-5 * max(1, abs(written)), "closed-form KL")
    var mc = Moments()
    let evalTape = Tape(recording: false)
    for _ in 0..<40_000 {
      evalTape.reset()
      let w = evalTape.constant(q.sample(noise: rng.normal([3, 4])).value)
      mc.add(Double((q.logProb(w) - prior.logProb(w)).scalar))
    }
    XCTAssertEqual(mc.mean, closed, accuracy: 4 * mc.standardError,
                   "closed form \(closed), Monte Carlo \(mc.mean) ± \(mc.standardError)")
    // WeightKL takes the closed form when there is one, the MC estimate otherwise.
    let w = q.sample(noise: rng.normal([3, 4]))
    XCTAssertEqual(Double(WeightKL.terms(q: q, prior: prior, sample: w).kl.scalar), written,
                   accuracy: 1e-5 * max(1, abs(written)))
    // Without one, the one-sample estimate log q(w) − log p(w), against the densities written
    // out in Double: q a product of N(μ, σ²), p the mixture π N(0, σ₁²) + (1 − π) N(0, σ₂²).
    let sigma2 = Foundation.exp(-6.0)
    let mixture = ScaleMixturePrior(pi: 0.5, sigma1: 1, sigma2: Float(sigma2))
    let t = WeightKL.terms(q: q, prior: mixture, sample: w)
    func logNormal(_ x: Double, _ m: Double, _ sd: Double) -> Double {
      -0.5 * ((x - m) * (x - m) / (sd * sd)) - Foundation.log(sd) - 0.5 * Foundation.log(2 * .pi)
    }
    var logQ = 0.0, logP = 0.0
    for (i, wi) in w.value.array.enumerated() {
      let x = Double(wi), m = Double(mu[i]), sd = Foundation.log1p(Foundation.exp(Double(rho[i])))
      logQ += logNormal(x, m, sd)
      let a = Foundation.log(0.5) + logNormal(x, 0, 1), b = Foundation.log(0.5) + logNormal(x, 0, Double(Float(sigma2)))
      logP += max(a, b) + Foundation.log1p(Foundation.exp(-abs(a - b)))
    }
    XCTAssertEqual(Double(t.kl.scalar), logQ - logP, accuracy: 1e-4 * max(1, abs(logQ - logP)))
    XCTAssertEqual(Double(t.surprise!.scalar), logP - logQ,
                   accuracy: 1e-4 * max(1, abs(logQ - logP)))
  }

  /// The expected gradient of the Monte Carlo KL (through w = μ + σε and directly) equals the
  /// gradient of the closed form: the paths of Blundell et al.'s eq. (3)–(4) are all there.
  func testMonteCarloKLGradientIsUnbiasedForTheClosedFormGradient() {
    let shape = [2, 3]
    let mu = rng.tensor(shape, -0.8, 0.8), rho = rng.tensor(shape, -1.5, 0.5)
    let prior = CenteredNormalPrior(standardDeviation: 0.7)
    func gradients(_ f: (FactorizedNormal) -> Variable) -> [Double] {
      let tape = Tape()
      let gm = Tensor(zeros: shape), gr = Tensor(zeros: shape)
      let q = FactorizedNormal(mean: tape.parameter(mu, grad: gm), rho: tape.parameter(rho, grad: gr))
      tape.backward(f(q))
      return (gm.array + gr.array).map(Double.init)
    }
    let exact = gradients { prior.klFrom($0)! }
    var moments = [Moments](repeating: Moments(), count: exact.count)
    for _ in 0..<20_000 {
      let eps = rng.normal(shape)
      let g = gradients { q in
        let w = q.sample(noise: eps)
        return q.logProb(w) - prior.logProb(w)
      }
      for i in g.indices { moments[i].add(g[i]) }
    }
    for i in exact.indices {
      XCTAssertEqual(moments[i].mean, exact[i], accuracy: 4 * moments[i].standardError + 1e-6,
                     "gradient \(i < 6 ? "μ" : "ρ")[\(i % 6)]")
    }
  }

  // MARK: - Local reparameterisation vs weight sampling

  /// The pre-activations y = x·W + b under W, b ~ q have mean x·μ_W + μ_b and variance
  /// x²·σ_W² + σ_b² per element; the local path samples exactly that Gaussian. Both the weight
  /// samples' and the local samples' moments must match the analytic ones.
  func testLocalReparameterisationMatchesWeightSamplingMoments() {
    let store = ParameterStore()
    let layer = BayesianLinear(store, "l", 3, 2, rhoInit: -1)
    store.allocate(seed: 9)
    // Spread μ and ρ so that every unit has its own mean and variance.
    var spread = TestRandom(seed: 10)
    store.value(layer.weightRho).copy(from: spread.tensor([3, 2], -2, 0.5))
    store.value(layer.biasRho).copy(from: spread.tensor([2], -2, 0.5))
    let x = Tensor([0.5, -1.2, 2.0, 0, 0.7, -0.3], shape: [2, 3])
    let tape = Tape(recording: false)
    let q = layer.posterior(store, on: tape)
    let sw = q.weight.standardDeviation.value, sb = q.bias.standardDeviation.value
    let mw = q.weight.mean.value, mb = q.bias.mean.value
    var mean = [Double](repeating: 0, count: 4), variance = mean
    for r in 0..<2 {
      for o in 0..<2 {
        var m = Double(mb[o]), v = Double(sb[o] * sb[o])
        for i in 0..<3 {
          let xi = Double(x[r * 3 + i])
          m += xi * Double(mw[i * 2 + o])
          v += xi * xi * Double(sw[i * 2 + o] * sw[i * 2 + o])
        }
        mean[r * 2 + o] = m
        variance[r * 2 + o] = v
      }
    }
    let n = 40_000
    var weightSamples = [Moments](repeating: Moments(), count: 4)
    var weightSquares = weightSamples, localSamples = weightSamples, localSquares = weightSamples
    let t = Tape(recording: false)
    for _ in 0..<n {
      t.reset()
      let p = layer.posterior(store, on: t)
      let y = layer(t.constant(x), weight: p.weight.sample(noise: rng.normal([3, 2])),
                    bias: p.bias.sample(noise: rng.normal([2])))
      let z = layer(t.constant(x), posterior: p, noise: rng.normal([2, 2]))
      for k in 0..<4 {
        let a = Double(y.value[k]), b = Double(z.value[k])
        weightSamples[k].add(a); localSamples[k].add(b)
        weightSquares[k].add((a - mean[k]) * (a - mean[k]))
        localSquares[k].add((b - mean[k]) * (b - mean[k]))
      }
    }
    for k in 0..<4 {
      for (name, m, s) in [("weight", weightSamples[k], weightSquares[k]),
                           ("local", localSamples[k], localSquares[k])] {
        XCTAssertEqual(m.mean, mean[k], accuracy: 4 * m.standardError, "\(name) mean[\(k)]")
        XCTAssertEqual(s.mean, variance[k], accuracy: 4 * s.standardError, "\(name) var[\(k)]")
      }
    }
  }

  /// E_q[log N(y | x·W + b, s²)] in closed form: −½ log 2πs² − [(y − x·μ_W − μ_b)² + x²·σ_W²
  /// + σ_b²]/(2s²). Both estimators average to it, through the whole regression model.
  func testBothEstimatorsAreUnbiasedForTheExpectedLogLikelihood() {
    for estimator in BayesianMLP.Estimator.allCases {
      var config = BBBRegression.Config()
      config.network.hidden = 1
      config.network.hiddenLayers = 0  // one Bayesian linear layer 1 → 1: closed form exists
      config.network.estimator = estimator
      config.network.prior.kind = .gaussian
      config.network.rhoInit = -0.5
      config.noiseStd = 0.4
      let model = BBBRegression(config, seed: 12)
      let bayes = model.network.bayesian!
      let layer = bayes.layers[0]
      let x = Tensor([0.3, -1.1, 0.8], shape: [3, 1]), y = Tensor([0.5, -0.2, 1.4], shape: [3, 1])
      let tape = Tape(recording: false)
      let q = layer.posterior(model.store, on: tape)
      let mw = Double(q.weight.mean.value[0]), mb = Double(q.bias.mean.value[0])
      let vw = Double(q.weight.variance.value[0]), vb = Double(q.bias.variance.value[0])
      let s2 = 0.16
      var exact = 0.0
      for r in 0..<3 {
        let xr = Double(x[r]), d = Double(y[r]) - xr * mw - mb
        exact += -0.5 * Foundation.log(2 * Double.pi * s2) - (d * d + xr * xr * vw + vb) / (2 * s2)
      }
      var mc = Moments()
      for _ in 0..<40_000 {
        tape.reset()
        let eps = NetworkNoise(weights: bayes.weightNoiseShapes.map { rng.normal($0) },
                               preactivations: [rng.normal([3, 1])])
        let t = model.terms(x: x, y: y, noise: eps, klScale: 0, normalizer: 1, on: tape)
        mc.add(t.logLikelihood.array.reduce(0.0) { $0 + Double($1) })
      }
      XCTAssertEqual(mc.mean, exact, accuracy: 4 * mc.standardError,
                     "\(estimator): exact \(exact), Monte Carlo \(mc.mean) ± \(mc.standardError)")
    }
  }

  // MARK: - KL weighting

  func testBlundellSharesSumToOneAndFollowTheFormula() {
    let w = KLWeighting(share: .blundell)
    for m in [1, 2, 5, 40, 600, 2000] {
      let shares = (0..<m).map { w.share(minibatch: $0, of: m) }
      XCTAssertEqual(shares.reduce(0, +), 1, accuracy: 1e-12, "M = \(m)")
      XCTAssertTrue(shares.allSatisfy { $0.isFinite && $0 >= 0 })
      if m <= 40 {
        for i in 1...m {
          let formula = Foundation.pow(2, Double(m - i)) / (Foundation.pow(2, Double(m)) - 1)
          XCTAssertEqual(shares[i - 1], formula, accuracy: 1e-15 + 1e-12 * formula)
        }
      }
    }
    let u = KLWeighting(share: .uniform)
    XCTAssertEqual((0..<7).map { u.share(minibatch: $0, of: 7) }.reduce(0, +), 1, accuracy: 1e-12)
  }

  func testWeightCombinesBetaWarmupAndShare() {
    let w = KLWeighting(share: .uniform, beta: 0.5, warmupSteps: 4)
    XCTAssertEqual(w.weight(step: 0, stepsPerEpoch: 10), 0.5 * 0.25 * 0.1, accuracy: 1e-15)
    XCTAssertEqual(w.weight(step: 2, stepsPerEpoch: 10), 0.5 * 0.75 * 0.1, accuracy: 1e-15)
    XCTAssertEqual(w.weight(step: 3, stepsPerEpoch: 10), 0.5 * 0.1, accuracy: 1e-15)
    XCTAssertEqual(w.weight(step: 99, stepsPerEpoch: 10), 0.5 * 0.1, accuracy: 1e-15)
    let b = KLWeighting(share: .blundell)
    XCTAssertEqual(b.weight(step: 10, stepsPerEpoch: 10), b.share(minibatch: 0, of: 10))
  }
}
