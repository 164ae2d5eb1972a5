import Foundation
import ElboAutograd
import ElboNN
import ElboProbability
import ElboTestSupport
import XCTest

/// Inverse autoregressive flow: log|det J| against the autodiff Jacobian (D ∈ {2, 5, 16}, global
/// and amortised, one and two hidden layers, both orderings), the triangular structure of J in
/// the step's ordering, the chain's alternating orderings, the exact inverse, and
/// finite-difference gradients of every MADE weight, the context and z.
final class IAFTests: XCTestCase {
  var rng = TestRandom(seed: 20_261_211)
  let dimensions = [2, 5, 16]
  let rows = 3
  let contextWidth = 4

  /// One IAF step with allocated parameters. Forget bias 0.5 (σ ≈ 0.6) keeps the gate far from
  /// the identity, so the checks see the network's contribution.
  func step(_ l: Int, hidden: [Int] = [12], amortised: Bool, reversed: Bool = false,
            seed: UInt64 = 1) -> (ParameterStore, InverseAutoregressiveFlow) {
    let store = ParameterStore()
    let flow = InverseAutoregressiveFlow(
      store, "iaf", dimension: l, hidden: hidden,
      contextColumns: amortised ? 1..<1 + contextWidth : nil, reversed: reversed,
      maskIndex: Int(seed), forgetBias: 0.5)
    store.allocate(seed: seed)
    return (store, flow)
  }

  func context(_ rows: Int) -> Tensor { rng.tensor([rows, 1 + contextWidth + 2], -1.5, 1.5) }

  // MARK: - log|det J|

  func testLogDetMatchesJacobian() {
    for l in dimensions {
      for amortised in [false, true] {
        for hidden in [[12], [10, 9]] {
          for reversed in [false, true] {
            let (_, flow) = step(l, hidden: hidden, amortised: amortised, reversed: reversed)
            let c = context(rows)
            let z = rng.tensor([rows, l], -2, 2)
            let name = "IAF L=\(l) amortised=\(amortised) hidden=\(hidden) reversed=\(reversed)"
            let signs = FlowCheck.assertLogDetMatchesJacobian(name, z) { tape, z in
              flow(z, context: amortised ? tape.constant(c) : nil)
            }
            XCTAssertEqual(signs, [Double](repeating: 1, count: rows), "\(name): det J = Π σ > 0")
          }
        }
      }
    }
  }

  // MARK: - Autoregressive structure

  /// ∂z′_i/∂z_j = 0 whenever j comes after i in the ordering, = σ_i on the diagonal, and some
  /// entry before i is nonzero (the network is not trivially cut off).
  func assertTriangular(_ name: String, _ flow: InverseAutoregressiveFlow, _ z: Tensor,
                        _ c: Tensor?) {
    let l = flow.dimension
    let jac = FlowCheck.jacobians(z) { tape, z in flow(z, context: c.map { tape.constant($0) }) }
    let tape = Tape(recording: false)
    let sigma = flow.network(tape.constant(z), context: c.map { tape.constant($0) }).s.sigmoid()
      .value.array
    var below = 0.0
    for row in 0..<z.rows {
      for i in 0..<l {
        for j in 0..<l {
          let o = flow.ordering
          if j == i {
            XCTAssertEqual(jac[row][i][i], Double(sigma[row * l + i]), accuracy: 1e-6,
                           "\(name): ∂z′_\(i)/∂z_\(i) = σ_\(i)")
          } else if o[j] > o[i] {
            XCTAssertEqual(jac[row][i][j], 0, "\(name): ∂z′_\(i)/∂z_\(j) must be 0 "
                             + "(m⁰ \(o[j]) > \(o[i]))")
          } else {
            below = max(below, Swift.abs(jac[row][i][j]))
          }
        }
      }
    }
    XCTAssertGreaterThan(below, 1e-4, "\(name): no z′_i depends on an earlier z_j")
  }

  func testJacobianIsTriangularInTheOrdering() {
    for l in dimensions {
      for reversed in [false, true] {
        for amortised in [false, true] {
          let (_, flow) = step(l, hidden: [16, 16], amortised: amortised, reversed: reversed)
          XCTAssertEqual(flow.ordering, reversed ? Array((1...l).reversed()) : Array(1...l))
          assertTriangular("IAF L=\(l) reversed=\(reversed) amortised=\(amortised)", flow,
                           rng.tensor([rows, l], -2, 2), amortised ? context(rows) : nil)
        }
      }
    }
  }

