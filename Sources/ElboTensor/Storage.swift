import Foundation

/// A 64-byte-aligned block of Float32 that tensors view.
///
/// Reference type on purpose: a parameter tensor, its gradient and the optimizer all look at
/// views of ONE flat `Storage` (DESIGN.md layer 4), and the autograd arena hands the same
/// storage back step after step so that a steady-state step allocates almost nothing.
public final class Storage: @unchecked Sendable {
  /// First element; aligned to 64 bytes (one AVX-512 vector, one cache line).
  public let base: UnsafeMutablePointer<Float>
  /// Number of floats the block holds.
  public let capacity: Int

  /// Allocates `capacity` floats, zero-filled.
  public init(capacity: Int) {
    precondition(capacity >= 0, "Storage capacity must be non-negative")
    var raw: UnsafeMutableRawPointer?
    let bytes = max(capacity, 1) * MemoryLayout<Float>.stride
    guard posix_memalign(&raw, 64, bytes) == 0, let raw else {
      fatalError("out of memory: could not allocate \(bytes) bytes")
    }
    memset(raw, 0, bytes)
    base = raw.bindMemory(to: Float.self, capacity: max(capacity, 1))
    self.capacity = capacity
  }

  deinit { free(base) }
}
