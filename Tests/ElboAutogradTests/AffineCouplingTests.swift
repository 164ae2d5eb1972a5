import ElboAutograd
import ElboNN
import ElboProbability
import ElboTestSupport
import Foundation
import XCTest

/// Real NVP's affine coupling against the shared flow harness: log|det J| against the autodiff
/// Jacobian (1e-4, D ∈ {2, 5, 16}, both mask patterns, with and without a context), inverse
/// round trips (1e-5), and finite-difference gradients of z, the context and every parameter of
/// the coupling network and the scale.
final class AffineCouplingTests: XCTestCase {
  var rng = TestRandom(seed: 20_261_211)
  let dimensions = [2, 5, 16]
  let rows = 4

  /// A chain of `steps` couplings at random parameters: the default `nn.Linear` init (the
  /// output layer NOT zeroed, so s and t are far from 0) and σ drawn in [0.5, 2].
  func chain(_ l: Int, steps: Int = 1, pattern: CouplingMask = .alternating, context: Int = 0,
             activation: Activation = .relu, seed: UInt64 = 3)
    -> (ParameterStore, FlowChain, [AffineCoupling]) {
    let store = ParameterStore()
    let (chain, couplings) = makeCouplingChain(store: store, name: "c", dimension: l, steps: steps,
                                               hidden: [8, 6], pattern: pattern,
                                               contextWidth: context, activation: activation)
    store.allocate(seed: seed)
    for c in couplings {
      let sigma = store.value(c.scale)
      for j in 0..<l { sigma[j] = 0.5 + 1.5 * Float(j % 4) / 3 }
    }
    return (store, chain, couplings)
  }

  func testMasksAlternateAndEachStepTransformsAndConditions() {
    for pattern in CouplingMask.allCases {
      for l in [2, 3, 5, 16] {
        let b0 = pattern.mask(dimension: l, step: 0), b1 = pattern.mask(dimension: l, step: 1)
        XCTAssertEqual(pattern.mask(dimension: l, step: 2), b0, "\(pattern) period 2")
        XCTAssertTrue(zip(b0, b1).allSatisfy { $0 + $1 == 1 }, "\(pattern) L=\(l): b1 = 1 − b0")
        XCTAssertTrue(b0.contains(0) && b0.contains(1), "\(pattern) L=\(l): \(b0)")
      }
    }
    XCTAssertEqual(CouplingMask.alternating.mask(dimension: 5, step: 0), [1, 0, 1, 0, 1])
    XCTAssertEqual(CouplingMask.halves.mask(dimension: 5, step: 0), [1, 1, 1, 0, 0])
  }

  func testLogDetMatchesJacobian() {
    for pattern in CouplingMask.allCases {
      for l in dimensions {
        let (_, flow, _) = chain(l, pattern: pattern)
        let z = rng.tensor([rows, l], -2, 2)
        let signs = FlowCheck.assertLogDetMatchesJacobian("coupling \(pattern) L=\(l)", z) {
          _, z in flow(z)
        }
        XCTAssertEqual(signs, [Double](repeating: 1, count: rows), "det J > 0 (exp(s) > 0)")
      }
    }
  }

  func testChainWithContextLogDetMatchesJacobian() {
    for l in dimensions {
      let (_, flow, _) = chain(l, steps: 3, pattern: .halves, context: 3)
      let z = rng.tensor([rows, l], -2, 2), c = rng.tensor([rows, 3], -1, 1)
      FlowCheck.assertLogDetMatchesJacobian("3 couplings with context L=\(l)", z) { tape, z in
        flow(z, context: tape.constant(c))
      }
    }
  }

  func testInverseRoundTrips() {
    for pattern in CouplingMask.allCases {
      for l in dimensions {
        let (_, flow, _) = chain(l, steps: 4, pattern: pattern, context: 2)
        let z = rng.tensor([rows, l], -3, 3), c = rng.tensor([rows, 2], -1, 1)
        FlowCheck.assertRoundTrip(
          "4 couplings \(pattern) L=\(l)", z,
          forward: { tape, z in flow(z, context: tape.constant(c)).z },
          inverse: { tape, z in flow.inverse(z, context: tape.constant(c)) })
      }
    }
  }

  func testZeroedOutputLayerIsTheIdentity() {
    let (_, flow, couplings) = chain(5, steps: 2)
    couplings.forEach { $0.zeroOutputLayer() }
    let z = rng.tensor([rows, 5], -2, 2)
    let tape = Tape(recording: false)
    let (y, logDet) = flow(tape.constant(z))
    XCTAssertEqual(y.value.array, z.array)
    XCTAssertEqual(logDet.value.array, [Float](repeating: 0, count: rows))
  }

