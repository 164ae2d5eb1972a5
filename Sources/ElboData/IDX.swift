import Foundation

/// The magic number of an IDX file of unsigned bytes with one dimension (labels).
let idxLabelsMagic: UInt32 = 0x0000_0801
/// The magic number of an IDX file of unsigned bytes with three dimensions (images).
let idxImagesMagic: UInt32 = 0x0000_0803

/// The raw contents of an IDX image file (LeCun's `*-images-idx3-ubyte` format).
public struct IDXImages: Sendable {
  /// Number of images.
  public let count: Int
  /// Image height.
  public let rows: Int
  /// Image width.
  public let cols: Int
  /// `count × rows × cols` bytes, image after image, row-major.
  public let bytes: [UInt8]
}

/// Reads an IDX image file (plain or gzip), checking magic, dimensions and payload length.
public func readIDXImages(_ path: String) throws -> IDXImages {
  let file = try readDataFile(path)
  let dims = try idxHeader(file, path: path, magic: idxImagesMagic, kind: "images")
  let (count, rows, cols) = (dims[0], dims[1], dims[2])
  guard count > 0, rows > 0, cols > 0 else {
    throw DataError(path, "bad IDX dimensions \(count)×\(rows)×\(cols) (all must be positive)")
  }
  let need = try idxPayloadSize([count, rows, cols], path: path)
  try checkPayload(file, offset: 16, need: need, shape: "\(count)×\(rows)×\(cols)", path: path)
  return IDXImages(count: count, rows: rows, cols: cols, bytes: Array(file[16...]))
}

/// Reads an IDX label file (plain or gzip), checking magic and payload length.
public func readIDXLabels(_ path: String) throws -> [UInt8] {
  let file = try readDataFile(path)
  let dims = try idxHeader(file, path: path, magic: idxLabelsMagic, kind: "labels")
  let count = dims[0]
  guard count > 0 else { throw DataError(path, "bad IDX dimensions: 0 labels") }
  try checkPayload(file, offset: 8, need: count, shape: "\(count)", path: path)
  return Array(file[8...])
}

/// Loads matching image and label IDX files into one data set.
///
/// The two counts must agree: a silently truncated label file would otherwise shift every
/// label after the cut.
public func loadIDXPair(images: String, labels: String, name: String) throws -> ImageDataset {
  let raw = try readIDXImages(images)
  let labelBytes = try readIDXLabels(labels)
  guard raw.count == labelBytes.count else {
    throw DataError(
      images, "\(raw.count) images but labels file \(labels) has \(labelBytes.count) labels")
  }
  return ImageDataset(
    unchecked: name, rows: raw.rows, cols: raw.cols, pixels: intensities(raw.bytes),
    labels: labelBytes.map { Int32($0) })
}

/// Loads the four standard MNIST-style IDX files from `dir` (each plain or `.gz`).
///
/// Expects `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte` and
/// `t10k-labels-idx1-ubyte`, each optionally gzip-compressed with a `.gz` suffix; the plain file
/// wins if both exist. Train and test images must have the same size.
public func loadIDXDirectory(_ dir: String) throws -> ImageSplit {
  try loadIDXDirectory(dir, name: dir, missingHint: "")
}

/// `loadIDXDirectory` with a data-set name and extra advice appended to missing-file errors.
func loadIDXDirectory(_ dir: String, name: String, missingHint: String) throws -> ImageSplit {
  var isDirectory: ObjCBool = false
  guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDirectory) else {
    throw DataError(dir, "no such directory" + missingHint)
  }
  guard isDirectory.boolValue else { throw DataError(dir, "not a directory" + missingHint) }

  func find(_ base: String) throws -> String {
    let plain = (dir as NSString).appendingPathComponent(base)
    for candidate in [plain, plain + ".gz"]
    where FileManager.default.fileExists(atPath: candidate) {
      return candidate
    }
    throw DataError(dir, "missing IDX file \(base) (or \(base).gz)" + missingHint)
  }
  let trainImages = try find("train-images-idx3-ubyte")
  let trainLabels = try find("train-labels-idx1-ubyte")
  let testImages = try find("t10k-images-idx3-ubyte")
  let testLabels = try find("t10k-labels-idx1-ubyte")

  let train = try loadIDXPair(images: trainImages, labels: trainLabels, name: name + "/train")
  let test = try loadIDXPair(images: testImages, labels: testLabels, name: name + "/test")
  guard train.rows == test.rows, train.cols == test.cols else {
    throw DataError(
      testImages,
      "test images are \(test.rows)×\(test.cols) but training images in \(trainImages) are "
        + "\(train.rows)×\(train.cols)")
  }
  return ImageSplit(train: train, test: test)
}

/// Parses the IDX header, returning its dimensions after checking the magic number.
private func idxHeader(_ file: [UInt8], path: String, magic: UInt32, kind: String) throws
  -> [Int]
{
  guard file.count >= 4 else {
    throw DataError(path, "too short for an IDX header (\(file.count) bytes)")
  }
  let found = bigEndian32(file, at: 0)
  guard found == magic else {
    throw DataError(
      path,
      "bad IDX magic \(hex32(found)), expected \(hex32(magic)) (\(kind))")
  }
  let rank = Int(magic & 0xff)
  let headerSize = 4 + 4 * rank
  guard file.count >= headerSize else {
    throw DataError(
      path, "truncated IDX header (\(file.count) bytes, need \(headerSize) for \(rank) dims)")
  }
  return (0..<rank).map { Int(bigEndian32(file, at: 4 + 4 * $0)) }
}

/// The payload size implied by `dims`, or an error if the product overflows.
private func idxPayloadSize(_ dims: [Int], path: String) throws -> Int {
  var size = 1
  for d in dims {
    let (product, overflow) = size.multipliedReportingOverflow(by: d)
    guard !overflow else {
      throw DataError(path, "bad IDX dimensions \(dims) (payload size overflows)")
    }
    size = product
  }
  return size
}

/// Checks that exactly `need` payload bytes follow the header.
private func checkPayload(_ file: [UInt8], offset: Int, need: Int, shape: String, path: String)
  throws
{
  let have = file.count - offset
  if have < need {
    throw DataError(
      path, "IDX payload too short: \(have) bytes, header \(shape) needs \(need)")
  }
  if have > need {
    throw DataError(
      path,
      "IDX payload too long: \(have) bytes, header \(shape) needs \(need) "
        + "(\(have - need) extra bytes)")
  }
}

/// Reads a big-endian `UInt32`; the caller has checked that 4 bytes are available.
private func bigEndian32(_ bytes: [UInt8], at i: Int) -> UInt32 {
  UInt32(bytes[i]) << 24 | UInt32(bytes[i + 1]) << 16 | UInt32(bytes[i + 2]) << 8
    | UInt32(bytes[i + 3])
}

/// Formats as `0x00000803`.
private func hex32(_ value: UInt32) -> String {
  String(format: "0x%08x", value)
}
