import ElboModels
import ElboReport
import ElboTrain
import Foundation

// MARK: - Pictures

extension RealNVPExperiment {
  /// Toy panels: pixels per side and the square of the plane they show.
  static let panelSize = 128, panelRange: ClosedRange<Double> = -4...4
  static let shownPoints = 5_000, imageColumns = 8

  /// Toys: density.png, three panels side by side — a 2-D histogram of training points (scaled
  /// to its maximum), the model's density p(y) on the grid (to its 99th percentile), and a
  /// histogram of as many samples y = f⁻¹(z) (the run's seed as the noise key, so successive
  /// pictures are comparable).
  /// Images: samples.png (64 samples, the logit undone) and data.png (64 training images).
  public func artifacts(step: Int, final: Bool) throws -> [Artifact] {
    switch data {
    case let .toy(toy, train, _):
      let n = min(RealNVPExperiment.shownPoints, trainCount)
      let samples = model.sample(count: n, seed: seed)
      let panels = [histogram(Array(train.prefix(2 * n))), densityPanel(),
                    histogram(samples.array)]
      let s = RealNVPExperiment.panelSize
      return [Artifact(
        fileName: "density.png",
        caption: "\(toy.rawValue) on [−4, 4]²: \(n) training points (histogram), the model's "
          + "density p(y) (scaled to its 99th percentile), and \(n) samples y = f⁻¹(z)",
        content: .png(PNG.grid(panels, imageWidth: s, imageHeight: s, columns: 3)))]
    case let .images(train, _, _, _):
      let count = RealNVPExperiment.imageColumns * RealNVPExperiment.imageColumns
      let d = dimension
      let shown = (0..<min(count, trainCount)).map { $0 * (trainCount / min(count, trainCount)) }
      let tiles = shown.map { g in train[(g * d)..<((g + 1) * d)].map { $0 / 255 } }
      return [try samples(count: count, seed: seed)!,
              Artifact(fileName: "data.png", caption: "\(shown.count) training images",
                       content: .png(imageGrid(tiles)))]
    }
  }

  /// `elbo sample`: `count` draws keyed by `seed` (images: a grid; toys: their histogram).
  public func samples(count: Int, seed: UInt64) throws -> Artifact? {
    let y = model.sample(count: count, seed: seed)
    switch data {
    case .toy:
      let s = RealNVPExperiment.panelSize
      return Artifact(fileName: "samples.png",
                      caption: "histogram of \(count) samples y = f⁻¹(z) on [−4, 4]² (seed \(seed))",
                      content: .png(PNG.grid([histogram(y.array)], imageWidth: s, imageHeight: s,
                                             columns: 1)))
    case .images:
      let d = dimension
      let tiles = (0..<count).map { r in (0..<d).map { transform.intensities(y[r * d + $0]) } }
      return Artifact(fileName: "samples.png",
                      caption: "\(count) samples x = (σ(y) − α)/(1 − 2α), y = f⁻¹(z), "
                        + "z ~ N(0, I) (seed \(seed))",
                      content: .png(imageGrid(tiles)))
    }
  }

  func imageGrid(_ tiles: [[Float]]) -> Foundation.Data {
    guard case let .images(_, _, rows, cols) = data else { preconditionFailure("images only") }
    return PNG.grid(tiles, imageWidth: cols, imageHeight: rows,
                    columns: min(tiles.count, RealNVPExperiment.imageColumns))
  }

  /// Pixel (i, j) of a panel covers the square around (x₁, x₂) = (left + (j + ½)h, top − (i + ½)h).
  func cell(_ v: Double) -> Int? {
    let r = RealNVPExperiment.panelRange, s = RealNVPExperiment.panelSize
    let k = Int(floor((v - r.lowerBound) / (r.upperBound - r.lowerBound) * Double(s)))
    return (0..<s).contains(k) ? k : nil
  }

  /// A 2-D histogram of flat [n, 2] points, scaled to its maximum count.
  func histogram(_ points: [Float]) -> [Float] {
    let s = RealNVPExperiment.panelSize
    var counts = [Float](repeating: 0, count: s * s)
    for i in 0..<(points.count / 2) {
      guard let j = cell(Double(points[2 * i])), let k = cell(Double(points[2 * i + 1])) else {
        continue
      }
      counts[(s - 1 - k) * s + j] += 1
    }
    let top = max(counts.max() ?? 1, 1)
    return counts.map { $0 / top }
  }

  /// p(y) at the centre of every pixel, scaled to its 99th percentile (clipped above): a
  /// coupling flow's density has thin ridges far higher than the rest, which scaling to the
  /// maximum would leave as the only thing visible.
  func densityPanel() -> [Float] {
    let s = RealNVPExperiment.panelSize, r = RealNVPExperiment.panelRange
    let h = (r.upperBound - r.lowerBound) / Double(s)
    let y = Tensor(zeros: [s * s, 2])                                 // [s², 2]
    for i in 0..<s {
      for j in 0..<s {
        y[2 * (i * s + j)] = Float(r.lowerBound + (Double(j) + 0.5) * h)
        y[2 * (i * s + j) + 1] = Float(r.upperBound - (Double(i) + 0.5) * h)
      }
    }
    let tape = Tape(recording: false)
    let p = model.logDensity(tape.constant(y)).value.array.map { Foundation.exp($0) }
    let top = max(p.sorted()[p.count * 99 / 100], .leastNormalMagnitude)
    return p.map { min($0 / top, 1) }
  }
}
