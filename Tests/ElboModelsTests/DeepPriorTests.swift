import ElboAutograd
import ElboModels
import ElboNN
import ElboTensor
import ElboTestSupport
import Foundation
import XCTest

/// Deep Prior's bound: each term against a hand computation, padding never counted, the
/// gradient against finite differences, and the flow encoders through the flow library's checks.
final class DeepPriorTests: XCTestCase {
  static func model(_ kind: FlowKind? = nil, latent: Int = 2, hidden: Int = 3,
                    seed: UInt64 = 4) -> DeepPrior {
    var c = DeepPrior.Config()
    c.latent = latent; c.hidden = hidden
    if let kind {
      c.flow = FlowChainSpec(kind: kind, length: 2)
      c.flow.iafHidden = 4; c.flow.iafContext = 3
    }
    return DeepPrior(c, seed: seed)
  }

  /// Sets parameter `name` (row-major values; unspecified entries stay as they are).
  func set(_ m: DeepPrior, _ name: String, _ entries: [Int: Float]) {
    let t = m.store.value(m.store.index(of: name)!)
    for (i, v) in entries { t[i] = v }
  }

  /// One task of one point (x, y) with chosen weights: every hidden path is a chain of tanh's
  /// that can be followed by hand.
  func testOnePointTaskTermsByHand() {
    let m = Self.model()  // L = 2, H = 3
    m.store.flatValues.update(repeating: 0)
    // φ (no activation after its last layer): h = tanh(y) in unit 0, pooled over one point;
    // ρ: μ₁ = 0.5·tanh(h) + 0.1, μ₂ = −0.3,
    // log σ²₁ = log 0.25, log σ²₂ = 0.4.
    set(m, "encoder.point.fc1.weight", [1 * 3 + 0: 1])          // [2, H]: row y, unit 0
    set(m, "encoder.point.fc2.weight", [0: 1])
    set(m, "encoder.pool.fc1.weight", [0: 1])
    set(m, "encoder.pool.fc2.weight", [0: 0.5])                 // [H, 2L]: unit 0 → μ₁
    set(m, "encoder.pool.fc2.bias", [0: 0.1, 1: -0.3, 2: Float(log(0.25)), 3: 0.4])
    // predictor: μ = 2·tanh(tanh(z₁)) + 0.2, log σ² = −0.7 + 0.5·tanh(tanh(x)).
    set(m, "predictor.fc1.weight", [1 * 3 + 0: 1, 0 * 3 + 1: 1])  // [1 + L, H]: z₁→0, x→1
    set(m, "predictor.fc2.weight", [0 * 3 + 0: 1, 1 * 3 + 1: 1])
    set(m, "predictor.fc3.weight", [0 * 2 + 0: 2, 1 * 2 + 1: 0.5])
    set(m, "predictor.fc3.bias", [0: 0.2, 1: -0.7])
    let x = 1.3, y = 0.7, eps = [0.4, -1.1]
    let points = Tensor([Float(x), Float(y)], shape: [1, 1, 2])
    let mask = Tensor([1], shape: [1, 1])
    let t = m.terms(points: points, mask: mask, noise: Tensor(eps.map(Float.init), shape: [1, 2]),
                    normalizer: 2, on: Tape())

    let mu = [0.5 * tanh(tanh(y)) + 0.1, -0.3], logVar = [log(0.25), 0.4]
    let z1 = mu[0] + exp(0.5 * logVar[0]) * eps[0]
    let kl = 0.5 * (0..<2).map { mu[$0] * mu[$0] + exp(logVar[$0]) - 1 - logVar[$0] }
      .reduce(0, +)
    let pm = 2 * tanh(tanh(z1)) + 0.2, plv = -0.7 + 0.5 * tanh(tanh(x))
    let logLik = -0.5 * (log(2 * .pi) + plv + (y - pm) * (y - pm) / exp(plv))
    XCTAssertEqual(Double(t.kl[0]), kl, accuracy: 1e-5)
    XCTAssertEqual(Double(t.logLikelihood[0]), logLik, accuracy: 1e-5)
    XCTAssertEqual(Double(t.elbo[0]), logLik - kl, accuracy: 1e-5)
    XCTAssertEqual(Double(t.loss.value[0]), -(logLik - kl) / 2, accuracy: 1e-5)
    XCTAssertEqual(t.logDet[0], 0)
  }

  /// With a flow the KL is the one-sample log q_K(z_K) − log N(z_K; 0, I), where
  /// log q_K = log q₀(z₀) − Σ log|det|: recomputed here from z₀ and the chain's own pieces.
  func testFlowKLIsLogQMinusLogPrior() {
    for kind in [FlowKind.planar, .iaf] {
      let m = Self.model(kind)
      var rng = TestRandom(seed: 9)
      let points = rng.normal([3, 4, 2]), mask = Tensor([Float](repeating: 1, count: 12),
                                                        shape: [3, 4])
      let eps = rng.normal([3, 2])
      let tape = Tape(recording: false)
      let t = m.terms(points: points, mask: mask, noise: eps, normalizer: 1, on: tape)
      let out = m.encode(points: points, mask: mask, on: tape)
      let q0 = m.base(out)
      let z0 = q0.sample(noise: eps)
      let (zK, logDet) = m.flow.forward(z0, context: out)
      for r in 0..<3 {
        var logQ0 = 0.0, logP = 0.0
        for d in 0..<2 {
          let lv = Double(q0.logVariance.value[r * 2 + d])
          logQ0 -= 0.5 * (log(2 * .pi) + lv + Double(eps[r * 2 + d] * eps[r * 2 + d]))
          let z = Double(zK.value[r * 2 + d])
          logP -= 0.5 * (log(2 * .pi) + z * z)
        }
        let want = logQ0 - Double(logDet.value[r]) - logP
        XCTAssertEqual(Double(t.kl[r]), want, accuracy: 1e-4, "\(kind) task \(r)")
        XCTAssertEqual(t.logDet[r], logDet.value[r], accuracy: 1e-5)
      }
      XCTAssertGreaterThan(abs(logDet.value[0]), 1e-3, "\(kind): the flow is not the identity")
    }
  }

