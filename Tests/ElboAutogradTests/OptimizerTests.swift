import ElboNN
import ElboTestSupport
import Foundation
import XCTest

final class OptimizerTests: XCTestCase {
  /// f(θ) = ½ Σ a_i (θ_i − c_i)², ∇f = a ⊙ (θ − c).
  let a: [Double] = [1, 10, 0.1, 3], c: [Double] = [1, -2, 0.5, 4]
  func gradient(_ theta: [Double]) -> [Double] { theta.indices.map { a[$0] * (theta[$0] - c[$0]) } }

  func testAdamMatchesTextbookUpdateWithBiasCorrection() {
    let lr = 0.05, b1 = 0.9, b2 = 0.999, eps = 1e-8
    var ref: [Double] = [0, 0, 0, 0], m = [Double](repeating: 0, count: 4), v = m
    var params: [Float] = [0, 0, 0, 0]
    let adam = Adam(parameterCount: 4, learningRate: Float(lr))
    for t in 1...20 {
      // Both follow their own trajectory; the gradient is computed from each one's parameters.
      let g = gradient(ref)
      for i in 0..<4 {
        m[i] = b1 * m[i] + (1 - b1) * g[i]
        v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i]
        let mHat = m[i] / (1 - Foundation.pow(b1, Double(t)))
        let vHat = v[i] / (1 - Foundation.pow(b2, Double(t)))
        ref[i] -= lr * mHat / (vHat.squareRoot() + eps)
      }
      let gf = gradient(params.map(Double.init)).map(Float.init)
      params.withUnsafeMutableBufferPointer { p in
        gf.withUnsafeBufferPointer { adam.update(p, $0) }
      }
      // Each step moves ≤ lr; Float rounding of O(1) values is ~1e-7 per step, so after 20
      // steps the trajectories agree to well within 1e-5.
      assertClose(params.map(Double.init), ref, atol: 1e-5, "step \(t)")
    }
    XCTAssertEqual(adam.step, 20)
    XCTAssertEqual(adam.stateScalars["adam.t"], 20)
  }

  func testAdamFirstStepIsLearningRateTimesSignOfGradient() {
    // m̂₁ = g, v̂₁ = g², so the first step is −lr·g/(|g| + ε) ≈ −lr·sign(g) for |g| ≫ ε.
    var p: [Float] = [1, 1, 1]
    let g: [Float] = [3, -0.01, 200]
    let adam = Adam(parameterCount: 3, learningRate: 0.1)
    p.withUnsafeMutableBufferPointer { pp in g.withUnsafeBufferPointer { adam.update(pp, $0) } }
    assertClose(p, [0.9, 1.1, 0.9], atol: 1e-6)
  }

  func testSGDMomentumMatchesPyTorchFormula() {
    // PyTorch (dampening 0, no Nesterov): b ← μb + g (b₁ = g), θ ← θ − lr·b.
    let lr = 0.02, mu = 0.9
    var ref: [Double] = [0, 0, 0, 0], b: [Double]? = nil
    var params: [Float] = [0, 0, 0, 0]
    let sgd = SGD(parameterCount: 4, learningRate: Float(lr), momentum: Float(mu))
    for t in 1...20 {
      let g = gradient(ref)
      b = b.map { old in old.indices.map { mu * old[$0] + g[$0] } } ?? g
      for i in 0..<4 { ref[i] -= lr * b![i] }
      let gf = gradient(params.map(Double.init)).map(Float.init)
      params.withUnsafeMutableBufferPointer { p in gf.withUnsafeBufferPointer { sgd.update(p, $0) } }
      assertClose(params.map(Double.init), ref, atol: 1e-5, "step \(t)")
    }
  }

  func testOptimizersReduceTheQuadratic() {
    let f: ([Float]) -> Double = { th in
      th.indices.reduce(0) { $0 + 0.5 * self.a[$1] * pow(Double(th[$1]) - self.c[$1], 2) }
    }
    for opt in [Adam(parameterCount: 4, learningRate: 0.1) as Optimizer,
                SGD(parameterCount: 4, learningRate: 0.02)] {
      var p: [Float] = [0, 0, 0, 0]
      let f0 = f(p)
      for _ in 0..<200 {
        let g = gradient(p.map(Double.init)).map(Float.init)
        p.withUnsafeMutableBufferPointer { pp in g.withUnsafeBufferPointer { opt.update(pp, $0) } }
      }
      XCTAssertLessThan(f(p), 0.05 * f0, "\(type(of: opt))")
    }
  }

  /// ZeRO-1's premise: updates are elementwise, so optimizers that each update one shard of the
  /// flat buffers (as ranks do with the sharded method) reproduce the full update bit for bit,
  /// state included, with t advancing once per step. Shards are cut at odd places (not at
  /// vector widths), over several steps of random gradients.
  func testShardedUpdatesEqualTheFullUpdateBitwise() {
    let n = 1003
    let cuts = [0, 5, 517, 518, n]  // 4 shards of 5, 512, 1 and 485 elements
    let shards = (0..<(cuts.count - 1)).map { cuts[$0]..<cuts[$0 + 1] }
    func makeAll() -> [Optimizer] {
      [Adam(parameterCount: n, learningRate: 0.01), SGD(parameterCount: n, learningRate: 0.01)]
    }
    let full = makeAll(), parts = shards.map { _ in makeAll() }
    var rng = TestRandom(seed: 11)
    let start = rng.uniform(n, -1, 1)
    for k in full.indices {
      var p = start
      var ps = shards.map { _ in start }  // each shard owner has its own copy of everything
      for step in 1...5 {
        let g = rng.uniform(n, -0.1, 0.1)
        g.withUnsafeBufferPointer { gb in
          p.withUnsafeMutableBufferPointer { full[k].update($0, gb) }
          for (j, shard) in shards.enumerated() {
            ps[j].withUnsafeMutableBufferPointer { parts[j][k].update($0, gb, range: shard) }
          }
        }
        for (j, shard) in shards.enumerated() {
          XCTAssertEqual(ps[j][shard].map(\.bitPattern), p[shard].map(\.bitPattern),
                         "\(type(of: full[k])) shard \(shard) step \(step)")
          // Outside its shard nothing moved.
          XCTAssertEqual(ps[j][..<shard.lowerBound], start[..<shard.lowerBound])
          XCTAssertEqual(ps[j][shard.upperBound...], start[shard.upperBound...])
          for (name, buffer) in parts[j][k].stateBuffers {
            let whole = full[k].stateBuffers.first { $0.name == name }!.buffer
            XCTAssertEqual(buffer[shard].map(\.bitPattern), whole[shard].map(\.bitPattern), name)
          }
        }
      }
      XCTAssertEqual(parts[1][k].stateScalars, full[k].stateScalars)
    }
    XCTAssertEqual((parts[2][0] as! Adam).step, 5)
  }
}

