import ElboAutograd
import ElboTestSupport
import XCTest

final class TapeTests: XCTestCase {
  /// A small graph touching most op kinds (allocations: values and gradients).
  func step(_ tape: Tape, _ x: Variable, _ w: Variable, _ b: Variable) -> Variable {
    let h = linear(x, w, b).tanh()
    let z = concatColumns([h.columns(0..<2), h.exp()])
    return z.reshaped([z.count]).logsumexp(axis: 0).sum() + (h * h).mean()
  }

  func testArenaDoesNotGrowWhenTheSameGraphIsRepeated() {
    var rng = TestRandom(seed: 1)
    let x = rng.tensor([4, 3]), w = rng.tensor([3, 5]), b = rng.tensor([5])
    let grads = [Tensor(zeros: [4, 3]), Tensor(zeros: [3, 5]), Tensor(zeros: [5])]
    let tape = Tape()
    func run() {
      tape.reset()
      let loss = step(tape, tape.parameter(x, grad: grads[0]), tape.parameter(w, grad: grads[1]),
                      tape.parameter(b, grad: grads[2]))
      tape.backward(loss)
    }
    run()
    let warm = tape.arenaSize
    XCTAssertGreaterThan(warm, 0)
    for _ in 0..<5 { run() }
    XCTAssertEqual(tape.arenaSize, warm, "the arena grew although the graph is the same")
  }

  func testArenaReuseGivesTheSameGradientsEveryStep() {
    var rng = TestRandom(seed: 2)
    let x = rng.tensor([4, 3]), w = rng.tensor([3, 5]), b = rng.tensor([5])
    let gw = Tensor(zeros: [3, 5])
    let tape = Tape()
    var first: [Float] = []
    for i in 0..<3 {
      tape.reset()
      gw.fill(0)
      let loss = step(tape, tape.constant(x), tape.parameter(w, grad: gw), tape.constant(b))
      tape.backward(loss)
      if i == 0 { first = gw.array } else { XCTAssertEqual(gw.array, first, "step \(i)") }
    }
  }

  func testGradientsAccumulateWhenAVariableIsUsedTwice() {
    let x = Tensor([1.5, -2, 0.25], shape: [3])
    let g = Tensor(zeros: [3])
    let tape = Tape()
    let v = tape.parameter(x, grad: g)
    tape.backward((v * v).sum())
    XCTAssertEqual(g.array, [3, -4, 0.5])  // d(x²)/dx = 2x, exact in Float
  }

  func testParameterGradientsAccumulateAcrossBackwardCalls() {
    // Gradients accumulate into the parameter's buffer until it is zeroed (ParameterStore).
    let x = Tensor([2], shape: [1]), g = Tensor(zeros: [1])
    let tape = Tape()
    for _ in 0..<2 {
      tape.reset()
      tape.backward(tape.parameter(x, grad: g).square().sum())
    }
    XCTAssertEqual(g[0], 8)
  }

  func testBackwardSeedScalesGradients() {
    let g = Tensor(zeros: [2])
    let tape = Tape()
    let v = tape.parameter(Tensor([1, 2], shape: [2]), grad: g)
    tape.backward((3 * v).sum(), seed: 0.5)
    XCTAssertEqual(g.array, [1.5, 1.5])
  }

  func testNonRecordingTapeMakesNoGradients() {
    let tape = Tape(recording: false)
    let g = Tensor(zeros: [2])
    let v = tape.parameter(Tensor([1, 2], shape: [2]), grad: g)
    XCTAssertFalse(v.requiresGrad)
    let y = linear(v.reshaped([1, 2]), tape.constant(Tensor([1, 1], shape: [2, 1])),
                   tape.constant(Tensor([0], shape: [1]))).exp().sum()
    XCTAssertFalse(y.requiresGrad)
    XCTAssertEqual(y.scalar, Float(3).exponentiated(), accuracy: 1e-4)
    XCTAssertEqual(g.array, [0, 0])
  }

  func testConstantsDoNotRequireGradientsAndOutputsOfParametersDo() {
    let tape = Tape()
    let c = tape.constant(Tensor([1], shape: [1]))
    let p = tape.parameter(Tensor([1], shape: [1]), grad: Tensor(zeros: [1]))
    XCTAssertFalse(c.requiresGrad)
    XCTAssertFalse(c.exp().requiresGrad)
    XCTAssertTrue((c + p).requiresGrad)
  }

  /// The hook behind backward-overlapped all-reduce: every parameter gradient is reported
  /// exactly once, last layer first, and already holds its final value when reported.
  func testGradientFinalReportsEachParameterOnceWithItsFinalValue() {
    var rng = TestRandom(seed: 3)
    let x = rng.tensor([4, 3])
    let params = [rng.tensor([3, 5]), rng.tensor([5]), rng.tensor([5, 2]), rng.tensor([2])]
    let flat = Storage(capacity: 32)  // the four gradients as views of one buffer, like the store
    var offset = 0
    let grads = params.map { p -> Tensor in
      defer { offset += p.count }
      return Tensor(storage: flat, offset: offset, shape: p.shape)
    }
    let tape = Tape()
    let v = zip(params, grads).map { tape.parameter($0, grad: $1) }
    let h = linear(tape.constant(x), v[0], v[1]).tanh()
    // W1 is used a second time, as a new leaf near the loss: its gradient is final only after
    // backward has gone through its first use too.
    let again = tape.parameter(params[0], grad: grads[0])
    let loss = linear(h, v[2], v[3]).square().sum() + again.square().sum()
    var reported: [(offset: Int, value: [Float])] = []
    tape.backward(loss) { g in reported.append((g.offset, g.array)) }
    XCTAssertEqual(reported.map(\.offset), [grads[3].offset, grads[2].offset, grads[1].offset,
                                            grads[0].offset])
    for (r, g) in zip(reported, grads.reversed()) {
      XCTAssertEqual(r.value, g.array, "gradient at offset \(r.offset) changed after it was reported")
    }
    XCTAssertTrue(grads[0].array.contains { $0 != 0 })
  }

  func testBackwardOnAnOutputOfConstantsIsANoOp() {
    let tape = Tape()
    let c = tape.constant(Tensor([1, 2], shape: [2]))
    tape.backward(c.sum())  // must not crash; nothing requires a gradient
    XCTAssertFalse(c.sum().requiresGrad)
  }
}

extension Float {
  fileprivate func exponentiated() -> Float { Float(Foundation.exp(Double(self))) }
}

import Foundation
