import ElboAutograd
import XCTest

/// Finite-difference gradient checking.
///
/// The op under test builds a variable from its inputs. If that variable is not a scalar, it is
/// contracted with a fixed random weight tensor, L = Σ w ⊙ f(x), so that every output element
/// (and a wrong one anywhere) changes L. The analytic gradient comes from `Tape.backward`; the
/// numeric one from central differences (L(x + h) − L(x − h)) / 2h, where f is evaluated in Float
/// (that is what the ops compute) and the contraction and differences are done in Double.
///
/// Accuracy: the truncation error of a central difference is h²·|f'''|/6, and the rounding error
/// of a Float forward is about ε_f·|L|/h with ε_f ≈ 6e-8. With h = 5e-3·max(1, |x|) both are
/// ~1e-5 relative for the smooth, O(1)-valued inputs used here, two orders below the tolerance
/// |analytic − numeric| ≤ atol + rtol·|numeric| with atol = 1e-3·scale (scale = the largest
/// numeric gradient of that input, at least 1e-2) and rtol = 1e-2.
public struct GradientCheck {
  public var relativeStep: Double = 5e-3
  public var atol: Double = 1e-3
  public var rtol: Double = 1e-2

  public init(relativeStep: Double = 5e-3, atol: Double = 1e-3, rtol: Double = 1e-2) {
    self.relativeStep = relativeStep; self.atol = atol; self.rtol = rtol
  }

  /// The outcome for one input.
  public struct InputReport {
    public let input: Int
    public let analytic: [Double]
    public let numeric: [Double]
    public let close: CloseReport
    public var passed: Bool { close.passed }
  }

  /// Central-difference gradient of `loss` with respect to every element of `values`
  /// (perturbed in place and restored).
  public func numericGradient(_ values: UnsafeMutableBufferPointer<Float>,
                              _ loss: () -> Double) -> [Double] {
    var g = [Double](repeating: 0, count: values.count)
    for j in values.indices {
      let x0 = values[j]
      let h = Float(relativeStep * max(1, abs(Double(x0))))
      values[j] = x0 + h
      let hPlus = Double(values[j]) - Double(x0)   // the step actually taken in Float
      let lPlus = loss()
      values[j] = x0 - h
      let hMinus = Double(x0) - Double(values[j])
      let lMinus = loss()
      values[j] = x0
      g[j] = (lPlus - lMinus) / (hPlus + hMinus)
    }
    return g
  }

  /// Compares an analytic gradient with a numeric one under this check's tolerances.
  public func compare(input: Int, analytic: [Double], numeric: [Double]) -> InputReport {
    let scale = max(numeric.map(abs).max() ?? 0, 1e-2)
    let r = compareClose(analytic, numeric, atol: atol * scale, rtol: rtol)
    return InputReport(input: input, analytic: analytic, numeric: numeric, close: r)
  }

  /// Checks every input of `f` (each input a leaf that requires a gradient); returns one report
  /// per input.
  public func run(_ inputs: [Tensor], weightSeed: UInt64 = 0x5EED,
                  _ f: (Tape, [Variable]) -> Variable) -> [InputReport] {
    // Fixed contraction weights, drawn once for the output's size.
    let probeTape = Tape(recording: false)
    let outCount = f(probeTape, inputs.map { probeTape.constant($0) }).count
    var weights = [Float](repeating: 1, count: outCount)
    if outCount > 1 {
      var rng = TestRandom(seed: weightSeed)
      weights = rng.uniform(outCount, -1, 1)
    }

    // Analytic: L = Σ w ⊙ f(x) built from ops, then backward. The inputs' gradients start at
    // `prefill`, not 0: backward must ADD to a leaf's gradient (a parameter used twice, or a
    // flat buffer holding several terms, needs that), so an op that overwrites it fails here.
    let tape = Tape()
    let prefill: Float = 0.25
    let grads = inputs.map { t -> Tensor in
      let g = Tensor(zeros: t.shape)
      g.fill(prefill)
      return g
    }
    let vars = zip(inputs, grads).map { tape.parameter($0, grad: $1) }
    let y = f(tape, vars)
    let loss = outCount == 1
      ? y.reshaped([1]) : (y * tape.constant(Tensor(weights, shape: y.shape))).sum()
    tape.backward(loss)

    // Numeric: the same L, contracted in Double, on a non-recording tape.
    let evalTape = Tape(recording: false)
    func lossValue() -> Double {
      evalTape.reset()
      let out = f(evalTape, inputs.map { evalTape.constant($0) })
      var s = 0.0
      for i in 0..<outCount { s += Double(weights[i]) * Double(out.value[i]) }
      return s
    }
    return inputs.indices.map { i in
      let numeric = numericGradient(inputs[i].buffer, lossValue)
      let analytic = grads[i].array.map { Double($0) - Double(prefill) }
      return compare(input: i, analytic: analytic, numeric: numeric)
    }
  }

  /// Runs the check and fails the calling test for every input whose gradient is wrong.
  public func assertGradients(_ name: String, _ inputs: [Tensor],
                              file: StaticString = #filePath, line: UInt = #line,
                              _ f: (Tape, [Variable]) -> Variable) {
    for r in run(inputs, f) where !r.passed {
      let shape = inputs[r.input].shape
      XCTFail("gradient check '\(name)': input \(r.input) \(shape) — analytic vs numeric: "
              + "\(r.close)", file: file, line: line)
    }
  }
}

/// Checks the gradients of `f` w.r.t. every input with the default tolerances.
public func assertGradients(_ name: String, _ inputs: [Tensor],
                            check: GradientCheck = GradientCheck(),
                            file: StaticString = #filePath, line: UInt = #line,
                            _ f: (Tape, [Variable]) -> Variable) {
  check.assertGradients(name, inputs, file: file, line: line, f)
}

extension GradientCheck {
  /// Checks a whole model's gradient tensor by tensor: each named range of the flat buffers gets
  /// its own scale (the largest numeric gradient of THAT tensor, at least 1e-2), so a tensor whose
  /// gradients are small next to another tensor's is checked at its own size, not hidden under a
  /// global atol. `loss` should sum its terms in Double (see the callers) so that the central
  /// differences see only the Float rounding of each term, not of a Float running sum.
  ///
  /// - Parameters:
  ///   - tensors: (name, range in the flat buffers) for every parameter tensor, in order.
  public func assertWholeModel(_ name: String, values: UnsafeMutableBufferPointer<Float>,
                               analytic: [Double], tensors: [(String, Range<Int>)],
                               file: StaticString = #filePath, line: UInt = #line,
                               _ loss: () -> Double) {
    XCTAssertEqual(analytic.count, values.count, "\(name): gradient size", file: file, line: line)
    XCTAssertEqual(tensors.map(\.1.count).reduce(0, +), values.count,
                   "\(name): the tensors cover the buffer", file: file, line: line)
    let numeric = numericGradient(values, loss)
    for (tensor, r) in tensors where !r.isEmpty {
      let report = compare(input: 0, analytic: Array(analytic[r]), numeric: Array(numeric[r]))
      if !report.passed {
        XCTFail("\(name): gradient of \(tensor) \(r) — analytic vs numeric: \(report.close)",
                file: file, line: line)
      }
    }
  }
}
