import ElboModels
import ElboTrain
import Foundation

// MARK: - Pictures

extension MADEExperiment {
  static let imageColumns = 8, conditionalRows = 2, sampleRows = 8

  /// Two grids, computed without recording:
  ///  - samples.png: 64 ancestral samples under mask 0 (pixel by pixel in its ordering), with
  ///    the run's seed as the fixed noise key, so successive grids are comparable;
  ///  - conditionals.png: rows of 8 test digits, each row followed by the maps of
  ///    p(x_d = 1 | x_<d) under mask 0, "<d" in mask 0's ordering.
  public func artifacts(step: Int, final: Bool) throws -> [Artifact] {
    let cols = MADEExperiment.imageColumns, d = config.inputs
    let samples = model.sample(count: cols * MADEExperiment.sampleRows, maskIndex: 0, seed: seed)
    let picked = images.shownTestRows(cols * MADEExperiment.conditionalRows)
    let x = Tensor(zeros: [picked.count, d])                           // [n, D]
    for (r, i) in picked.enumerated() {
      for (j, v) in images.testTile(i).enumerated() { x[r * d + j] = v }
    }
    let p = model.conditionals(x, maskIndex: 0)                        // [n, D]
    let maps = (0..<picked.count).map {
      Array(UnsafeBufferPointer(start: p.pointer + $0 * d, count: d))
    }
    let order = config.orderAgnostic ? "mask 0's own ordering" : "raster order"
    return [
      Artifact(fileName: "samples.png",
               caption: "64 ancestral samples x ~ p(x | mask 0) (pixel by pixel in \(order)), "
                 + "the same uniforms every time",
               content: .png(images.grid(samples, columns: cols))),
      Artifact(fileName: "conditionals.png",
               caption: "Test digits (odd rows) and, below each, p(x_d = 1 | x_<d) under mask 0 "
                 + "at every pixel d, given the digit's pixels before d in \(order)",
               content: .png(images.pairedGrid(top: picked.map(images.testTile), bottom: maps,
                                               columns: cols))),
    ]
  }

  /// `elbo sample`: `count` ancestral samples under mask 0 keyed by `seed`.
  public func samples(count: Int, seed: UInt64) throws -> Artifact? {
    let x = model.sample(count: count, maskIndex: 0, seed: seed)
    return Artifact(fileName: "samples.png",
                    caption: "\(count) ancestral samples x ~ p(x | mask 0) (seed \(seed))",
                    content: .png(images.grid(x, columns: MADEExperiment.imageColumns)))
  }
}
