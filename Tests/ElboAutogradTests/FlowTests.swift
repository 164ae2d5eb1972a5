import ElboAutograd
import ElboNN
import ElboProbability
import ElboTestSupport
import Foundation
import XCTest

/// Flow checks (Pyro's pattern: one shared harness for every flow, `FlowCheck` in
/// ElboTestSupport): log|det J| against the autodiff Jacobian's LU log-determinant within 1e-4 at
/// D ∈ {2, 5, 16}; gradients by the shared `GradientCheck` on L = Σ logDet + Σ z′.
final class FlowTests: XCTestCase {
  var rng = TestRandom(seed: 20_261_210)
  let dimensions = [2, 5, 16]
  let rows = 4

  typealias FlowFunction = FlowCheck.Function

  @discardableResult
  func assertLogDetMatchesJacobian(_ name: String, _ z: Tensor, _ f: FlowFunction,
                                   file: StaticString = #filePath, line: UInt = #line)
    -> [Double] {
    FlowCheck.assertLogDetMatchesJacobian(name, z, file: file, line: line, f)
  }

  /// Finite-difference gradients of Σ logDet + Σ z′ w.r.t. every input (z first).
  func assertFlowGradients(_ name: String, _ inputs: [Tensor],
                           file: StaticString = #filePath, line: UInt = #line,
                           _ f: @escaping ([Variable]) -> (z: Variable, logDet: Variable)) {
    assertGradients(name, inputs, file: file, line: line) { _, v in
      let (y, logDet) = f(v)
      return logDet.sum() + y.sum()
    }
  }

  // MARK: - Fixtures

  /// A store holding the given flows' parameters, allocated.
  func planar(_ l: Int, seed: UInt64 = 1) -> (ParameterStore, PlanarFlow) {
    let store = ParameterStore()
    let flow = PlanarFlow(store, "planar", dimension: l, initBound: 1)
    store.allocate(seed: seed)
    store.value(flow.bIndex).fill(0.3)
    return (store, flow)
  }

  func radial(_ l: Int, seed: UInt64 = 2) -> (ParameterStore, RadialFlow) {
    let store = ParameterStore()
    let flow = RadialFlow(store, "radial", dimension: l)
    store.allocate(seed: seed)
    return (store, flow)
  }

  // MARK: - (a) log|det J| against a numerical Jacobian

  func testPlanarGlobalLogDetMatchesJacobian() {
    for l in dimensions {
      let (_, flow) = planar(l)
      let z = rng.tensor([rows, l], -2, 2)
      assertLogDetMatchesJacobian("planar L=\(l)", z) { _, z in flow(z) }
    }
  }

  func testPlanarAmortisedLogDetMatchesJacobian() {
    for l in dimensions {
      let flow = PlanarFlow(amortisedDimension: l, contextOffset: 1)
      let context = rng.tensor([rows, 1 + PlanarFlow.contextWidth(l) + 2], -1.5, 1.5)
      let z = rng.tensor([rows, l], -2, 2)
      assertLogDetMatchesJacobian("amortised planar L=\(l)", z) { tape, z in
        flow(z, context: tape.constant(context))
      }
    }
  }

  func testRadialLogDetMatchesJacobian() {
    for l in dimensions {
      let (_, flow) = radial(l)
      let z = rng.tensor([rows, l], -2, 2)
      assertLogDetMatchesJacobian("radial L=\(l)", z) { _, z in flow(z) }
    }
  }

  func testRadialAmortisedLogDetMatchesJacobian() {
    for l in dimensions {
      let flow = RadialFlow(amortisedDimension: l, contextOffset: 2)
      let context = rng.tensor([rows, 2 + RadialFlow.contextWidth(l) + 1], -1.5, 1.5)
      let z = rng.tensor([rows, l], -2, 2)
      assertLogDetMatchesJacobian("amortised radial L=\(l)", z) { tape, z in
        flow(z, context: tape.constant(context))
      }
    }
  }

  func testRadialWithNegativeBetaLogDetMatchesJacobian() {
    // β̂ ≪ 0 gives β ≈ −α, the contracting edge of the invertible range.
    for l in dimensions {
      let (store, flow) = radial(l)
      store.value(flow.betaHat).fill(-4)
      let z = rng.tensor([rows, l], -2, 2)
      let signs = assertLogDetMatchesJacobian("radial β≈−α L=\(l)", z) { _, z in flow(z) }
      XCTAssertEqual(signs, [Double](repeating: 1, count: rows), "radial L=\(l): det > 0")
    }
  }

  func testChainOfThreeLogDetMatchesJacobian() {
    for l in dimensions {
      let store = ParameterStore()
      let p = PlanarFlow(store, "p0", dimension: l, initBound: 1)
      let r = RadialFlow(store, "r1", dimension: l)
      store.allocate(seed: 7)
      let chain = FlowChain([p, r, PlanarFlow(amortisedDimension: l)])
      let context = rng.tensor([rows, PlanarFlow.contextWidth(l)], -1.5, 1.5)
      let z = rng.tensor([rows, l], -2, 2)
      assertLogDetMatchesJacobian("chain of 3 L=\(l)", z) { tape, z in
        chain(z, context: tape.constant(context))
      }
    }
  }

  func testEmptyChainIsTheIdentity() {
    let tape = Tape(recording: false)
    let z = tape.constant(rng.tensor([rows, 3]))
    let (y, logDet) = FlowChain([])(z)
    XCTAssertEqual(y.value.array, z.value.array)
    XCTAssertEqual(logDet.value.array, [Float](repeating: 0, count: rows))
    XCTAssertNotNil(FlowChain([]).inverse(z, context: nil))
    // One step without an inverse makes the chain's inverse nil.
    let opaque = ClosureFlow { z, _ in (z, z.tape.constant(Tensor(zeros: [z.value.rows]))) }
    XCTAssertNil(FlowChain([planar(3).1, opaque]).inverse(z, context: nil))
    XCTAssertNotNil(FlowChain([planar(3).1]).inverse(z, context: nil))
  }

  // MARK: - (b) gradients w.r.t. z and every parameter

  func testPlanarGlobalGradients() {
    for l in dimensions {
      let inputs = [rng.tensor([rows, l], -2, 2), rng.tensor([l]), rng.tensor([l]),
                    rng.tensor([1])]
      assertFlowGradients("planar L=\(l)", inputs) { v in
        PlanarFlow.transform(v[0], u: v[1], w: v[2], b: v[3])
      }
    }
  }

  func testPlanarGlobalGradientsReachTheStore() {
    // The store-backed flow puts its gradients in the store's flat buffer, and they equal the
    // gradients of the same transform taken with plain leaves.
    let l = 3
    let (store, flow) = planar(l)
    let z = rng.tensor([rows, l], -2, 2)
    store.zeroGrad()
    let tape = Tape()
    let (y, logDet) = flow(tape.constant(z))
    tape.backward(logDet.sum() + y.sum())
    let reference = Tape()
    let leaves = [flow.uIndex, flow.wIndex, flow.bIndex].map { i -> (Variable, Tensor) in
      let g = Tensor(zeros: store.value(i).shape)
      return (reference.parameter(Tensor(store.value(i).array, shape: g.shape), grad: g), g)
    }
    let (y2, ld2) = PlanarFlow.transform(reference.constant(z), u: leaves[0].0, w: leaves[1].0,
                                         b: leaves[2].0)
    reference.backward(ld2.sum() + y2.sum())
    assertClose(Array(store.flatGrads), leaves.flatMap { $0.1.array }, atol: 1e-6,
                "store gradients")
    XCTAssertGreaterThan(store.flatGrads.map(Swift.abs).max() ?? 0, 0)
  }

  func testPlanarAmortisedGradients() {
    for l in dimensions {
      let inputs = [rng.tensor([rows, l], -2, 2),
                    rng.tensor([rows, PlanarFlow.contextWidth(l)], -1.5, 1.5)]
      let flow = PlanarFlow(amortisedDimension: l)
      assertFlowGradients("amortised planar L=\(l)", inputs) { v in flow(v[0], context: v[1]) }
    }
  }

  func testRadialGradients() {
    for l in dimensions {
      let inputs = [rng.tensor([rows, l], -2, 2), rng.tensor([l], -0.5, 0.5), rng.tensor([1]),
                    rng.tensor([1])]
      assertFlowGradients("radial L=\(l)", inputs) { v in
        RadialFlow.transform(v[0], center: v[1], alphaHat: v[2], betaHat: v[3])
      }
    }
  }

  func testChainOfThreeGradients() {
    // planar (global) → radial → planar (amortised), with every parameter a checked input.
    for l in dimensions {
      let inputs = [rng.tensor([rows, l], -2, 2),
                    rng.tensor([l]), rng.tensor([l]), rng.tensor([1]),            // planar
                    rng.tensor([l], -0.5, 0.5), rng.tensor([1]), rng.tensor([1]), // radial
                    rng.tensor([rows, PlanarFlow.contextWidth(l)], -1.5, 1.5)]    // context
      assertFlowGradients("chain of 3 L=\(l)", inputs) { v in
        let chain = FlowChain([
          ClosureFlow { z, _ in PlanarFlow.transform(z, u: v[1], w: v[2], b: v[3]) },
          ClosureFlow { z, _ in
            RadialFlow.transform(z, center: v[4], alphaHat: v[5], betaHat: v[6])
          },
          PlanarFlow(amortisedDimension: l),
        ])
        return chain(v[0], context: v[7])
      }
    }
  }

  // MARK: - (c) planar stays invertible for any raw u

  func testPlanarStaysInvertibleWhenRawParametersViolateTheCondition() {
    for l in dimensions {
      let (store, flow) = planar(l, seed: 11)
      let w = store.value(flow.wIndex).array
      let ww = w.reduce(0) { $0 + $1 * $1 }
      // u = −3w/‖w‖² + noise: wᵀu ≈ −3, far below −1.
      let u = store.value(flow.uIndex)
      for i in 0..<l { u[i] = -3 * w[i] / ww + 0.1 * Float(i) }
      let wu = zip(w, u.array).reduce(0) { $0 + $1.0 * $1.1 }
      XCTAssertLessThan(wu, -1, "L=\(l): the raw u must violate wᵀu ≥ −1 for this test")

      let tape = Tape(recording: false)
      let uHat = PlanarFlow.constrainedU(u: tape.constant(u),
                                         w: tape.constant(store.value(flow.wIndex)))
      let wuHat = zip(w, uHat.value.array).reduce(0) { $0 + $1.0 * $1.1 }
      XCTAssertGreaterThanOrEqual(wuHat, -1, "L=\(l): wᵀû")

      // Points spread along w, where h′ = 1 − tanh² sweeps (0, 1]: det = 1 + h′wᵀû stays > 0.
      let z = rng.tensor([64, l], -4, 4)
      let signs = assertLogDetMatchesJacobian("violating planar L=\(l)", z) { _, z in flow(z) }
      XCTAssertEqual(signs, [Double](repeating: 1, count: 64), "L=\(l): det J changed sign")
    }
  }

  func testAmortisedPlanarStaysInvertibleRowByRow() {
    let l = 3
    let context = rng.tensor([32, PlanarFlow.contextWidth(l)], -1, 1)
    for r in 0..<32 {  // u = −(2 + r/8)·w/‖w‖² per row
      let w = (0..<l).map { context[r * (2 * l + 1) + l + $0] }
      let ww = w.reduce(0) { $0 + $1 * $1 }
      for i in 0..<l { context[r * (2 * l + 1) + i] = -(2 + Float(r) / 8) * w[i] / ww }
    }
    let flow = PlanarFlow(amortisedDimension: l)
    let z = rng.tensor([32, l], -3, 3)
    let signs = assertLogDetMatchesJacobian("violating amortised planar", z) { tape, z in
      flow(z, context: tape.constant(context))
    }
    XCTAssertEqual(signs, [Double](repeating: 1, count: 32), "det J changed sign")
  }

  // MARK: - (d) FlowDistribution

  func testFlowDistributionLogProbIsBaseMinusLogDets() {
    let l = 3
    let store = ParameterStore()
    let p = PlanarFlow(store, "p", dimension: l, initBound: 1)
    let r = RadialFlow(store, "r", dimension: l)
    store.allocate(seed: 5)
    let chain = FlowChain([p, r])
    let tape = Tape()
    let base = DiagonalNormal(mean: tape.constant(rng.tensor([rows, l])),
                              logVariance: tape.constant(rng.tensor([rows, l], -1, 0.5)))
    let noise = rng.normal([rows, l])
    let (zK, logProb) = FlowDistribution(base: base, chain: chain).sample(noise: noise)

    let z0 = base.sample(noise: noise)
    let (z1, ld1) = p(z0)
    let (z2, ld2) = r(z1)
    assertClose(zK.value.array, z2.value.array, atol: 1e-6, "z_K = f(z₀)")
    let expected = (base.logProb(z0) - ld1 - ld2).value.array
    assertClose(logProb.value.array, expected, atol: 1e-5, "log q_K = log q₀ − Σ logDet")

    // Reparameterised: the sample and its density carry gradients to the flows' parameters.
    store.zeroGrad()
    tape.backward(logProb.sum() + zK.sum())
    XCTAssertGreaterThan(store.flatGrads.map(Swift.abs).min() ?? 0, 0)
  }

  func testFlowDistributionWithAnIdentityPlanarIsTheBase() {
    // Under the reparameterisation û = 0 needs m(wᵀu) = 0, i.e. wᵀu = log(e − 1) with u ∥ w
    // (u = 0 gives û = (log 2 − 1)·w/‖w‖², not the identity). Then f(z) = z, logDet = 0.
    let l = 4
    let (store, flow) = planar(l, seed: 3)
    let w = store.value(flow.wIndex).array
    let ww = w.reduce(0) { $0 + $1 * $1 }
    let x = Float(Foundation.log(M_E - 1))
    for i in 0..<l { store.value(flow.uIndex)[i] = x * w[i] / ww }

    let tape = Tape(recording: false)
    let base = DiagonalNormal(mean: tape.constant(rng.tensor([rows, l])),
                              logVariance: tape.constant(rng.tensor([rows, l], -1, 0.5)))
    let noise = rng.normal([rows, l])
    let z0 = base.sample(noise: noise)
    let (z, logProb) = FlowDistribution(base: base, chain: FlowChain([flow]))
      .sample(noise: noise)
    assertClose(z.value.array, z0.value.array, atol: 1e-6, "identity flow: z_K = z₀")
    assertClose(logProb.value.array, base.logProb(z0).value.array, atol: 1e-5,
                "identity flow: log q_K = log q₀")

    let (z2, logProb2) = FlowDistribution(base: base, chain: FlowChain([])).sample(noise: noise)
    XCTAssertEqual(z2.value.array, z0.value.array)
    XCTAssertEqual(logProb2.value.array, base.logProb(z0).value.array)
  }
}

/// A flow made of a function (for checking the chain with leaves as parameters).
private struct ClosureFlow: Flow {
  let body: (Variable, Variable?) -> (z: Variable, logDet: Variable)
  init(_ body: @escaping (Variable, Variable?) -> (z: Variable, logDet: Variable)) {
    self.body = body
  }
  func forward(_ z: Variable, context: Variable?) -> (z: Variable, logDet: Variable) {
    body(z, context)
  }
}

/// `FlowChainSpec`: the context width it announces is exactly what its chain reads.
final class FlowFamilyTests: XCTestCase {
  func testAmortisedChainReadsExactlyItsContextWidth() {
    var rng = TestRandom(seed: 31)
    for kind in FlowKind.allCases {
      var spec = FlowChainSpec(kind: kind, length: 3, parameters: .amortised)
      spec.iafHidden = 8
      spec.iafContext = 5
      spec.sylvesterReflections = 2
      let l = 4, width = spec.contextWidth(dimension: l)
      let store = ParameterStore()
      let chain = spec.makeChain(store: store, name: "f", dimension: l, contextOffset: 1)
      store.allocate(seed: 2)
      let context = rng.tensor([2, 1 + width + 1], -1, 1)
      let z = rng.tensor([2, l], -1, 1)
      // Every column of the context's range moves the output; the columns around it do not.
      let tape = Tape()
      let g = Tensor(zeros: context.shape)
      let (y, ld) = chain(tape.constant(z), context: tape.parameter(context, grad: g))
      tape.backward(y.sum() + ld.sum())
      let used = (0..<(2 + width)).map { c in (0..<2).contains { g[$0 * (2 + width) + c] != 0 } }
      var expected = Array(repeating: true, count: width)
      switch kind {
      case .iaf:
        XCTAssertEqual(width, spec.iafContext, "IAF reads the encoder's h, whatever K is")
      case .sylvesterH, .sylvesterT:
        // Documented: F's diagonal is unused (the diagonals of R, R̃ have their own columns).
        let step = SylvesterFlow.contextWidth(
          dimension: l, columns: l,
          orthogonal: kind == .sylvesterH ? .householder(reflections: 2) : .identity)
        XCTAssertEqual(width, 3 * step)
        for k in 0..<3 { for i in 0..<l { expected[k * step + i * l + i] = false } }
      case .planar, .radial: break
      }
      XCTAssertEqual(used, [false] + expected + [false], "\(kind)")
    }
  }

