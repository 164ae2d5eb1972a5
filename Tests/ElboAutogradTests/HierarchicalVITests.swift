import ElboModels
import ElboTestSupport
import Foundation
import XCTest

/// Hierarchical VI's auxiliary bounds (seed 003, Way 1) on a toy where everything is Gaussian in
/// closed form: q(z) = ∫ N(z; a·ε + b, s²) N(ε; 0, 1) dε = N(b, a² + s²) and p(z) = ∫ N(z; c·ζ,
/// t²) N(ζ; 0, 1) dζ = N(0, c² + t²). With the true reverse conditionals both bounds are exact
/// for every draw; with wrong ones L_H^aux is above E log q and L_CE^aux below E log p, so
/// L_CE − L_H is below the exact E log p − E log q (the ELBO's prior part); the VAE's
/// hierarchical loss passes the whole-model gradient check.
final class HierarchicalVITests: XCTestCase {
  static let a: Float = 1.5, b: Float = 0.5, s: Float = 0.6, c: Float = 1.2, t: Float = 0.8

  /// Gaussian of one dimension per row from per-row mean and variance arrays.
  func normal(_ tape: Tape, _ mean: [Float], _ variance: [Float]) -> DiagonalNormal {
    DiagonalNormal(mean: tape.constant(Tensor(mean, shape: [mean.count, 1])),
                   logVariance: tape.constant(Tensor(variance.map { log($0) },
                                                     shape: [variance.count, 1])))
  }

  /// Per-draw values of L_H and L_CE with the true (exact: true) or wrong reverse models.
  func bounds(exact: Bool, n: Int, seed: UInt64) -> (lh: [Double], lce: [Double]) {
    let (a, b, s, c, t) = (Self.a, Self.b, Self.s, Self.c, Self.t)
    var rng = TestRandom(seed: seed)
    let tape = Tape(recording: false)
    let eps = rng.normal([n, 1]).array, eta = rng.normal([n, 1]).array
    let z = zip(eps, eta).map { a * $0 + b + s * $1 }
    let zv = tape.constant(Tensor(z, shape: [n, 1]))
    let q = normal(tape, eps.map { a * $0 + b }, Array(repeating: s * s, count: n))
    // q(ε|z) = N(a(z − b)/(a² + s²), s²/(a² + s²)); a wrong one: N(0, 1).
    let vq = a * a + s * s
    let sRev = exact ? normal(tape, z.map { a * ($0 - b) / vq }, Array(repeating: s * s / vq, count: n))
                     : normal(tape, Array(repeating: 0, count: n), Array(repeating: 1, count: n))
    let lh = HierarchicalVI.entropyUpperBound(
      z: zv, mixing: tape.constant(Tensor(eps, shape: [n, 1])), conditional: q, reverse: sRev)
    // p(ζ|z) = N(c z/(c² + t²), t²/(c² + t²)); a wrong one: N(0.3 z, 0.5).
    let vp = c * c + t * t
    let rRev = exact ? normal(tape, z.map { c * $0 / vp }, Array(repeating: t * t / vp, count: n))
                     : normal(tape, z.map { 0.3 * $0 }, Array(repeating: 0.5, count: n))
    let lce = HierarchicalVI.priorLowerBound(z: zv, reverse: rRev, noise: rng.normal([n, 1])) { zeta in
      DiagonalNormal(mean: zeta.affine(scale: c),
                     logVariance: tape.constant(Tensor(Array(repeating: log(t * t), count: n),
                                                       shape: [n, 1])))
    }
    return (lh.value.array.map(Double.init), lce.value.array.map(Double.init))
  }

  func testTrueReverseModelsMakeBothBoundsExactPerDraw() {
    let (lh, lce) = bounds(exact: true, n: 200, seed: 1)
    var rng = TestRandom(seed: 1)
    let eps = rng.normal([200, 1]).array, eta = rng.normal([200, 1]).array
    let vq = Double(Self.a * Self.a + Self.s * Self.s), vp = Double(Self.c * Self.c + Self.t * Self.t)
    for i in 0..<200 {
      let z = Double(Self.a * eps[i] + Self.b + Self.s * eta[i])
      let logQ = -0.5 * log(2 * Double.pi * vq) - 0.5 * (z - Double(Self.b)) * (z - Double(Self.b)) / vq
      let logP = -0.5 * log(2 * Double.pi * vp) - 0.5 * z * z / vp
      XCTAssertEqual(lh[i], logQ, accuracy: 1e-4, "L_H draw \(i)")
      XCTAssertEqual(lce[i], logP, accuracy: 1e-4, "L_CE draw \(i)")
    }
  }

