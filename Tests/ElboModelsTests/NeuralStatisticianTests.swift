import ElboAutograd
import ElboModels
import ElboTestSupport
import Foundation
import XCTest

/// The Neural Statistician's set ops against finite differences, its three ELBO terms against a
/// case computed by hand, the α-weighted loss, the whole model's gradient, and padding
/// invariance (a padded set gives the terms and gradients of the same set unpadded).
final class NeuralStatisticianTests: XCTestCase {
  var rng = TestRandom(seed: 2017_0424)

  /// 2 sets × 4 slots; set 0 has 3 real points, set 1 has 2 (padding in the middle and end).
  let mask = Tensor([1, 1, 0, 1, 0, 1, 1, 0], shape: [2, 4])

  func testSetOpGradients() {
    assertGradients("setMeanPool", [rng.tensor([8, 3])]) { _, v in setMeanPool(v[0], mask: mask) }
    assertGradients("setSum", [rng.tensor([8])]) { _, v in setSum(v[0], mask: mask) }
    assertGradients("addPerSet", [rng.tensor([8, 3]), rng.tensor([2, 3])]) { _, v in
      addPerSet(v[0], v[1])
    }
    assertGradients("repeatPerSet", [rng.tensor([2, 3])]) { _, v in repeatPerSet(v[0], points: 4) }
  }

  /// The forwards by hand: padding rows are skipped and get zero gradient.
  func testSetOpValuesSkipPadding() {
    let tape = Tape()
    let h = tape.parameter(Tensor([1, 2, 100, 3, 1000, 5, 6, 4], shape: [8, 1]),
                           grad: Tensor(zeros: [8, 1]))
    let pooled = setMeanPool(h, mask: mask)
    XCTAssertEqual(pooled.value.array, [2, 5.5])
    let summed = setSum(h.reshaped([8]), mask: mask)
    XCTAssertEqual(summed.value.array, [6, 11])
    tape.backward((pooled.sum() + summed.sum()))
    XCTAssertEqual(h.grad.array, [4 / 3, 4 / 3, 0, 4 / 3, 0, 1.5, 1.5, 0])
    let rep = repeatPerSet(tape.constant(Tensor([1, 2], shape: [2, 1])), points: 3)
    XCTAssertEqual(rep.value.array, [1, 1, 1, 2, 2, 2])
  }

  func tinyConfig(layers: Int = 2) -> NeuralStatistician.Config {
    var c = NeuralStatistician.Config()
    c.dimension = 2; c.hidden = 5; c.hiddenLayers = 2; c.context = 2; c.latent = 3
    c.stochasticLayers = layers
    return c
  }

  func noise(_ model: NeuralStatistician, sets: Int, points: Int) -> NeuralStatistician.Noise {
    let c = model.config
    return NeuralStatistician.Noise(
      context: rng.normal([sets, c.context]),
      latents: (0..<c.stochasticLayers).map { _ in rng.normal([sets * points, c.latent]) })
  }

  /// Every weight zero and every output bias set: each network outputs its bias whatever its
  /// input, so q(c|D) = N(μc, e^{sc}), q(z_l|·) = N(a_l, e^{s_l}), p(z_l|·) = N(p_l, e^{t_l}),
  /// p(x|·) = N(m, e^{v}) and, with n real points in a set,
  ///   R = Σ_x log N(x; m, e^v),   C = ½ Σ_k (μc² + e^{sc} − 1 − sc),
  ///   L = n Σ_l ½ Σ_k (t_l − s_l + (e^{s_l} + (a_l − p_l)²)/e^{t_l} − 1),
  /// computed here in Double from the biases alone.
  func testTermsOnAHandComputableCase() {
    let config = tinyConfig()
    let model = NeuralStatistician(config, seed: 3)
    let store = model.store
    var bias: [String: [Float]] = [:]
    for (i, spec) in store.specs.enumerated() {
      let t = store.value(i)
      if spec.name.hasSuffix(".weight") { t.fill(0); continue }
      let isOut = spec.name.hasPrefix("statistic.post.fc3") || spec.name.hasSuffix("out.bias")
      if !isOut { t.fill(0); continue }
      for j in 0..<t.count { t[j] = Float(j % 3) * 0.3 - 0.4 + 0.1 * Float(spec.name.count % 5) }
      bias[spec.name] = t.array
    }
    func split(_ v: [Float]) -> ([Double], [Double]) {
      let h = v.count / 2
      return (v[..<h].map(Double.init), v[h...].map(Double.init))
    }
    let x = rng.tensor([2, 4, 2])
    let eps = noise(model, sets: 2, points: 4)
    let t = model.terms(points: x, mask: mask, noise: eps, normalizer: 1, on: Tape(recording: false))

    let (mc, sc) = split(bias["statistic.post.fc3.bias"]!)
    let c = zip(mc, sc).map { 0.5 * ($0 * $0 + exp($1) - 1 - $1) }.reduce(0, +)
    var perPoint = 0.0
    for l in 1...2 {
      let (a, s) = split(bias["inference\(l).out.bias"]!), (p, tt) = split(bias["latent\(l).out.bias"]!)
      for k in 0..<3 {
        perPoint += 0.5 * (tt[k] - s[k] + (exp(s[k]) + (a[k] - p[k]) * (a[k] - p[k])) / exp(tt[k]) - 1)
      }
    }
    let (m, v) = split(bias["observation.out.bias"]!)
    for set in 0..<2 {
      let real = (0..<4).filter { mask[set * 4 + $0] == 1 }
      var r = 0.0
      for j in real {
        for d in 0..<2 {
          let xv = Double(x[(set * 4 + j) * 2 + d])
          r += -0.5 * (log(2 * Double.pi) + v[d] + (xv - m[d]) * (xv - m[d]) / exp(v[d]))
        }
      }
      let l = Double(real.count) * perPoint
      XCTAssertEqual(Double(t.reconstruction[set]), r, accuracy: 1e-4 * max(1, abs(r)), "R set \(set)")
      XCTAssertEqual(Double(t.contextKL[set]), c, accuracy: 1e-5, "C set \(set)")
      XCTAssertEqual(Double(t.latentKL[set]), l, accuracy: 1e-4 * max(1, l), "L set \(set)")
      XCTAssertEqual(Double(t.bound[set]), r - c - l, accuracy: 1e-4 * max(1, abs(r)), "ELBO set \(set)")
      XCTAssertEqual(Double(t.latentKLs[0][set] + t.latentKLs[1][set]), l, accuracy: 1e-4 * max(1, l))
    }
  }

