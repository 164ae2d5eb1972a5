import ElboAutograd
import ElboModels
import ElboTestSupport
import Foundation
import XCTest

/// The fused NADE op (Ops+NADE.swift, CKernels/nade.c) and the NADE model: finite differences,
/// a plain Double reference, normalisation by enumeration, ancestral sampling and conditionals.
final class NADETests: XCTestCase {
  var rng = TestRandom(seed: 20_111_101)

  /// Random parameters [W, c, V, b] for D inputs and H hidden units, entries U(−s, s).
  func parameters(_ d: Int, _ h: Int, scale s: Float = 1) -> [Tensor] {
    [rng.tensor([d, h], -s, s), rng.tensor([h], -s, s), rng.tensor([d, h], -s, s),
     rng.tensor([d], -s, s)]
  }

  func logp(_ x: Tensor, _ p: [Tensor]) -> [Double] {
    let tape = Tape(recording: false)
    return withExtendedLifetime(tape) {
      nadeLogLikelihood(x, W: tape.constant(p[0]), c: tape.constant(p[1]),
                        V: tape.constant(p[2]), b: tape.constant(p[3]))
        .logp.value.array.map(Double.init)
    }
  }

  /// Every x ∈ {0,1}^D as the rows of a [2^D, D] tensor (row k holds the bits of k, x_1 = bit 0).
  func allConfigurations(_ d: Int) -> Tensor {
    let n = 1 << d
    let x = Tensor(zeros: [n, d])
    for k in 0..<n { for j in 0..<d { x[k * d + j] = Float((k >> j) & 1) } }
    return x
  }

  // MARK: - Gradients

  /// Central differences through the whole op. Tolerances per tensor: b and V enter only the
  /// output layer (rtol 1e-2, atol 1e-3·scale, the harness defaults); W and c pass through the
  /// hidden sigmoids as well, and W's rows for x_d = 0 have exactly zero gradient, so their
  /// absolute floor is set a little higher (2e-3·scale) for the Float forward's rounding noise.
  func testNADEGradientCheckAllParameters() {
    let d = 7, h = 5, r = 3
    let x = rng.binary([r, d])
    let inputs = parameters(d, h)
    let check = GradientCheck()
    let reports = check.run(inputs) { _, v in
      nadeLogLikelihood(x, W: v[0], c: v[1], V: v[2], b: v[3]).logp
    }
    let names = ["W", "c", "V", "b"]
    let atol: [Double] = [2e-3, 2e-3, 1e-3, 1e-3]
    for rep in reports {
      let scale = max(rep.numeric.map(abs).max() ?? 0, 1e-2)
      let close = compareClose(rep.analytic, rep.numeric, atol: atol[rep.input] * scale,
                               rtol: 1e-2)
      XCTAssertTrue(close.passed, "NADE gradient d\(names[rep.input]): \(close)")
      XCTAssertGreaterThan(rep.numeric.map(abs).max() ?? 0, 1e-3,
                           "d\(names[rep.input]) is all zero: the check would prove nothing")
    }
  }

  // MARK: - Against a plain Double reference