  func testEveryKindAnnouncesItsWidth() {
    let l = 6
    var spec = FlowChainSpec(kind: .planar, length: 2)
    XCTAssertEqual(spec.contextWidth(dimension: l), 2 * (2 * l + 1))
    spec.kind = .radial
    XCTAssertEqual(spec.contextWidth(dimension: l), 2 * (l + 2))
    spec.kind = .iaf
    XCTAssertEqual(spec.contextWidth(dimension: l), spec.iafContext)
    spec.kind = .sylvesterH
    spec.sylvesterColumns = 4
    XCTAssertEqual(spec.contextWidth(dimension: l), 2 * (16 + 12 + spec.sylvesterReflections * l))
    spec.kind = .sylvesterT
    spec.sylvesterColumns = 0
    XCTAssertEqual(spec.contextWidth(dimension: l), 2 * (36 + 18))
    spec.parameters = .global
    XCTAssertEqual(spec.contextWidth(dimension: l), 0)
  }

  func testSpecsWrittenBeforeTheNewFieldsStillDecode() throws {
    let old = #"{"kind":"sylvester-h","length":2,"parameters":"global","iafHidden":64,"#
      + #""iafContext":32,"sylvesterColumns":3}"#
    let spec = try JSONDecoder().decode(FlowChainSpec.self, from: Data(old.utf8))
    XCTAssertEqual(spec.kind, .sylvesterH)
    XCTAssertEqual(spec.iafHidden, 64)
    XCTAssertEqual(spec.sylvesterColumns, 3)
    XCTAssertEqual(spec.sylvesterReflections, FlowChainSpec().sylvesterReflections)
    XCTAssertEqual(spec.iafHiddenLayers, 1)
    XCTAssertEqual(spec.iafActivation, .elu)
    let back = try JSONDecoder().decode(FlowChainSpec.self,
                                        from: try JSONEncoder().encode(spec))
    XCTAssertEqual(back, spec)
  }