  /// With wrong reverse models: E L_H > E log q, E L_CE < E log p, and the prior part of the
  /// bound L_CE − L_H < E log p − E log q exactly computed (means over 20,000 draws, 3 SE).
  func testWrongReverseModelsGiveABoundBelowTheTrueELBO() {
    let n = 20_000
    let (lh, lce) = bounds(exact: false, n: n, seed: 2)
    let vq = Double(Self.a * Self.a + Self.s * Self.s), vp = Double(Self.c * Self.c + Self.t * Self.t)
    let b = Double(Self.b)
    let eLogQ = -0.5 * log(2 * Double.pi * vq) - 0.5
    let eLogP = -0.5 * log(2 * Double.pi * vp) - (vq + b * b) / (2 * vp)
    func meanSE(_ v: [Double]) -> (Double, Double) {
      let m = v.reduce(0, +) / Double(v.count)
      let sd = sqrt(v.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(v.count - 1))
      return (m, sd / sqrt(Double(v.count)))
    }
    let (mh, seh) = meanSE(lh), (mce, sece) = meanSE(lce)
    let (mb, seb) = meanSE(zip(lce, lh).map { $0 - $1 })
    XCTAssertGreaterThan(mh - 3 * seh, eLogQ, "L_H \(mh) ± \(seh) above E log q \(eLogQ)")
    XCTAssertLessThan(mce + 3 * sece, eLogP, "L_CE \(mce) ± \(sece) below E log p \(eLogP)")
    XCTAssertLessThan(mb + 3 * seb, eLogP - eLogQ, "bound \(mb) ± \(seb) below \(eLogP - eLogQ)")
  }

  /// The hierarchical VAE's loss gradient w.r.t. every parameter (s_ξ, and r_ψ with the
  /// semi-implicit prior, included). Step 1e-2: the bound sums six log-densities of size ~5 in
  /// Float, whose rounding (≈ 3e-7 each) over a 2e-3 step reached the atol of the encoder's
  /// smallest gradients (~1e-2); at 1e-2 the rounding term is 5× smaller and the truncation
  /// term still far below the tolerance.
  func testHierarchicalVAELossGradient() {
    for prior in [VAE.PriorFamily.standard, .semiImplicit] {
      var c = VAE.Config()
      c.inputs = 6; c.hidden = 5; c.hiddenLayers = 1; c.latent = 2; c.activation = .tanh
      c.posterior = .hierarchical; c.mixingNoise = 2
      c.prior = prior; c.priorNoise = 2; c.priorHidden = 3; c.priorSamples = 3
      let vae = VAE(c, seed: 13)
      XCTAssertNotNil(vae.reverse)
      if prior == .semiImplicit { XCTAssertNotNil(vae.prior?.reverse) }
      var rng = TestRandom(seed: 3)
      let r = 3
      let x = rng.binary([r, 6]), eta = rng.normal([1, r, 2]), mixing = rng.normal([1, r, 2])
      let priorNoise = vae.hierarchicalPriorNoiseShape(rows: r).map { rng.normal($0) }
      let tape = Tape()
      vae.store.zeroGrad()
      tape.backward(vae.hierarchicalTerms(x: x, noise: eta, mixing: mixing, priorNoise: priorNoise,
                                          normalizer: 3, on: tape).loss)
      let analytic = vae.store.flatGrads.map(Double.init)
      let evalTape = Tape(recording: false)
      let tensors = vae.store.specs.indices.map { i in
        (vae.store.specs[i].name,
         vae.store.offsets[i]..<(vae.store.offsets[i] + vae.store.specs[i].count))
      }
      GradientCheck(relativeStep: 1e-2).assertWholeModel(
        "hierarchical VAE, \(prior) prior", values: vae.store.flatValues, analytic: analytic,
        tensors: tensors) {
        evalTape.reset()
        let bound = vae.hierarchicalTerms(x: x, noise: eta, mixing: mixing, priorNoise: priorNoise,
                                          normalizer: 3, on: evalTape).bound
        return -bound.array.reduce(0.0) { $0 + Double($1) } / 3
      }
    }
  }
}