  /// log p [R] and the gradients of Σ_r g_r log p_r, by the textbook formulas in Double:
  /// every h_d stored, and dW_k = x_k Σ_{d>k} da_d summed directly (O(D²H), no running sums).
  func reference(_ x: Tensor, _ p: [Tensor], _ g: [Double])
    -> (logp: [Double], dW: [Double], dc: [Double], dV: [Double], db: [Double]) {
    let r = x.rows, d = x.cols, h = p[1].count
    let W = p[0].array.map(Double.init), c = p[1].array.map(Double.init)
    let V = p[2].array.map(Double.init), b = p[3].array.map(Double.init)
    func sig(_ v: Double) -> Double { 1 / (1 + exp(-v)) }
    var logp = [Double](repeating: 0, count: r)
    var dW = [Double](repeating: 0, count: d * h), dc = [Double](repeating: 0, count: h)
    var dV = [Double](repeating: 0, count: d * h), db = [Double](repeating: 0, count: d)
    for e in 0..<r {
      let xs = (0..<d).map { Double(x[e * d + $0]) }
      var hs = [[Double]](), da = [[Double]]()
      for i in 0..<d {
        var hi = [Double](repeating: 0, count: h)
        for j in 0..<h {
          var a = c[j]
          for k in 0..<i { a += W[k * h + j] * xs[k] }
          hi[j] = sig(a)
        }
        var l = b[i]
        for j in 0..<h { l += V[i * h + j] * hi[j] }
        let pi = sig(l)
        logp[e] += xs[i] == 1 ? log(pi) : log(1 - pi)
        let dl = g[e] * (xs[i] - pi)
        db[i] += dl
        for j in 0..<h { dV[i * h + j] += dl * hi[j] }
        da.append((0..<h).map { dl * V[i * h + $0] * hi[$0] * (1 - hi[$0]) })
        hs.append(hi)
      }
      for k in 0..<d {
        for i in (k + 1)..<max(d, k + 1) { for j in 0..<h { dW[k * h + j] += xs[k] * da[i][j] } }
      }
      for i in 0..<d { for j in 0..<h { dc[j] += da[i][j] } }
    }
    return (logp, dW, dc, dV, db)
  }

  func checkAgainstReference(d: Int, h: Int, r: Int, rtol: Double,
                             file: StaticString = #filePath, line: UInt = #line) {
    let x = rng.binary([r, d])
    let p = parameters(d, h)
    let g = rng.uniform(r, -1, 1).map(Double.init)
    let ref = reference(x, p, g)

    let tape = Tape()
    let grads = p.map { Tensor(zeros: $0.shape) }
    let vars = zip(p, grads).map { tape.parameter($0, grad: $1) }
    let y = nadeLogLikelihood(x, W: vars[0], c: vars[1], V: vars[2], b: vars[3]).logp
    let loss = (y * tape.constant(Tensor(g.map(Float.init), shape: [r]))).sum()
    tape.backward(loss)

    func close(_ a: Tensor, _ b: [Double], _ name: String) {
      let scale = b.map(abs).max() ?? 1
      assertClose(a.array.map(Double.init), b, atol: rtol * scale, rtol: rtol,
                  "NADE \(name) (D = \(d), H = \(h))", file: file, line: line)
    }
    close(y.value, ref.logp, "log p")
    close(grads[0], ref.dW, "dW")
    close(grads[1], ref.dc, "dc")
    close(grads[2], ref.dV, "dV")
    close(grads[3], ref.db, "db")
  }

  func testNADEMatchesDoubleReference() {
    checkAgainstReference(d: 20, h: 9, r: 5, rtol: 1e-5)
    checkAgainstReference(d: 21, h: 37, r: 11, rtol: 1e-5)  // H not a multiple of 16, 2 tiles
  }

  /// Full MNIST length: the backward's running subtraction undoes ~390 additions; its rounding
  /// must stay far below the tolerance of a training gradient.
  func testNADEMatchesDoubleReferenceAtFullLength() {
    checkAgainstReference(d: 784, h: 17, r: 2, rtol: 1e-4)
  }

  // MARK: - A normalised distribution

  func testNADESumsToOneOverAllConfigurations() {
    let d = 10, h = 6
    let p = parameters(d, h, scale: 2)
    let total = logp(allConfigurations(d), p).reduce(0) { $0 + exp($1) }
    XCTAssertEqual(total, 1, accuracy: 1e-5)
  }

  // MARK: - The model: sampling and conditionals

  /// A small model with parameters large enough that the 16 probabilities differ clearly.
  func model(inputs: Int, hidden: Int) -> NADE {
    let m = NADE(NADE.Config(inputs: inputs, hidden: hidden), seed: 7)
    let p = parameters(inputs, hidden, scale: 1.5)
    for (i, t) in [m.W, m.c, m.V, m.b].enumerated() { m.store.value(t).copy(from: p[i]) }
    return m
  }

