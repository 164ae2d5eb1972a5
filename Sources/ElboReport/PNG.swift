import CZlib
import Foundation

/// A minimal PNG writer: 8-bit greyscale or RGB, no interlacing, filter 0 ("None") on every row.
///
/// A PNG file is the 8-byte signature, then chunks `length (4, big-endian) · type (4) · data ·
/// CRC-32 (4, over type and data)`: IHDR (size and pixel format), IDAT (the zlib stream of the
/// rows, each row prefixed with its filter byte) and IEND. zlib does the compression and the CRC,
/// so no libpng is needed. Image grids of a few hundred kB of pixels compress well without the
/// adaptive row filters, which only matter for photographs.
public enum PNG {
  /// Encodes `pixels` (row-major, one byte per pixel, 0 = black) as a greyscale PNG.
  /// - Precondition: `pixels.count == width * height`, width and height ≥ 1.
  public static func encodeGray(width: Int, height: Int, pixels: [UInt8]) -> Data {
    encode(width: width, height: height, channels: 1, pixels: pixels)
  }

  /// Encodes `pixels` (row-major, R G B bytes per pixel) as a colour PNG.
  /// - Precondition: `pixels.count == 3 * width * height`, width and height ≥ 1.
  public static func encodeRGB(width: Int, height: Int, pixels: [UInt8]) -> Data {
    encode(width: width, height: height, channels: 3, pixels: pixels)
  }

  /// Grey level of the 1-px gaps between tiles: mid-grey, so that tiles stay distinguishable
  /// whether their backgrounds are dark (MNIST) or light.
  public static let gapLevel: UInt8 = 128

  /// Tiles images (row-major floats in [0,1], each imageWidth×imageHeight) into a grid with 1-px gaps.
  ///
  /// Tiles are placed row by row, `columns` per row; a last row that is not full is padded with
  /// gap grey. Values are clamped to [0, 1] (NaN draws black), 1 = white.
  /// - Returns: a greyscale PNG of size `(columns·(w+1) − 1) × (rows·(h+1) − 1)`; an empty
  ///   `images` gives a 1×1 grey PNG.
  public static func grid(_ images: [[Float]], imageWidth: Int, imageHeight: Int, columns: Int)
    -> Data
  {
    precondition(imageWidth > 0 && imageHeight > 0 && columns > 0, "grid: sizes must be positive")
    guard !images.isEmpty else { return encodeGray(width: 1, height: 1, pixels: [gapLevel]) }
    let cols = min(columns, images.count)
    let rows = (images.count + cols - 1) / cols
    let width = cols * (imageWidth + 1) - 1, height = rows * (imageHeight + 1) - 1
    var pixels = [UInt8](repeating: gapLevel, count: width * height)  // [height, width]
    for (n, image) in images.enumerated() {
      precondition(image.count == imageWidth * imageHeight,
                   "grid: image \(n) has \(image.count) values, expected \(imageWidth * imageHeight)")
      let top = (n / cols) * (imageHeight + 1), left = (n % cols) * (imageWidth + 1)
      for y in 0..<imageHeight {
        for x in 0..<imageWidth {
          pixels[(top + y) * width + left + x] = byte(image[y * imageWidth + x])
        }
      }
    }
    return encodeGray(width: width, height: height, pixels: pixels)
  }

  /// [0,1] → 0…255, rounded; clamped; NaN → 0.
  static func byte(_ v: Float) -> UInt8 {
    guard v == v else { return 0 }
    return UInt8((min(max(v, 0), 1) * 255).rounded())
  }

  // MARK: - Encoding

  static func encode(width: Int, height: Int, channels: Int, pixels: [UInt8]) -> Data {
    precondition(width > 0 && height > 0, "PNG: width and height must be positive")
    precondition(pixels.count == width * height * channels,
                 "PNG: \(pixels.count) bytes for \(width)×\(height)×\(channels)")
    // Rows with a leading filter byte 0 ("None").
    let stride = width * channels
    var raw = [UInt8](repeating: 0, count: height * (stride + 1))
    for y in 0..<height {
      raw[y * (stride + 1)] = 0
      for x in 0..<stride { raw[y * (stride + 1) + 1 + x] = pixels[y * stride + x] }
    }
    var png = Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
    var header = Data()
    header.appendBigEndian(UInt32(width))
    header.appendBigEndian(UInt32(height))
    // Bit depth 8; colour type 0 (grey) or 2 (RGB); compression 0, filter 0, no interlace.
    header.append(contentsOf: [8, channels == 3 ? 2 : 0, 0, 0, 0])
    appendChunk("IHDR", header, to: &png)
    appendChunk("IDAT", deflate(raw), to: &png)
    appendChunk("IEND", Data(), to: &png)
    return png
  }

  /// The zlib stream (header, deflate data, Adler-32) of `bytes`.
  static func deflate(_ bytes: [UInt8]) -> Data {
    var capacity = compressBound(uLong(bytes.count))
    var out = [UInt8](repeating: 0, count: Int(capacity))
    let status = bytes.withUnsafeBufferPointer { src in
      compress2(&out, &capacity, src.baseAddress, uLong(bytes.count), 6)
    }
    // compressBound guarantees room, so only out-of-memory can fail here.
    precondition(status == Z_OK, "zlib compress2 failed (\(status))")
    return Data(out[0..<Int(capacity)])
  }

  static func appendChunk(_ type: String, _ data: Data, to png: inout Data) {
    let typeBytes = Data(type.utf8)
    png.appendBigEndian(UInt32(data.count))
    png.append(typeBytes)
    png.append(data)
    png.appendBigEndian(UInt32(crc(typeBytes + data)))
  }

  /// CRC-32 (ISO 3309, as PNG requires) via zlib.
  static func crc(_ data: Data) -> UInt {
    data.withUnsafeBytes { buf in
      UInt(crc32(0, buf.bindMemory(to: UInt8.self).baseAddress, uInt(buf.count)))
    }
  }
}

extension Data {
  mutating func appendBigEndian(_ v: UInt32) {
    append(contentsOf: [UInt8(v >> 24), UInt8((v >> 16) & 0xFF), UInt8((v >> 8) & 0xFF),
                        UInt8(v & 0xFF)])
  }
}
