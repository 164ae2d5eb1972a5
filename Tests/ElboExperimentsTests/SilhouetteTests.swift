import ElboExperiments
import XCTest

/// The silhouette score against answers worked out by hand.
final class SilhouetteTests: XCTestCase {
  /// Clusters {0, 1} and {4, 5} on a line: s(0) = (4.5 − 1)/4.5, s(1) = (3.5 − 1)/3.5, and the
  /// same for the mirror images, so the mean is (3.5/4.5 + 2.5/3.5)/2.
  func testTwoClustersOnALine() {
    let s = silhouetteScore([[0], [1], [4], [5]], labels: [7, 7, 2, 2])
    XCTAssertEqual(s!, (3.5 / 4.5 + 2.5 / 3.5) / 2, accuracy: 1e-12)
  }

  /// A singleton cluster scores 0; a 2-D case: A = {(0,0), (0,2)}, B = {(3,0)}.
  /// s(A₁) = (3 − 2)/3, s(A₂) = (√13 − 2)/√13, s(B) = 0.
  func testSingletonAndTwoDimensions() {
    let s = silhouetteScore([[0, 0], [0, 2], [3, 0]], labels: [0, 0, 1])
    let r13: Double = 13.0.squareRoot()
    let a2: Double = (r13 - 2) / r13
    let want: Double = (1.0 / 3 + a2) / 3
    XCTAssertEqual(s!, want, accuracy: 1e-12)
    XCTAssertNil(silhouetteScore([[0], [1]], labels: [1, 1]))
  }

  /// Mixed-up labels score below well-separated ones.
  func testWorseClusteringScoresLower() {
    let points: [[Double]] = [[0], [0.1], [5], [5.1]]
    XCTAssertGreaterThan(silhouetteScore(points, labels: [0, 0, 1, 1])!,
                         silhouetteScore(points, labels: [0, 1, 0, 1])!)
  }
}
