import ElboTensor
import Foundation

/// Deep Prior's toy regression tasks (Lacoste et al. 2018, §4.1; seed 000): task j is
///
///   f_j(x) = a₁ sin(ωx + b₁) + a₂ sin(2ωx + b₂),   a ~ N(0, 1), b ~ U(0, 2π), ω ~ U(5, 7),
///
/// observed at x ~ N(μ_x, 1), μ_x ~ U(−4, 4), as y = f_j(x) + ε, ε ~ N(0, σ_ε²).
///
/// Our choices (the seed leaves them open): σ_ε = 0.1 (`--set noise=…`), 20 points per task,
/// 2,000 tasks by default. Each point is a row (x, y); the metadata hold every task's
/// (a₁, a₂, b₁, b₂, ω, μ_x) as `params` [n, 6] and σ_ε as `noise` [n].
/// Task i draws from the Philox stream (seed, dataGeneration, time: 11, item: i).
public enum HarmonicTasks: CollectionGenerator {
  public static let name = "harmonic"
  public static let help = """
    harmonic: Deep Prior's tasks f(x) = a1 sin(w x + b1) + a2 sin(2 w x + b2), a ~ N(0,1), \
    b ~ U(0, 2 pi), w ~ U(5, 7), at x ~ N(mu, 1), mu ~ U(-4, 4), y = f(x) + N(0, noise^2); \
    rows (x, y); default 2000 tasks x 20 points, --set noise=0.1.
    """
  public static let defaultDatasets = 2000
  public static let defaultPoints = 20
  public static let defaultNoise = 0.1
  /// The `time` word of the data streams (distinct from other generators' streams).
  static let streamTime: UInt64 = 11

  /// One task's generating parameters.
  public struct Task: Equatable, Sendable {
    public var a1, a2, b1, b2, omega, muX: Double
    public func callAsFunction(_ x: Double) -> Double {
      a1 * sin(omega * x + b1) + a2 * sin(2 * omega * x + b2)
    }
    public var params: [Double] { [a1, a2, b1, b2, omega, muX] }
    public init(params p: [Double]) {
      (a1, a2, b1, b2, omega, muX) = (p[0], p[1], p[2], p[3], p[4], p[5])
    }
  }

  public static func make(seed: UInt64, options: CollectionOptions) throws -> GeneratedCollection {
    let noise = try options.extra["noise"].map { text -> Double in
      guard let v = Double(text), v >= 0, v.isFinite else {
        throw DataError(nil, "--set noise=\(text): the noise std must be a number ≥ 0")
      }
      return v
    } ?? defaultNoise
    for key in options.extra.keys where key != "noise" {
      throw DataError(nil, "--set \(key)=…: harmonic knows only --set noise=STD")
    }
    let n = options.datasets, m = options.points
    var points = [Float](), params = [Double]()
    points.reserveCapacity(n * m * 2)
    for i in 0..<n {
      var rng = RandomStream(NoiseAddress(seed: seed, purpose: .dataGeneration, time: streamTime,
                                          item: UInt32(i)))
      var g = [Float](repeating: 0, count: 2 + m * 2)  // a₁, a₂, then (x-noise, y-noise) pairs
      g.withUnsafeMutableBufferPointer { rng.fillNormal($0) }
      let u = (0..<4).map { _ in Double(rng.uniform()) }
      let task = Task(params: [Double(g[0]), Double(g[1]), 2 * .pi * u[0], 2 * .pi * u[1],
                               5 + 2 * u[2], -4 + 8 * u[3]])
      for p in 0..<m {
        let x = task.muX + Double(g[2 + 2 * p])
        points.append(Float(x))
        points.append(Float(task(x) + noise * Double(g[3 + 2 * p])))
      }
      params += task.params
    }
    return GeneratedCollection(
      points: points, dimension: 2, offsets: (0...n).map { $0 * m },
      metadata: ["params": CollectionMetadata(values: params, columns: 6),
                 "noise": CollectionMetadata(values: [Double](repeating: noise, count: n))])
  }
}
