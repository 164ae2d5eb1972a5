import CZlib
import Foundation
import XCTest

/// A strict PNG reader for tests: 8-bit grey, grey+alpha, RGB or RGBA, non-interlaced, any of
/// the five row filters. Checks the signature, every chunk's CRC, the chunk order, and that the
/// zlib stream holds exactly the rows; fails the test (returns nil) on anything else.
public struct DecodedPNG: Equatable {
  public let width: Int, height: Int
  /// 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA.
  public let channels: Int
  /// Row-major, `channels` bytes per pixel, filters undone.
  public let pixels: [UInt8]
  /// The row filter types the file used.
  public let filters: Set<UInt8>

  public init?(_ data: Data, file: StaticString = #filePath, line: UInt = #line) {
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
    guard width > 0, height > 0, header[8] == 8, header[10] == 0, header[11] == 0,
          header[12] == 0 else { fail("unexpected IHDR \(header)"); return nil }
    switch header[9] {
    case 0: channels = 1
    case 4: channels = 2
    case 2: channels = 3
    case 6: channels = 4
    default: fail("colour type \(header[9])"); return nil
    }
    let stride = width * channels, bpp = channels, rows = height
    var raw = [UInt8](repeating: 0, count: height * (stride + 1) + 1)  // +1: detect excess data
    var rawLength = uLong(raw.count)
    guard uncompress(&raw, &rawLength, idat, uLong(idat.count)) == Z_OK,
          Int(rawLength) == height * (stride + 1)
    else { fail("zlib stream does not hold exactly \(height) rows"); return nil }

    // Undo the row filters (PNG spec §9): each byte was stored minus a predictor from its left
    // neighbour a, the byte above b, and the one above-left c.
    var out = [UInt8](repeating: 0, count: height * stride)
    var used = Set<UInt8>()
    var bad: UInt8? = nil
    out.withUnsafeMutableBufferPointer { o in
      raw.withUnsafeBufferPointer { r in
        for y in 0..<rows {
          let filter = r[y * (stride + 1)]
          used.insert(filter)
          let src = y * (stride + 1) + 1, dst = y * stride
          for x in 0..<stride {
            let a = x >= bpp ? Int(o[dst + x - bpp]) : 0
            let b = y > 0 ? Int(o[dst - stride + x]) : 0
            let c = x >= bpp && y > 0 ? Int(o[dst - stride + x - bpp]) : 0
            let predictor: Int
            switch filter {
            case 0: predictor = 0
            case 1: predictor = a
            case 2: predictor = b
            case 3: predictor = (a + b) / 2
            case 4:
              let p = a + b - c, pa = abs(p - a), pb = abs(p - b), pc = abs(p - c)
              predictor = pa <= pb && pa <= pc ? a : (pb <= pc ? b : c)
            default: bad = filter; return
            }
            o[dst + x] = UInt8(truncatingIfNeeded: Int(r[src + x]) + predictor)
          }
        }
      }
    }
    if let bad { fail("unknown row filter \(bad)"); return nil }
    pixels = out
    filters = used
  }
}
