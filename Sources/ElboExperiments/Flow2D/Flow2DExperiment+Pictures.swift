import ElboModels
import ElboReport
import ElboTrain
import Foundation

// MARK: - Pictures: the target and q_K as heat maps (Rezende & Mohamed 2015, Fig. 3)

extension Flow2DExperiment {
  /// Pixels per side of each heat map, over the paper's square [−4, 4]².
  static let pixels = 200
  /// Samples behind the q_K heat map, and the fixed `time` of their noise address (far from the
  /// training steps' and the evaluation's), so that successive pictures show the same ε's.
  static let pictureSamples = 200_000
  static let pictureNoiseTime: UInt64 = 1 << 40

  /// density.png: p(z) = e^{−U(z)}/Z (left) and q_K (right) on the same 200 × 200 grid over
  /// [−4, 4]², both divided by the largest p on the grid (one colour scale, q clipped at it).
  /// planar and radial flows have no closed-form inverse, so q_K cannot be evaluated at a pixel;
  /// instead each pixel shows the mean of the exact density q_K(z) over the samples that land
  /// in it (0 where none do).
  public func artifacts(step: Int, final: Bool) throws -> [Artifact] {
    let p = targetDensity()
    let q = sampledDensity(count: Self.pictureSamples, seed: seed, time: Self.pictureNoiseTime)
    let scale = p.max() ?? 1
    let png = HeatMap.sideBySide([p, q].map { $0.map { $0 / scale } }, side: Self.pixels)
    let k = config.flow.length
    let fitted: String
    switch config.posterior {
    case .flow:
      fitted = "the fitted q_K, K = \(k) \(config.flow.kind.rawValue) flow(s), at step \(step) — "
        + "each pixel the mean exact q_K(z) of the \(Self.pictureSamples) fixed samples falling "
        + "in it (none: 0)"
    case .gaussian:
      fitted = "the fitted mean-field Gaussian at step \(step) — each pixel the mean exact q(z) "
        + "of the \(Self.pictureSamples) fixed samples falling in it (none: 0)"
    case .semiImplicit, .uivi:
      fitted = "the fitted semi-implicit q (\(config.posterior == .uivi ? "UIVI" : "SIVI")) at "
        + "step \(step) — a histogram of \(Self.pictureSamples) fixed samples as a density "
        + "(q has no closed form)"
    }
    return [Artifact(
      fileName: "density.png",
      caption: "Left: the target p(z) = exp(−U(z))/Z for \(config.target.rawValue); right: "
        + fitted + ". Both on [−4, 4]² (z₁ across, z₂ up), one colour scale: dark blue 0, "
        + "yellow the largest p on the grid (q clipped there).",
      content: .png(png))]
  }

  /// `elbo sample`: a histogram of `count` draws from q_K keyed by `seed`, scaled to its
  /// fullest pixel.
  public func samples(count: Int, seed: UInt64) throws -> Artifact? {
    let n = Self.pixels
    var counts = [Float](repeating: 0, count: n * n)
    forEachSample(count: count, seed: seed, time: Self.pictureNoiseTime + 1) { pixel, _ in
      counts[pixel] += 1
    }
    let top = max(counts.max() ?? 1, 1)
    return Artifact(
      fileName: "samples.png",
      caption: "Histogram of \(count) samples from q_K on [−4, 4]² (seed \(seed))",
      content: .png(HeatMap.sideBySide([counts.map { $0 / top }], side: n)))
  }

  /// p(z) at the pixel centres, row 0 at the top (z₂ = 4) [pixels²].
  func targetDensity() -> [Float] {
    let n = Self.pixels, h = 2 * TestEnergy.plottedHalfWidth / Double(n)
    var p = [Float](repeating: 0, count: n * n)
    for y in 0..<n {
      let z2 = TestEnergy.plottedHalfWidth - (Double(y) + 0.5) * h
      for x in 0..<n {
        let z1 = -TestEnergy.plottedHalfWidth + (Double(x) + 0.5) * h
        p[y * n + x] = Float(exp(-config.target.energy(z1, z2).u - logZ.value))
      }
    }
    return p
  }

