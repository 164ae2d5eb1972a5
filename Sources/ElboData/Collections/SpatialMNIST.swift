import ElboTensor

/// Spatial MNIST (Edwards & Storkey 2017, §5.2): each MNIST-5k digit as a set of `points`
/// (x, y) points drawn with replacement with probability ∝ pixel intensity, each moved by
/// U(0, 1) jitter inside its pixel: x = column + u₁, y = (27 − row) + u₂ (y points up).
/// Metadata `class` [n] (the digit). Digit i draws from (seed, dataGeneration, time: 21, item: i).
/// `--set split=train|test` picks MNIST-5k's split (default train); --datasets caps the count.
public enum SpatialMNIST: CollectionGenerator {
  public static let name = "spatial-mnist"
  public static let help = """
    spatial-mnist: each MNIST-5k digit as points (x, y) sampled with probability proportional \
    to pixel intensity plus U(0,1) jitter; default all digits of the split x 50 points; \
    --set split=train|test.
    """
  public static let defaultDatasets = Int.max
  public static let defaultPoints = 50
  static let streamTime: UInt64 = 21

  public static func make(seed: UInt64, options: CollectionOptions) throws -> GeneratedCollection {
    var split = "train"
    for (key, value) in options.extra {
      guard key == "split", value == "train" || value == "test" else {
        throw DataError(nil, "--set \(key)=\(value): spatial-mnist knows only split=train|test")
      }
      split = value
    }
    let mnist = try loadMNIST5k()
    let images = split == "train" ? mnist.train : mnist.test
    return sets(images, count: min(options.datasets, images.count), points: options.points,
                seed: seed)
  }

  /// The first `count` images of `images` as point sets.
  public static func sets(_ images: ImageDataset, count: Int, points m: Int, seed: UInt64)
    -> GeneratedCollection {
    let d = images.dimension, cols = images.cols
    var out = [Float](), labels = [Double]()
    out.reserveCapacity(count * m * 2)
    var cdf = [Double](repeating: 0, count: d)
    for i in 0..<count {
      var total = 0.0
      for p in 0..<d { total += Double(max(0, images.pixels[i * d + p])); cdf[p] = total }
      var rng = RandomStream(NoiseAddress(seed: seed, purpose: .dataGeneration, time: streamTime,
                                          item: UInt32(i)))
      for _ in 0..<m {
        // Inverse CDF by binary search (an all-black image falls back to uniform pixels).
        let u = Double(rng.uniform()) * total
        var lo = 0, hi = d - 1
        while lo < hi { let mid = (lo + hi) / 2; if cdf[mid] > u { hi = mid } else { lo = mid + 1 } }
        let pixel = total > 0 ? lo : rng.integer(below: d)
        let row = pixel / cols, col = pixel % cols
        out.append(Float(col) + rng.uniform())
        out.append(Float(images.rows - 1 - row) + rng.uniform())
      }
      labels.append(Double(images.labels[i]))
    }
    return GeneratedCollection(points: out, dimension: 2, offsets: (0...count).map { $0 * m },
                               metadata: ["class": CollectionMetadata(
                                 values: labels, codes: (0..<10).map { "digit \($0)" })])
  }
}
