import CZlib
import Foundation

/// Reads a whole file, transparently decompressing it when it is gzip data.
///
/// Gzip is recognised by its magic bytes `1f 8b`, not by the name, so a decompressed copy
/// that kept its `.gz` suffix is still an error rather than garbage: a `.gz` name without the
/// magic is reported. Empty and missing files are errors.
public func readDataFile(_ path: String) throws -> [UInt8] {
  var isDirectory: ObjCBool = false
  guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
    throw DataError(path, "no such file")
  }
  guard !isDirectory.boolValue else {
    throw DataError(path, "is a directory, expected a file")
  }
  let data: Data
  do {
    data = try Data(contentsOf: URL(fileURLWithPath: path), options: .mappedIfSafe)
  } catch {
    throw DataError(path, "cannot read file (\(error.localizedDescription))")
  }
  guard !data.isEmpty else { throw DataError(path, "empty file") }
  let bytes = [UInt8](data)
  if bytes.count >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b {
    let plain = try gunzip(bytes, path: path)
    guard !plain.isEmpty else { throw DataError(path, "gzip stream decompresses to 0 bytes") }
    return plain
  }
  if path.hasSuffix(".gz") {
    let head = bytes.prefix(2).map { String(format: "%02x", $0) }.joined(separator: " ")
    throw DataError(path, "name ends in .gz but the file is not gzip data (starts with \(head))")
  }
  return bytes
}

/// Decompresses gzip (or zlib) data with zlib's `inflate`, strictly.
///
/// Uses `inflateInit2(15 + 32)` so zlib auto-detects the gzip/zlib header and verifies the
/// CRC/length trailer. Concatenated gzip members (`cat a.gz b.gz`, which `gzip -d` accepts)
/// are accepted; anything else after the end of the stream, a stream that ends early, or
/// corrupt data throws a `DataError` naming `path`.
public func gunzip(_ input: [UInt8], path: String) throws -> [UInt8] {
  var stream = z_stream()
  var rc = inflateInit2_(&stream, 15 + 32, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
  guard rc == Z_OK else { throw DataError(path, "cannot initialise zlib inflate (code \(rc))") }
  defer { inflateEnd(&stream) }

  // Start from the gzip trailer's ISIZE hint (little-endian length mod 2^32) when it is
  // plausible: deflate cannot expand more than ~1032:1. The buffer still grows if the hint is
  // wrong, so a lying trailer costs at most one oversized allocation.
  var capacity = max(input.count * 4, 1 << 16)
  if input.count >= 18 {
    let n = input.count
    let hint = Int(input[n - 1]) << 24 | Int(input[n - 2]) << 16 | Int(input[n - 3]) << 8
      | Int(input[n - 4])
    if hint >= input.count / 2 && hint <= min(input.count * 1032, 1 << 31) {
      capacity = hint + 1
    }
  }
  var output = [UInt8](repeating: 0, count: capacity)
  var produced = 0
  // zlib counts in 32-bit `uInt`; feed and drain in chunks well below that.
  let chunk = 1 << 30

  return try input.withUnsafeBufferPointer { inBuffer -> [UInt8] in
    guard let inBase = inBuffer.baseAddress else { throw DataError(path, "empty gzip data") }
    var consumed = 0
    while true {
      if stream.avail_in == 0 && consumed < inBuffer.count {
        stream.next_in = UnsafeMutablePointer(mutating: inBase + consumed)
        stream.avail_in = uInt(min(inBuffer.count - consumed, chunk))
      }
      if produced == output.count {
        output.append(contentsOf: repeatElement(0, count: output.count))
      }
      let availIn = Int(stream.avail_in)
      output.withUnsafeMutableBufferPointer { out in
        let room = min(out.count - produced, chunk)
        // `out` is never empty here: the buffer was grown above when full.
        stream.next_out = out.baseAddress.map { $0 + produced }
        stream.avail_out = uInt(room)
        rc = inflate(&stream, Z_NO_FLUSH)
        produced += room - Int(stream.avail_out)
      }
      consumed += availIn - Int(stream.avail_in)

      switch rc {
      case Z_OK:
        continue
      case Z_STREAM_END:
        if consumed == inBuffer.count {
          output.removeSubrange(produced...)
          return output
        }
        let rest = inBuffer.count - consumed
        guard rest >= 2, inBase[consumed] == 0x1f, inBase[consumed + 1] == 0x8b else {
          throw DataError(path, "\(rest) bytes of trailing garbage after the gzip stream")
        }
        // Another gzip member follows: keep decompressing into the same output.
        guard inflateReset(&stream) == Z_OK else {
          throw DataError(path, "cannot reset zlib inflate for the next gzip member")
        }
      case Z_BUF_ERROR where consumed == inBuffer.count && stream.avail_in == 0:
        throw DataError(
          path,
          "truncated gzip stream (inflate stopped after \(produced) of an unknown total bytes)")
      case Z_BUF_ERROR:
        continue  // Output was full; it grows on the next iteration.
      case Z_DATA_ERROR, Z_NEED_DICT:
        let why = stream.msg.map { String(cString: $0) } ?? "invalid data"
        throw DataError(
          path, "corrupt gzip stream (\(why), after \(consumed) compressed bytes)")
      case Z_MEM_ERROR:
        throw DataError(path, "out of memory while decompressing gzip stream")
      default:
        throw DataError(path, "zlib inflate failed with code \(rc)")
      }
    }
  }
}

/// Compresses bytes into a single gzip member with zlib's `deflate` (windowBits 31).
///
/// Used to write fixtures and exported data; the result is readable by `gunzip` and `gzip -d`.
public func gzipCompress(_ input: [UInt8], level: Int32 = 6) throws -> [UInt8] {
  var stream = z_stream()
  var rc = deflateInit2_(
    &stream, level, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY, zlibVersion(),
    Int32(MemoryLayout<z_stream>.size))
  guard rc == Z_OK else { throw DataError(nil, "cannot initialise zlib deflate (code \(rc))") }
  defer { deflateEnd(&stream) }

  let chunk = 1 << 30
  var output = [UInt8](repeating: 0, count: Int(deflateBound(&stream, uLong(input.count))) + 64)
  var produced = 0
  var consumed = 0
  try input.withUnsafeBufferPointer { inBuffer in
    while true {
      if stream.avail_in == 0 && consumed < inBuffer.count, let base = inBuffer.baseAddress {
        stream.next_in = UnsafeMutablePointer(mutating: base + consumed)
        stream.avail_in = uInt(min(inBuffer.count - consumed, chunk))
      }
      if produced == output.count {
        output.append(contentsOf: repeatElement(0, count: output.count))
      }
      let availIn = Int(stream.avail_in)
      let last = consumed + availIn == inBuffer.count
      output.withUnsafeMutableBufferPointer { out in
        let room = min(out.count - produced, chunk)
        stream.next_out = out.baseAddress.map { $0 + produced }
        stream.avail_out = uInt(room)
        rc = deflate(&stream, last ? Z_FINISH : Z_NO_FLUSH)
        produced += room - Int(stream.avail_out)
      }
      consumed += availIn - Int(stream.avail_in)
      if rc == Z_STREAM_END { break }
      guard rc == Z_OK || rc == Z_BUF_ERROR else {
        throw DataError(nil, "zlib deflate failed with code \(rc)")
      }
    }
  }
  output.removeSubrange(produced...)
  return output
}
