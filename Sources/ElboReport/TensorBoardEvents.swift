import Foundation

// MARK: - TensorBoard event files: scalars as TensorBoard reads them
//
// An event file is a sequence of TFRecords, each
//
//   uint64 length (little-endian) │ uint32 masked CRC-32C of the 8 length bytes │
//   length bytes of data          │ uint32 masked CRC-32C of the data
//
// with mask(c) = ((c >> 15) | (c << 17)) + 0xa282ead8, and each record's data a serialised
// `tensorflow.Event` protocol buffer:
//
//   Event   { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5; }
//   Summary { repeated Value value = 1; }
//   Value   { string tag = 1; float simple_value = 2; }
//
// The first record carries file_version "brain.Event:2". Only these few fields are written, so
// the protobuf encoding is done by hand (three wire types: 64-bit, varint, length-delimited); no
// protobuf package is needed for it. CRC-32C (Castagnoli) is not zlib's CRC-32, so it is here too.
// Layout from TensorFlow's core/lib/io/record_writer.cc and core/util/event.proto.

/// Appends scalar summaries to a TensorBoard event file (`events.out.tfevents.<time>.<host>`).
public final class TensorBoardEventWriter {
  public let path: String
  private let handle: FileHandle

  /// Creates a new event file in `directory` and writes its version record.
  public init(directory: String, wallTime: Double = Date().timeIntervalSince1970) throws {
    let host = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init)
      ?? "localhost"
    // A fresh name per writer (a resumed run adds a file; TensorBoard reads them all in order).
    var name = "events.out.tfevents.\(Int(wallTime)).\(host)"
    var n = 1
    while FileManager.default.fileExists(atPath: directory + "/" + name) {
      n += 1
      name = "events.out.tfevents.\(Int(wallTime)).\(host).\(n)"
    }
    path = directory + "/" + name
    guard FileManager.default.createFile(atPath: path, contents: nil),
          let h = FileHandle(forWritingAtPath: path) else {
      throw ReportError("\(path): cannot create the TensorBoard event file")
    }
    handle = h
    var event = Protobuf()
    event.double(1, wallTime)
    event.string(3, "brain.Event:2")
    write(record: event.bytes)
  }

  /// One event at `step` holding a scalar per (tag, value).
  public func add(step: Int, scalars: [(tag: String, value: Float)],
                  wallTime: Double = Date().timeIntervalSince1970) {
    guard !scalars.isEmpty else { return }
    var summary = Protobuf()
    for (tag, value) in scalars {
      var v = Protobuf()
      v.string(1, tag)
      v.float(2, value)
      summary.message(1, v.bytes)
    }
    var event = Protobuf()
    event.double(1, wallTime)
    event.varint(2, UInt64(bitPattern: Int64(step)))
    event.message(5, summary.bytes)
    write(record: event.bytes)
  }

  private func write(record data: [UInt8]) {
    var out: [UInt8] = []
    out.reserveCapacity(data.count + 16)
    let length = withUnsafeBytes(of: UInt64(data.count).littleEndian, Array.init)
    out += length
    out += withUnsafeBytes(of: CRC32C.masked(length).littleEndian, Array.init)
    out += data
    out += withUnsafeBytes(of: CRC32C.masked(data).littleEndian, Array.init)
    handle.write(Data(out))
  }
}

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), table-driven.
public enum CRC32C {
  static let table: [UInt32] = (0..<256).map { i -> UInt32 in
    var c = UInt32(i)
    for _ in 0..<8 { c = (c & 1) != 0 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1 }
    return c
  }

  public static func checksum(_ bytes: [UInt8]) -> UInt32 {
    var c: UInt32 = 0xFFFF_FFFF
    for b in bytes { c = table[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
    return c ^ 0xFFFF_FFFF
  }

  /// TFRecord's masked CRC (so that a CRC of data holding CRCs is not degenerate).
  public static func masked(_ bytes: [UInt8]) -> UInt32 {
    let c = checksum(bytes)
    return ((c >> 15) | (c << 17)) &+ 0xA282_EAD8
  }
}

/// Protocol-buffer wire encoding of the few field kinds an Event needs.
struct Protobuf {
  private(set) var bytes: [UInt8] = []

  private mutating func raw(varint v: UInt64) {
    var v = v
    while v >= 0x80 {
      bytes.append(UInt8(v & 0x7F) | 0x80)
      v >>= 7
    }
    bytes.append(UInt8(v))
  }

  private mutating func key(_ field: Int, _ wireType: UInt64) {
    raw(varint: UInt64(field) << 3 | wireType)
  }

  mutating func varint(_ field: Int, _ v: UInt64) {
    key(field, 0)
    raw(varint: v)
  }

  mutating func double(_ field: Int, _ v: Double) {
    key(field, 1)
    bytes += withUnsafeBytes(of: v.bitPattern.littleEndian, Array.init)
  }

  mutating func float(_ field: Int, _ v: Float) {
    key(field, 5)
    bytes += withUnsafeBytes(of: v.bitPattern.littleEndian, Array.init)
  }

  mutating func message(_ field: Int, _ payload: [UInt8]) {
    key(field, 2)
    raw(varint: UInt64(payload.count))
    bytes += payload
  }

  mutating func string(_ field: Int, _ s: String) { message(field, Array(s.utf8)) }
}
