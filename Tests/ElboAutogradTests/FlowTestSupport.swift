import ElboAutograd
import ElboNN
import ElboTestSupport
import XCTest

/// Gradient checks shared by the flow tests: a flow's loss is Σ logDet + Σ c ⊙ z′ with fixed
/// random weights c (so a permuted or mis-scaled output changes it), differentiated w.r.t. its
/// plain inputs (z, the context) by `assertGradients`, and w.r.t. every tensor of a
/// `ParameterStore` by `GradientCheck.assertWholeModel`.
enum FlowGradients {
  /// L = Σ logDet + Σ c ⊙ z′, c a fixed pattern in (−1, 1) (no randomness needed).
  static func weights(_ n: Int) -> [Double] {
    (0..<n).map { (i: Int) -> Double in Double((i * 37 + 11) % 19) / 9.5 - 1 }
  }

  static func loss(_ y: Variable, _ logDet: Variable) -> Variable {
    let c = weights(y.count).map { Float($0) }
    return logDet.sum() + (y * y.tape.constant(Tensor(c, shape: y.shape))).sum()
  }

  /// Finite-difference gradients w.r.t. every input (z and the context, say).
  static func assertInputs(_ name: String, _ inputs: [Tensor],
                           file: StaticString = #filePath, line: UInt = #line,
                           _ f: @escaping ([Variable]) -> (z: Variable, logDet: Variable)) {
    assertGradients(name, inputs, file: file, line: line) { _, v in
      let (y, ld) = f(v)
      return loss(y, ld)
    }
  }

  /// Finite-difference gradients w.r.t. every tensor of `store`, for a flow whose parameters
  /// live there; `f` builds the flow's output on the given tape.
  static func assertStore(_ name: String, _ store: ParameterStore,
                          file: StaticString = #filePath, line: UInt = #line,
                          _ f: (Tape) -> (z: Variable, logDet: Variable)) {
    store.zeroGrad()
    let tape = Tape()
    let (y, ld) = f(tape)
    tape.backward(loss(y, ld))
    let analytic = store.flatGrads.map(Double.init)
    XCTAssertGreaterThan(analytic.map(Swift.abs).max() ?? 0, 0, "\(name): no gradient reached "
                           + "the store", file: file, line: line)
    let tensors = store.specs.indices.map { i in
      (store.specs[i].name, store.offsets[i]..<store.offsets[i] + store.specs[i].count)
    }
    // Step 2e-2 (not 5e-3): each row's logDet and z′ are Float values of size O(1–5), whose
    // rounding (~ulp/2h) would otherwise reach the atol of a tensor with small gradients (the
    // context weights); the central difference's truncation error stays ~1e-5 relative.
    GradientCheck(relativeStep: 2e-2).assertWholeModel(name, values: store.flatValues,
                                                       analytic: analytic, tensors: tensors,
                                                       file: file, line: line) {
      let t = Tape(recording: false)
      let (y, ld) = f(t)
      let c = weights(y.count)
      var total = ld.value.array.reduce(0.0) { $0 + Double($1) }
      for (i, v) in y.value.array.enumerated() { total += c[i] * Double(v) }
      return total
    }
  }
}
