import Foundation

/// The HTML of `report.html`: one self-contained page — inline CSS, SVG plots inlined, PNG
/// images as `data:image/png;base64,` URLs, no scripts, nothing fetched — so that it can be
/// mailed, archived or opened on a machine without network.
public struct ReportPage {
  public struct Table {
    public var title: String
    public var rows: [(String, String)]
    public init(title: String, rows: [(String, String)]) { self.title = title; self.rows = rows }
  }
  public struct PlotItem {
    public var file: String
    public var caption: String
    /// SVG document text.
    public var content: String
    public init(file: String, caption: String, content: String) {
      self.file = file; self.caption = caption; self.content = content
    }
  }
  public struct ImageItem {
    public var file: String
    public var caption: String
    public var png: Data
    public var size: (width: Int, height: Int)
  }

  public var title: String
  public var subtitle = ""
  public var summary: [Table] = []
  public var plots: [PlotItem] = []
  public var images: [ImageItem] = []
  /// Flattened config.json ("<model>.hidden" → "200"); nil when the run directory has none.
  public var config: [(String, String)]? = nil

  public init(title: String) { self.title = title }

  public func html() -> String {
    var o = """
      <!DOCTYPE html>
      <html lang="en">
      <head>
      <meta charset="utf-8">
      <meta name="viewport" content="width=device-width, initial-scale=1">
      <title>\(escapeXML(title))</title>
      <style>\(ReportPage.css)</style>
      </head>
      <body>
      <header>
      <h1>\(escapeXML(title))</h1>
      <p class="subtitle">\(escapeXML(subtitle))</p>
      </header>

      """
    o += "<section id=\"metrics\">\n<h2>Final metrics</h2>\n"
    if summary.isEmpty { o += "<p class=\"empty\">No metrics logged yet.</p>\n" }
    o += "<div class=\"tables\">\n"
    for t in summary {
      o += "<table>\n<caption>\(escapeXML(t.title))</caption>\n"
      for (k, v) in t.rows {
        o += "<tr><th>\(escapeXML(k))</th><td>\(escapeXML(v))</td></tr>\n"
      }
      o += "</table>\n"
    }
    o += "</div>\n</section>\n\n"

    o += "<section id=\"plots\">\n<h2>Training curves and plots</h2>\n"
    if plots.isEmpty { o += "<p class=\"empty\">No plots yet.</p>\n" }
    o += "<div class=\"grid\">\n"
    for p in plots {
      o += "<figure class=\"plot\" id=\"\(escapeXML(ReportPage.anchor(p.file)))\">\n"
        + ReportPage.inlineSVG(p.content)
        + "<figcaption>\(escapeXML(p.caption)) <span class=\"file\">\(escapeXML(p.file))</span></figcaption>\n</figure>\n"
    }
    o += "</div>\n</section>\n\n"

    o += "<section id=\"images\">\n<h2>Images</h2>\n"
    if images.isEmpty { o += "<p class=\"empty\">No images yet.</p>\n" }
    o += "<div class=\"images\">\n"
    for i in images {
      // Small grids (MNIST tiles are 28 px) are shown at twice their size, pixels kept sharp.
      let scale = i.size.width <= 400 ? 2 : 1
      // The figure is as wide as its image, so that the caption wraps under it.
      o += "<figure class=\"image\" id=\"\(escapeXML(ReportPage.anchor(i.file)))\" "
        + "style=\"width: \(max(i.size.width * scale, 240))px\">\n"
        + "<img alt=\"\(escapeXML(i.caption))\" width=\"\(i.size.width * scale)\" "
        + "height=\"\(i.size.height * scale)\" src=\"data:image/png;base64,\(i.png.base64EncodedString())\">\n"
        + "<figcaption>\(escapeXML(i.caption)) <span class=\"file\">\(escapeXML(i.file))</span></figcaption>\n</figure>\n"
    }
    o += "</div>\n</section>\n\n"

    o += "<section id=\"config\">\n<h2>Configuration</h2>\n"
    if let config {
      o += "<table class=\"config\">\n"
      for (k, v) in config { o += "<tr><th>\(escapeXML(k))</th><td>\(escapeXML(v))</td></tr>\n" }
      o += "</table>\n"
    } else {
      o += "<p class=\"empty\">No config.json in the run directory.</p>\n"
    }
    o += "</section>\n<footer>Written by Elbo from the run directory's files; "
      + "rebuild with <code>elbo report RUN_DIR</code>.</footer>\n</body>\n</html>\n"
    return o
  }

