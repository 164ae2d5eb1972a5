import CKernels

/// Philox4x32-10, the counter-based generator of Salmon et al., "Parallel Random Numbers: As Easy
/// as 1, 2, 3" (SC 2011), as in Random123 and JAX/PyTorch.
///
/// A counter-based generator is a pure function block = Philox(key, counter) with no hidden state:
/// Elbo keys every draw by *what it is for* (see `NoiseAddress`), so the noise an example receives
/// does not depend on which rank draws it, and a resumed run draws exactly what the uninterrupted
/// run would have drawn without saving any generator state.
public struct Philox4x32: Sendable {
  public var key: (UInt32, UInt32)

  public init(key: (UInt32, UInt32)) { self.key = key }
  public init(seed: UInt64) {
    key = (UInt32(truncatingIfNeeded: seed), UInt32(truncatingIfNeeded: seed >> 32))
  }

  @usableFromInline static let m0: UInt32 = 0xD251_1F53
  @usableFromInline static let m1: UInt32 = 0xCD9E_8D57
  @usableFromInline static let w0: UInt32 = 0x9E37_79B9
  @usableFromInline static let w1: UInt32 = 0xBB67_AE85

  /// Four random 32-bit words for a 128-bit counter (10 rounds).
  @inlinable
  public func block(_ c: (UInt32, UInt32, UInt32, UInt32)) -> (UInt32, UInt32, UInt32, UInt32) {
    var (c0, c1, c2, c3) = c
    var (k0, k1) = key
    for _ in 0..<10 {
      let p0 = UInt64(Philox4x32.m0) &* UInt64(c0)
      let p1 = UInt64(Philox4x32.m1) &* UInt64(c2)
      let hi0 = UInt32(truncatingIfNeeded: p0 >> 32), lo0 = UInt32(truncatingIfNeeded: p0)
      let hi1 = UInt32(truncatingIfNeeded: p1 >> 32), lo1 = UInt32(truncatingIfNeeded: p1)
      (c0, c1, c2, c3) = (hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0)
      k0 = k0 &+ Philox4x32.w0
      k1 = k1 &+ Philox4x32.w1
    }
    return (c0, c1, c2, c3)
  }
}

/// What a random draw is for; part of the counter so that different uses never share numbers.
public enum NoisePurpose: UInt16, Sendable {
  case initialization = 1
  case shuffle = 2
  case binarization = 3
  case latentNoise = 4
  case evaluation = 5
  case weightNoise = 6
  case dataGeneration = 7
  case dropout = 8
  case benchmark = 9
  /// Per-example pre-activation noise of the local reparameterisation (Bayes by Backprop).
  case activationNoise = 10
  /// MADE connectivity: input orderings and hidden-unit degrees of mask i (Germain et al. §4).
  case connectivity = 11
  /// Which of a MADE's masks a training step uses (one draw per step, the same on every rank).
  case maskSchedule = 12
  /// Ancestral samples drawn from a trained model (one stream per sampled row).
  case sampling = 13
  /// Uniform dequantisation of 8-bit pixels, x = (v + u)/256 (Real NVP).
  case dequantisation = 14
}

/// The full address of a stream of random numbers: (seed, purpose, time, item).
///
/// - `time` is the optimizer step or epoch (up to 2⁴⁸), `item` the global index of the example
///   (or parameter tensor) the draw belongs to. Within one address a stream has 2³² blocks of four
///   words. Counter layout: (block, item, time low 32 bits, time high 16 bits | purpose << 16).
public struct NoiseAddress: Sendable, Equatable {
  public var seed: UInt64
  public var purpose: NoisePurpose
  public var time: UInt64
  public var item: UInt32

  public init(seed: UInt64, purpose: NoisePurpose, time: UInt64 = 0, item: UInt32 = 0) {
    self.seed = seed; self.purpose = purpose; self.time = time; self.item = item
  }
}

/// Draws from one `NoiseAddress`, block after block. A value type with an explicit position,
/// so its whole state is (address, position).
public struct RandomStream: Sendable {
  public let address: NoiseAddress
  public private(set) var block: UInt32 = 0
  private let philox: Philox4x32
  private var buffered: (UInt32, UInt32, UInt32, UInt32) = (0, 0, 0, 0)
  private var used = 4

  public init(_ address: NoiseAddress, startBlock: UInt32 = 0) {
    self.address = address
    self.philox = Philox4x32(seed: address.seed)
    self.block = startBlock
  }

