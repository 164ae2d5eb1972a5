import Foundation

/// A 64-bit content digest: FNV-1a over 8-byte little-endian words, then the trailing bytes and
/// the length. Any change of content changes it with probability 1 − 2⁻⁶⁴ for unrelated inputs:
/// a consistency check (ranks agreeing on their data, a checkpoint's seal), not a defence
/// against an adversary. Written by hand: Foundation on Linux has no hash of bytes, and
/// swift-crypto is not among the packages Elbo may use.
public enum ContentDigest {
  public static func of(_ data: Data) -> UInt64 {
    data.withUnsafeBytes { raw in of(raw) }
  }

  public static func of(_ floats: [Float]) -> UInt64 {
    floats.withUnsafeBytes { raw in of(raw) }
  }

  public static func of(_ raw: UnsafeRawBufferPointer) -> UInt64 {
    var s = Streaming()
    s.update(raw)
    return s.finish()
  }

  /// (file length, digest of bytes [offset, length)) of an open file, read 8 MB at a time.
  public static func of(_ handle: FileHandle, from offset: Int = 0) throws -> (length: Int, digest: UInt64) {
    let length = Int(try handle.seekToEnd())
    try handle.seek(toOffset: UInt64(min(offset, length)))
    var digest = Streaming()
    while let chunk = try handle.read(upToCount: 8 << 20), !chunk.isEmpty {
      chunk.withUnsafeBytes { digest.update($0) }
    }
    return (length, digest.finish())
  }

  /// Several digests combined in order.
  public static func combine(_ parts: [UInt64]) -> UInt64 {
    parts.withUnsafeBytes { of($0) }
  }

  /// The same digest over bytes given in pieces of any size.
  public struct Streaming {
    private var h: UInt64 = 0xcbf2_9ce4_8422_2325
    private var pending: [UInt8] = []   // < 8 bytes not yet folded in
    private var count = 0
    private static let prime: UInt64 = 0x0000_0100_0000_01b3

    public init() {}

    public mutating func update(_ raw: UnsafeRawBufferPointer) {
      count += raw.count
      var start = 0
      if !pending.isEmpty {
        let take = min(8 - pending.count, raw.count)
        pending += raw[0..<take]
        start = take
        guard pending.count == 8 else { return }
        fold(pending.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
        pending.removeAll(keepingCapacity: true)
      }
      let words = (raw.count - start) / 8
      for w in 0..<words {
        fold(raw.loadUnaligned(fromByteOffset: start + w * 8, as: UInt64.self))
      }
      pending += raw[(start + words * 8)...]
    }

    private mutating func fold(_ word: UInt64) { h = (h ^ UInt64(littleEndian: word)) &* Self.prime }

    public func finish() -> UInt64 {
      var h = self.h
      for b in pending { h = (h ^ UInt64(b)) &* Self.prime }
      return (h ^ UInt64(count)) &* Self.prime
    }
  }
}
