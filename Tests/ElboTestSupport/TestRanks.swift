import Foundation
import XCTest

/// The number of ranks launch/test started this job with, read from `ELBO_TEST_RANKS` (1 when
/// unset, as in a plain `swift test`). Multi-rank test classes assert that the communicator they
/// got has this size, so ranks started as singletons (each rank its own world of one, e.g. a
/// missing or mismatched MPI launcher) fail instead of passing through their size-1 branches.
public enum TestRanks {
  public static var expected: Int {
    Int(ProcessInfo.processInfo.environment["ELBO_TEST_RANKS"] ?? "") ?? 1
  }

  /// Fails unless `size` (the world's) is the launched size.
  public static func assertWorldSize(_ size: Int, file: StaticString = #filePath,
                                     line: UInt = #line) {
    XCTAssertEqual(size, expected, "the world has \(size) ranks, but ELBO_TEST_RANKS = "
      + "\(expected): the ranks were not started as one job", file: file, line: line)
  }

  /// For a test, or the part of one, that means something only with several ranks: on one rank
  /// it is skipped with a notice, and only when one rank was launched (launch/test runs the
  /// class again under mpirun, where the skip counts as a failure).
  public static func requireSeveralRanks(_ size: Int, _ what: String) throws {
    if size == 1 && expected == 1 {
      throw XCTSkip("\(what) needs several ranks: launch/test runs it under mpirun -np 2 and 3")
    }
    assertWorldSize(size)
  }
}