  /// The loss is −Σ_sets [(1+α)R − (C+L)/(1+α)] / normalizer, and −Σ ELBO / normalizer at α = 0.
  func testAlphaWeightedLoss() {
    let model = NeuralStatistician(tinyConfig(), seed: 4)
    let x = rng.tensor([2, 4, 2]), eps = noise(model, sets: 2, points: 4)
    for alpha: Float in [0, 1, 0.25] {
      let t = model.terms(points: x, mask: mask, noise: eps, alpha: alpha, normalizer: 7,
                          on: Tape(recording: false))
      var want = 0.0
      for s in 0..<2 {
        let r = Double(t.reconstruction[s]), kl = Double(t.contextKL[s] + t.latentKL[s])
        want -= Double(1 + alpha) * r - kl / Double(1 + alpha)
      }
      XCTAssertEqual(Double(t.loss.scalar), want / 7, accuracy: 1e-4 * abs(want / 7), "α = \(alpha)")
    }
  }

  /// Backward of the whole model (every parameter tensor) against finite differences (tanh:
  /// a ReLU kink inside a difference step would spoil the numeric side).
  func testWholeModelGradient() {
    var config = tinyConfig()
    config.activation = .tanh
    let model = NeuralStatistician(config, seed: 5)
    let x = rng.tensor([2, 4, 2]), eps = noise(model, sets: 2, points: 4)
    let store = model.store
    // The loss summed in Double from the per-set terms (so the differences see only each
    // term's Float rounding).
    func loss() -> Double {
      let t = model.terms(points: x, mask: mask, noise: eps, alpha: 0.5, normalizer: 3,
                          on: Tape(recording: false))
      return (0..<2).map { s -> Double in
        -(1.5 * Double(t.reconstruction[s])
          - (Double(t.contextKL[s]) + Double(t.latentKL[s])) / 1.5) / 3
      }.reduce(0, +)
    }
    store.zeroGrad()
    let tape = Tape()
    tape.backward(model.terms(points: x, mask: mask, noise: eps, alpha: 0.5, normalizer: 3,
                              on: tape).loss)
    let analytic = store.flatGrads.map(Double.init)
    let tensors = store.specs.indices.map { i in
      (store.specs[i].name, store.offsets[i]..<(store.offsets[i] + store.specs[i].count))
    }
    // A step of 2e-2: the networks are smooth (tanh), and the Float rounding of R (a sum over
    // points) is what limits a smaller one; atol 3e-3·scale for the tensors whose gradients are
    // below 1e-2 (the pre-pool layers, seen through a mean over points).
    GradientCheck(relativeStep: 2e-2, atol: 3e-3)
      .assertWholeModel("neural statistician", values: store.flatValues, analytic: analytic,
                        tensors: tensors, loss)
  }

  /// Set 0 padded with garbage rows (and garbage noise there) gives the terms and the gradient
  /// of set 0 alone, unpadded.
  func testPaddingIsNeverCounted() {
    let model = NeuralStatistician(tinyConfig(layers: 3), seed: 6)
    let c = model.config
    let real = rng.tensor([1, 3, 2])
    let eps = noise(model, sets: 1, points: 3)
    let padded = Tensor(zeros: [1, 5, 2]), paddedMask = Tensor([1, 1, 0, 1, 0], shape: [1, 5])
    let slots = [0, 1, 3]
    for (k, slot) in slots.enumerated() {
      for d in 0..<2 { padded[slot * 2 + d] = real[k * 2 + d] }
    }
    for slot in [2, 4] { for d in 0..<2 { padded[slot * 2 + d] = 37 * Float(slot + d) - 50 } }
    let paddedLatents = eps.latents.map { z -> Tensor in
      let t = rng.normal([5, c.latent]).clone()
      for (k, slot) in slots.enumerated() {
        for j in 0..<c.latent { t[slot * c.latent + j] = z[k * c.latent + j] }
      }
      return t
    }
    let paddedNoise = NeuralStatistician.Noise(context: eps.context, latents: paddedLatents)

    func run(_ x: Tensor, _ m: Tensor, _ n: NeuralStatistician.Noise)
      -> (terms: [Float], grad: [Float]) {
      model.store.zeroGrad()
      let tape = Tape()
      let t = model.terms(points: x, mask: m, noise: n, alpha: 1, normalizer: 1, on: tape)
      tape.backward(t.loss)
      return ([t.bound[0], t.reconstruction[0], t.contextKL[0], t.latentKL[0]],
              Array(model.store.flatGrads))
    }
    let a = run(real, Tensor([1, 1, 1], shape: [1, 3]), eps)
    let b = run(padded, paddedMask, paddedNoise)
    assertClose(b.terms, a.terms, atol: 1e-4, rtol: 1e-5, "terms with and without padding")
    assertClose(b.grad, a.grad, atol: 1e-5, rtol: 1e-4, "gradient with and without padding")
  }
}