  // MARK: - Helpers

  static let css = """

    body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #222;
           max-width: 1340px; margin: 0 auto; padding: 16px 24px 40px; background: #fafafa; }
    h1 { font-size: 24px; margin: 8px 0 2px; }
    h2 { font-size: 18px; margin: 28px 0 10px; padding-bottom: 4px; border-bottom: 1px solid #ddd; }
    .subtitle { color: #666; margin: 0; font-size: 13px; }
    .tables { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }
    table { border-collapse: collapse; background: #fff; font-size: 13px;
            box-shadow: 0 1px 2px rgba(0,0,0,0.08); }
    caption { text-align: left; font-weight: 600; padding: 4px 0; }
    th, td { padding: 3px 10px; border-bottom: 1px solid #eee; text-align: left; }
    th { font-weight: normal; color: #555; }
    td { font-variant-numeric: tabular-nums; font-family: ui-monospace, Menlo, Consolas, monospace; }
    .grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(560px, 1fr)); gap: 16px; }
    .images { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }
    figure { margin: 0; background: #fff; padding: 10px; box-shadow: 0 1px 2px rgba(0,0,0,0.08); }
    figure svg { width: 100%; height: auto; display: block; }
    figure img { image-rendering: pixelated; display: block; max-width: 100%; height: auto; }
    figcaption { font-size: 13px; color: #444; margin-top: 6px; }
    .file { color: #999; font-size: 11px; }
    .empty { color: #888; font-style: italic; }
    table.config td { font-size: 12px; }
    footer { margin-top: 32px; color: #888; font-size: 12px; }
    code { font-size: 12px; }

    """

  /// An SVG document made ready to sit inside HTML: the XML prolog and doctype dropped, and
  /// the namespace attribute too (HTML puts `<svg>` in the SVG namespace by itself; leaving
  /// it out keeps the page free of any URL).
  static func inlineSVG(_ svg: String) -> String {
    var s = Substring(svg)
    if let start = s.range(of: "<svg") { s = s[start.lowerBound...] }
    var text = String(s)
    text = text.replacingOccurrences(of: " xmlns=\"http://www.w3.org/2000/svg\"", with: "")
    return text.hasSuffix("\n") ? text : text + "\n"
  }

  static func anchor(_ file: String) -> String {
    String(file.map { $0.isLetter || $0.isNumber ? $0 : "-" })
  }

  /// A metric value for a table: four significant decimals for non-integers.
  public static func format(_ v: MetricValue) -> String {
    switch v {
    case .number(let d) where d.isFinite && d == d.rounded() && abs(d) < 1e15:
      return String(Int64(d))
    case .number(let d) where abs(d) >= 1e5 || (abs(d) < 1e-3 && d != 0):
      return String(format: "%.4g", d)
    case .number(let d):
      return String(format: "%.4f", d)
    default:
      return v.csvCell
    }
  }

  /// (width, height) from a PNG's IHDR, or nil if `data` is not a PNG.
  public static func pngSize(_ data: Data) -> (width: Int, height: Int)? {
    let b = [UInt8](data.prefix(24))
    guard b.count == 24, b[0..<8] == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A],
          String(decoding: b[12..<16], as: UTF8.self) == "IHDR" else { return nil }
    func be32(_ i: Int) -> Int {
      Int(b[i]) << 24 | Int(b[i + 1]) << 16 | Int(b[i + 2]) << 8 | Int(b[i + 3])
    }
    return (be32(16), be32(20))
  }
}
