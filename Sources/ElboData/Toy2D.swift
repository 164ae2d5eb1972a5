import ElboTensor
import Foundation

/// Two-dimensional toy densities for density estimation (the set popularised by Real NVP's
/// successors, e.g. FFJORD, Grathwohl et al. 2019):
///
///   two-moons     two interleaved half circles, t ~ U(0, π): (cos t, sin t) or
///                 (1 − cos t, ½ − sin t), each with probability ½, plus N(0, 0.1²) noise,
///                 then centred and doubled: 2·(p − (½, ¼)). No closed-form density.
///   checkerboard  uniform on the 8 dark unit squares of a 4×4 board on [−2, 2)²: x₁ ~ U(−2, 2),
///                 x₂ in a unit square whose parity matches ⌊x₁⌋'s. Density 1/8 on its support,
///                 so the best test NLL is log 8 = 2.0794 nats.
///   8-gaussians   an equal mixture of N(μ_k, 0.2² I), μ_k = 2(cos kπ/4, sin kπ/4), k = 0…7; its
///                 density is known (``logDensity(_:_:)``).
///
/// Generated deterministically: point i of split s uses the Philox stream (seed, dataGeneration,
/// time: 16 + s, item: i) — independent of the number of ranks; the training (s = 0) and test
/// (s = 1) sets are independent draws. (Times 16 and 17 keep clear of other generators'
/// splits 0 and 1 under the same seed.)
public enum Toy2D: String, CaseIterable, Codable, Sendable {
  case twoMoons = "two-moons"
  case checkerboard
  case eightGaussians = "8-gaussians"

  public enum Split: UInt64, Sendable { case train = 0, test = 1 }

  /// `count` points as a flat row-major [count, 2] buffer.
  public func points(count: Int, seed: UInt64, split: Split) -> [Float] {
    var out = [Float](repeating: 0, count: 2 * count)
    var noise = [Float](repeating: 0, count: 2)
    for i in 0..<count {
      var rng = RandomStream(NoiseAddress(seed: seed, purpose: .dataGeneration,
                                          time: 16 + split.rawValue, item: UInt32(i)))
      let u1 = Double(rng.uniform()), u2 = Double(rng.uniform()), pick = rng.integer(below: 8)
      noise.withUnsafeMutableBufferPointer { rng.fillNormal($0) }
      let (a, b): (Double, Double)
      switch self {
      case .twoMoons:
        let t = Double.pi * u1
        let p = pick % 2 == 0 ? (cos(t), sin(t)) : (1 - cos(t), 0.5 - sin(t))
        a = 2 * (p.0 + 0.1 * Double(noise[0]) - 0.5)
        b = 2 * (p.1 + 0.1 * Double(noise[1]) - 0.25)
      case .checkerboard:
        a = -2 + 4 * u1
        let parity = Double(Int(floor(a) + 2) % 2)          // ⌊x₁⌋ mod 2, in {0, 1}
        b = u2 - 2 * Double(pick % 2) + parity
      case .eightGaussians:
        let angle = Double(pick) * Double.pi / 4
        a = 2 * cos(angle) + 0.2 * Double(noise[0])
        b = 2 * sin(angle) + 0.2 * Double(noise[1])
      }
      out[2 * i] = Float(a)
      out[2 * i + 1] = Float(b)
    }
    return out
  }

  /// log p(x₁, x₂) in nats where the density is known in closed form (nil for two-moons);
  /// −∞ off a checkerboard's support.
  public func logDensity(_ x1: Double, _ x2: Double) -> Double? {
    switch self {
    case .twoMoons:
      return nil
    case .checkerboard:
      guard (-2..<2).contains(x1), (-2..<2).contains(x2) else { return -.infinity }
      let onDark = (Int(floor(x1) + 2) + Int(floor(x2) + 2)) % 2 == 0
      return onDark ? -log(8.0) : -.infinity
    case .eightGaussians:
      let s2 = 0.2 * 0.2
      let terms = (0..<8).map { k -> Double in
        let angle = Double(k) * Double.pi / 4
        let d1 = x1 - 2 * cos(angle), d2 = x2 - 2 * sin(angle)
        return -(d1 * d1 + d2 * d2) / (2 * s2) - log(2 * Double.pi * s2) - log(8.0)
      }
      let m = terms.max()!
      return m + log(terms.reduce(0) { $0 + exp($1 - m) })
    }
  }
}
