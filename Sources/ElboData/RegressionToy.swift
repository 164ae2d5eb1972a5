import ElboTensor

/// The regression toy of seed 004 (§2, exercise 5a) and Blundell et al. 2015 (§5.2, Fig. 5):
///
///   y = x + 0.3 sin(2π(x + v)) + 0.3 sin(4π(x + v)) + v,   v ~ N(0, 0.02).
///
/// The seed writes N(x | μ, Σ) for a Gaussian with mean μ and VARIANCE Σ (its notation list), so
/// v has variance 0.02 (standard deviation √0.02 ≈ 0.141). v enters the sines too, so the noise
/// of y given x is not Gaussian and its spread changes with x (≈ 0.15 to 0.49).
/// Inputs x ~ U(0, 0.5): the training range of Blundell et al.'s Fig. 5, whose predictions are
/// drawn beyond it to show the uncertainty growing away from the data.
///
/// Generated deterministically: point i of split s draws its x and v from the Philox stream
/// (seed, dataGeneration, time: s, item: i), so the data do not depend on the number of ranks
/// and the training (s = 0) and held-out (s = 1) sets are independent draws.
public struct RegressionToy: Sendable {
  /// Variance of v (seed 004: N(0, 0.02)).
  public static let noiseVariance = 0.02
  /// The range of x.
  public static let range: ClosedRange<Double> = 0...0.5

  public enum Split: UInt64, Sendable { case train = 0, heldOut = 1 }

  public let x: [Float]
  public let y: [Float]
  public var count: Int { x.count }

  public init(count: Int, seed: UInt64, split: Split) {
    var xs = [Float](repeating: 0, count: count), ys = xs
    var v = [Float](repeating: 0, count: 1)
    let sd = Float(RegressionToy.noiseVariance.squareRoot())
    for i in 0..<count {
      var rng = RandomStream(NoiseAddress(seed: seed, purpose: .dataGeneration,
                                          time: split.rawValue, item: UInt32(i)))
      let u = Double(rng.uniform())
      v.withUnsafeMutableBufferPointer { rng.fillNormal($0) }
      let x = RegressionToy.range.lowerBound
        + u * (RegressionToy.range.upperBound - RegressionToy.range.lowerBound)
      xs[i] = Float(x)
      ys[i] = Float(RegressionToy.curve(x, v: Double(v[0] * sd)))
    }
    x = xs
    y = ys
  }

  /// y for input x and noise v.
  public static func curve(_ x: Double, v: Double) -> Double {
    x + 0.3 * sin(2 * Double.pi * (x + v)) + 0.3 * sin(4 * Double.pi * (x + v)) + v
  }

  /// E[y | x] in closed form: E[sin(a + bv)] = sin(a)·e^(−b²s²/2) for v ~ N(0, s²), so
  /// E[y | x] = x + 0.3 e^(−2π²s²) sin 2πx + 0.3 e^(−8π²s²) sin 4πx. Differs from the noise-free
  /// curve `curve(x, v: 0)` by up to ≈ 0.3: the noise damps the oscillation.
  public static func conditionalMean(_ x: Double) -> Double {
    let s2 = noiseVariance, pi2 = Double.pi * Double.pi
    return x + 0.3 * exp(-2 * pi2 * s2) * sin(2 * Double.pi * x)
      + 0.3 * exp(-8 * pi2 * s2) * sin(4 * Double.pi * x)
  }
}

#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif
