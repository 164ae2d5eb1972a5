import ElboData
import XCTest

/// Checks the threshold and Bernoulli semantics of the binarisation helpers.
final class BinarizationTests: XCTestCase {
  func testStaticThresholdIsStrict() {
    XCTAssertEqual(binarizeStatic([0, 0.25, 0.5, 0.5001, 1]), [0, 0, 0, 1, 1])
    XCTAssertEqual(binarizeStatic([0, 0.25, 0.5, 1], threshold: 0.2), [0, 1, 1, 1])
    XCTAssertEqual(binarizeStatic([]), [])
  }

  func testDynamicIsOneWhereUniformBelowIntensity() {
    let pixels: [Float] = [0, 0.3, 0.3, 1, 1, 0.5]
    let uniforms: [Float] = [0, 0.29, 0.3, 0.999, 0, 0.7]
    var out = [Float](repeating: -1, count: 6)
    pixels.withUnsafeBufferPointer { p in
      uniforms.withUnsafeBufferPointer { u in
        out.withUnsafeMutableBufferPointer { binarizeDynamic(p, uniforms: u, into: $0) }
      }
    }
    // Intensity 0 never fires (u < 0 is impossible); intensity 1 always does (u < 1).
    XCTAssertEqual(out, [0, 1, 0, 1, 1, 0])
  }

  func testDynamicInPlace() {
    var buffer: [Float] = [0.9, 0.1, 0.6]
    let uniforms: [Float] = [0.5, 0.5, 0.5]
    uniforms.withUnsafeBufferPointer { u in
      buffer.withUnsafeMutableBufferPointer { b in
        binarizeDynamic(UnsafeBufferPointer(b), uniforms: u, into: b)
      }
    }
    XCTAssertEqual(buffer, [1, 0, 1])
  }
}
