import ElboDistributed
import ElboTestSupport
import XCTest

final class GradientReducerTests: XCTestCase {
  /// Rank-dependent gradients whose sums are exact in Float (so any reduction order agrees).
  private func grads(_ count: Int) -> [Float] {
    (0..<count).map { i in Float((i % 97) - 48) * 0.125 + Float(world.rank) * 0.5 }
  }

  func testFusedAndBucketedAgree() throws {
    let count = 10_007
    let reducer = GradientReducer(communicator: world, mode: .sum, bucketSize: 1000)
    var fused = grads(count)
    var bucketed = fused
    try fused.withUnsafeMutableBufferPointer { try reducer.reduce($0) }
    try bucketed.withUnsafeMutableBufferPointer { try reducer.reduceBucketed($0) }
    XCTAssertEqual(fused.map(\.bitPattern), bucketed.map(\.bitPattern))
    // Every element is the exact sum over ranks (all terms are multiples of 1/8: exact in Float).
    let n = Float(world.size)
    let rankSum = Float(world.size * (world.size - 1) / 2) * 0.5
    let sum = (0..<count).map { i in Float((i % 97) - 48) * 0.125 * n + rankSum }
    XCTAssertEqual(fused, sum, "fused sum over \(world.size) ranks")

    // Average mode, overlapped the way the trainer drives it: tensors of uneven sizes become
    // final last-first; a bucket starts as soon as all of it is final, not before.
    reducer.mode = .average
    var a = grads(count)
    var b = a
    try a.withUnsafeMutableBufferPointer { try reducer.allreduceAverage($0) }
    let tensors = [0..<3000, 3000..<3017, 3017..<8017, 8017..<count]  // buckets of 1000
    try b.withUnsafeMutableBufferPointer { buf in
      reducer.begin(buf)
      XCTAssertEqual(reducer.bucketsStarted, 0)
      try reducer.markFinal(tensors[3])  // floats 8017…: buckets 10 and 9 are whole, 8 is not
      XCTAssertEqual(reducer.bucketsStarted, 2)
      try reducer.markFinal(tensors[1])  // 3000..<3017: bucket 3 still waits, and 8 comes first
      XCTAssertEqual(reducer.bucketsStarted, 2)
      try reducer.markFinal(tensors[2])  // now buckets 8…3 (3000..<9000) go, in that order
      XCTAssertEqual(reducer.bucketsStarted, 8)
      try reducer.markFinal(tensors[0])
      XCTAssertEqual(reducer.bucketsStarted, 11)
      try reducer.finish()
    }
    XCTAssertEqual(a.map(\.bitPattern), b.map(\.bitPattern))
    // The mean is the sum over ranks divided by their number, element by element.
    assertClose(a, sum.map { $0 / n }, atol: 1e-6, "average over \(world.size) ranks")
  }

  func testBucketOutsideBufferThrows() throws {
    let reducer = GradientReducer(communicator: world)
    var g: [Float] = [1, 2, 3]
    try g.withUnsafeMutableBufferPointer { buf in
      reducer.begin(buf)
      XCTAssertThrowsError(try reducer.markFinal(2..<5))
      try reducer.finish()
    }
    XCTAssertEqual(reducer.bucketRanges(count: 0), [])
  }

  func testParameterChecksums() throws {
    var params = (0..<5000).map { Float($0) * 0.001 }
    try params.withUnsafeBufferPointer { try world.parameterChecksumsAgree($0, name: "params") }
    try TestRanks.requireSeveralRanks(world.size, "a checksum that differs on one rank")
    let bad = world.size - 1
    if world.rank == bad { params[1234] = params[1234].nextUp }
    XCTAssertThrowsError(try params.withUnsafeBufferPointer {
      try world.parameterChecksumsAgree($0, name: "params")
    }) { error in
      let text = "\(error)"
      XCTAssert(text.contains("rank \(bad) differs"), text)
      XCTAssert(text.contains("params"), text)
    }
  }
}
