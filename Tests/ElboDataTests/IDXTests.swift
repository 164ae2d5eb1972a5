import ElboData
import Foundation
import XCTest

/// Builds small IDX files in a temporary directory and checks the strict reader.
final class IDXTests: XCTestCase {
  var dir = ""

  override func setUpWithError() throws {
    dir = NSTemporaryDirectory() + "elbo-idx-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
  }

  override func tearDownWithError() throws {
    try? FileManager.default.removeItem(atPath: dir)
  }

  // MARK: - Fixtures

  /// The IDX encoding of `count` images of `rows × cols` with the given payload.
  func imageFile(count: Int, rows: Int, cols: Int, payload: [UInt8], magic: UInt32 = 0x803)
    -> [UInt8]
  {
    be32(magic) + be32(UInt32(count)) + be32(UInt32(rows)) + be32(UInt32(cols)) + payload
  }

  /// The IDX encoding of a label file.
  func labelFile(_ labels: [UInt8], count: Int? = nil, magic: UInt32 = 0x801) -> [UInt8] {
    be32(magic) + be32(UInt32(count ?? labels.count)) + labels
  }

  func be32(_ v: UInt32) -> [UInt8] {
    [UInt8(v >> 24), UInt8((v >> 16) & 0xff), UInt8((v >> 8) & 0xff), UInt8(v & 0xff)]
  }

  @discardableResult
  func write(_ name: String, _ bytes: [UInt8], gzip: Bool = false) throws -> String {
    let path = (dir as NSString).appendingPathComponent(name + (gzip ? ".gz" : ""))
    let data = gzip ? try gzipCompress(bytes) : bytes
    try Data(data).write(to: URL(fileURLWithPath: path))
    return path
  }

  /// Writes a complete, valid directory: 3 training and 2 test images of 2×3.
  func writeValidDirectory(gzip: Bool) throws {
    try write("train-images-idx3-ubyte", imageFile(
      count: 3, rows: 2, cols: 3, payload: (0..<18).map { UInt8($0 * 15) }), gzip: gzip)
    try write("train-labels-idx1-ubyte", labelFile([7, 0, 9]), gzip: gzip)
    try write("t10k-images-idx3-ubyte", imageFile(
      count: 2, rows: 2, cols: 3, payload: [UInt8](repeating: 255, count: 6)
        + [UInt8](repeating: 1, count: 6)), gzip: gzip)
    try write("t10k-labels-idx1-ubyte", labelFile([3, 4]), gzip: gzip)
  }

  /// Asserts that `body` throws a one-line `DataError` containing `file` and `phrase`.
  func assertDataError(
    _ file: String, _ phrase: String, line: UInt = #line, _ body: () throws -> Void
  ) {
    do {
      try body()
      XCTFail("expected a DataError containing '\(phrase)'", line: line)
    } catch let error as DataError {
      let text = error.description
      XCTAssertTrue(text.contains(file), "'\(text)' does not name \(file)", line: line)
      XCTAssertTrue(text.contains(phrase), "'\(text)' lacks '\(phrase)'", line: line)
      XCTAssertFalse(text.contains("\n"), "multi-line error: \(text)", line: line)
    } catch {
      XCTFail("expected DataError, got \(error)", line: line)
    }
  }

  // MARK: - Round trips

  func testRoundTripPlainAndGzip() throws {
    for gzip in [false, true] {
      try? FileManager.default.removeItem(atPath: dir)
      try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
      try writeValidDirectory(gzip: gzip)
      let split = try loadIDXDirectory(dir)
      XCTAssertEqual(split.train.count, 3)
      XCTAssertEqual(split.train.rows, 2)
      XCTAssertEqual(split.train.cols, 3)
      XCTAssertEqual(split.train.dimension, 6)
      XCTAssertEqual(split.train.labels, [7, 0, 9])
      XCTAssertEqual(split.train.pixels, (0..<18).map { Float($0 * 15) / 255 })
      XCTAssertEqual(split.test.count, 2)
      XCTAssertEqual(split.test.labels, [3, 4])
      XCTAssertEqual(split.test.pixels, [Float](repeating: 1, count: 6)
        + [Float](repeating: Float(1) / 255, count: 6))
    }
  }

