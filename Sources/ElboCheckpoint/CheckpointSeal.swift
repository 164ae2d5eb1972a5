import ElboDistributed
import Foundation

/// A checkpoint's integrity seal: a digest of the whole file, checked before HDF5 parses it.
///
/// HDF5's parser trusts the file it is given; a truncated, bit-flipped or hostile file can make
/// it read freed memory (launch/fuzz found a heap use-after-free in HDF5 1.10's attribute lookup,
/// and an allocation of 2⁶⁴ − 136 bytes). So every checkpoint is created with a 512-byte HDF5
/// user block — bytes HDF5 reserves at the start of the file and never reads — and once the
/// file is closed, rank 0 writes into it (little-endian):
///
///     offset 0   "ELBOSEAL"   magic
///            8   UInt32       seal version (1)
///           12   UInt32       0
///           16   UInt64       length of the whole file in bytes
///           24   UInt64       ContentDigest of bytes [512, length)
///           32…  zeros
///
/// A reader checks length and digest first and refuses a mismatch in one line, so a damaged
/// file never reaches HDF5. h5py, h5dump and HDF5 itself read sealed files as usual (they find
/// the superblock after the user block). Files written before sealing have HDF5's own signature
/// at offset 0 and nothing to check them by: they are refused too, unless the user asks for it
/// with ELBO_ACCEPT_UNSEALED=1 (HDF5 then parses them unchecked).
public enum CheckpointSeal {
  public static let userBlockBytes = 512
  static let magic = Array("ELBOSEAL".utf8)
  static let hdf5Signature: [UInt8] = [0x89, 0x48, 0x44, 0x46, 0x0D, 0x0A, 0x1A, 0x0A]

  /// Writes the seal of the closed file at `path` (rank 0, before the file is committed).
  /// Returns an error message, or nil.
  static func seal(_ path: String) -> String? {
    guard let handle = FileHandle(forUpdatingAtPath: path) else { return "cannot open it to seal it" }
    defer { try? handle.close() }
    do {
      let (length, digest) = try contentDigest(handle)
      var header = [UInt8](repeating: 0, count: userBlockBytes)
      header.replaceSubrange(0..<8, with: magic)
      put(UInt32(1), at: 8, in: &header)
      put(UInt64(length), at: 16, in: &header)
      put(digest, at: 24, in: &header)
      try handle.seek(toOffset: 0)
      try handle.write(contentsOf: Data(header))
      return nil
    } catch {
      return "cannot seal it (\(error.localizedDescription))"
    }
  }

  /// Throws a one-line ``CheckpointError`` unless the file at `path` is intact: sealed with a
  /// matching length and digest, or an unsealed file from before sealing (HDF5's signature at 0).
  static func verify(_ path: String) throws {
    guard let handle = FileHandle(forReadingAtPath: path) else {
      throw CheckpointError(path: path, message: access(path, F_OK) == 0
        ? "cannot be read (permission denied?)" : "no such checkpoint file")
    }
    defer { try? handle.close() }
    let head = [UInt8]((try? handle.read(upToCount: 32)) ?? Data())
    if head.count >= 8 && Array(head[0..<8]) == hdf5Signature {
      if ProcessInfo.processInfo.environment["ELBO_ACCEPT_UNSEALED"] == "1" { return }
      throw CheckpointError(path: path, message: "has no integrity seal (written by an older "
        + "Elbo, or by another program): set ELBO_ACCEPT_UNSEALED=1 to read it anyway, unchecked")
    }
    guard head.count == 32, Array(head[0..<8]) == magic else {
      throw CheckpointError(path: path, message: "not a readable Elbo checkpoint (neither sealed "
        + "nor HDF5: it does not start with an Elbo seal or the HDF5 signature)")
    }
    let version = get(UInt32.self, at: 8, in: head)
    guard version == 1 else {
      throw CheckpointError(path: path, message: "sealed with seal version \(version), newer "
        + "than this Elbo reads (1); use a newer Elbo")
    }
    let length = get(UInt64.self, at: 16, in: head), digest = get(UInt64.self, at: 24, in: head)
    let (actualLength, actualDigest) = try contentDigest(handle)
    guard UInt64(actualLength) == length else {
      throw CheckpointError(path: path, message: "damaged: \(actualLength) bytes, but it was "
        + "written with \(length) (truncated or appended to)")
    }
    guard actualDigest == digest else {
      throw CheckpointError(path: path, message: "damaged: its contents do not match the digest "
        + "it was sealed with (modified after it was written)")
    }
  }

  /// (file length, digest of bytes [512, length)).
  private static func contentDigest(_ handle: FileHandle) throws -> (Int, UInt64) {
    try ContentDigest.of(handle, from: userBlockBytes)
  }

  private static func put<T: FixedWidthInteger>(_ v: T, at offset: Int, in bytes: inout [UInt8]) {
    withUnsafeBytes(of: v.littleEndian) { bytes.replaceSubrange(offset..<(offset + $0.count), with: $0) }
  }

  private static func get<T: FixedWidthInteger>(_ type: T.Type, at offset: Int, in bytes: [UInt8]) -> T {
    var v: T = 0
    withUnsafeMutableBytes(of: &v) { $0.copyBytes(from: bytes[offset..<(offset + $0.count)]) }
    return T(littleEndian: v)
  }
}
