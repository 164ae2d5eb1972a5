import ElboTensor
import Foundation
import XCTest

/// The vectorised float normals (`fillNormalFast`, C kernel) against the reference Swift/double
/// path (`fillNormal`): same Philox words, same Box–Muller map, so the values agree to float
/// rounding, and the stream position advances identically.
final class PhiloxNormalTests: XCTestCase {
  func testFastNormalsMatchTheReferenceGenerator() {
    var worst: Float = 0
    for (seed, purpose, time, item) in [(0 as UInt64, NoisePurpose.weightNoise, 0 as UInt64, 0 as UInt32),
                                         (42, .activationNoise, 123_456, 7),
                                         (0xDEAD_BEEF_1234, .evaluation, 1 << 40, 4_000_000)] {
      for n in [1, 3, 4, 5, 17, 10_000] {
        let address = NoiseAddress(seed: seed, purpose: purpose, time: time, item: item)
        var a = RandomStream(address, startBlock: 5), b = RandomStream(address, startBlock: 5)
        var ref = [Float](repeating: 0, count: n), fast = ref
        ref.withUnsafeMutableBufferPointer { a.fillNormal($0) }
        fast.withUnsafeMutableBufferPointer { b.fillNormalFast($0) }
        for i in 0..<n {
          // |z| ≤ 5.8 here; float sin/cos/log/sqrt add a few ulp of r and θ.
          let d = abs(ref[i] - fast[i])
          worst = max(worst, d / max(1, abs(ref[i])))
          XCTAssertLessThan(d, 1e-6 * max(1, abs(ref[i])), "n \(n), i \(i): \(ref[i]) vs \(fast[i])")
        }
        XCTAssertEqual(a.block, b.block, "stream position after \(n) normals")
        XCTAssertEqual(a.nextWord(), b.nextWord())
      }
    }
    print("worst relative difference fast vs reference normals: \(worst)")
  }

  func testFastNormalsHaveStandardMoments() {
    var rng = RandomStream(NoiseAddress(seed: 9, purpose: .benchmark))
    var z = [Float](repeating: 0, count: 400_000)
    z.withUnsafeMutableBufferPointer { rng.fillNormalFast($0) }
    let n = Double(z.count)
    let mean = z.reduce(0.0) { $0 + Double($1) } / n
    let variance = z.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / n
    let tail = Double(z.filter { abs($0) > 1.959964 }.count) / n
    XCTAssertEqual(mean, 0, accuracy: 4 / n.squareRoot())
    XCTAssertEqual(variance, 1, accuracy: 4 * (2 / n).squareRoot())
    XCTAssertEqual(tail, 0.05, accuracy: 4 * (0.05 * 0.95 / n).squareRoot())
  }
}
