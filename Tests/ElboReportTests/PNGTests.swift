import CZlib
import ElboReport
import Foundation
import XCTest

/// A strict PNG reader for 8-bit grey/RGB, filter-0, non-interlaced files (what `PNG` writes):
/// checks the signature, every chunk's CRC, chunk order, and that the zlib stream holds exactly
/// the rows. Fails the test (returns nil) on anything else.
struct DecodedPNG: Equatable {
  let width: Int, height: Int, channels: Int
  let pixels: [UInt8]

  init?(_ data: Data, file: StaticString = #filePath, line: UInt = #line) {
    let bytes = [UInt8](data)
    func fail(_ why: String) { XCTFail("PNG: \(why)", file: file, line: line) }
    guard bytes.count >= 8, bytes[0..<8] == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
    else { fail("bad signature"); return nil }
    func be32(_ i: Int) -> Int {
      Int(bytes[i]) << 24 | Int(bytes[i + 1]) << 16 | Int(bytes[i + 2]) << 8 | Int(bytes[i + 3])
    }
    var at = 8
    var types: [String] = []
    var header: [UInt8] = [], idat: [UInt8] = []
    while at < bytes.count {
      guard at + 12 <= bytes.count else { fail("truncated chunk header"); return nil }
      let length = be32(at)
      guard at + 12 + length <= bytes.count else { fail("truncated chunk"); return nil }
      let typeAndData = Array(bytes[(at + 4)..<(at + 8 + length)])
      let expected = crc32(0, typeAndData, uInt(typeAndData.count))
      guard UInt(be32(at + 8 + length)) == UInt(expected) else { fail("CRC mismatch"); return nil }
      let type = String(decoding: typeAndData[0..<4], as: UTF8.self)
      types.append(type)
      let body = Array(typeAndData[4...])
      if type == "IHDR" { header = body }
      if type == "IDAT" { idat += body }
      at += 12 + length
    }
    guard types.first == "IHDR", types.last == "IEND", types.contains("IDAT") else {
      fail("chunk order \(types)"); return nil
    }
    guard header.count == 13 else { fail("IHDR length \(header.count)"); return nil }
    width = Int(header[0]) << 24 | Int(header[1]) << 16 | Int(header[2]) << 8 | Int(header[3])
    height = Int(header[4]) << 24 | Int(header[5]) << 16 | Int(header[6]) << 8 | Int(header[7])
    guard header[8] == 8, header[10] == 0, header[11] == 0, header[12] == 0 else {
      fail("unexpected IHDR \(header)"); return nil
    }
    switch header[9] {
    case 0: channels = 1
    case 2: channels = 3
    default: fail("colour type \(header[9])"); return nil
    }
    let stride = width * channels
    var raw = [UInt8](repeating: 0, count: height * (stride + 1) + 1)  // +1: detect excess data
    var rawLength = uLong(raw.count)
    guard uncompress(&raw, &rawLength, idat, uLong(idat.count)) == Z_OK,
          Int(rawLength) == height * (stride + 1)
    else { fail("zlib stream does not hold exactly \(height) rows"); return nil }
    var pixels: [UInt8] = []
    for y in 0..<height {
      guard raw[y * (stride + 1)] == 0 else { fail("row \(y) filter \(raw[y * (stride + 1)])"); return nil }
      pixels += raw[(y * (stride + 1) + 1)..<((y + 1) * (stride + 1))]
    }
    self.pixels = pixels
  }
}

final class PNGTests: XCTestCase {
  func testGrayRoundTrip() throws {
    let w = 37, h = 11
    let pixels = (0..<(w * h)).map { UInt8(truncatingIfNeeded: $0 * 7 + $0 / w) }
    let png = try XCTUnwrap(DecodedPNG(PNG.encodeGray(width: w, height: h, pixels: pixels)))
    XCTAssertEqual([png.width, png.height, png.channels], [w, h, 1])
    XCTAssertEqual(png.pixels, pixels)
  }

  func testRGBRoundTrip() throws {
    let w = 5, h = 3
    let pixels = (0..<(3 * w * h)).map { UInt8(($0 * 53) % 256) }
    let png = try XCTUnwrap(DecodedPNG(PNG.encodeRGB(width: w, height: h, pixels: pixels)))
    XCTAssertEqual([png.width, png.height, png.channels], [w, h, 3])
    XCTAssertEqual(png.pixels, pixels)
  }

  func testOnePixel() throws {
    let png = try XCTUnwrap(DecodedPNG(PNG.encodeGray(width: 1, height: 1, pixels: [200])))
    XCTAssertEqual(png.pixels, [200])
  }