  @inlinable static func wordToUnit(_ w: UInt32) -> Float {
    Float(w >> 8) * 0x1p-24   // [0, 1), 24 random mantissa bits
  }

  /// Next four words.
  public mutating func nextBlock() -> (UInt32, UInt32, UInt32, UInt32) {
    let t = address.time
    let counter = (block, address.item, UInt32(truncatingIfNeeded: t),
                   UInt32(truncatingIfNeeded: (t >> 32) & 0xFFFF)
                     | (UInt32(address.purpose.rawValue) << 16))
    block &+= 1
    return philox.block(counter)
  }

  public mutating func nextWord() -> UInt32 {
    if used == 4 { buffered = nextBlock(); used = 0 }
    defer { used += 1 }
    switch used {
    case 0: return buffered.0
    case 1: return buffered.1
    case 2: return buffered.2
    default: return buffered.3
    }
  }

  /// Uniform in [0, 1).
  public mutating func uniform() -> Float { RandomStream.wordToUnit(nextWord()) }

  /// Uniform integer in [0, n) without modulo bias (Lemire's multiply-shift with rejection).
  public mutating func integer(below n: Int) -> Int {
    precondition(n > 0 && n <= Int(UInt32.max), "integer(below:) needs 0 < n < 2³²")
    let bound = UInt32(n)
    var m = UInt64(nextWord()) &* UInt64(bound)
    if UInt32(truncatingIfNeeded: m) < bound {
      let threshold = (0 &- bound) % bound
      while UInt32(truncatingIfNeeded: m) < threshold { m = UInt64(nextWord()) &* UInt64(bound) }
    }
    return Int(m >> 32)
  }

  /// Fills `out` with uniforms in [0, 1).
  public mutating func fillUniform(_ out: UnsafeMutableBufferPointer<Float>) {
    for i in out.indices { out[i] = uniform() }
  }

  /// Fills `out` with standard normals (Box–Muller on pairs; each block gives four normals).
  public mutating func fillNormal(_ out: UnsafeMutableBufferPointer<Float>) {
    var i = 0
    let n = out.count
    while i < n {
      let (a, b, c, d) = nextBlock()
      let (z0, z1) = RandomStream.boxMuller(a, b)
      let (z2, z3) = RandomStream.boxMuller(c, d)
      out[i] = z0
      if i + 1 < n { out[i + 1] = z1 }
      if i + 2 < n { out[i + 2] = z2 }
      if i + 3 < n { out[i + 3] = z3 }
      i += 4
    }
  }

  /// Fills `out` with standard normals from the same Philox words and Box–Muller map as
  /// `fillNormal`, computed in float by a vectorised C kernel (`ek_philox_normal`): each value
  /// is within 1e-6·max(1, |z|) of `fillNormal`'s, about ten times faster. For draws of millions of
  /// normals per step (Bayes-by-Backprop weight noise); the stream advances by the same blocks.
  public mutating func fillNormalFast(_ out: UnsafeMutableBufferPointer<Float>) {
    guard let base = out.baseAddress, out.count > 0 else { return }
    let t = address.time
    ek_philox_normal(philox.key.0, philox.key.1, block, address.item,
                     UInt32(truncatingIfNeeded: t),
                     UInt32(truncatingIfNeeded: (t >> 32) & 0xFFFF)
                       | (UInt32(address.purpose.rawValue) << 16), base, out.count)
    block &+= UInt32((out.count + 3) / 4)
  }

  /// Two independent N(0,1) from two words. u1 ∈ (0, 1] so log(u1) is finite.
  @inlinable static func boxMuller(_ a: UInt32, _ b: UInt32) -> (Float, Float) {
    let u1 = (Double(a >> 8) + 1) * 0x1p-24
    let u2 = Double(b >> 8) * 0x1p-24
    let r = (-2 * _log(u1)).squareRoot()
    let theta = 2 * Double.pi * u2
    return (Float(r * _cos(theta)), Float(r * _sin(theta)))
  }
}

// Foundation-free libm access.
#if canImport(Glibc)
import Glibc
@usableFromInline func _log(_ x: Double) -> Double { Glibc.log(x) }
@usableFromInline func _cos(_ x: Double) -> Double { Glibc.cos(x) }
@usableFromInline func _sin(_ x: Double) -> Double { Glibc.sin(x) }
#else
import Darwin
@usableFromInline func _log(_ x: Double) -> Double { Darwin.log(x) }
@usableFromInline func _cos(_ x: Double) -> Double { Darwin.cos(x) }
@usableFromInline func _sin(_ x: Double) -> Double { Darwin.sin(x) }
#endif
