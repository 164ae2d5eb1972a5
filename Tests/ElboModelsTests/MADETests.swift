import ElboModels
import ElboTestSupport
import Foundation
import XCTest

/// MADE (Germain et al., ICML 2015): masks from (seed, index), the autoregressive property through
/// the Jacobian, exact normalisation over {0,1}^8, the M-mask log-mean-exp, the per-step mask
/// draw, ancestral sampling and a few training steps.
final class MADETests: XCTestCase {
  var rng = TestRandom(seed: 2015_0707)

  func config(_ hidden: [Int], inputs: Int = 8, masks: Int = 4, orderAgnostic: Bool = true,
              direct: Bool = false) -> MADE.Config {
    var c = MADE.Config()
    c.inputs = inputs
    c.hidden = hidden
    c.masks = masks
    c.orderAgnostic = orderAgnostic
    c.directConnections = direct
    return c
  }

  /// Multiplies every parameter by `factor` (sharper conditionals than the default init).
  func scale(_ model: MADE, _ factor: Float) {
    let p = model.store.flatValues
    for i in p.indices { p[i] *= factor }
  }

  /// All 2^D binary vectors as rows [2^D, D].
  func allBinary(_ d: Int) -> Tensor {
    let n = 1 << d
    let t = Tensor(zeros: [n, d])
    for i in 0..<n { for j in 0..<d where (i >> j) & 1 == 1 { t[i * d + j] = 1 } }
    return t
  }

  func logLikelihoods(_ model: MADE, _ x: Tensor, _ mask: Int) -> [Double] {
    let tape = Tape(recording: false)
    return model.logLikelihood(x, maskIndex: mask, on: tape).value.array.map(Double.init)
  }

  // MARK: - Masks

  func testMADEMasksAreReproducibleAndDifferBetweenIndices() {
    let a = MADEMasks(inputs: 10, hidden: [20, 15], seed: 99, orderAgnostic: true)
    let b = MADEMasks(inputs: 10, hidden: [20, 15], seed: 99, orderAgnostic: true)
    // Built in another order (as another rank or a resumed run might): the same masks.
    let later = [3, 0, 2].map { b($0) }
    for (k, i) in [3, 0, 2].enumerated() {
      let x = a(i), y = later[k]
      XCTAssertEqual(x.ordering, y.ordering)
      XCTAssertEqual(x.degrees, y.degrees)
      XCTAssertEqual(x.hidden.map(\.array), y.hidden.map(\.array))
      XCTAssertEqual(x.output.array, y.output.array)
    }
    for (i, j) in [(0, 1), (1, 2), (0, 3)] {
      XCTAssertNotEqual(a(i).ordering, a(j).ordering, "masks \(i) and \(j) share the ordering")
      XCTAssertNotEqual(a(i).hidden[0].array, a(j).hidden[0].array)
    }
    let otherSeed = MADEMasks(inputs: 10, hidden: [20, 15], seed: 100, orderAgnostic: true)
    XCTAssertNotEqual(otherSeed(0).degrees, a(0).degrees)
    // Without order-agnostic training the ordering is natural; the degrees still differ.
    let natural = MADEMasks(inputs: 10, hidden: [20], seed: 99, orderAgnostic: false)
    XCTAssertEqual(natural(0).ordering, Array(1...10))
    XCTAssertEqual(natural(5).ordering, Array(1...10))
    XCTAssertNotEqual(natural(0).degrees, natural(5).degrees)
  }

  func testMADEMasksFollowTheDegreeRules() {
    let d = 9, hidden = [30, 25, 20]
    let masks = MADEMasks(inputs: d, hidden: hidden, seed: 3, orderAgnostic: true)
    for index in 0..<5 {
      let s = masks(index)
      XCTAssertEqual(s.ordering.sorted(), Array(1...d), "m⁰ is a permutation of 1…D")
      XCTAssertEqual(s.samplingOrder.map { s.ordering[$0] }, Array(1...d))
      var previous = s.ordering
      for (l, degrees) in s.degrees.enumerated() {
        XCTAssertEqual(degrees.count, hidden[l])
        let low = previous.min()!
        XCTAssertTrue(degrees.allSatisfy { $0 >= low && $0 <= d - 1 }, "layer \(l + 1) degrees")
        let m = s.hidden[l]
        XCTAssertEqual(m.shape, [previous.count, hidden[l]])
        for i in previous.indices {
          for k in degrees.indices {
            XCTAssertEqual(m[i * hidden[l] + k], degrees[k] >= previous[i] ? 1 : 0)
          }
        }
        previous = degrees
      }
      XCTAssertEqual(s.output.shape, [hidden.last!, d])
      for k in previous.indices {
        for j in 0..<d { XCTAssertEqual(s.output[k * d + j], s.ordering[j] > previous[k] ? 1 : 0) }
      }
      for i in 0..<d {
        for j in 0..<d {
          XCTAssertEqual(s.direct[i * d + j], s.ordering[j] > s.ordering[i] ? 1 : 0)
        }
      }
    }
  }