  func testChainAlternatesTheOrdering() {
    let l = 5
    var spec = FlowChainSpec(kind: .iaf, length: 4, parameters: .amortised)
    spec.iafHidden = 16
    spec.iafContext = contextWidth
    let store = ParameterStore()
    let chain = spec.makeChain(store: store, name: "q", dimension: l, contextOffset: 1)
    store.allocate(seed: 3)
    let c = context(rows)
    for (k, s) in chain.steps.enumerated() {
      guard let flow = s as? InverseAutoregressiveFlow else { return XCTFail("step \(k)") }
      XCTAssertEqual(flow.ordering, k % 2 == 0 ? Array(1...l) : Array((1...l).reversed()),
                     "step \(k)")
      assertTriangular("chain step \(k)", flow, rng.tensor([rows, l], -2, 2), c)
    }
    // The composition of opposite orderings is no longer triangular in either: log|det| still
    // matches the Jacobian.
    FlowCheck.assertLogDetMatchesJacobian("IAF chain K=4", rng.tensor([rows, l], -2, 2)) {
      tape, z in chain(z, context: tape.constant(c))
    }
  }

  func testNearIdentityAtTheDefaultForgetBias() {
    // σ = sigmoid(s + 1) with small s at initialisation: the step moves z by (1 − σ)(m − z).
    let l = 6
    let store = ParameterStore()
    let flow = InverseAutoregressiveFlow(store, "iaf", dimension: l, hidden: [32])
    store.allocate(seed: 9)
    let tape = Tape(recording: false)
    let z = rng.tensor([rows, l], -1, 1)
    let sigma = flow.network(tape.constant(z), context: nil).s.sigmoid().value.array
    XCTAssertGreaterThan(sigma.reduce(0, +) / Float(sigma.count), 0.6, "mean σ at init")
  }

  func testZeroOutputInitIsTheGateTimesZ() {
    // outputInitScale 0: the output layer starts at W = 0, b = 0, so m = 0 and s = forget bias
    // for every z: z′ = sigmoid(b)·z exactly and log|det| = L·log sigmoid(b).
    let l = 5
    for bias: Float in [1, 3] {
      let store = ParameterStore()
      let flow = InverseAutoregressiveFlow(store, "iaf", dimension: l, hidden: [16, 16],
                                           contextColumns: 0..<contextWidth, forgetBias: bias,
                                           outputInitScale: 0)
      store.allocate(seed: 11)
      let tape = Tape(recording: false)
      let z = rng.tensor([rows, l], -2, 2)
      let (out, logDet) = flow(tape.constant(z), context: tape.constant(context(rows)))
      let gate = 1 / (1 + Foundation.exp(-Double(bias)))
      for i in 0..<z.count {
        XCTAssertEqual(Double(out.value[i]), gate * Double(z[i]), accuracy: 1e-6, "b=\(bias) z′_\(i)")
      }
      for row in 0..<rows {
        XCTAssertEqual(Double(logDet.value[row]), Double(l) * Foundation.log(gate), accuracy: 1e-5)
      }
    }
  }

