import ElboData
import ElboModels

/// A collection of small data sets held in memory: points back to back, an offsets table, and
/// per-set labels (the layout of a collection file), with the padding a batch of sets needs.
public struct SetCollection: Sendable {
  public let points: [Float]
  public let offsets: [Int]
  public let dimension: Int
  /// A class per set (the synthetic family, a digit's class), for silhouettes and colours.
  public let labels: [Int]
  /// Names of the label codes.
  public let labelNames: [String]
  /// Other per-set numbers to colour pictures by (e.g. "mean", "variance").
  public let values: [String: [Float]]

  public var count: Int { offsets.count - 1 }
  public func size(_ i: Int) -> Int { offsets[i + 1] - offsets[i] }

  public init(points: [Float], offsets: [Int], dimension: Int, labels: [Int],
              labelNames: [String], values: [String: [Float]] = [:]) {
    self.points = points; self.offsets = offsets; self.dimension = dimension
    self.labels = labels; self.labelNames = labelNames; self.values = values
  }

  /// The synthetic 1-D families (``NSSynthetic``), split `split` of `seed`.
  public static func nsSynthetic(seed: UInt64, split: UInt64, datasets: Int, points: Int,
                                 minPoints: Int? = nil) -> SetCollection {
    let c = NSSynthetic.make(seed: seed, split: split, datasets: datasets, points: points,
                             minPoints: minPoints)
    return SetCollection(points: c.points, offsets: c.offsets, dimension: 1, labels: c.family,
                         labelNames: NSSynthetic.Family.allCases.map(\.name),
                         values: ["mean": c.mean, "variance": c.variance])
  }

  /// Sets `sets` (global indices) padded to the longest: points [B, N, D] and mask [B, N]
  /// (1 on real points), both from the tape's arena. Padding rows are zero.
  public func batch(_ sets: some Collection<Int>, on tape: Tape) -> (points: Tensor, mask: Tensor) {
    let b = sets.count, n = sets.map(size).max() ?? 0, d = dimension
    let x = tape.tensor([b, n, d], zeroed: true), m = tape.tensor([b, n], zeroed: true)
    for (row, s) in sets.enumerated() {
      let k = size(s)
      points.withUnsafeBufferPointer { p in
        (x.pointer + row * n * d).update(from: p.baseAddress! + offsets[s] * d, count: k * d)
      }
      (m.pointer + row * n).update(repeating: 1, count: k)
    }
    return (x, m)
  }
}
