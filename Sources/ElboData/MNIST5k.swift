import Foundation

/// File name of the bundled MNIST subset (see `data/README.md`).
public let mnist5kFileName = "mnist_5k.csv.gz"

/// Rows in the MNIST-5k CSV: 500 per digit.
let mnist5kRows = 5000
/// Pixels per MNIST image (28×28).
let mnist5kPixels = 784
/// Rows of each class that go to the training set; the remaining 100 go to the test set.
let mnist5kTrainPerClass = 400
/// Rows of each class in the file.
let mnist5kPerClass = 500

/// Loads MNIST-5k: 5,000 real MNIST digits, split 4,000 train / 1,000 test.
///
/// The split is fixed and stratified: within each digit class, the first 400 rows of the file
/// go to training and the last 100 to test, so every class has 400/100 images and the split
/// never depends on a seed. Both sets keep file order (sorted by label); shuffling is the
/// training loop's job. With `path == nil` the file is found by `locateMNIST5k()`.
public func loadMNIST5k(path: String? = nil) throws -> ImageSplit {
  let file = try path ?? locateMNIST5k()
  return try parseMNIST5k(readDataFile(file), path: file)
}

/// Finds `mnist_5k.csv.gz` without configuration.
///
/// Looks, in order, in `$ELBO_DATA_DIR` (if set), then for `data/mnist_5k.csv.gz` in the
/// current directory and each of its parents, then likewise upward from the running
/// executable's directory (`/proc/self/exe`, then `CommandLine.arguments[0]`), and finally
/// upward from this source file's build-time location, which finds the repository when
/// running `swift test` or `swift run` from anywhere.
public func locateMNIST5k() throws -> String {
  let fm = FileManager.default
  var searched: [String] = []
  if let dir = ProcessInfo.processInfo.environment["ELBO_DATA_DIR"], !dir.isEmpty {
    let candidate = (dir as NSString).appendingPathComponent(mnist5kFileName)
    if fm.fileExists(atPath: candidate) { return candidate }
    searched.append("$ELBO_DATA_DIR=\(dir)")
  }
  var starts = [fm.currentDirectoryPath]
  if let exe = resolvedPath("/proc/self/exe") {
    starts.append((exe as NSString).deletingLastPathComponent)
  }
  if let arg0 = CommandLine.arguments.first, arg0.contains("/"), let exe = resolvedPath(arg0) {
    starts.append((exe as NSString).deletingLastPathComponent)
  }
  starts.append(((#filePath as String) as NSString).deletingLastPathComponent)

  for start in starts where !start.isEmpty {
    var dir = start
    while true {
      let candidate = (dir as NSString).appendingPathComponent("data/" + mnist5kFileName)
      if fm.fileExists(atPath: candidate) { return candidate }
      let parent = (dir as NSString).deletingLastPathComponent
      if parent == dir || parent.isEmpty { break }
      dir = parent
    }
    searched.append("data/ above \(start)")
  }
  throw DataError(
    mnist5kFileName,
    "not found (searched \(searched.joined(separator: ", "))); "
      + "set ELBO_DATA_DIR to the directory holding it or pass its path")
}

/// The canonical absolute path of `path` with symlinks resolved, or `nil` if it does not exist.
private func resolvedPath(_ path: String) -> String? {
  guard let resolved = realpath(path, nil) else { return nil }
  defer { free(resolved) }
  return String(cString: resolved)
}

/// Parses the MNIST-5k CSV (already decompressed) and applies the fixed 400/100 split.
///
/// Strict: exactly 5,000 lines of 785 comma-separated integers, 784 pixels in 0–255 then a
/// label in 0–9, exactly 500 rows per label. Errors name `path` and the 1-based line number.
/// The bytes are scanned directly: splitting 9 MB of text into Strings would dominate load
/// time in debug builds.
public func parseMNIST5k(_ bytes: [UInt8], path: String) throws -> ImageSplit {
  var pixels = [UInt8](repeating: 0, count: mnist5kRows * mnist5kPixels)
  var labels = [Int32](repeating: 0, count: mnist5kRows)
  let fields = mnist5kPixels + 1

  let lines = try bytes.withUnsafeBufferPointer { b -> Int in
    try pixels.withUnsafeMutableBufferPointer { px -> Int in
      let n = b.count
      var i = 0
      var line = 0
      while i < n {
        line += 1
        guard line <= mnist5kRows else {
          throw DataError(path, "line \(line): unexpected content after \(mnist5kRows) rows")
        }
        var field = 0
        while true {
          field += 1
          var value = 0
          var digits = 0
          while i < n, b[i] &- 48 < 10 {
            // Saturate so that absurdly long digit runs cannot overflow.
            value = min(value &* 10 &+ Int(b[i] &- 48), 1_000_000)
            digits += 1
            i += 1
          }
          guard digits > 0 else {
            throw DataError(
              path,
              "line \(line), field \(field): expected an integer, found \(describe(b, at: i))")
          }
          if field <= mnist5kPixels {
            guard value <= 255 else {
              throw DataError(
                path, "line \(line), field \(field): pixel value \(value) is outside 0–255")
            }
            px[(line - 1) * mnist5kPixels + field - 1] = UInt8(value)
          } else {
            guard value <= 9 else {
              throw DataError(path, "line \(line), field \(field): label \(value) is not 0–9")
            }
            labels[line - 1] = Int32(value)
          }
          if i < n && b[i] == UInt8(ascii: ",") {
            guard field < fields else {
              throw DataError(path, "line \(line): more than \(fields) fields")
            }
            i += 1
            continue
          }
          // End of row: newline (LF or CRLF) or end of file.
          if i < n && b[i] == UInt8(ascii: "\r") && i + 1 < n && b[i + 1] == UInt8(ascii: "\n") {
            i += 2
          } else if i < n && b[i] == UInt8(ascii: "\n") {
            i += 1
          } else if i < n {
            throw DataError(
              path, "line \(line), field \(field): unexpected \(describe(b, at: i))")
          }
          break
        }
        guard field == fields else {
          throw DataError(path, "line \(line): \(field) fields, expected \(fields)")
        }
      }
      return line
    }
  }
  guard lines == mnist5kRows else {
    throw DataError(path, "\(lines) rows, expected \(mnist5kRows)")
  }

  // Stratified fixed split: the k-th row of each class goes to train when k < 400.
  var seen = [Int](repeating: 0, count: 10)
  var trainRows: [Int] = []
  var testRows: [Int] = []
  trainRows.reserveCapacity(10 * mnist5kTrainPerClass)
  testRows.reserveCapacity(10 * (mnist5kPerClass - mnist5kTrainPerClass))
  for (row, label) in labels.enumerated() {
    let c = Int(label)
    if seen[c] < mnist5kTrainPerClass { trainRows.append(row) } else { testRows.append(row) }
    seen[c] += 1
  }
  if let c = seen.firstIndex(where: { $0 != mnist5kPerClass }) {
    throw DataError(path, "label \(c) has \(seen[c]) rows, expected \(mnist5kPerClass)")
  }

  func subset(_ rows: [Int], _ name: String) -> ImageDataset {
    var bytesOut: [UInt8] = []
    bytesOut.reserveCapacity(rows.count * mnist5kPixels)
    for r in rows {
      bytesOut.append(contentsOf: pixels[(r * mnist5kPixels)..<((r + 1) * mnist5kPixels)])
    }
    return ImageDataset(
      unchecked: name, rows: 28, cols: 28, pixels: intensities(bytesOut),
      labels: rows.map { labels[$0] })
  }
  return ImageSplit(
    train: subset(trainRows, "mnist-5k/train"), test: subset(testRows, "mnist-5k/test"))
}

/// Describes the byte at `i` for an error message: `'x'`, `byte 0x07` or `end of line/file`.
private func describe(_ b: UnsafeBufferPointer<UInt8>, at i: Int) -> String {
  guard i < b.count else { return "end of file" }
  let c = b[i]
  if c == UInt8(ascii: "\n") || c == UInt8(ascii: "\r") { return "end of line" }
  if c >= 0x21 && c < 0x7f { return "'\(Character(Unicode.Scalar(c)))'" }
  return String(format: "byte 0x%02x", c)
}