  func testContextWithoutWeightsIsAddedAsItIs() {
    // contextWeight false: h¹ = act(z·(W¹ ⊙ M¹) + b¹ + c) — the same step as with V = I.
    let l = 5, h = 8
    for reversed in [false, true] {
      let plain = ParameterStore(), weighted = ParameterStore()
      let direct = InverseAutoregressiveFlow(plain, "iaf", dimension: l, hidden: [h],
                                             contextColumns: 1..<1 + h, reversed: reversed,
                                             contextWeight: false)
      let viaV = InverseAutoregressiveFlow(weighted, "iaf", dimension: l, hidden: [h],
                                           contextColumns: 1..<1 + h, reversed: reversed)
      plain.allocate(seed: 5)
      weighted.allocate(seed: 5)
      XCTAssertEqual(plain.count + h * h, weighted.count, "no V [C, H] without context weights")
      // Same weights, V = I: the two steps are the same function.
      for (name, index) in [("iaf.hidden1.weight", direct.hiddenLayers[0].weight),
                            ("iaf.hidden1.bias", direct.hiddenLayers[0].bias!),
                            ("iaf.output.weight", direct.outputLayer.weight),
                            ("iaf.output.bias", direct.outputLayer.bias!)] {
        let target = weighted.specs.firstIndex { $0.name == name }!
        let from = plain.value(index), to = weighted.value(target)
        for i in 0..<from.count { to[i] = from[i] }
      }
      let v = weighted.value(viaV.hiddenLayers[0].context!)
      for i in 0..<h { for j in 0..<h { v[i * h + j] = i == j ? 1 : 0 } }
      let tape = Tape(recording: false)
      let z = rng.tensor([rows, l], -2, 2)
      let c = rng.tensor([rows, 1 + h], -1.5, 1.5)
      let a = direct(tape.constant(z), context: tape.constant(c))
      let b = viaV(tape.constant(z), context: tape.constant(c))
      for i in 0..<z.count { XCTAssertEqual(a.z.value[i], b.z.value[i], accuracy: 1e-5) }
      for r in 0..<rows { XCTAssertEqual(a.logDet.value[r], b.logDet.value[r], accuracy: 1e-5) }
      FlowCheck.assertLogDetMatchesJacobian("IAF context without weights", z) { tape, z in
        direct(z, context: tape.constant(c))
      }
      FlowGradients.assertInputs("IAF context without weights: z, context", [z, c]) { v in
        direct(v[0], context: v[1])
      }
    }
  }

  func testSpecOptionsDecodeAndValidate() throws {
    // A config written before these options existed decodes with the defaults.
    let old = #"{"kind":"iaf","length":2,"iafHidden":320,"iafContext":320,"iafForgetBias":1}"#
    let spec = try JSONDecoder().decode(FlowChainSpec.self, from: Data(old.utf8))
    XCTAssertEqual(spec.iafOutputInitScale, 1)
    XCTAssertTrue(spec.iafContextWeight)
    var bad = FlowChainSpec(kind: .iaf, length: 2)
    bad.iafContextWeight = false
    bad.iafContext = 100
    XCTAssertThrowsError(try bad.validate()) {
      XCTAssertTrue("\($0)".contains("iafContext must equal iafHidden"), "\($0)")
    }
    bad.iafContext = bad.iafHidden
    XCTAssertNoThrow(try bad.validate())
    bad.iafOutputInitScale = -1
    XCTAssertThrowsError(try bad.validate())
  }

  // MARK: - Inverse

  func testInverseRoundTrips() {
    for l in dimensions {
      for amortised in [false, true] {
        let (_, flow) = step(l, hidden: [12, 12], amortised: amortised)
        let c = context(8)
        FlowCheck.assertRoundTrip("IAF L=\(l) amortised=\(amortised)", rng.tensor([8, l], -2, 2),
                                  forward: { t, z in flow(z, context: t.constant(c)).z },
                                  inverse: { t, z in flow.inverse(z, context: t.constant(c)) })
      }
    }
  }

  func testChainInverseRoundTrips() {
    for l in dimensions {
      var spec = FlowChainSpec(kind: .iaf, length: 3, parameters: .amortised)
      spec.iafHidden = 12
      spec.iafContext = contextWidth
      spec.iafHiddenLayers = 2
      let store = ParameterStore()
      let chain = spec.makeChain(store: store, name: "q", dimension: l, contextOffset: 1)
      store.allocate(seed: 4)
      let c = context(8)
      FlowCheck.assertRoundTrip("IAF chain L=\(l)", rng.tensor([8, l], -2, 2),
                                forward: { t, z in chain(z, context: t.constant(c)).z },
                                inverse: { t, z in chain.inverse(z, context: t.constant(c)) })
    }
  }

  // MARK: - Gradients

  func testGradientsOfEveryWeight() {
    for l in dimensions {
      for amortised in [false, true] {
        let (store, flow) = step(l, hidden: [6, 5], amortised: amortised)
        let z = rng.tensor([rows, l], -2, 2), c = context(rows)
        FlowGradients.assertStore("IAF L=\(l) amortised=\(amortised)", store) { tape in
          flow(tape.constant(z), context: amortised ? tape.constant(c) : nil)
        }
      }
    }
  }

  func testGradientsOfZAndContext() {
    for l in dimensions {
      let (_, flow) = step(l, hidden: [7], amortised: true)
      FlowGradients.assertInputs("IAF L=\(l) z, context",
                                 [rng.tensor([rows, l], -2, 2), context(rows)]) { v in
        flow(v[0], context: v[1])
      }
    }
  }
}
