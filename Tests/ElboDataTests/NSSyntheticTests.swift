import ElboData
import XCTest

/// The synthetic 1-D families: deterministic in (seed, split), each family's sample mean and
/// variance match the set's parameters, parameters in their ranges, sizes in range.
final class NSSyntheticTests: XCTestCase {
  func testDeterministicAndSplitsDiffer() {
    let a = NSSynthetic.make(seed: 5, datasets: 20, points: 30)
    let b = NSSynthetic.make(seed: 5, datasets: 20, points: 30)
    let c = NSSynthetic.make(seed: 5, split: 1, datasets: 20, points: 30)
    XCTAssertEqual(a.points, b.points)
    XCTAssertEqual(a.family, b.family)
    XCTAssertNotEqual(a.points, c.points)
    // A set does not depend on how many others are made.
    let d = NSSynthetic.make(seed: 5, datasets: 5, points: 30)
    XCTAssertEqual(Array(a.points[..<150]), d.points)
    XCTAssertEqual(a.offsets, Array(stride(from: 0, through: 600, by: 30)))
  }

  func testMomentsMatchParameters() {
    let n = 20_000
    let c = NSSynthetic.make(seed: 9, datasets: 40, points: n)
    var seen = Set<Int>()
    for i in 0..<c.count {
      let x = c.points[c.rows(i)].map(Double.init)
      let mean = x.reduce(0, +) / Double(n)
      let variance = x.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(n - 1)
      let mu = Double(c.mean[i]), v = Double(c.variance[i])
      XCTAssert((-1...1).contains(mu) && (0.5...2).contains(v))
      // Standard error of the mean is σ/√n ≈ 0.01; of the variance ≈ σ²·√((κ−1)/n) ≤ 0.05σ².
      XCTAssertEqual(mean, mu, accuracy: 0.05, "set \(i) family \(c.family[i]) mean")
      XCTAssertEqual(variance, v, accuracy: 0.1 * v, "set \(i) family \(c.family[i]) variance")
      seen.insert(c.family[i])
      if c.family[i] == NSSynthetic.Family.uniform.rawValue {
        let half = (3 * v).squareRoot()
        XCTAssert(x.allSatisfy { abs($0 - mu) <= half + 1e-4 }, "uniform support")
      }
      if c.family[i] == NSSynthetic.Family.exponential.rawValue {
        XCTAssert(x.allSatisfy { $0 >= mu - v.squareRoot() - 1e-4 }, "exponential support")
      }
    }
    XCTAssertEqual(seen.count, 4, "all four families appear")
  }

  func testUnequalSizes() {
    let c = NSSynthetic.make(seed: 2, datasets: 50, points: 10, minPoints: 3)
    let sizes = (0..<c.count).map { c.rows($0).count }
    XCTAssert(sizes.allSatisfy { (3...10).contains($0) })
    XCTAssertGreaterThan(Set(sizes).count, 3)
  }
}
