import ElboTensor

/// Where a model's data sets come from: a collection file read by shards, or the same
/// collection in memory (tests' one-process references, small tools).
public protocol DataSetSource: AnyObject {
  /// Data sets in the collection.
  var count: Int { get }
  /// Columns D of a point.
  var dimension: Int { get }
  /// Points in data set i.
  func size(of i: Int) -> Int
  /// The rows of `datasets`, one [n_i, D] tensor each (for a file opened on several ranks,
  /// collective: see ``CollectionFile/read(datasets:)``).
  func read(datasets: [Int]) throws -> [Tensor]
}

extension CollectionFile: DataSetSource {}

/// A generated collection held in memory, read like a file.
public final class InMemoryCollection: DataSetSource {
  public let collection: GeneratedCollection
  public var count: Int { collection.offsets.count - 1 }
  public var dimension: Int { collection.dimension }

  public init(_ collection: GeneratedCollection) { self.collection = collection }

  public func size(of i: Int) -> Int { collection.offsets[i + 1] - collection.offsets[i] }

  public func read(datasets: [Int]) throws -> [Tensor] {
    let d = dimension
    return try datasets.map { i in
      guard i >= 0 && i < count else {
        throw DataError(nil, "data set \(i) does not exist (the collection holds \(count))")
      }
      let lo = collection.offsets[i] * d, hi = collection.offsets[i + 1] * d
      return Tensor(Array(collection.points[lo..<hi]), shape: [size(of: i), d])
    }
  }
}
