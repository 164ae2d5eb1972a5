import ElboTensor

/// The Neural Statistician's synthetic 1-D collection (Edwards & Storkey 2017, §5.1): each data
/// set is `points` draws from one of four families — exponential, Gaussian, uniform, Laplace —
/// with mean μ ~ U(−1, 1) and variance σ² ~ U(0.5, 2), all four parameterised by (μ, σ²):
///   Gaussian     μ + σ ε
///   uniform      μ + σ √12 (u − ½)
///   Laplace      μ + (σ/√2)(E₁ − E₂), E₁, E₂ ~ Exp(1)
///   exponential  μ + σ (E − 1), E ~ Exp(1)   (rate 1/σ, shifted to mean μ)
/// Data set i draws from its own stream (seed, dataGeneration, time: split, item: i), so a data
/// set does not depend on how many others are made, and the held-out split (another `split`)
/// never repeats a training set.
public enum NSSynthetic {
  /// The families, in the order of their codes in the metadata.
  public enum Family: Int, CaseIterable, Sendable {
    case exponential = 0, gaussian, uniform, laplace
    public var name: String { ["exponential", "gaussian", "uniform", "laplace"][rawValue] }
  }

  /// A generated collection: points back to back ([Σ n_i, 1]), offsets [n + 1], and per set its
  /// family code, mean and variance.
  public struct Collection: Sendable {
    public var points: [Float]
    public var offsets: [Int]
    public var family: [Int]
    public var mean: [Float]
    public var variance: [Float]
    public var count: Int { offsets.count - 1 }
    /// Rows of data set i.
    public func rows(_ i: Int) -> Range<Int> { offsets[i]..<offsets[i + 1] }
  }

  /// `datasets` sets of `points` points each (or, with `minPoints` < `points`, of a size drawn
  /// uniformly from minPoints…points per set), deterministic in (seed, split).
  public static func make(seed: UInt64, split: UInt64 = 0, datasets: Int, points maxPoints: Int,
                          minPoints: Int? = nil) -> Collection {
    let lo = min(minPoints ?? maxPoints, maxPoints)
    var c = Collection(points: [], offsets: [0], family: [], mean: [], variance: [])
    c.points.reserveCapacity(datasets * maxPoints)
    for i in 0..<datasets {
      var rng = RandomStream(NoiseAddress(seed: seed, purpose: .dataGeneration, time: split,
                                          item: UInt32(truncatingIfNeeded: i)))
      let family = Family(rawValue: rng.integer(below: 4))!
      let mu = -1 + 2 * rng.uniform()
      let variance = 0.5 + 1.5 * rng.uniform()
      let points = lo == maxPoints ? maxPoints : lo + rng.integer(below: maxPoints - lo + 1)
      let sigma = variance.squareRoot()
      var normals = [Float](repeating: 0, count: family == .gaussian ? points : 0)
      normals.withUnsafeMutableBufferPointer { rng.fillNormal($0) }
      for j in 0..<points {
        let x: Float
        switch family {
        case .gaussian: x = mu + sigma * normals[j]
        case .uniform: x = mu + sigma * Float(12).squareRoot() * (rng.uniform() - 0.5)
        case .laplace:
          // The difference of two Exp(1) draws is Laplace(0, 1); 1 − u ∈ (0, 1], so both logs
          // are finite.
          let e1 = -Float.log(1 - rng.uniform()), e2 = -Float.log(1 - rng.uniform())
          x = mu + sigma / Float(2).squareRoot() * (e1 - e2)
        case .exponential:
          x = mu + sigma * (-Float.log(1 - rng.uniform()) - 1)
        }
        c.points.append(x)
      }
      c.offsets.append(c.points.count)
      c.family.append(family.rawValue)
      c.mean.append(mu)
      c.variance.append(variance)
    }
    return c
  }
}

extension Float {
  fileprivate static func log(_ x: Float) -> Float { Float(_log(Double(x))) }
}

#if canImport(Glibc)
import Glibc
private func _log(_ x: Double) -> Double { Glibc.log(x) }
#else
import Darwin
private func _log(_ x: Double) -> Double { Darwin.log(x) }
#endif

/// `elbo data make ns-synthetic`: metadata `family` [n] (codes exponential, gaussian, uniform,
/// laplace), `mean` [n], `variance` [n]; `--set min-points=M` draws each set's size from M…points,
/// `--set split=S` another split of the same seed (0 train, 1 held out, as the experiment's
/// in-memory collections).
extension NSSynthetic: CollectionGenerator {
  public static let name = "ns-synthetic"
  public static let help = """
    ns-synthetic: the Neural Statistician's 1-D sets, each from one family (exponential, \
    gaussian, uniform, laplace) with mean ~ U(-1, 1) and variance ~ U(0.5, 2); default 10000 \
    sets x 200 points; --set min-points=M (sizes M..points), --set split=S (0 train, 1 held out).
    """
  public static let defaultDatasets = 10_000
  public static let defaultPoints = 200

  public static func make(seed: UInt64, options: CollectionOptions) throws -> GeneratedCollection {
    var minPoints: Int? = nil, split: UInt64 = 0
    for (key, text) in options.extra {
      switch key {
      case "min-points":
        guard let m = Int(text), m >= 1, m <= options.points else {
          throw DataError(nil, "--set min-points=\(text): must be an integer in 1…\(options.points)")
        }
        minPoints = m
      case "split":
        guard let s = UInt64(text) else {
          throw DataError(nil, "--set split=\(text): must be a non-negative integer")
        }
        split = s
      default:
        throw DataError(nil, "--set \(key)=…: ns-synthetic knows only min-points and split")
      }
    }
    let c = make(seed: seed, split: split, datasets: options.datasets, points: options.points,
                 minPoints: minPoints)
    return GeneratedCollection(
      points: c.points, dimension: 1, offsets: c.offsets,
      metadata: ["family": CollectionMetadata(values: c.family.map(Double.init),
                                              codes: Family.allCases.map(\.name)),
                 "mean": CollectionMetadata(values: c.mean.map(Double.init)),
                 "variance": CollectionMetadata(values: c.variance.map(Double.init))])
  }
}
