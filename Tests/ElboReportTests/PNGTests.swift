import ElboReport
import ElboTestSupport
import Foundation
import XCTest

final class PNGTests: XCTestCase {
  func testGrayRoundTrip() throws {
    let w = 37, h = 11
    let pixels = (0..<(w * h)).map { UInt8(truncatingIfNeeded: $0 * 7 + $0 / w) }
    let png = try XCTUnwrap(DecodedPNG(PNG.encodeGray(width: w, height: h, pixels: pixels)))
    XCTAssertEqual([png.width, png.height, png.channels], [w, h, 1])
    XCTAssertEqual(png.pixels, pixels)
    XCTAssertEqual(png.filters, [0])
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