  /// A task padded with garbage points (mask 0) gives the same terms and the same gradient as
  /// the task alone; two tasks of unequal sizes in one batch give each its own terms.
  func testPaddingIsNeverCounted() {
    for kind in [nil, FlowKind.planar, .iaf] {
      let m = Self.model(kind, hidden: 5)
      var rng = TestRandom(seed: 3)
      let a = rng.normal([3, 2]), b = rng.normal([5, 2])
      let eps = rng.normal([2, 2])
      func run(_ points: Tensor, _ mask: Tensor, _ noise: Tensor) -> (Tensor, [Float]) {
        let tape = Tape()
        m.store.zeroGrad()
        let t = m.terms(points: points, mask: mask, noise: noise, normalizer: 1, on: tape)
        tape.backward(t.loss)
        return (Tensor(t.elbo.array, shape: t.elbo.shape), Array(m.store.flatGrads))
      }
      // Task a alone, unpadded.
      let (alone, gAlone) = run(a.reshaped([1, 3, 2]), Tensor([1, 1, 1], shape: [1, 3]),
                                Tensor(Array(eps.buffer[0..<2]), shape: [1, 2]))
      // Task a padded to 7 with garbage.
      var padded = Array(a.buffer) + [Float](repeating: 0, count: 8)
      for i in 6..<14 { padded[i] = Float(i) * 37 - 100 }
      let (withGarbage, gGarbage) = run(Tensor(padded, shape: [1, 7, 2]),
                                        Tensor([1, 1, 1, 0, 0, 0, 0], shape: [1, 7]),
                                        Tensor(Array(eps.buffer[0..<2]), shape: [1, 2]))
      XCTAssertEqual(Double(withGarbage[0]), Double(alone[0]), accuracy: 1e-4, "\(String(describing: kind))")
      assertClose(gGarbage, gAlone, atol: 1e-5, rtol: 1e-4, "gradient with padding")
      // Both tasks in one batch: a's terms are unchanged by b's presence.
      let batch = SetBatchOfTwo(a, b)
      let (both, _) = run(batch.points, batch.mask, eps)
      XCTAssertEqual(Double(both[0]), Double(alone[0]), accuracy: 1e-4)
    }
  }

  /// The loss gradient w.r.t. every parameter against central differences.
  func testLossGradientMatchesFiniteDifferences() {
    for kind in [nil, FlowKind.planar, .iaf] {
      let m = Self.model(kind)
      var rng = TestRandom(seed: 5)
      let points = rng.normal([2, 3, 2])
      let mask = Tensor([1, 1, 1, 1, 1, 0], shape: [2, 3])
      let eps = rng.normal([2, 2])
      let tape = Tape()
      m.store.zeroGrad()
      tape.backward(m.terms(points: points, mask: mask, noise: eps, normalizer: 2, on: tape).loss)
      let analytic = m.store.flatGrads.map(Double.init)
      let evalTape = Tape(recording: false)
      let tensors = m.store.specs.indices.map { i in
        (m.store.specs[i].name, m.store.offsets[i]..<(m.store.offsets[i] + m.store.specs[i].count))
      }
      GradientCheck(relativeStep: 2e-3).assertWholeModel(
        "deep prior \(String(describing: kind))", values: m.store.flatValues, analytic: analytic,
        tensors: tensors) {
        evalTape.reset()
        let t = m.terms(points: points, mask: mask, noise: eps, normalizer: 2, on: evalTape)
        return -t.elbo.array.reduce(0.0) { $0 + Double($1) } / 2
      }
    }
  }

  /// The encoders' flows, with the context the set encoder emits, pass the flow library's
  /// exactness checks: log|det| against the autodiff Jacobian and the inverse round trip.
  func testFlowEncodersPassTheFlowChecks() {
    for kind in [FlowKind.planar, .iaf] {
      let m = Self.model(kind, latent: 3)
      var rng = TestRandom(seed: 7)
      let points = rng.normal([4, 5, 2])
      let mask = Tensor([Float](repeating: 1, count: 20), shape: [4, 5])
      let context = m.encode(points: points, mask: mask, on: Tape(recording: false)).value
      let z = rng.normal([4, 3])
      FlowCheck.assertLogDetMatchesJacobian("\(kind) encoder", z) { tape, z in
        m.flow.forward(z, context: tape.constant(context))
      }
      FlowCheck.assertRoundTrip("\(kind) encoder", z, tolerance: 1e-4,
                                forward: { tape, z in
                                  m.flow.forward(z, context: tape.constant(context)).z },
                                inverse: { tape, z in
                                  m.flow.inverse(z, context: tape.constant(context)) })
    }
  }
}

/// Two sets [3, 2] and [5, 2] padded to [2, 5, 2] with a mask (ElboModelsTests does not see
/// ElboData's SetBatch).
struct SetBatchOfTwo {
  let points: Tensor, mask: Tensor
  init(_ a: Tensor, _ b: Tensor) {
    var p = [Float](repeating: 0, count: 20), mk = [Float](repeating: 0, count: 10)
    for i in 0..<6 { p[i] = a[i] }
    for i in 0..<10 { p[10 + i] = b[i] }
    for i in 0..<3 { mk[i] = 1 }
    for i in 0..<5 { mk[5 + i] = 1 }
    points = Tensor(p, shape: [2, 5, 2])
    mask = Tensor(mk, shape: [2, 5])
  }
}
