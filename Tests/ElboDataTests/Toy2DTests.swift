import ElboData
import Foundation
import XCTest

/// The 2-D toys: deterministic in the seed, independent splits, and on their known supports.
final class Toy2DTests: XCTestCase {
  func testPointsAreDeterministicAndSplitsDiffer() {
    for toy in Toy2D.allCases {
      let a = toy.points(count: 50, seed: 3, split: .train)
      XCTAssertEqual(a, toy.points(count: 50, seed: 3, split: .train), toy.rawValue)
      XCTAssertNotEqual(a, toy.points(count: 50, seed: 3, split: .test), toy.rawValue)
      XCTAssertNotEqual(a, toy.points(count: 50, seed: 4, split: .train), toy.rawValue)
      // A prefix of a larger set: point i does not depend on the count.
      XCTAssertEqual(Array(toy.points(count: 80, seed: 3, split: .train).prefix(100)), a)
    }
  }

  func testCheckerboardPointsLieOnTheDarkSquaresWithDensityOneEighth() {
    let p = Toy2D.checkerboard.points(count: 4000, seed: 1, split: .train)
    var perSquare = [Int](repeating: 0, count: 16)
    for i in 0..<4000 {
      let (a, b) = (Double(p[2 * i]), Double(p[2 * i + 1]))
      XCTAssertEqual(Toy2D.checkerboard.logDensity(a, b)!, -log(8.0), "(\(a), \(b))")
      perSquare[Int(floor(a) + 2) * 4 + Int(floor(b) + 2)] += 1
    }
    // 8 squares used, each ≈ 500 times (binomial sd ≈ 21).
    XCTAssertEqual(perSquare.filter { $0 > 0 }.count, 8)
    XCTAssertTrue(perSquare.filter { $0 > 0 }.allSatisfy { abs($0 - 500) < 100 }, "\(perSquare)")
    XCTAssertEqual(Toy2D.checkerboard.logDensity(0.5, 1.5)!, -.infinity)   // a light square
  }

  func testEightGaussiansDensityIntegratesToOneAndMatchesItsPoints() {
    let g = Toy2D.eightGaussians
    var mass = 0.0
    let h = 0.02
    for i in 0..<400 {
      for j in 0..<400 {
        mass += exp(g.logDensity(-4 + (Double(i) + 0.5) * h, -4 + (Double(j) + 0.5) * h)!) * h * h
      }
    }
    XCTAssertEqual(mass, 1, accuracy: 1e-4)
    // The mean log-density of its own points is minus its entropy: log(8·2πσ²) + 1 − … for
    // well-separated components, ≈ −(1 + log(2π·0.04) + log 8) = −1.7355 (± a few sd/√n).
    let p = g.points(count: 5000, seed: 2, split: .train)
    let mean = (0..<5000).map { g.logDensity(Double(p[2 * $0]), Double(p[2 * $0 + 1]))! }
      .reduce(0, +) / 5000
    XCTAssertEqual(mean, -(1 + log(2 * Double.pi * 0.04) + log(8.0)), accuracy: 0.05)
  }
}