  func testCopiedCoordinatesAreUnchanged() {
    // The conditioning part passes through bit for bit, whatever the parameters.
    let l = 5
    let (_, flow, couplings) = chain(l)
    let z = rng.tensor([rows, l], -2, 2)
    let tape = Tape(recording: false)
    let y = flow(tape.constant(z)).z.value
    for r in 0..<rows {
      for j in 0..<l where couplings[0].mask[j] == 1 { XCTAssertEqual(y[r * l + j], z[r * l + j]) }
      XCTAssertNotEqual((0..<l).filter { couplings[0].mask[$0] == 0 }.map { y[r * l + $0] },
                        (0..<l).filter { couplings[0].mask[$0] == 0 }.map { z[r * l + $0] })
    }
  }

  // MARK: - The fused op

  func testFusedForwardEqualsTheComposedOps() {
    for l in dimensions {
      let (_, flow, couplings) = chain(l, pattern: .halves, context: 2)
      let z = rng.tensor([rows, l], -2, 2), c = rng.tensor([rows, 2])
      let tape = Tape(recording: false)
      let (y, logDet) = flow(tape.constant(z), context: tape.constant(c))
      let (s, t) = couplings[0].shiftAndLogScale(tape.constant(z), context: tape.constant(c))
      let composed = tape.constant(z) * s.exp() + t
      assertClose(y.value.array.map(Double.init), composed.value.array.map(Double.init),
                  atol: 1e-6, rtol: 1e-6, "z′ fused vs composed L=\(l)")
      assertClose(logDet.value.array.map(Double.init),
                  s.sum(axis: -1).value.array.map(Double.init), atol: 1e-5, rtol: 1e-6,
                  "logDet fused vs composed L=\(l)")
    }
  }

  func testFusedOpGradients() {
    for l in dimensions {
      let mask = Tensor(CouplingMask.alternating.mask(dimension: l, step: 1), shape: [l])
      let w = rng.tensor([rows, l]), w2 = rng.tensor([rows])
      let inputs = [rng.tensor([rows, l], -2, 2), rng.tensor([rows, 2 * l], -1.5, 1.5),
                    rng.tensor([l], 0.5, 2)]
      assertGradients("affineCoupling z, h, σ L=\(l)", inputs) { tape, v in
        let (y, ld) = affineCoupling(v[0], h: v[1], scale: v[2], mask: mask)
        return (y * tape.constant(w)).sum() + (ld * tape.constant(w2)).sum()
      }
      // Only logDet on the path to the loss: its own backward must carry the gradient.
      assertGradients("affineCoupling logDet alone L=\(l)", Array(inputs[1...])) { tape, v in
        let z = tape.constant(inputs[0])
        return affineCoupling(z, h: v[0], scale: v[1], mask: mask).logDet.sum()
      }
      assertGradients("maskColumns L=\(l)", [inputs[0]]) { tape, v in
        (maskColumns(v[0], mask) * tape.constant(w)).sum()
      }
    }
  }

  // MARK: - Gradients

  /// L = Σ logDet + Σ w⊙z′ (weights fixed) through a chain of two couplings with a context.
  func loss(_ flow: FlowChain, _ z: Variable, _ c: Variable, _ w: Tensor) -> Variable {
    let (y, logDet) = flow(z, context: c)
    return logDet.sum() + (y * z.tape.constant(w)).sum()
  }

  func testGradientsOfZAndContext() {
    // tanh coupling nets: ReLU kinks would spoil central differences.
    for l in dimensions {
      let (_, flow, _) = chain(l, steps: 2, pattern: .alternating, context: 2, activation: .tanh)
      let w = rng.tensor([rows, l])
      assertGradients("coupling z, context L=\(l)",
                      [rng.tensor([rows, l], -2, 2), rng.tensor([rows, 2])]) { _, v in
        self.loss(flow, v[0], v[1], w)
      }
    }
  }

  func testGradientsOfEveryParameter() {
    for l in dimensions {
      let (store, flow, _) = chain(l, steps: 2, pattern: .halves, context: 2, activation: .tanh)
      let z = rng.tensor([rows, l], -2, 2), c = rng.tensor([rows, 2]), w = rng.tensor([rows, l])
      store.zeroGrad()
      let tape = Tape()
      tape.backward(loss(flow, tape.constant(z), tape.constant(c), w))
      let analytic = store.flatGrads.map(Double.init)
      let tensors = store.specs.indices.map { i in
        (store.specs[i].name, store.offsets[i]..<(store.offsets[i] + store.specs[i].count))
      }
      XCTAssertEqual(tensors.count, 2 * (3 * 2 + 1), "3 Linear layers and σ per coupling")
      let evalTape = Tape(recording: false)
      GradientCheck().assertWholeModel("coupling parameters L=\(l)", values: store.flatValues,
                                       analytic: analytic, tensors: tensors) {
        evalTape.reset()
        let (y, logDet) = flow(evalTape.constant(z), context: evalTape.constant(c))
        var s = logDet.value.array.reduce(0.0) { $0 + Double($1) }
        for (a, b) in zip(y.value.array, w.array) { s += Double(a) * Double(b) }
        return s
      }
    }
  }
}