  /// The mean exact q_K(z) of the samples in each pixel [pixels²] (0 where there are none);
  /// for a semi-implicit q, which has no density, the samples' histogram divided by
  /// count · pixel area.
  func sampledDensity(count: Int, seed: UInt64, time: UInt64) -> [Float] {
    let n = Self.pixels
    if config.posterior == .semiImplicit || config.posterior == .uivi {
      let h = 2 * TestEnergy.plottedHalfWidth / Double(n)
      var hits = [Float](repeating: 0, count: n * n)
      forEachSample(count: count, seed: seed, time: time) { pixel, _ in hits[pixel] += 1 }
      let scale = Float(1 / (Double(count) * h * h))
      return hits.map { $0 * scale }
    }
    var sum = [Double](repeating: 0, count: n * n), hits = [Double](repeating: 0, count: n * n)
    forEachSample(count: count, seed: seed, time: time) { pixel, logQ in
      sum[pixel] += exp(logQ)
      hits[pixel] += 1
    }
    return (0..<(n * n)).map { hits[$0] > 0 ? Float(sum[$0] / hits[$0]) : 0 }
  }

  /// Draws `count` samples z ~ q_K in chunks (noise keyed by (seed, sampling, time, row)) and
  /// calls `body(pixel, log q_K(z))` for each that falls inside [−4, 4]² (a semi-implicit q:
  /// z = μ(ε) + σ ⊙ η only, and log q reported as NaN).
  func forEachSample(count: Int, seed: UInt64, time: UInt64, _ body: (Int, Double) -> Void) {
    let n = Self.pixels, a = TestEnergy.plottedHalfWidth
    let tape = Tape(recording: false)
    let si = model.semiImplicit
    let width = si.map { $0.mixingDimension + Flow2D.dimension } ?? Flow2D.dimension
    var start = 0
    while start < count {
      let end = min(start + 10_000, count)
      tape.reset()
      let noise = tape.tensor([end - start, width])
      for (row, g) in (start..<end).enumerated() {
        var rng = RandomStream(NoiseAddress(seed: seed, purpose: .sampling, time: time,
                                            item: UInt32(truncatingIfNeeded: g)))
        rng.fillNormal(UnsafeMutableBufferPointer(start: noise.pointer + width * row,
                                                  count: width))
      }
      let z: Variable, logQ: Variable?
      if let si {
        // Columns [ε (E) | η (2)] → z = μ(ε) + σ ⊙ η.
        let rows = end - start, e = si.mixingDimension
        let eps = tape.tensor([rows, e]), eta = tape.tensor([rows, 2])
        for i in 0..<rows {
          for j in 0..<e { eps[i * e + j] = noise[i * width + j] }
          for j in 0..<2 { eta[i * 2 + j] = noise[i * width + e + j] }
        }
        z = si.conditional(tape.constant(eps), store: model.store).sample(noise: eta)
        logQ = nil
      } else {
        (z, logQ) = { let s = model.sample(noise: noise, on: tape); return (s.z, s.logProb) }()
      }
      for i in 0..<(end - start) {
        let z1 = Double(z.value[2 * i]), z2 = Double(z.value[2 * i + 1])
        guard abs(z1) < a, abs(z2) < a else { continue }
        let x = min(n - 1, Int((z1 + a) / (2 * a) * Double(n)))
        let y = min(n - 1, Int((a - z2) / (2 * a) * Double(n)))
        body(y * n + x, logQ.map { Double($0.value[i]) } ?? .nan)
      }
      start = end
    }
  }
}

/// Heat maps as RGB PNGs: values in [0, 1] through a viridis-like colour map.
enum HeatMap {
  /// The colour map's stops (viridis at 0, ¼, ½, ¾, 1).
  static let stops: [(Float, Float, Float)] = [
    (68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37),
  ]
  static let gap = 6

  /// Square panels [side²] (row 0 at the top) left to right, `gap` white pixels apart.
  static func sideBySide(_ panels: [[Float]], side: Int) -> Data {
    let width = panels.count * side + (panels.count - 1) * gap
    var rgb = [UInt8](repeating: 255, count: width * side * 3)
    for (k, panel) in panels.enumerated() {
      precondition(panel.count == side * side, "heat map panel \(k): \(panel.count) values")
      let left = k * (side + gap)
      for y in 0..<side {
        for x in 0..<side {
          let c = colour(panel[y * side + x])
          let o = (y * width + left + x) * 3
          rgb[o] = c.0; rgb[o + 1] = c.1; rgb[o + 2] = c.2
        }
      }
    }
    return PNG.encodeRGB(width: width, height: side, pixels: rgb)
  }

  /// v ∈ [0, 1] (clamped) → RGB; NaN is black.
  static func colour(_ v: Float) -> (UInt8, UInt8, UInt8) {
    guard !v.isNaN else { return (0, 0, 0) }
    let t = min(max(v, 0), 1) * Float(stops.count - 1)
    let i = min(Int(t), stops.count - 2), f = t - Float(i)
    let a = stops[i], b = stops[i + 1]
    func mix(_ x: Float, _ y: Float) -> UInt8 { UInt8((x + (y - x) * f).rounded()) }
    return (mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
  }
}