  // MARK: - Autoregressive property

  /// ∂logit_d/∂x_j [R, D, D] by one backward per output d, on real-valued inputs x [R, D].
  func jacobian(_ model: MADE, _ x: Tensor, mask: Int) -> [[[Float]]] {
    let r = x.rows, d = x.cols
    var out = Array(repeating: Array(repeating: [Float](repeating: 0, count: d), count: d),
                    count: r)
    for o in 0..<d {
      let tape = Tape()
      let dx = Tensor(zeros: x.shape)
      let logits = model.logits(tape.parameter(x, grad: dx), maskIndex: mask)   // [R, D]
      let pick = Tensor(zeros: [r, d])
      for i in 0..<r { pick[i * d + o] = 1 }
      tape.backward((logits * tape.constant(pick)).sum())
      for i in 0..<r { for j in 0..<d { out[i][o][j] = dx[i * d + j] } }
    }
    return out
  }

  func testLogitsAreAutoregressiveInEveryMasksOrdering() {
    let d = 8
    let cases: [(String, MADE.Config)] = [
      ("1 layer", config([40])),
      ("2 layers", config([40, 30])),
      ("2 layers, direct", config([40, 30], direct: true)),
      ("natural order", config([40], masks: 1, orderAgnostic: false)),
    ]
    for (name, c) in cases {
      let model = MADE(c, seed: 21)
      let x = rng.tensor([4, d], -2, 2)
      var allowed = 0, nonZero = 0
      for mask in model.testMaskIndices {
        let order = model.masks(mask).ordering
        let jac = jacobian(model, x, mask: mask)
        for row in jac {
          for o in 0..<d {
            for j in 0..<d {
              if order[j] >= order[o] {
                XCTAssertEqual(row[o][j], 0, "\(name), mask \(mask): ∂l_\(o)/∂x_\(j) ≠ 0 with "
                               + "m⁰(\(j)) = \(order[j]) ≥ m⁰(\(o)) = \(order[o])")
              } else {
                allowed += 1
                if row[o][j] != 0 { nonZero += 1 }
              }
            }
          }
        }
      }
      // Not an all-zero network: most allowed dependencies are present.
      XCTAssertGreaterThan(nonZero, allowed / 2, "\(name): \(nonZero) of \(allowed) allowed "
                           + "dependencies are non-zero")
    }
  }

  // MARK: - Normalisation and test log-likelihood

  func testEveryMaskAndTheMaskAverageSumToOneOverAllBinaryVectors() {
    let all = allBinary(8)
    for hidden in [[16], [16, 12]] {
      var c = config(hidden, direct: hidden.count == 2)
      c.testMasks = 4
      let model = MADE(c, seed: 5)
      scale(model, 3)
      for mask in 0..<4 {
        let ll = logLikelihoods(model, all, mask)
        let total = ll.reduce(0) { $0 + exp($1) }
        XCTAssertEqual(total, 1, accuracy: 1e-5, "\(hidden), mask \(mask): Σ p(x) = \(total)")
        XCTAssertGreaterThan(ll.max()!, log(4 / 256.0), "the test needs a non-uniform p")
      }
      let average = model.testLogLikelihood(all).reduce(0) { $0 + exp($1) }
      XCTAssertEqual(average, 1, accuracy: 1e-5, "\(hidden): Σ of the 4-mask average = \(average)")
    }
  }

  func testTestLogLikelihoodIsTheLogMeanExpOverTestMasks() {
    let x = rng.binary([16, 8])
    for factor: Float in [1, 60] {
      var c = config([16], masks: 8)
      c.testMasks = 8
      let model = MADE(c, seed: 8)
      scale(model, factor)
      let perMask = model.testMaskIndices.map { logLikelihoods(model, x, $0) }   // [M][R]
      XCTAssertEqual(perMask.count, 8)
      var reference: [Double] = []
      var widest = 0.0
      for r in 0..<x.rows {
        let terms = perMask.map { $0[r] }
        let m = terms.max()!
        widest = max(widest, m - terms.min()!)
        reference.append(m + log(terms.map { exp($0 - m) }.reduce(0, +) / Double(terms.count)))
      }
      let got = model.testLogLikelihood(x)
      XCTAssertTrue(got.allSatisfy(\.isFinite), "scale \(factor): \(got)")
      assertClose(got, reference, atol: 1e-9, rtol: 1e-12, "scale \(factor)")
      if factor > 1 {
        XCTAssertGreaterThan(widest, 100, "the stability case needs masks > 100 nats apart")
      }
    }
  }

