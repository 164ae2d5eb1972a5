import ElboData
import ElboModels
import ElboTrain

/// How pixel intensities in [0, 1] become binary observations.
public enum Binarization: String, Codable, Sendable, CaseIterable {
  /// x = 1 where intensity > 0.5, once (the PyTorch anchor's setting).
  case `static`
  /// x ~ Bernoulli(intensity), drawn anew each epoch (Burda et al.'s setting); the test set is
  /// drawn once, with a fixed key, so that evaluations are comparable.
  case dynamic
}

/// An image data set as binary observations, for the models of binary images (VAE, NADE,
/// MADE): training batches (binarised statically once, or dynamically per epoch with noise
/// keyed by (seed, epoch, example), never by rank) and the fixed binary test set.
public final class BinaryImages {
  public let train: ImageDataset
  public let test: ImageDataset
  public let binarization: Binarization
  public let seed: UInt64
  /// What the model trains on: binarised once (static) or the raw intensities (dynamic).
  public let trainPixels: [Float]
  /// The binary test set (dynamic: drawn once with a fixed key).
  public let testBinary: [Float]

  public var dimension: Int { train.dimension }

  /// The `time` of the dynamic test set's noise address.
  static let testSetTime: UInt64 = UInt64.max >> 16

  public init(_ data: ImageSplit, binarization: Binarization, seed: UInt64) {
    train = data.train
    test = data.test
    self.binarization = binarization
    self.seed = seed
    switch binarization {
    case .static:
      trainPixels = binarizeStatic(data.train.pixels)
      testBinary = binarizeStatic(data.test.pixels)
    case .dynamic:
      trainPixels = data.train.pixels
      testBinary = BinaryImages.sample(data.test.pixels, dimension: data.test.dimension,
                                       address: { NoiseAddress(seed: seed, purpose: .binarization,
                                                               time: BinaryImages.testSetTime,
                                                               item: $0) })
    }
  }

  /// Loads `--data` (fashion-mnist, mnist-5k, or a directory of IDX files).
  public convenience init(data: String, binarization: Binarization, seed: UInt64,
                          expectedDimension: Int?, model: String) throws {
    let split = try DatasetCatalog.load(data)
    if let d = expectedDimension, split.train.dimension != d {
      throw ElboError("--data \(data): images have \(split.train.dimension) pixels; "
        + "the \(model) expects \(d)")
    }
    self.init(split, binarization: binarization, seed: seed)
  }

  /// Draws x ~ Bernoulli(intensity) for every row, the row's uniforms keyed by `address(row)`.
  static func sample(_ pixels: [Float], dimension: Int,
                     address: (UInt32) -> NoiseAddress) -> [Float] {
    var out = [Float](repeating: 0, count: pixels.count)
    var u = [Float](repeating: 0, count: dimension)
    for row in 0..<(pixels.count / dimension) {
      var rng = RandomStream(address(UInt32(row)))
      u.withUnsafeMutableBufferPointer { rng.fillUniform($0) }
      for j in 0..<dimension { out[row * dimension + j] = u[j] < pixels[row * dimension + j] ? 1 : 0 }
    }
    return out
  }

  /// Copies training rows `items` into `x` [R, D], binarising dynamically if asked.
  public func fillTrain(_ x: Tensor, items: ArraySlice<Int>, epoch: Int) {
    let d = train.dimension
    let xp = x.pointer
    trainPixels.withUnsafeBufferPointer { src in
      for (r, g) in items.enumerated() {
        let row = xp + r * d, from = src.baseAddress! + g * d
        switch binarization {
        case .static:
          row.update(from: from, count: d)
        case .dynamic:
          var rng = RandomStream(NoiseAddress(seed: seed, purpose: .binarization,
                                              time: UInt64(epoch), item: UInt32(g)))
          rng.fillUniform(UnsafeMutableBufferPointer(start: row, count: d))
          for j in 0..<d { row[j] = row[j] < from[j] ? 1 : 0 }
        }
      }
    }
  }

  /// Copies the binary test rows `rows` into `x` [rows.count, D].
  public func fillTest(_ x: Tensor, rows: Range<Int>) {
    let d = test.dimension
    testBinary.withUnsafeBufferPointer {
      x.pointer.update(from: $0.baseAddress! + rows.lowerBound * d, count: rows.count * d)
    }
  }

  /// `count` training rows spread evenly over the set (a set sorted by class then shows
  /// several classes), as the model sees them: for pictures.
  public func shownTrainingRows(_ count: Int) -> [Int] {
    let shown = min(count, train.count)
    return (0..<shown).map { $0 * (train.count / shown) }
  }
}

/// An experiment on a binarised image data set: its training items are the training images.
public protocol BinaryImageExperiment: Experiment {
  var images: BinaryImages { get }
}

extension BinaryImageExperiment {
  public var train: ImageDataset { images.train }
  public var test: ImageDataset { images.test }
  public var itemCount: Int { images.train.count }
  public var dataDigest: UInt64? { images.train.contentDigest }
}
