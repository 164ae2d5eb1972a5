import ElboNN
import ElboTestSupport
import XCTest

/// MaskedLinear: y = x·(W ⊙ M) + b (+ c·V). Gradients of every input against finite differences
/// (shared harness), the forward against a Double reference, exact zeros in the weight gradient
/// where the mask is 0, and the layer's store, mask replacement and context hook.
final class MaskedLinearTests: XCTestCase {
  var rng = TestRandom(seed: 2015_0712)

  /// A 0/1 mask with about half its entries set, and at least one of each.
  func randomMask(_ rows: Int, _ cols: Int) -> Tensor {
    var m = rng.binary([rows, cols])
    while !m.array.contains(0) || !m.array.contains(1) { m = rng.binary([rows, cols]) }
    return m
  }

  func testMaskedLinearGradientsOfXWeightBiasAndContext() {
    let r = 5, nIn = 4, nOut = 3, nCtx = 2
    let mask = randomMask(nIn, nOut)
    let inputs = [rng.tensor([r, nIn]), rng.tensor([nIn, nOut]), rng.tensor([nOut]),
                  rng.tensor([r, nCtx]), rng.tensor([nCtx, nOut])]
    assertGradients("maskedLinear x, W, b, c, V", inputs) { _, v in
      maskedLinear(v[0], v[1], mask: mask, bias: v[2], context: (input: v[3], weight: v[4]))
    }
    assertGradients("maskedLinear without bias", Array(inputs[0..<2])) { _, v in
      maskedLinear(v[0], v[1], mask: mask, bias: nil)
    }
  }

  func testMaskedLinearForwardMatchesDoubleReference() {
    let r = 3, nIn = 5, nOut = 4, nCtx = 3
    let mask = randomMask(nIn, nOut)
    let x = rng.tensor([r, nIn]), w = rng.tensor([nIn, nOut]), b = rng.tensor([nOut])
    let c = rng.tensor([r, nCtx]), v = rng.tensor([nCtx, nOut])
    let tape = Tape(recording: false)
    let y = maskedLinear(tape.constant(x), tape.constant(w), mask: mask, bias: tape.constant(b),
                         context: (input: tape.constant(c), weight: tape.constant(v)))
    var reference: [Double] = []
    for i in 0..<r {
      for o in 0..<nOut {
        var s = Double(b[o])
        for k in 0..<nIn {
          s += Double(x[i * nIn + k]) * Double(w[k * nOut + o] * mask[k * nOut + o])
        }
        for k in 0..<nCtx { s += Double(c[i * nCtx + k]) * Double(v[k * nOut + o]) }
        reference.append(s)
      }
    }
    assertClose(y.value.array.map(Double.init), reference, atol: 1e-6, rtol: 1e-6)
  }

  func testMaskedOutWeightsGetExactlyZeroGradient() {
    let r = 6, nIn = 7, nOut = 5
    let mask = randomMask(nIn, nOut)
    let x = rng.tensor([r, nIn]), w = rng.tensor([nIn, nOut], -3, 3), b = rng.tensor([nOut])
    let tape = Tape()
    let dw = Tensor(zeros: w.shape), db = Tensor(zeros: b.shape)
    let y = maskedLinear(tape.constant(x), tape.parameter(w, grad: dw), mask: mask,
                         bias: tape.parameter(b, grad: db))
    let loss = (y.tanh() * tape.constant(rng.tensor([r, nOut]))).sum()
    tape.backward(loss)
    for i in 0..<mask.count {
      if mask[i] == 0 {
        XCTAssertEqual(dw[i], 0, "masked-out weight \(i) has gradient \(dw[i])")
      } else {
        XCTAssertNotEqual(dw[i], 0, "kept weight \(i) has no gradient")
      }
    }
  }

  func testLayerReadsTheStoreAndItsMaskCanBeReplaced() {
    let store = ParameterStore()
    var layer = MaskedLinear(store, "made.fc1", 4, 3, contextInputs: 2)
    XCTAssertEqual(store.specs.map(\.name),
                   ["made.fc1.weight", "made.fc1.bias", "made.fc1.context"])
    XCTAssertEqual(layer.mask.array, Array(repeating: 1, count: 12), "default mask is all ones")
    store.allocate(seed: 7)
    let x = rng.tensor([2, 4]), c = rng.tensor([2, 2])
    let first = randomMask(4, 3), second = randomMask(4, 3)

    func viaLayer(_ l: MaskedLinear) -> [Float] {
      let tape = Tape(recording: false)
      return l(tape.constant(x), store, context: tape.constant(c)).value.array
    }
    func viaFunction(_ m: Tensor) -> [Float] {
      let tape = Tape(recording: false)
      let v = { (i: Int) in tape.constant(store.value(i)) }
      return maskedLinear(tape.constant(x), v(layer.weight), mask: m, bias: v(layer.bias!),
                          context: (input: tape.constant(c), weight: v(layer.context!))).value.array
    }
    layer.mask = first
    XCTAssertEqual(viaLayer(layer), viaFunction(first))
    let other = layer.with(mask: second)
    XCTAssertEqual(viaLayer(other), viaFunction(second))
    XCTAssertEqual(layer.mask.array, first.array, "with(mask:) leaves the original layer alone")
    XCTAssertNotEqual(viaLayer(other), viaLayer(layer))
  }

  func testContextGradientFlowsThroughTheLayer() {
    // The hook as an IAF uses it: the context's gradient is c's share of the pre-activation,
    // unmasked even where the mask cuts x off entirely.
    let store = ParameterStore()
    let layer = MaskedLinear(store, "iaf", 3, 2, mask: Tensor(zeros: [3, 2]), contextInputs: 2)
    store.allocate(seed: 11)
    let c0 = rng.tensor([4, 2])
    let dx = Tensor(zeros: [4, 3]), dc = Tensor(zeros: [4, 2])
    let tape = Tape()
    let y = layer(tape.parameter(rng.tensor([4, 3]), grad: dx), store,
                  context: tape.parameter(c0, grad: dc))
    tape.backward(y.sum())
    XCTAssertEqual(dx.array, Array(repeating: 0, count: 12), "an all-zero mask cuts x off")
    // d Σ(c·V)/dc[r, k] = Σ_o V[k, o].
    let v = store.value(layer.context!)
    for r in 0..<4 {
      for k in 0..<2 { XCTAssertEqual(dc[r * 2 + k], v[k * 2] + v[k * 2 + 1], accuracy: 1e-6) }
    }
  }
}