  /// Tiles land where the layout says, with grey 1-px gaps, clamping and a padded last row.
  func testGridLayout() throws {
    let w = 3, h = 2
    let images: [[Float]] = [
      [Float](repeating: 0, count: 6), [Float](repeating: 1, count: 6),
      [0, 0.5, 1, -3, 7, .nan], [Float](repeating: 0.2, count: 6), [Float](repeating: 1, count: 6),
    ]
    let png = try XCTUnwrap(DecodedPNG(PNG.grid(images, imageWidth: w, imageHeight: h, columns: 2)))
    // 2 columns × 3 rows of 3×2 tiles with 1-px gaps.
    XCTAssertEqual([png.width, png.height, png.channels], [2 * 4 - 1, 3 * 3 - 1, 1])
    func at(_ x: Int, _ y: Int) -> UInt8 { png.pixels[y * png.width + x] }
    XCTAssertEqual(at(0, 0), 0)            // image 0
    XCTAssertEqual(at(4, 0), 255)          // image 1 (column 1 starts at x = 4)
    XCTAssertEqual(at(3, 0), PNG.gapLevel) // vertical gap
    XCTAssertEqual(at(0, 2), PNG.gapLevel) // horizontal gap
    // Image 2 at (0, 3): 0, 0.5, 1 / clamped −3 → 0, 7 → 1, NaN → 0.
    XCTAssertEqual([at(0, 3), at(1, 3), at(2, 3), at(0, 4), at(1, 4), at(2, 4)],
                   [0, 128, 255, 0, 255, 0])
    XCTAssertEqual(at(4, 3), 51)           // image 3: 0.2 · 255 = 51
    XCTAssertEqual(at(0, 6), 255)          // image 4, row 3
    XCTAssertEqual(at(4, 6), PNG.gapLevel) // padding of the last row
  }

  func testEmptyGridIsOneGreyPixel() throws {
    let png = try XCTUnwrap(DecodedPNG(PNG.grid([], imageWidth: 28, imageHeight: 28, columns: 8)))
    XCTAssertEqual([png.width, png.height], [1, 1])
  }

  /// An independent reader (Python's zlib and struct) accepts the file: CRCs, IHDR, pixels.
  func testPythonDecodes() throws {
    let w = 20, h = 9
    let pixels = (0..<(w * h)).map { UInt8(($0 * 31) % 256) }
    let path = NSTemporaryDirectory() + "/elbo-png-\(getpid()).png"
    try PNG.encodeGray(width: w, height: h, pixels: pixels).write(to: URL(fileURLWithPath: path))
    defer { try? FileManager.default.removeItem(atPath: path) }
    let script = """
      import struct, sys, zlib
      b = open(sys.argv[1], 'rb').read()
      assert b[:8] == b'\\x89PNG\\r\\n\\x1a\\n'
      i, idat = 8, b''
      while i < len(b):
          n, = struct.unpack('>I', b[i:i+4]); t = b[i+4:i+8]; d = b[i+8:i+8+n]
          crc, = struct.unpack('>I', b[i+8+n:i+12+n])
          assert zlib.crc32(t + d) & 0xffffffff == crc, t
          if t == b'IHDR': w, h, depth, ctype = struct.unpack('>IIBB', d[:10])
          if t == b'IDAT': idat += d
          i += 12 + n
      raw = zlib.decompress(idat)
      rows = [raw[y*(w+1)+1:(y+1)*(w+1)] for y in range(h)]
      print(w, h, depth, ctype, sum(sum(r) for r in rows))
      """
    let out = try python(script, args: [path])
    XCTAssertEqual(out, "\(w) \(h) 8 0 \(pixels.reduce(0) { $0 + Int($1) })")
  }
}

/// Runs `python3 -c script args…` and returns its trimmed stdout; fails on a non-zero exit.
func python(_ script: String, args: [String] = [], stdin: String? = nil) throws -> String {
  let p = Process()
  p.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
  p.arguments = ["-c", script] + args
  let out = Pipe(), err = Pipe(), input = Pipe()
  p.standardOutput = out
  p.standardError = err
  p.standardInput = input
  try p.run()
  if let stdin { input.fileHandleForWriting.write(Data(stdin.utf8)) }
  try input.fileHandleForWriting.close()
  let data = out.fileHandleForReading.readDataToEndOfFile()
  let errData = err.fileHandleForReading.readDataToEndOfFile()
  p.waitUntilExit()
  if p.terminationStatus != 0 {
    XCTFail("python3 failed: \(String(decoding: errData, as: UTF8.self))")
  }
  return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
}
