import ElboTrain
import XCTest

final class SharderTests: XCTestCase {
  func testPermutationIsDeterministicPerEpochAndAPermutation() {
    let s = Sharder(itemCount: 1000, seed: 7)
    XCTAssertEqual(s.permutation(epoch: 3), s.permutation(epoch: 3))
    XCTAssertNotEqual(s.permutation(epoch: 3), s.permutation(epoch: 4))
    XCTAssertEqual(s.permutation(epoch: 5).sorted(), Array(0..<1000))
    XCTAssertNotEqual(Sharder(itemCount: 1000, seed: 8).permutation(epoch: 3),
                      s.permutation(epoch: 3))
  }

  func testSharesPartitionTheBatchForEveryRankCount() {
    for total in [1, 7, 100, 101] {
      for size in 1...5 {
        let shares = (0..<size).map { Sharder.share(of: total, rank: $0, size: size) }
        XCTAssertEqual(shares.first?.lowerBound, 0)
        XCTAssertEqual(shares.last?.upperBound, total)
        for r in 1..<size { XCTAssertEqual(shares[r - 1].upperBound, shares[r].lowerBound) }
        let counts = shares.map(\.count)
        XCTAssertLessThanOrEqual(counts.max()! - counts.min()!, 1, "balanced \(total)/\(size)")
      }
    }
  }

  func testStepsPerEpochDropsOnlyTheLastPartialBatch() {
    XCTAssertEqual(Sharder(itemCount: 4000, seed: 0).stepsPerEpoch(globalBatch: 100), 40)
    XCTAssertEqual(Sharder(itemCount: 4050, seed: 0).stepsPerEpoch(globalBatch: 100), 40)
  }
}
