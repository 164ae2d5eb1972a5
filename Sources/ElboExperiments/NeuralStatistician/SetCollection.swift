import ElboData
import ElboDistributed
import ElboModels
import ElboTrain
import Foundation

/// A collection of data sets as the Neural Statistician reads it: a ``DataSetSource`` (a
/// collection file read by shards, or one generated in memory) with each set's label (the
/// synthetic family, a digit's class) and other per-set numbers to colour pictures by.
public final class SetCollection {
  public let source: DataSetSource
  /// What it is, for the run header (a path or "ns-synthetic (in memory)").
  public let name: String
  /// A class per set (metadata `family` or `class`), for silhouettes and colours.
  public let labels: [Int]
  /// Names of the label codes.
  public let labelNames: [String]
  /// Other per-set numbers (metadata `mean`, `variance`, …).
  public let values: [String: [Double]]
  private let communicator: Communicator?

  public var count: Int { source.count }
  public var dimension: Int { source.dimension }
  public func size(_ i: Int) -> Int { source.size(of: i) }

  public init(source: DataSetSource, name: String, metadata: [String: CollectionMetadata],
              communicator: Communicator?) throws {
    self.source = source
    self.name = name
    self.communicator = communicator
    guard let label = metadata["family"] ?? metadata["class"] else {
      throw ElboError("\(name): the collection has no `family` or `class` metadata to label sets by")
    }
    labels = label.values.map { Int($0) }
    labelNames = label.codes ?? Array(Set(labels)).sorted().map { "class \($0)" }
    var v: [String: [Double]] = [:]
    for (key, m) in metadata where key != "family" && key != "class" && m.columns == 1 {
      v[key] = m.values
    }
    values = v
  }

  /// The synthetic 1-D families generated in memory (``NSSynthetic``), split `split` of `seed`.
  public static func nsSynthetic(seed: UInt64, split: UInt64, datasets: Int, points: Int,
                                 minPoints: Int? = nil) throws -> SetCollection {
    var extra = ["split": "\(split)"]
    if let minPoints { extra["min-points"] = "\(minPoints)" }
    let g = try NSSynthetic.make(seed: seed, options: CollectionOptions(
      datasets: datasets, points: points, extra: extra))
    return try SetCollection(source: InMemoryCollection(g), name: "ns-synthetic (in memory)",
                             metadata: g.metadata, communicator: nil)
  }

  /// A collection file, opened on every rank (collective with several).
  public static func file(_ path: String, communicator: Communicator) throws -> SetCollection {
    let f = try CollectionFile(path: path, communicator: communicator)
    return try SetCollection(source: f, name: path, metadata: f.metadata,
                             communicator: communicator)
  }

  /// Sets `sets` (global indices) padded to the longest (``SetBatch``). Collective for a file on
  /// several ranks: every rank calls it as often, a rank with no set with an empty list. A read
  /// that fails cannot be thrown from a loss: it ends the job in one line.
  public func batch(_ sets: [Int]) -> SetBatch {
    do {
      return SetBatch(try source.read(datasets: sets), datasets: sets)
    } catch {
      if let communicator, communicator.size > 1 { communicator.abort("\(error)", code: 2) }
      FileHandle.standardError.write(Data("elbo: \(error)\n".utf8))
      exit(2)
    }
  }
}