  /// Ancestral samples from `sample` against exp(log p) from the op. With N samples the
  /// frequency f_k of configuration k is Binomial(N, p_k)/N, so its standard error is
  /// SE_k = √(p_k (1 − p_k) / N); every |f_k − p_k| must be below 4 SE_k.
  func testNADESamplingMatchesProbabilities() {
    let d = 4, n = 200_000
    let m = model(inputs: d, hidden: 3)
    let all = allConfigurations(d)
    let tape = Tape(recording: false)
    let probs = withExtendedLifetime(tape) {
      m.logLikelihood(tape.constant(all), on: tape).value.array.map { exp(Double($0)) }
    }
    XCTAssertEqual(probs.reduce(0, +), 1, accuracy: 1e-5)
    let xs = m.sample(count: n, seed: 99)
    var counts = [Int](repeating: 0, count: 1 << d)
    for i in 0..<n {
      var k = 0
      for j in 0..<d where xs[i * d + j] == 1 { k |= 1 << j }
      counts[k] += 1
    }
    for k in 0..<(1 << d) {
      let f = Double(counts[k]) / Double(n)
      let se = (probs[k] * (1 - probs[k]) / Double(n)).squareRoot()
      XCTAssertLessThan(abs(f - probs[k]), 4 * se,
                        "configuration \(k): frequency \(f), probability \(probs[k])")
    }
    // Keyed by sample index: drawing the second half on its own gives the same samples.
    let tail = m.sample(count: 5, seed: 99, firstItem: 7)
    XCTAssertEqual(tail.array, Array(xs.array[(7 * d)..<(12 * d)]))
  }

  /// p(x_d = 1 | x_<d) = Σ_{x_>d} p(x_<d, 1, x_>d) / Σ_{x_≥d} p(x_<d, x_≥d): the marginals are
  /// sums of exp(log p) over all configurations, so this checks `conditionals` against log p.
  func testNADEConditionalsAgreeWithLogProbabilities() {
    let d = 6
    let m = model(inputs: d, hidden: 4)
    let all = allConfigurations(d)
    let tape = Tape(recording: false)
    let probs = withExtendedLifetime(tape) {
      m.logLikelihood(tape.constant(all), on: tape).value.array.map { exp(Double($0)) }
    }
    let cond = m.conditionals(x: all)
    XCTAssertEqual(cond.shape, [1 << d, d])
    var expected = [Double](), got = [Double]()
    for k in 0..<(1 << d) {
      for i in 0..<d {
        let prefix = k & ((1 << i) - 1)  // x_<i of configuration k
        var num = 0.0, den = 0.0
        for q in 0..<(1 << d) where q & ((1 << i) - 1) == prefix {
          den += probs[q]
          if (q >> i) & 1 == 1 { num += probs[q] }
        }
        expected.append(num / den)
        got.append(Double(cond[k * d + i]))
      }
    }
    assertClose(got, expected, atol: 1e-5, rtol: 1e-5, "NADE conditionals")
  }

  func testNADETermsAndParameterNames() {
    let m = NADE(NADE.Config(inputs: 12, hidden: 5), seed: 3)
    XCTAssertEqual(m.store.specs.map(\.name), ["nade.W", "nade.c", "nade.V", "nade.b"])
    XCTAssertEqual(m.store.specs.map(\.shape), [[12, 5], [5], [12, 5], [12]])
    let x = rng.binary([4, 12])
    let tape = Tape()
    let t = m.terms(x: x, normalizer: 8, on: tape)
    let sum = t.logLikelihood.array.reduce(0, +)
    XCTAssertEqual(t.loss.scalar, -sum / 8, accuracy: 1e-5)
    XCTAssertEqual(NADE.Config(), NADE.Config(inputs: 784, hidden: 500))
  }
}
