import ElboAutograd
import ElboNN
import ElboProbability
import ElboTestSupport
import XCTest

/// Inverses of the planar and radial flows (and chains of every kind) round-trip within 1e-5,
/// and planar's û keeps wᵀû ≥ −1 for any raw u.
final class FlowInverseTests: XCTestCase {
  var rng = TestRandom(seed: 20_261_213)
  let dimensions = [2, 5, 16]

  func testPlanarRoundTrips() {
    for l in dimensions {
      let store = ParameterStore()
      let flow = PlanarFlow(store, "p", dimension: l, initBound: 1)
      store.allocate(seed: 1)
      store.value(flow.bIndex).fill(0.3)
      FlowCheck.assertRoundTrip("planar L=\(l)", rng.tensor([16, l], -3, 3),
                                forward: { _, z in flow(z).z },
                                inverse: { _, z in flow.inverse(z, context: nil) })
      let amortised = PlanarFlow(amortisedDimension: l, contextOffset: 1)
      let c = rng.tensor([16, 1 + PlanarFlow.contextWidth(l)], -1.5, 1.5)
      FlowCheck.assertRoundTrip("amortised planar L=\(l)", rng.tensor([16, l], -3, 3),
                                forward: { t, z in amortised(z, context: t.constant(c)).z },
                                inverse: { t, z in amortised.inverse(z, context: t.constant(c)) })
    }
  }

  func testPlanarRoundTripsWhenContracting() {
    // wᵀû → −1 (raw wᵀu ≪ 0): the flow squeezes the line along w, and the root-find must still
    // find a; a is recovered to Float precision and z to 1e-5.
    let l = 4
    let store = ParameterStore()
    let flow = PlanarFlow(store, "p", dimension: l, initBound: 1)
    store.allocate(seed: 2)
    let w = store.value(flow.wIndex).array
    let ww = w.reduce(0) { $0 + $1 * $1 }
    for i in 0..<l { store.value(flow.uIndex)[i] = -1.5 * w[i] / ww }   // wᵀu = −1.5
    FlowCheck.assertRoundTrip("contracting planar", rng.tensor([32, l], -3, 3),
                              forward: { _, z in flow(z).z },
                              inverse: { _, z in flow.inverse(z, context: nil) })
  }

  func testRadialRoundTrips() {
    for l in dimensions {
      for betaHat: Float in [-4, 0.3, 3] {   // contracting (β ≈ −α), mild, expanding
        let store = ParameterStore()
        let flow = RadialFlow(store, "r", dimension: l)
        store.allocate(seed: 3)
        store.value(flow.betaHat).fill(betaHat)
        FlowCheck.assertRoundTrip("radial L=\(l) β̂=\(betaHat)", rng.tensor([16, l], -3, 3),
                                  forward: { _, z in flow(z).z },
                                  inverse: { _, z in flow.inverse(z, context: nil) })
      }
      let amortised = RadialFlow(amortisedDimension: l, contextOffset: 2)
      let c = rng.tensor([16, 2 + RadialFlow.contextWidth(l)], -2, 2)
      FlowCheck.assertRoundTrip("amortised radial L=\(l)", rng.tensor([16, l], -3, 3),
                                forward: { t, z in amortised(z, context: t.constant(c)).z },
                                inverse: { t, z in amortised.inverse(z, context: t.constant(c)) })
    }
  }

  func testAmortisedRadialGradients() {
    // (The global transform's gradients are in FlowTests; here z and the context.)
    for l in dimensions {
      let flow = RadialFlow(amortisedDimension: l, contextOffset: 1)
      FlowGradients.assertInputs("amortised radial L=\(l)",
                                 [rng.tensor([3, l], -2, 2),
                                  rng.tensor([3, 1 + RadialFlow.contextWidth(l)], -1, 1)]) { v in
        flow(v[0], context: v[1])
      }
    }
  }

  func testSolveTanhShiftFindsTheRoot() {
    // x + ρ tanh(κx + c) = target for ρκ across (−1, ∞), including the nearly flat ρκ → −1.
    var maxGap = 0.0
    for rho in [-0.999, -0.5, 0.0, 0.7, 3.0, 40.0] {
      for kappa in [1.0, 0.2, -0.9] where rho * kappa > -1 {
        for target in [-5.0, -0.3, 0.0, 0.01, 2.0, 9.0] {
          let c = 0.4
          let x = solveTanhShift(target: target, rho: rho, kappa: kappa, shift: c)
          maxGap = max(maxGap, Swift.abs(x + rho * Foundation.tanh(kappa * x + c) - target))
        }
      }
    }
    XCTAssertLessThan(maxGap, 1e-12)
  }

  func testEveryChainKindRoundTrips() {
    let l = 5
    for kind in FlowKind.allCases {
      for source in FlowParameterSource.allCases {
        var spec = FlowChainSpec(kind: kind, length: 4, parameters: source)
        spec.iafHidden = 12
        spec.iafContext = 6
        spec.sylvesterReflections = 2
        let store = ParameterStore()
        let chain = spec.makeChain(store: store, name: "f", dimension: l)
        store.allocate(seed: 5)
        let c = rng.tensor([8, max(1, spec.contextWidth(dimension: l))], -1, 1)
        FlowCheck.assertRoundTrip("\(kind) \(source) K=4", rng.tensor([8, l], -2, 2),
                                  forward: { t, z in chain(z, context: t.constant(c)).z },
                                  inverse: { t, z in chain.inverse(z, context: t.constant(c)) })
      }
    }
  }

  // MARK: - Planar's constraint

  func testConstrainedUKeepsTheConditionForAnyRawU() {
    // 3000 draws of (u, w) with entries up to ±1000 and w at scales 1e-2 … 1e2. The flow's
    // determinant uses wᵀû = m(wᵀu), which must be ≥ −1 in Float for every draw; and û itself
    // must satisfy wᵀû = m(wᵀu) (in Double, from the Float û) up to û's own Float rounding,
    // ~ε‖u‖‖w‖ — the best a Float û can do.
    var worstS = Float.infinity, worstExcess = -Double.infinity, violated = 0
    for draw in 0..<3000 {
      let l = [2, 5, 16][draw % 3]
      let uScale = Float([1, 10, 1000][draw / 3 % 3])
      let wScale = Float([1e-2, 1, 1e2][draw / 9 % 3])
      let u = rng.tensor([l], -uScale, uScale), w = rng.tensor([l], -wScale, wScale)
      let rawWu = zip(w.array, u.array).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
      if rawWu < -1 { violated += 1 }
      let tape = Tape(recording: false)
      let (uHat, s) = PlanarFlow.constrained(u: tape.constant(u), w: tape.constant(w))
      worstS = min(worstS, s.scalar)
      let wuHat = zip(w.array, uHat.value.array).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
      let norm = { (t: Tensor) in
        t.array.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
      }
      let bound = 1e-6 * (1 + norm(u) * norm(w) + Swift.abs(rawWu))
      worstExcess = max(worstExcess, Swift.abs(wuHat - Double(s.scalar)) - bound)
    }
    XCTAssertGreaterThan(violated, 800, "the raw draws must often violate wᵀu ≥ −1")
    XCTAssertGreaterThanOrEqual(worstS, -1, "min over draws of the wᵀû the determinant uses")
    XCTAssertLessThanOrEqual(worstExcess, 0, "wᵀû of the Float û vs m(wᵀu), beyond rounding")
  }
}
