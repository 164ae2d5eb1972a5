import ElboTensor

/// A batch of whole data sets of unequal sizes, padded to the largest.
///
///   points [B, Nmax, D]   set b's rows first, then zeros
///   mask   [B, Nmax]      1 for a real point, 0 for padding
///
/// Padding must never be counted in a loss or a metric: models multiply per-point terms by
/// `mask` and pool with it (a mean over a set's real points divides by `counts[b]`, not Nmax).
public struct SetBatch {
  public let points: Tensor
  public let mask: Tensor
  /// Real points per set.
  public let counts: [Int]
  /// The sets' global indices in their collection.
  public let datasets: [Int]
  /// Per-set metadata rows by name (from ``CollectionFile/metadata(_:datasets:)``), if given.
  public var metadata: [String: [[Double]]]

  public var batchSize: Int { counts.count }
  public var maxPoints: Int { points.shape[1] }
  public var dimension: Int { points.shape[2] }

  /// Pads `sets` (each [n_b, D], all of one D) into one batch. Empty `sets`: B = 0, Nmax = 0.
  /// - Parameter minimumPoints: pad to at least this many points (e.g. a fixed shape per step).
  public init(_ sets: [Tensor], datasets: [Int], metadata: [String: [[Double]]] = [:],
              minimumPoints: Int = 0)
  {
    precondition(sets.count == datasets.count, "one global index per set")
    let d = sets.first?.shape.last ?? 1
    precondition(sets.allSatisfy { $0.rank == 2 && $0.shape[1] == d }, "sets of [n, \(d)] rows")
    counts = sets.map { $0.shape[0] }
    let nmax = max(counts.max() ?? 0, minimumPoints)
    let p = Tensor(zeros: [sets.count, nmax, d])
    let m = Tensor(zeros: [sets.count, nmax])
    for (b, set) in sets.enumerated() {
      let base = p.pointer + b * nmax * d
      base.update(from: set.pointer, count: set.count)
      for i in 0..<counts[b] { m[b * nmax + i] = 1 }
    }
    points = p
    mask = m
    self.datasets = datasets
    self.metadata = metadata
  }
}
