import Foundation

/// A line / scatter / band chart rendered as self-contained SVG text (no scripts, no fonts,
/// nothing fetched), for `plots/` and for inlining in `report.html`.
///
///     var p = Plot(title: "Free energy", xLabel: "step", yLabel: "F (nats)")
///     p.line("train", x: steps, y: f)
///     p.points("test", x: epochSteps, y: testF)
///     p.band("±2σ", x: xs, lower: lo, upper: hi)
///     try p.svg().write(toFile: "plots/f.svg", atomically: true, encoding: .utf8)
///
/// Axes are fitted to the finite data of all series. Non-finite values (and values ≤ 0 when
/// `logY`) are skipped: a line is broken there, a point or band sample is left out. Series that
/// share a name share a colour and one legend entry (a mean line with its band, say).
public struct Plot {
  public var title: String
  public var xLabel: String
  public var yLabel: String
  /// Logarithmic y axis (base 10); values ≤ 0 are skipped.
  public var logY: Bool = false
  public private(set) var series: [Series] = []

  public struct Series {
    public enum Kind: Equatable {
      case line(dashed: Bool)
      case points
      /// Shaded region between `y` (lower) and `upper`.
      case band
    }
    public let name: String
    public let kind: Kind
    public let x: [Double]
    public let y: [Double]
    public let upper: [Double]
  }

  public init(title: String, xLabel: String, yLabel: String) {
    self.title = title
    self.xLabel = xLabel
    self.yLabel = yLabel
  }

  /// Adds a polyline through (x[i], y[i]) in the given order.
  public mutating func line(_ name: String, x: [Double], y: [Double], dashed: Bool = false) {
    precondition(x.count == y.count, "Plot.line '\(name)': \(x.count) x but \(y.count) y values")
    series.append(Series(name: name, kind: .line(dashed: dashed), x: x, y: y, upper: []))
  }

  /// Adds a dot at each (x[i], y[i]).
  public mutating func points(_ name: String, x: [Double], y: [Double]) {
    precondition(x.count == y.count, "Plot.points '\(name)': \(x.count) x but \(y.count) y values")
    series.append(Series(name: name, kind: .points, x: x, y: y, upper: []))
  }

  /// Adds a shaded region between lower[i] and upper[i] over x[i] (x in increasing order).
  public mutating func band(_ name: String, x: [Double], lower: [Double], upper: [Double]) {
    precondition(x.count == lower.count && x.count == upper.count,
                 "Plot.band '\(name)': \(x.count) x, \(lower.count) lower, \(upper.count) upper")
    series.append(Series(name: name, kind: .band, x: x, y: lower, upper: upper))
  }

  /// True when no series has a single plottable point.
  public var isEmpty: Bool {
    series.allSatisfy { s in s.x.indices.allSatisfy { !usable(s, $0) } }
  }

  /// Ten distinguishable colours (Tableau 10), assigned to series names in order of first use.
  static let palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                        "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]

  // MARK: - Rendering

  /// The chart as an SVG document: title, axes with ticks and grid lines, axis labels, a legend
  /// above the plot area, every series. All text is XML-escaped.
  public func svg(width: Int = 640, height: Int = 400) -> String {
    let w = Double(max(width, 160)), h = Double(max(height, 120))
    // Legend entries: one per distinct non-empty name, laid out in rows under the title.
    var names: [String] = []
    for s in series where !names.contains(s.name) { names.append(s.name) }
    let colour = Dictionary(uniqueKeysWithValues: names.enumerated().map {
      ($1, Plot.palette[$0 % Plot.palette.count])
    })
    let entries = names.filter { !$0.isEmpty }
    let (legendRows, legendPlaces) = layoutLegend(entries, width: w - 80)

    let left = 70.0, right = 18.0, bottom = 44.0
    let top = 30.0 + Double(legendRows) * 16 + (legendRows > 0 ? 6 : 0)
    let plotW = max(w - left - right, 10), plotH = max(h - top - bottom, 10)

    let (xLo, xHi) = xRange()
    let (yLo, yHi) = yRange()  // in log10 units when logY
    func px(_ x: Double) -> Double { left + (x - xLo) / (xHi - xLo) * plotW }
    func py(_ y: Double) -> Double {
      let v = logY ? log10(y) : y
      return top + plotH - (v - yLo) / (yHi - yLo) * plotH
    }

    var o = ""
    o += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(w))\" height=\"\(Int(h))\" "
      + "viewBox=\"0 0 \(Int(w)) \(Int(h))\" font-family=\"Helvetica, Arial, sans-serif\" "
      + "font-size=\"11\" role=\"img\">\n"
    o += "<title>\(escapeXML(title))</title>\n"
    o += "<rect x=\"0\" y=\"0\" width=\"\(Int(w))\" height=\"\(Int(h))\" fill=\"#ffffff\"/>\n"
    o += "<text x=\"\(f(w / 2))\" y=\"19\" text-anchor=\"middle\" font-size=\"14\" "
      + "font-weight=\"bold\" fill=\"#222\">\(escapeXML(title))</text>\n"

