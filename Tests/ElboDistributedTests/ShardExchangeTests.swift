import ElboDistributed
import ElboTestSupport
import Foundation
import XCTest

/// Both shard transports give the same results: MPI's collectives, and the shared-memory window
/// (on one node, which is where launch/test runs these under mpirun with 2 and 3 ranks).
final class ShardExchangeTests: XCTestCase {
  /// The exchanges to test on this job: the shared-memory one exists only with several ranks.
  func exchanges(capacity: Int) throws -> [ShardExchange] {
    let shared = try SharedMemoryShardExchange.make(communicator: world, capacity: capacity)
    XCTAssertEqual(shared == nil, world.size == 1, "one node: shared memory iff several ranks")
    return [CollectiveShardExchange(communicator: world)] + (shared.map { [$0] } ?? [])
  }

  /// Many alternating reduce-scatters and all-gathers of uneven blocks (and an empty block when
  /// there are more ranks than elements), with ranks deliberately out of step between calls:
  /// a rank that reused a staging area another rank is still reading would corrupt a sum.
  func testReduceScatterThenAllgatherIsAnAllreduce() throws {
    let n = world.size, r = world.rank
    for exchange in try exchanges(capacity: 5000) {
      let totals = [4999, 5000, 1, 2, 0, 3000, 4999, 17]
      for (round, total) in (totals + totals.reversed() + totals).enumerated() {
        let counts = (0..<n).map { total / n + ($0 < total % n ? 1 : 0) }
        let start = counts[..<r].reduce(0, +)
        let mine = start..<(start + counts[r])
        // Rank- and round-dependent values whose sums are exact in Float.
        var v = (0..<total).map { Float(($0 + round) % 101) * 0.25 + Float(r * (round + 1)) }
        if (r + round) % 2 == 1 { usleep(1000) }  // out of step
        try v.withUnsafeMutableBufferPointer {
          try exchange.reduceScatterSum($0, counts: counts, name: "test reduce-scatter")
        }
        let rankSum = Float(n * (n - 1) / 2 * (round + 1))
        let expected = mine.map { Float(($0 + round) % 101) * 0.25 * Float(n) + rankSum }
        XCTAssertEqual(Array(v[mine]), expected, "\(exchange.transport): round \(round)")
        for i in mine { v[i] = -Float(i) - Float(r) / 8 }
        if (r + round) % 3 == 0 { usleep(1000) }
        try v.withUnsafeMutableBufferPointer {
          try exchange.allgatherBlocks($0, counts: counts, name: "test all-gather blocks")
        }
        let owner = { (i: Int) in (0..<n).first { i < counts[...$0].reduce(0, +) }! }
        XCTAssertEqual(v, (0..<total).map { -Float($0) - Float(owner($0)) / 8 },
                       "\(exchange.transport): round \(round)")
      }
    }
  }

  /// A buffer larger than the staging area is refused by name, on every rank alike (all pass
  /// the same size), before any communication.
  func testSharedMemoryLimits() throws {
    try TestRanks.requireSeveralRanks(world.size, "the shared-memory window")
    let shared = try XCTUnwrap(try SharedMemoryShardExchange.make(communicator: world,
                                                                   capacity: 10),
                               "all ranks on one node: the shared-memory exchange exists")
    var big = [Float](repeating: 1, count: 11)
    let counts = (0..<world.size).map { 11 / world.size + ($0 < 11 % world.size ? 1 : 0) }
    XCTAssertThrowsError(try big.withUnsafeMutableBufferPointer {
      try shared.reduceScatterSum($0, counts: counts, name: "too big")
    }) { XCTAssert("\($0)".contains("too big") && "\($0)".contains("staging area"), "\($0)") }
  }
}
