/// A labelled set of greyscale images stored as one flat, row-major buffer.
///
/// Image `i` occupies `pixels[i * dimension ..< (i + 1) * dimension]`, each row of the image
/// contiguous, with intensities `byte / 255` in `[0, 1]`. A flat `[Float]` (rather than an
/// array of images) lets minibatches be gathered with plain memcpy-style copies.
public struct ImageDataset: Sendable {
  /// Human-readable name, e.g. `"fashion-mnist/train"`.
  public let name: String
  /// Number of images.
  public let count: Int
  /// Image height in pixels.
  public let rows: Int
  /// Image width in pixels.
  public let cols: Int
  /// Pixels per image (`rows * cols`).
  public var dimension: Int { rows * cols }
  /// `count × dimension` intensities in `[0, 1]` (`byte / 255`).
  public let pixels: [Float]
  /// `count` class labels.
  public let labels: [Int32]

  /// Creates a data set after checking that the buffer sizes agree with the shape.
  ///
  /// Throws rather than traps, because callers build data sets from external input.
  public init(name: String, rows: Int, cols: Int, pixels: [Float], labels: [Int32]) throws {
    guard rows > 0, cols > 0 else {
      throw DataError(nil, "data set '\(name)': image size \(rows)×\(cols) must be positive")
    }
    let (need, overflow) = labels.count.multipliedReportingOverflow(by: rows * cols)
    guard !overflow, pixels.count == need else {
      throw DataError(
        nil,
        "data set '\(name)': \(pixels.count) pixels do not fill \(labels.count) images of "
          + "\(rows)×\(cols)")
    }
    self.init(unchecked: name, rows: rows, cols: cols, pixels: pixels, labels: labels)
  }

  /// Creates a data set whose sizes the (internal) caller has already validated.
  init(unchecked name: String, rows: Int, cols: Int, pixels: [Float], labels: [Int32]) {
    self.name = name
    self.count = labels.count
    self.rows = rows
    self.cols = cols
    self.pixels = pixels
    self.labels = labels
  }
}

/// A fixed train/test partition of one data set.
public struct ImageSplit: Sendable {
  /// Images used for training.
  public let train: ImageDataset
  /// Held-out images used only for evaluation.
  public let test: ImageDataset

  /// Pairs a training set with its test set.
  public init(train: ImageDataset, test: ImageDataset) {
    self.train = train
    self.test = test
  }
}

/// Converts raw bytes to intensities `byte / 255` (correctly rounded, as the API promises).
func intensities(_ bytes: [UInt8]) -> [Float] {
  bytes.withUnsafeBufferPointer { src in
    [Float](unsafeUninitializedCapacity: src.count) { out, initialized in
      // A plain indexed loop over raw pointers vectorises; generic iteration did not.
      guard let s = src.baseAddress, let o = out.baseAddress else {
        initialized = 0
        return
      }
      for i in 0..<src.count { o[i] = Float(s[i]) / 255 }
      initialized = src.count
    }
  }
}