  func testGzipHelpersRoundTripIncludingConcatenatedMembers() throws {
    let a: [UInt8] = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 / 7) }
    let b: [UInt8] = Array("hello".utf8)
    XCTAssertEqual(try gunzip(try gzipCompress(a), path: "x"), a)
    XCTAssertEqual(try gunzip(try gzipCompress(a) + gzipCompress(b), path: "x"), a + b)
    XCTAssertEqual(try gunzip(try gzipCompress([]), path: "x"), [])
  }

  // MARK: - Bad inputs

  func testWrongMagic() throws {
    let images = try write("imgs", imageFile(count: 1, rows: 1, cols: 1, payload: [0],
                                             magic: 0x802))
    assertDataError(images, "bad IDX magic 0x00000802, expected 0x00000803 (images)") {
      _ = try readIDXImages(images)
    }
    let labels = try write("lbls", labelFile([1], magic: 0x803))
    assertDataError(labels, "bad IDX magic 0x00000803, expected 0x00000801 (labels)") {
      _ = try readIDXLabels(labels)
    }
  }

  func testWrongDimensions() throws {
    let images = try write("imgs", imageFile(count: 1, rows: 0, cols: 5, payload: []))
    assertDataError(images, "bad IDX dimensions 1×0×5") { _ = try readIDXImages(images) }
    let header = try write("short", [0, 0, 8, 3, 0, 0, 0, 1])
    assertDataError(header, "truncated IDX header") { _ = try readIDXImages(header) }
    let tiny = try write("tiny", [0, 0])
    assertDataError(tiny, "too short for an IDX header") { _ = try readIDXLabels(tiny) }
  }

  func testPayloadShorterOrLonger() throws {
    let short = try write("short", imageFile(count: 2, rows: 2, cols: 2, payload: [1, 2, 3]))
    assertDataError(short, "IDX payload too short: 3 bytes, header 2×2×2 needs 8") {
      _ = try readIDXImages(short)
    }
    let long = try write("long", labelFile([1, 2, 3], count: 2), gzip: true)
    assertDataError(long, "IDX payload too long: 3 bytes, header 2 needs 2") {
      _ = try readIDXLabels(long)
    }
  }

  func testTruncatedGzip() throws {
    let payload = (0..<5000).map { UInt8(truncatingIfNeeded: $0 * 7 + $0 / 13) }
    let full = try gzipCompress(imageFile(count: 5, rows: 10, cols: 100, payload: payload))
    let path = (dir as NSString).appendingPathComponent("train-images-idx3-ubyte.gz")
    try Data(full.prefix(full.count / 2)).write(to: URL(fileURLWithPath: path))
    assertDataError(path, "truncated gzip stream (inflate stopped after") {
      _ = try readIDXImages(path)
    }
    // Only the 8-byte CRC/length trailer missing: still truncated, not silently accepted.
    try Data(full.dropLast(8)).write(to: URL(fileURLWithPath: path))
    assertDataError(path, "truncated gzip stream") { _ = try readIDXImages(path) }
  }

  func testCorruptGzip() throws {
    let payload = (0..<5000).map { UInt8(truncatingIfNeeded: $0 * 7 + $0 / 13) }
    var bytes = try gzipCompress(imageFile(count: 5, rows: 10, cols: 100, payload: payload))
    // A wrong CRC trailer: zlib verifies it, so this must be caught even though the deflate
    // data itself is intact.
    bytes[bytes.count - 6] ^= 0xff
    let crc = try write("crc.gz", [])
    try Data(bytes).write(to: URL(fileURLWithPath: crc))
    assertDataError(crc, "corrupt gzip stream") { _ = try readIDXImages(crc) }

    let garbage = try write("garbage.gz", [0x1f, 0x8b] + [UInt8](repeating: 0xff, count: 40))
    assertDataError(garbage, "corrupt gzip stream") { _ = try readIDXImages(garbage) }

    let trailing = try write("trailing.gz", [])
    let good = try gzipCompress(labelFile([1, 2]))
    try Data(good + [0, 0, 0]).write(to: URL(fileURLWithPath: trailing))
    assertDataError(trailing, "3 bytes of trailing garbage") { _ = try readIDXLabels(trailing) }

    let notGzip = try write("plain.gz", labelFile([1]))
    assertDataError(notGzip, "not gzip data") { _ = try readIDXLabels(notGzip) }
  }

  func testEmptyAndMissingFiles() throws {
    let empty = try write("empty", [])
    assertDataError(empty, "empty file") { _ = try readIDXImages(empty) }
    let missing = (dir as NSString).appendingPathComponent("nope-idx3-ubyte")
    assertDataError(missing, "no such file") { _ = try readIDXImages(missing) }
    assertDataError(dir, "is a directory") { _ = try readIDXImages(dir) }
  }

  func testMissingFileInDirectory() throws {
    try writeValidDirectory(gzip: true)
    try FileManager.default.removeItem(
      atPath: (dir as NSString).appendingPathComponent("t10k-labels-idx1-ubyte.gz"))
    assertDataError(dir, "missing IDX file t10k-labels-idx1-ubyte") {
      _ = try loadIDXDirectory(dir)
    }
    let nowhere = dir + "/does-not-exist"
    assertDataError(nowhere, "no such directory") { _ = try loadIDXDirectory(nowhere) }
  }

  func testImageLabelCountMismatch() throws {
    try writeValidDirectory(gzip: false)
    let labels = try write("train-labels-idx1-ubyte", labelFile([7, 0]))
    let images = (dir as NSString).appendingPathComponent("train-images-idx3-ubyte")
    assertDataError(images, "3 images but labels file \(labels) has 2 labels") {
      _ = try loadIDXDirectory(dir)
    }
  }

  func testTrainTestSizeMismatch() throws {
    try writeValidDirectory(gzip: false)
    let test = try write("t10k-images-idx3-ubyte", imageFile(
      count: 2, rows: 3, cols: 2, payload: [UInt8](repeating: 0, count: 12)))
    assertDataError(test, "test images are 3×2 but training images") {
      _ = try loadIDXDirectory(dir)
    }
  }

  func testCatalogLoadsDirectoryAndRejectsUnknownNames() throws {
    try writeValidDirectory(gzip: true)
    XCTAssertEqual(try DatasetCatalog.load(dir).train.count, 3)
    XCTAssertThrowsError(try DatasetCatalog.load("cifar-100")) { error in
      XCTAssertEqual(
        (error as? DataError)?.description,
        "unknown data set 'cifar-100': use fashion-mnist, mnist-5k or a directory of IDX files")
    }
  }

  func testImageDatasetInitValidatesShape() throws {
    let ok = try ImageDataset(name: "t", rows: 1, cols: 2, pixels: [0, 1, 1, 0], labels: [0, 1])
    XCTAssertEqual(ok.count, 2)
    XCTAssertThrowsError(
      try ImageDataset(name: "t", rows: 1, cols: 2, pixels: [0, 1, 1], labels: [0, 1]))
    XCTAssertThrowsError(try ImageDataset(name: "t", rows: 0, cols: 2, pixels: [], labels: []))
  }
}
