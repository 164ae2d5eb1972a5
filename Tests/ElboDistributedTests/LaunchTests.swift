import ElboDistributed
import ElboTestSupport
import XCTest

/// The job is the one launch/test started: as many ranks as `ELBO_TEST_RANKS` says.
final class LaunchTests: XCTestCase {
  func testWorldSizeIsTheLaunchedSize() throws {
    TestRanks.assertWorldSize(world.size)
    XCTAssert((0..<world.size).contains(world.rank), "rank \(world.rank) of \(world.size)")
    // Every rank sees the same size and a distinct rank: the sum of the ranks is n(n−1)/2.
    var v: [Float] = [Float(world.rank), 1]
    try v.withUnsafeMutableBufferPointer { try world.allreduceSum($0, name: "launch check") }
    XCTAssertEqual(v, [Float(world.size * (world.size - 1) / 2), Float(world.size)])
  }
}
