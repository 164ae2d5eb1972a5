import ElboReport
import ElboTensor
import Foundation

/// Picture helpers of the binary-image models (NADE, MADE): which test digits to show and a
/// grid of images each followed, in the row below, by a map of the same size.
extension BinaryImages {
  /// `count` test rows spread evenly over the test set (several classes when sorted by class).
  public func shownTestRows(_ count: Int) -> [Int] {
    let shown = min(count, test.count)
    return (0..<shown).map { $0 * (test.count / shown) }
  }

  /// The binary test row `i` as a tile [D].
  public func testTile(_ i: Int) -> [Float] {
    let d = test.dimension
    return Array(testBinary[(i * d)..<((i + 1) * d)])
  }

  /// Rows of `columns` images (`top`), each row followed by one of their maps (`bottom`, same
  /// count, values in [0, 1]), as a PNG grid.
  public func pairedGrid(top: [[Float]], bottom: [[Float]], columns: Int) -> Data {
    precondition(top.count == bottom.count, "pairedGrid: \(top.count) images, \(bottom.count) maps")
    var tiles: [[Float]] = []
    for rowStart in stride(from: 0, to: top.count, by: columns) {
      let row = rowStart..<min(rowStart + columns, top.count)
      for r in row { tiles.append(top[r]) }
      for r in row { tiles.append(bottom[r]) }
    }
    return PNG.grid(tiles, imageWidth: test.cols, imageHeight: test.rows, columns: columns)
  }

  /// Rows of a [n, D] tensor as a PNG grid of `columns` columns.
  public func grid(_ t: Tensor, columns: Int) -> Data {
    let d = t.cols
    let tiles = (0..<t.rows).map { Array(UnsafeBufferPointer(start: t.pointer + $0 * d, count: d)) }
    return PNG.grid(tiles, imageWidth: test.cols, imageHeight: test.rows,
                    columns: min(t.rows, columns))
  }
}
