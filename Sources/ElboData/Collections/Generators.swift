/// A generator of a collection of data sets (`elbo data make <name>`).
///
/// Deterministic: the same seed and options give the same collection, hence the same file
/// bytes (``CollectionFile/write(path:points:dimension:offsets:metadata:kind:)`` records no
/// timestamps). Generators draw data set i from streams keyed by (seed, i), so a collection does
/// not depend on how it is later sharded.
public protocol CollectionGenerator {
  /// The name on the command line, and the file's `kind` attribute.
  static var name: String { get }
  /// One paragraph for `elbo data make --help`: the distribution and the defaults.
  static var help: String { get }
  /// Data sets and points per data set when `--datasets` / `--points` are not given.
  static var defaultDatasets: Int { get }
  static var defaultPoints: Int { get }
  static func make(seed: UInt64, options: CollectionOptions) throws -> GeneratedCollection
}

/// The options of `elbo data make` every generator reads (sizes are already defaulted).
public struct CollectionOptions: Sendable {
  public var datasets: Int
  public var points: Int
  /// Generator-specific `--set key=value` options.
  public var extra: [String: String]

  public init(datasets: Int, points: Int, extra: [String: String] = [:]) {
    self.datasets = datasets
    self.points = points
    self.extra = extra
  }
}

/// What a generator returns: the arguments of ``CollectionFile/write``.
public struct GeneratedCollection: Sendable {
  public var points: [Float]
  public var dimension: Int
  public var offsets: [Int]
  public var metadata: [String: CollectionMetadata]

  public init(points: [Float], dimension: Int, offsets: [Int],
              metadata: [String: CollectionMetadata]) {
    self.points = points
    self.dimension = dimension
    self.offsets = offsets
    self.metadata = metadata
  }
}

/// The generators `elbo data make` offers, in the order its help lists them. Adding one is a
/// file beside this one and a line here.
public enum CollectionGenerators {
  public static let all: [any CollectionGenerator.Type] = [
    HarmonicTasks.self,
    NSSynthetic.self,
    SpatialMNIST.self,
  ]

  public static func named(_ name: String) -> (any CollectionGenerator.Type)? {
    all.first { $0.name == name }
  }
}
