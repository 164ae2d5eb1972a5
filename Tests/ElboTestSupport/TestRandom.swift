import ElboTensor

/// Deterministic random test inputs drawn from Elbo's own counter-based generator.
///
/// Every call takes a fresh `item` of the same (seed, purpose) address, so adding a draw to one
/// test never changes the numbers another draw receives.
public struct TestRandom {
  public let seed: UInt64
  private var item: UInt32 = 0

  public init(seed: UInt64) { self.seed = seed }

  /// The next independent stream.
  public mutating func stream() -> RandomStream {
    defer { item += 1 }
    return RandomStream(NoiseAddress(seed: seed, purpose: .benchmark, item: item))
  }

  /// Uniform values in [lo, hi), optionally kept at least `awayFrom.margin` from `awayFrom.point`
  /// (for inputs near a kink, e.g. ReLU at 0).
  public mutating func uniform(_ n: Int, _ lo: Float, _ hi: Float,
                               awayFrom: (point: Float, margin: Float)? = nil) -> [Float] {
    var s = stream()
    var out: [Float] = []
    out.reserveCapacity(n)
    while out.count < n {
      let v = lo + (hi - lo) * s.uniform()
      if let a = awayFrom, abs(v - a.point) < a.margin { continue }
      out.append(v)
    }
    return out
  }

  /// A tensor of the given shape with uniform entries in [lo, hi).
  public mutating func tensor(_ shape: [Int], _ lo: Float = -1, _ hi: Float = 1,
                              awayFrom: (point: Float, margin: Float)? = nil) -> Tensor {
    Tensor(uniform(Tensor.elementCount(shape), lo, hi, awayFrom: awayFrom), shape: shape)
  }

  /// A tensor of standard normals.
  public mutating func normal(_ shape: [Int]) -> Tensor {
    let t = Tensor(zeros: shape)
    var s = stream()
    s.fillNormal(t.buffer)
    return t
  }

  /// Values in {0, 1} with P(1) = 1/2.
  public mutating func binary(_ shape: [Int]) -> Tensor {
    let u = uniform(Tensor.elementCount(shape), 0, 1)
    return Tensor(u.map { $0 < 0.5 ? 0 : 1 }, shape: shape)
  }
}