final class ParameterStoreTests: XCTestCase {
  func makeStore(seed: UInt64) -> (ParameterStore, Linear, Linear) {
    let s = ParameterStore()
    let l1 = Linear(s, "a", 100, 50), l2 = Linear(s, "b", 50, 3)
    s.allocate(seed: seed)
    return (s, l1, l2)
  }

  func testViewsAreSlicesOfOneFlatBuffer() {
    let (s, l1, l2) = makeStore(seed: 1)
    XCTAssertEqual(s.count, 100 * 50 + 50 + 50 * 3 + 3)
    XCTAssertEqual(s.offsets, [0, 5000, 5050, 5200])
    var expectedOffset = 0
    for i in [l1.weight, l1.bias, l2.weight, l2.bias] {
      let v = s.value(i), g = s.grad(i)
      XCTAssertTrue(v.storage === s.value(0).storage, "parameter \(i) has its own storage")
      XCTAssertEqual(v.offset, expectedOffset)
      XCTAssertEqual(v.pointer, s.flatValues.baseAddress! + expectedOffset)
      XCTAssertEqual(g.pointer, s.flatGrads.baseAddress! + expectedOffset)
      expectedOffset += v.count
    }
    // Writing through a view is visible in the flat buffer, and vice versa.
    s.value(l2.bias)[1] = 42
    XCTAssertEqual(s.flatValues[5201], 42)
    s.flatGrads[5001] = 7
    XCTAssertEqual(s.grad(l1.bias)[1], 7)
  }

  func testZeroGradZeroesEveryGradient() {
    let (s, _, _) = makeStore(seed: 1)
    for i in s.flatGrads.indices { s.flatGrads[i] = Float(i) + 1 }
    s.zeroGrad()
    XCTAssertTrue(s.flatGrads.allSatisfy { $0 == 0 })
  }

  func testAllocationIsDeterministicPerSeed() {
    let a = makeStore(seed: 9).0, b = makeStore(seed: 9).0, c = makeStore(seed: 10).0
    XCTAssertEqual(Array(a.flatValues), Array(b.flatValues))
    XCTAssertNotEqual(Array(a.flatValues), Array(c.flatValues))
    // Different tensors of one model get different numbers too.
    XCTAssertNotEqual(Array(a.value(1).array.prefix(3)), Array(a.value(0).array.prefix(3)))
  }

  func testLinearInitialisationIsUniformWithinOneOverSqrtInputs() {
    let (s, l1, _) = makeStore(seed: 3)
    let bound = 1 / Double(100).squareRoot()
    let w = s.value(l1.weight).array.map(Double.init)
    XCTAssertTrue(w.allSatisfy { abs($0) <= bound }, "a weight exceeds 1/√in")
    XCTAssertTrue(s.value(l1.bias).array.allSatisfy { abs(Double($0)) <= bound })
    let mean = w.reduce(0, +) / Double(w.count)
    let variance = w.reduce(0) { $0 + $1 * $1 } / Double(w.count) - mean * mean
    // U(−b, b): variance b²/3, SE of the sample variance √(4/45)·b²/√n ≈ 0.0042·b² for n = 5000;
    // mean SE b/√(3n) ≈ 0.0082·b. Both within 5 SE.
    XCTAssertEqual(variance, bound * bound / 3, accuracy: 5 * 0.0042 * bound * bound)
    XCTAssertEqual(mean, 0, accuracy: 5 * 0.0082 * bound)
  }

  func testInitializersZerosConstantAndNormal() {
    let s = ParameterStore()
    let z = s.declare("z", [10], .zeros), k = s.declare("k", [10], .constant(0.5))
    let n = s.declare("n", [20_000], .normal(std: 2))
    s.allocate(seed: 1)
    XCTAssertEqual(s.value(z).array, [Float](repeating: 0, count: 10))
    XCTAssertEqual(s.value(k).array, [Float](repeating: 0.5, count: 10))
    let v = s.value(n).array.map(Double.init)
    let variance = v.reduce(0) { $0 + $1 * $1 } / Double(v.count)
    // σ² = 4, SE of the variance σ²·√(2/n) = 0.04; 5 SE.
    XCTAssertEqual(variance, 4, accuracy: 0.2)
    XCTAssertEqual(s.index(of: "k"), k)
  }
}
