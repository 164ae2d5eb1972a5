import ElboModels
import ElboTrain
import Foundation

// MARK: - Pictures

extension NADEExperiment {
  static let imageColumns = 8, conditionalRows = 2, sampleRows = 8
  /// The `time` of the pictured samples' noise address: fixed, so that every samples.png shows
  /// the same uniforms pushed through the current model and successive grids are comparable.
  static let sampleNoiseTime: UInt64 = 1 << 47

  /// Two grids, computed without recording (the training tape, the gradients and every random
  /// stream of training are untouched):
  ///  - samples.png: 64 ancestral samples x ~ p(x) with a fixed noise key;
  ///  - conditionals.png: rows of 8 test digits, each row followed by the maps of
  ///    p(x_d = 1 | x_<d) of those digits (raster order) — what the model expected at each pixel
  ///    given the pixels above and to the left.
  public func artifacts(step: Int, final: Bool) throws -> [Artifact] {
    let cols = NADEExperiment.imageColumns
    let samples = model.sample(count: cols * NADEExperiment.sampleRows, seed: seed,
                               time: NADEExperiment.sampleNoiseTime)
    let picked = images.shownTestRows(cols * NADEExperiment.conditionalRows)
    let x = Tensor(zeros: [picked.count, config.inputs])               // [n, D]
    for (r, i) in picked.enumerated() {
      for (j, v) in images.testTile(i).enumerated() { x[r * config.inputs + j] = v }
    }
    let p = model.conditionals(x: x)                                   // [n, D]
    let maps = (0..<picked.count).map {
      Array(UnsafeBufferPointer(start: p.pointer + $0 * config.inputs, count: config.inputs))
    }
    return [
      Artifact(fileName: "samples.png",
               caption: "64 ancestral samples x ~ p(x) (pixel by pixel in raster order), the "
                 + "same uniforms every time",
               content: .png(images.grid(samples, columns: cols))),
      Artifact(fileName: "conditionals.png",
               caption: "Test digits (odd rows) and, below each, p(x_d = 1 | x_<d) at every "
                 + "pixel d given the digit's pixels before it in raster order",
               content: .png(images.pairedGrid(top: picked.map(images.testTile), bottom: maps,
                                               columns: cols))),
    ]
  }

  /// `elbo sample`: `count` ancestral samples keyed by `seed`.
  public func samples(count: Int, seed: UInt64) throws -> Artifact? {
    let x = model.sample(count: count, seed: seed, time: NADEExperiment.sampleNoiseTime + 1)
    return Artifact(fileName: "samples.png",
                    caption: "\(count) ancestral samples x ~ p(x) (seed \(seed))",
                    content: .png(images.grid(x, columns: NADEExperiment.imageColumns)))
  }
}
