import ElboTensor

/// Splits work across ranks deterministically: examples of a data set, whole data sets of a
/// collection, or whole models of a zoo — all are "items" with a global index.
///
/// Each epoch has its own permutation of the items, a Fisher–Yates shuffle driven by
/// (seed, shuffle, epoch): every rank computes the same permutation without communicating, and a
/// resumed run recomputes it from the epoch number alone. A global batch of B items is split
/// into contiguous shares, the first B mod N ranks taking one extra item, so every rank takes
/// the same number of steps and the union of the shares is exactly the global batch.
public struct Sharder: Sendable {
  public let itemCount: Int
  public let seed: UInt64
  public let shuffle: Bool

  public init(itemCount: Int, seed: UInt64, shuffle: Bool = true) {
    self.itemCount = itemCount
    self.seed = seed
    self.shuffle = shuffle
  }

  /// The order in which epoch `epoch` visits the items.
  public func permutation(epoch: Int) -> [Int] {
    var p = Array(0..<itemCount)
    guard shuffle, itemCount > 1 else { return p }
    var rng = RandomStream(NoiseAddress(seed: seed, purpose: .shuffle, time: UInt64(epoch)))
    for i in stride(from: itemCount - 1, to: 0, by: -1) {
      p.swapAt(i, rng.integer(below: i + 1))
    }
    return p
  }

  /// Full global batches per epoch (the last partial batch is dropped so that every step has
  /// the same size; the permutation changes each epoch, so every item is still visited).
  public func stepsPerEpoch(globalBatch: Int) -> Int { itemCount / globalBatch }

  /// Rank `rank`'s share [lower, upper) of positions 0..<total split over `size` ranks.
  public static func share(of total: Int, rank: Int, size: Int) -> Range<Int> {
    let base = total / size, extra = total % size
    let lower = rank * base + min(rank, extra)
    return lower..<(lower + base + (rank < extra ? 1 : 0))
  }
}