  func testTestMaskIndicesAreTheTrainingMasks() {
    var c = config([8], masks: 3)
    c.testMasks = 8
    XCTAssertEqual(MADE(c, seed: 1).testMaskIndices, 0..<3)
    c.masks = 32
    XCTAssertEqual(MADE(c, seed: 1).testMaskIndices, 0..<8)
    c.masks = 0
    XCTAssertEqual(MADE(c, seed: 1).testMaskIndices, 0..<1)
  }

  // MARK: - Mask schedule, sampling, training

  func testTrainingMaskIndexIsAFreshDrawKeyedByTheStep() {
    let c = config([8], masks: 5)
    let a = MADE(c, seed: 17), b = MADE(c, seed: 17)
    let steps: [UInt64] = Array(0..<200)
    let drawn = steps.map { a.trainingMaskIndex(step: $0) }
    XCTAssertEqual(drawn, steps.reversed().map { b.trainingMaskIndex(step: $0) }.reversed())
    XCTAssertTrue(drawn.allSatisfy { (0..<5).contains($0) })
    XCTAssertEqual(Set(drawn), Set(0..<5), "every mask is used")
    XCTAssertNotEqual(drawn, steps.map { Int($0 % 5) }, "a draw, not step mod masks")
    let single = MADE(config([8], masks: 1), seed: 17)
    XCTAssertTrue(steps.allSatisfy { single.trainingMaskIndex(step: $0) == 0 })
  }

  func testSamplesAreReproducibleAndMatchTheModelsMarginals() {
    let model = MADE(config([16, 16], masks: 2, direct: true), seed: 31)
    scale(model, 3)
    let d = 8, n = 4000, mask = 1
    let samples = model.sample(count: n, maskIndex: mask, seed: 77)
    XCTAssertEqual(samples.shape, [n, d])
    XCTAssertTrue(samples.array.allSatisfy { $0 == 0 || $0 == 1 })
    XCTAssertEqual(model.sample(count: 50, maskIndex: mask, seed: 77).array,
                   Array(samples.array.prefix(50 * d)), "row r's noise does not depend on count")
    XCTAssertNotEqual(model.sample(count: 50, maskIndex: mask, seed: 78).array,
                      Array(samples.array.prefix(50 * d)))
    // Exact marginals p(x_j = 1) from the enumeration vs the sample frequencies (σ ≤ 0.008).
    let all = allBinary(d)
    let p = logLikelihoods(model, all, mask).map { exp($0) }
    for j in 0..<d {
      var exact = 0.0, empirical = 0.0
      for i in 0..<all.rows { exact += p[i] * Double(all[i * d + j]) }
      for i in 0..<n { empirical += Double(samples[i * d + j]) }
      XCTAssertEqual(empirical / Double(n), exact, accuracy: 0.035, "marginal of x_\(j)")
    }
  }

  func testConditionalOfTheFirstInputIgnoresX() {
    let model = MADE(config([16], masks: 3), seed: 4)
    let x = rng.binary([5, 8])
    let probs = model.conditionals(x, maskIndex: 2)
    XCTAssertEqual(probs.shape, [5, 8])
    XCTAssertTrue(probs.array.allSatisfy { $0 > 0 && $0 < 1 })
    let first = model.masks(2).samplingOrder[0]
    for r in 1..<5 { XCTAssertEqual(probs[r * 8 + first], probs[first]) }
  }

  func testAFewAdamStepsRaiseTheLikelihoodOfToyData() {
    // Toy data with strong dependencies: x_1 ~ Bernoulli(½), every other x_j = x_1.
    let d = 8, r = 64
    let x = Tensor(zeros: [r, d])
    var s = rng.stream()
    for i in 0..<r where s.uniform() < 0.5 { for j in 0..<d { x[i * d + j] = 1 } }
    let model = MADE(config([32], inputs: d, masks: 4), seed: 9)
    let adam = Adam(parameterCount: model.store.count, learningRate: 1e-2)
    let tape = Tape()
    var first = 0.0, last = 0.0
    for step in 0..<150 {
      tape.reset()
      model.store.zeroGrad()
      let terms = model.terms(x: x, maskIndex: model.trainingMaskIndex(step: UInt64(step)),
                              normalizer: Float(r), on: tape)
      tape.backward(terms.loss)
      adam.update(model.store.flatValues, UnsafeBufferPointer(model.store.flatGrads))
      if step == 0 { first = Double(terms.loss.scalar) }
      last = Double(terms.loss.scalar)
    }
    // Start ≈ 8·log 2 = 5.5 nats; the best any ordering can do is log 2 = 0.69.
    XCTAssertGreaterThan(first, 4)
    XCTAssertLessThan(last, 1.5, "loss \(first) → \(last)")
  }
}
