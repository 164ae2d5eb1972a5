import ElboData
import Foundation
import XCTest

/// Checks the real data sets: Fashion-MNIST from Debian and the bundled MNIST-5k.
final class DatasetTests: XCTestCase {
  /// Smallest and largest value, in one pass over raw memory (debug test builds are slow).
  func range(_ values: [Float]) -> (Float, Float) {
    values.withUnsafeBufferPointer { v in
      var lo = Float.infinity
      var hi = -Float.infinity
      for i in 0..<v.count {
        lo = Swift.min(lo, v[i])
        hi = Swift.max(hi, v[i])
      }
      return (lo, hi)
    }
  }

  func testFashionMNISTLoads() throws {
    guard FileManager.default.fileExists(atPath: defaultFashionMNISTDirectory) else {
      throw XCTSkip(
        "\(defaultFashionMNISTDirectory) absent (apt-get install dataset-fashion-mnist)")
    }
    let start = Date()
    let split = try loadFashionMNIST()
    print("Fashion-MNIST loaded in \(Date().timeIntervalSince(start)) s")
    for (set, count) in [(split.train, 60_000), (split.test, 10_000)] {
      XCTAssertEqual(set.count, count)
      XCTAssertEqual(set.rows, 28)
      XCTAssertEqual(set.cols, 28)
      XCTAssertEqual(set.pixels.count, count * 784)
      XCTAssertEqual(set.labels.count, count)
      XCTAssertEqual(Set(set.labels), Set(0...9))
      let (lo, hi) = range(set.pixels)
      XCTAssertEqual(lo, 0)
      XCTAssertEqual(hi, 1)
    }
    // Fashion-MNIST is class-balanced: 6,000 / 1,000 per class.
    XCTAssertEqual(split.train.labels.filter { $0 == 3 }.count, 6_000)
    XCTAssertEqual(split.test.labels.filter { $0 == 3 }.count, 1_000)
    XCTAssertEqual(try DatasetCatalog.load("fashion-mnist").test.count, 10_000)
  }

  func testFashionMNISTMissingDirectorySuggestsPackage() {
    XCTAssertThrowsError(try loadFashionMNIST(directory: "/nonexistent/fashion")) { error in
      let text = String(describing: error)
      XCTAssertTrue(text.contains("/nonexistent/fashion"), text)
      XCTAssertTrue(text.contains("apt-get install dataset-fashion-mnist"), text)
    }
  }

  func testMNIST5kLoadsWithFixedStratifiedSplit() throws {
    let start = Date()
    let split = try loadMNIST5k()
    print("MNIST-5k loaded in \(Date().timeIntervalSince(start)) s")
    XCTAssertEqual(split.train.count, 4_000)
    XCTAssertEqual(split.test.count, 1_000)
    for set in [split.train, split.test] {
      XCTAssertEqual(set.rows, 28)
      XCTAssertEqual(set.cols, 28)
      XCTAssertEqual(set.pixels.count, set.count * 784)
      let (lo, hi) = range(set.pixels)
      XCTAssertGreaterThanOrEqual(lo, 0)
      XCTAssertLessThanOrEqual(hi, 1)
    }
    for c: Int32 in 0...9 {
      XCTAssertEqual(split.train.labels.filter { $0 == c }.count, 400)
      XCTAssertEqual(split.test.labels.filter { $0 == c }.count, 100)
    }
    // The file is sorted by label, so both halves are too.
    XCTAssertEqual(split.train.labels, split.train.labels.sorted())
    // MNIST's mean pixel intensity is about 0.13 (0.1307 on the full training set).
    let all = split.train.pixels + split.test.pixels
    let mean = all.reduce(0, +) / Float(all.count)
    XCTAssertEqual(mean, 0.13, accuracy: 0.015)
    // The first image of the file is a zero, with ink roughly in the middle.
    XCTAssertEqual(split.train.labels[0], 0)
    XCTAssertGreaterThan(split.train.pixels[(14 * 28)..<(15 * 28)].reduce(0, +), 1)
    XCTAssertEqual(try DatasetCatalog.load("mnist-5k").test.count, 1_000)
  }

  func testMNIST5kStrictParsing() throws {
    let path = try locateMNIST5k()
    let good = try readDataFile(path)
    // Byte offsets where each line starts (1-based line numbers in errors).
    var lineStart = [0]
    good.withUnsafeBufferPointer { b in
      for i in 0..<b.count where b[i] == 10 { lineStart.append(i + 1) }
    }

    func expectError(_ bytes: [UInt8], _ phrase: String, line: UInt = #line) {
      XCTAssertThrowsError(try parseMNIST5k(bytes, path: "/x/mnist_5k.csv"), line: line) {
        let text = String(describing: $0)
        XCTAssertTrue(text.hasPrefix("/x/mnist_5k.csv: "), text, line: line)
        XCTAssertTrue(text.contains(phrase), "'\(text)' lacks '\(phrase)'", line: line)
      }
    }

    var bad = good
    bad[lineStart[2]] = UInt8(ascii: "x")
    expectError(bad, "line 3, field 1: expected an integer, found 'x'")

    bad = good
    bad.replaceSubrange(lineStart[9]..<(lineStart[9] + 1), with: Array("256".utf8))
    expectError(bad, "line 10, field 1: pixel value 256 is outside 0–255")

    bad = good
    bad.insert(contentsOf: Array(",0".utf8), at: lineStart[4] - 1)
    expectError(bad, "line 4: more than 785 fields")

    bad = good
    bad.removeSubrange((lineStart[6] - 3)..<(lineStart[6] - 1))  // drops ",<label>"
    expectError(bad, "line 6: 784 fields, expected 785")

    expectError(Array(good[..<lineStart[4999]]), "4999 rows, expected 5000")
    expectError(good + Array("\n".utf8), "line 5001: unexpected content after 5000 rows")

    bad = good
    bad[lineStart[5000] - 2] = UInt8(ascii: "8")  // last row's label 9 → 8
    expectError(bad, "label 8 has 501 rows, expected 500")

    XCTAssertNoThrow(try parseMNIST5k(good, path: path))
  }

  func testMNIST5kFoundThroughEnvironment() throws {
    let dir = NSTemporaryDirectory() + "elbo-env-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let copy = (dir as NSString).appendingPathComponent(mnist5kFileName)
    try FileManager.default.copyItem(atPath: try locateMNIST5k(), toPath: copy)
    setenv("ELBO_DATA_DIR", dir, 1)
    defer { unsetenv("ELBO_DATA_DIR") }
    XCTAssertEqual(try locateMNIST5k(), copy)
  }

  func testMNIST5kMissingFileErrors() {
    XCTAssertThrowsError(try loadMNIST5k(path: "/nonexistent/mnist_5k.csv.gz")) {
      let text = String(describing: $0)
      XCTAssertTrue(text.contains("/nonexistent/mnist_5k.csv.gz: no such file"), text)
    }
  }
}