  func testValidateNamesTheBadField() {
    var spec = FlowChainSpec(kind: .sylvesterT, length: 2)
    spec.sylvesterColumns = 3
    XCTAssertThrowsError(try spec.validate(dimension: 5)) { error in
      XCTAssertTrue("\(error)".contains("sylvesterColumns"), "\(error)")
    }
    XCTAssertNoThrow(try spec.validate(dimension: 3))
    spec.kind = .iaf
    XCTAssertThrowsError(try spec.validate(dimension: 1))
    spec.iafHiddenLayers = 3
    XCTAssertThrowsError(try spec.validate())
  }

  func testGlobalChainsOfEveryKindDeclareTheirParameters() {
    let l = 3
    for kind in FlowKind.allCases {
      var spec = FlowChainSpec(kind: kind, length: 2, parameters: .global)
      spec.iafHidden = 4
      spec.sylvesterReflections = 2
      let store = ParameterStore()
      let chain = spec.makeChain(store: store, name: "g", dimension: l)
      store.allocate(seed: 1)
      XCTAssertEqual(spec.contextWidth(dimension: l), 0)
      XCTAssertEqual(Set(store.specs.map { $0.name.split(separator: ".")[1] }), ["0", "1"],
                     "\(kind): parameters of both steps")
      let tape = Tape(recording: false)
      let (y, ld) = chain(tape.constant(Tensor(zeros: [2, l])))
      XCTAssertEqual(y.shape, [2, l])
      XCTAssertTrue(ld.value.array.allSatisfy(\.isFinite), "\(kind)")
    }
  }

  func testGlobalChainDeclaresParametersAndReadsNoContext() {
    let store = ParameterStore()
    let spec = FlowChainSpec(kind: .planar, length: 2, parameters: .global)
    XCTAssertEqual(spec.contextWidth(dimension: 3), 0)
    let chain = spec.makeChain(store: store, name: "flow", dimension: 3)
    store.allocate(seed: 1)
    XCTAssertEqual(chain.steps.count, 2)
    XCTAssertEqual(store.specs.map(\.name), ["flow.0.u", "flow.0.w", "flow.0.b", "flow.1.u", "flow.1.w",
                                 "flow.1.b"])
    XCTAssertThrowsError(try FlowChainSpec(kind: .planar, length: -1).validate())
  }
}