    // Grid lines and tick labels.
    o += "<g stroke=\"#e4e4e4\" stroke-width=\"1\">\n"
    let xTicks = Plot.ticks(xLo, xHi)
    let yTicks = logY ? Plot.logTicks(yLo, yHi) : Plot.linearTicks(yLo, yHi)
    for t in xTicks.values { o += "<line x1=\"\(f(px(t)))\" y1=\"\(f(top))\" x2=\"\(f(px(t)))\" y2=\"\(f(top + plotH))\"/>\n" }
    for t in yTicks.values {
      let y = top + plotH - (t - yLo) / (yHi - yLo) * plotH
      o += "<line x1=\"\(f(left))\" y1=\"\(f(y))\" x2=\"\(f(left + plotW))\" y2=\"\(f(y))\"/>\n"
    }
    o += "</g>\n<g fill=\"#444\">\n"
    for t in xTicks.values {
      o += "<text x=\"\(f(px(t)))\" y=\"\(f(top + plotH + 15))\" text-anchor=\"middle\">"
        + "\(escapeXML(Plot.label(t, step: xTicks.step)))</text>\n"
    }
    for (t, text) in zip(yTicks.values, yTicks.labels) {
      let y = top + plotH - (t - yLo) / (yHi - yLo) * plotH
      o += "<text x=\"\(f(left - 6))\" y=\"\(f(y + 4))\" text-anchor=\"end\">\(escapeXML(text))</text>\n"
    }
    o += "</g>\n"
    o += "<rect x=\"\(f(left))\" y=\"\(f(top))\" width=\"\(f(plotW))\" height=\"\(f(plotH))\" "
      + "fill=\"none\" stroke=\"#888\" stroke-width=\"1\"/>\n"
    o += "<text x=\"\(f(left + plotW / 2))\" y=\"\(f(h - 8))\" text-anchor=\"middle\" "
      + "font-size=\"12\" fill=\"#222\">\(escapeXML(xLabel))</text>\n"
    o += "<text transform=\"translate(16 \(f(top + plotH / 2))) rotate(-90)\" "
      + "text-anchor=\"middle\" font-size=\"12\" fill=\"#222\">\(escapeXML(yLabel))</text>\n"

