import ElboTensor

/// The Neural Statistician's synthetic 1-D collection (Edwards & Storkey 2017, §5.1): each data
/// set is `points` draws from one of four families — exponential, Gaussian, uniform, Laplace —
/// with mean μ ~ U(−1, 1) and variance σ² ~ U(0.5, 2), all four parameterised by (μ, σ²):
///   Gaussian     μ + σ ε
///   uniform      μ + σ √12 (u − ½)
///   Laplace      μ − (σ/√2) sign(u − ½) log(1 − 2|u − ½|)
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
          let u = rng.uniform() - 0.5
          // |u| < ½ always (uniform() < 1), so the log's argument stays positive.
          x = mu - sigma / Float(2).squareRoot() * (u < 0 ? -1 : 1) * Float.log(1 - 2 * abs(u))
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