    // Series: bands first (underneath), then lines, then points on top.
    let order = series.filter { $0.kind == .band } + series.filter {
      if case .line = $0.kind { return true } else { return false }
    } + series.filter { $0.kind == .points }
    for s in order {
      let c = colour[s.name]!
      o += "<g class=\"series\" data-name=\"\(escapeXML(s.name))\">\n"
      switch s.kind {
      case .band:
        for run in runs(s) {
          let upper = run.map { "\(f(px(s.x[$0]))),\(f(py(s.upper[$0])))" }
          let lower = run.reversed().map { "\(f(px(s.x[$0]))),\(f(py(s.y[$0])))" }
          o += "<polygon points=\"\((upper + lower).joined(separator: " "))\" fill=\"\(c)\" "
            + "fill-opacity=\"0.22\" stroke=\"none\"/>\n"
        }
      case .line(let dashed):
        for run in runs(s) {
          let d = run.enumerated().map { (k, i) in
            "\(k == 0 ? "M" : "L")\(f(px(s.x[i]))) \(f(py(s.y[i])))"
          }.joined(separator: " ")
          // A run of one point would be invisible as a path: draw it as a dot.
          if run.count == 1 {
            o += "<circle cx=\"\(f(px(s.x[run[0]])))\" cy=\"\(f(py(s.y[run[0]])))\" r=\"2\" fill=\"\(c)\"/>\n"
          } else {
            o += "<path d=\"\(d)\" fill=\"none\" stroke=\"\(c)\" stroke-width=\"1.6\" "
              + "stroke-linejoin=\"round\"\(dashed ? " stroke-dasharray=\"6 4\"" : "")/>\n"
          }
        }
      case .points:
        for i in s.x.indices where usable(s, i) {
          o += "<circle cx=\"\(f(px(s.x[i])))\" cy=\"\(f(py(s.y[i])))\" r=\"3\" fill=\"\(c)\" "
            + "stroke=\"#fff\" stroke-width=\"0.8\"/>\n"
        }
      }
      o += "</g>\n"
    }
    if isEmpty {
      o += "<text x=\"\(f(left + plotW / 2))\" y=\"\(f(top + plotH / 2))\" text-anchor=\"middle\" "
        + "font-size=\"13\" fill=\"#999\">no data yet</text>\n"
    }

    // Legend: a swatch in the series' style, then its name.
    for (name, place) in zip(entries, legendPlaces) {
      let x = 40 + place.x, y = 30 + place.row * 16 + 6
      let c = colour[name]!
      let kinds = series.filter { $0.name == name }.map(\.kind)
      if kinds.contains(.band) {
        o += "<rect x=\"\(f(x))\" y=\"\(f(y - 5))\" width=\"18\" height=\"10\" fill=\"\(c)\" fill-opacity=\"0.22\"/>\n"
      }
      if let line = kinds.first(where: { if case .line = $0 { return true } else { return false } }) {
        let dashed = line == .line(dashed: true)
        o += "<line x1=\"\(f(x))\" y1=\"\(f(y))\" x2=\"\(f(x + 18))\" y2=\"\(f(y))\" stroke=\"\(c)\" "
          + "stroke-width=\"2\"\(dashed ? " stroke-dasharray=\"5 3\"" : "")/>\n"
      }
      if kinds.contains(.points) {
        o += "<circle cx=\"\(f(x + 9))\" cy=\"\(f(y))\" r=\"3\" fill=\"\(c)\"/>\n"
      }
      o += "<text x=\"\(f(x + 23))\" y=\"\(f(y + 4))\" fill=\"#222\">\(escapeXML(name))</text>\n"
    }
    o += "</svg>\n"
    return o
  }

  // MARK: - Helpers

  /// Whether sample i of s can be drawn: finite coordinates (positive y on a log axis).
  func usable(_ s: Series, _ i: Int) -> Bool {
    func ok(_ v: Double) -> Bool { v.isFinite && (!logY || v > 0) }
    return s.x[i].isFinite && ok(s.y[i]) && (s.kind != .band || ok(s.upper[i]))
  }

  /// Maximal runs of consecutive usable indices (a line or band is broken at the others).
  func runs(_ s: Series) -> [[Int]] {
    var out: [[Int]] = [], current: [Int] = []
    for i in s.x.indices {
      if usable(s, i) { current.append(i) } else if !current.isEmpty { out.append(current); current = [] }
    }
    if !current.isEmpty { out.append(current) }
    return out
  }

  func xRange() -> (Double, Double) {
    var lo = Double.infinity, hi = -Double.infinity
    for s in series { for i in s.x.indices where usable(s, i) { lo = min(lo, s.x[i]); hi = max(hi, s.x[i]) } }
    return Plot.widen(lo, hi, pad: 0)
  }

  /// The y range with 5 % headroom, in log10 units when `logY`.
  func yRange() -> (Double, Double) {
    var lo = Double.infinity, hi = -Double.infinity
    for s in series {
      for i in s.x.indices where usable(s, i) {
        for v in s.kind == .band ? [s.y[i], s.upper[i]] : [s.y[i]] {
          let t = logY ? log10(v) : v
          lo = min(lo, t); hi = max(hi, t)
        }
      }
    }
    return Plot.widen(lo, hi, pad: 0.05)
  }

  /// [lo, hi] padded by `pad` of its span; a degenerate or empty range becomes a unit one.
  static func widen(_ lo: Double, _ hi: Double, pad: Double) -> (Double, Double) {
    guard lo.isFinite && hi.isFinite else { return (0, 1) }
    if hi - lo <= max(abs(lo), abs(hi)) * 1e-12 {
      let d = lo == 0 ? 1 : abs(lo) * 0.1
      return (lo - d, hi + d)
    }
    let p = (hi - lo) * pad
    return (lo - p, hi + p)
  }

  /// About `target` round-numbered ticks (1, 2 or 5 × 10^k apart) inside [lo, hi].
  static func ticks(_ lo: Double, _ hi: Double, target: Int = 6) -> (values: [Double], step: Double) {
    let raw = (hi - lo) / Double(max(target - 1, 1))
    let magnitude = pow(10, floor(log10(raw)))
    // The round step whose tick count comes closest to the target.
    let step = [1.0, 2, 5, 10].map { $0 * magnitude }.min {
      abs((hi - lo) / $0 - Double(target - 1)) < abs((hi - lo) / $1 - Double(target - 1))
    }!
    var values: [Double] = []
    var t = ceil(lo / step - 1e-9) * step
    while t <= hi + step * 1e-9 && values.count < 100 {
      values.append(abs(t) < step * 1e-9 ? 0 : t)
      t += step
    }
    return (values, step)
  }

  /// Linear ticks with their labels.
  static func linearTicks(_ lo: Double, _ hi: Double) -> (values: [Double], labels: [String]) {
    let (values, step) = ticks(lo, hi)
    return (values, values.map { label($0, step: step) })
  }

  /// Ticks for a log axis, positions in log10 units: whole decades when the range spans at
  /// least one, otherwise round values placed logarithmically.
  static func logTicks(_ lo: Double, _ hi: Double) -> (values: [Double], labels: [String]) {
    if hi - lo >= 1 {
      let every = max(1, ceil((hi - lo) / 6))
      var values: [Double] = []
      var k = ceil(lo / every) * every
      while k <= hi + 1e-9 { values.append(k); k += every }
      return (values, values.map { label(pow(10, $0), step: pow(10, $0)) })
    }
    let (linear, step) = ticks(pow(10, lo), pow(10, hi), target: 5)
    let positive = linear.filter { $0 > 0 }
    return (positive.map { log10($0) }, positive.map { label($0, step: step) })
  }

  /// A tick label with as many decimals as the tick spacing needs.
  static func label(_ v: Double, step: Double) -> String {
    if v == 0 { return "0" }
    if abs(v) >= 1e6 || abs(v) < 1e-4 || step < 1e-4 { return String(format: "%.3g", v) }
    let decimals = max(0, Int(-floor(log10(step) + 1e-9)))
    return String(format: "%.\(decimals)f", v)
  }

  /// Places legend entries left to right, wrapping to new rows, within `width`.
  func layoutLegend(_ entries: [String], width: Double) -> (rows: Int, places: [(x: Double, row: Double)]) {
    var places: [(x: Double, row: Double)] = []
    var x = 0.0, row = 0.0
    for name in entries {
      // ~6.2 px per character at 11 px: a measurement-free estimate that errs on the wide side.
      let w = 23 + Double(name.count) * 6.2 + 16
      if x > 0 && x + w > width { x = 0; row += 1 }
      places.append((x, row))
      x += w
    }
    return (entries.isEmpty ? 0 : Int(row) + 1, places)
  }

  /// Two decimals: enough for pixels, short enough to keep big plots small.
  func f(_ v: Double) -> String { String(format: "%.2f", v) }
}

/// Escapes text for XML/HTML content and attribute values; replaces control characters XML 1.0
/// does not allow by spaces.
public func escapeXML(_ s: String) -> String {
  var out = ""
  out.reserveCapacity(s.count)
  for ch in s.unicodeScalars {
    switch ch {
    case "&": out += "&amp;"
    case "<": out += "&lt;"
    case ">": out += "&gt;"
    case "\"": out += "&quot;"
    case "'": out += "&#39;"
    case "\t", "\n", "\r": out.unicodeScalars.append(ch)
    default:
      if ch.value < 0x20 || ch.value == 0xFFFE || ch.value == 0xFFFF { out += " " } else {
        out.unicodeScalars.append(ch)
      }
    }
  }
  return out
}

extension Plot {
  /// The tick positions and spacing chosen for [lo, hi] (exposed for tests).
  public static func ticksForTesting(_ lo: Double, _ hi: Double) -> (values: [Double], step: Double) {
    ticks(lo, hi)
  }
}
