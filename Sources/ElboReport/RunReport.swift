import Foundation

/// Builds a run directory's `plots/` (training curves) and `report.html` from its files alone:
/// `metrics.jsonl`, `config.json`, `artifacts.json`, `images/*.png` and `plots/*.svg`. The
/// training loop calls it while training (rank 0); `elbo report RUN_DIR` calls it afterwards.
public enum RunReport {
  public static let reportFile = "report.html"

  /// Rebuilds the curves in `plots/` and then `report.html`; returns the files written.
  @discardableResult
  public static func rebuild(runDirectory dir: String) throws -> [String] {
    var isDir: ObjCBool = false
    guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDir), isDir.boolValue else {
      throw ReportError("\(dir): no such run directory")
    }
    let records = try MetricsFile.read(dir + "/metrics.jsonl")
    var written = try writeCurves(records, runDirectory: dir)
    written.append(try writeReport(records, runDirectory: dir))
    return written
  }

  /// Writes one SVG per training curve (see `TrainingCurves`) into `plots/`.
  @discardableResult
  public static func writeCurves(_ records: [MetricsRecord], runDirectory dir: String) throws
    -> [String]
  {
    try createDirectory(dir + "/plots")
    return try TrainingCurves.figures(records, posterior: posterior(dir)).map { figure in
      let path = dir + "/plots/" + figure.fileName
      try write(Data(figure.plot.svg().utf8), to: path)
      return path
    }
  }

  /// Writes `report.html`: one self-contained page (inline CSS and SVG, PNGs as data: URLs,
  /// nothing fetched) with the final metrics, the plots, the latest images and the config.
  public static func writeReport(_ records: [MetricsRecord], runDirectory dir: String,
                                 generated: Date = Date()) throws -> String {
    let fm = FileManager.default
    let index = try ArtifactIndex.read(runDirectory: dir)
    let config = try readConfig(dir)

    // Plots: the training curves in the seed's order, then the workload's, then any others.
    let figures = TrainingCurves.figures(records, posterior: posterior(dir))
    let curveNames = figures.map { "plots/" + $0.fileName }
    let svgFiles = ((try? fm.contentsOfDirectory(atPath: dir + "/plots")) ?? [])
      .filter { $0.hasSuffix(".svg") }.map { "plots/" + $0 }
    let pngFiles = ((try? fm.contentsOfDirectory(atPath: dir + "/images")) ?? [])
      .filter { $0.hasSuffix(".png") }.map { "images/" + $0 }
    let curveCaptions = Dictionary(uniqueKeysWithValues: figures.map {
      ("plots/" + $0.fileName, $0.caption)
    })

    var page = ReportPage(title: pageTitle(config, dir: dir))
    page.subtitle = subtitle(records, dir: dir, generated: generated)
    page.summary = summaryTables(records)
    for file in ordered(svgFiles, first: curveNames + index.entries.map(\.file)) {
      guard let data = fm.contents(atPath: dir + "/" + file) else {
        throw ReportError("\(dir)/\(file): cannot be read")
      }
      page.plots.append(.init(file: file, caption: curveCaptions[file] ?? index.caption(file),
                              content: String(decoding: data, as: UTF8.self)))
    }
    for file in ordered(pngFiles, first: index.entries.map(\.file)) {
      guard let data = fm.contents(atPath: dir + "/" + file) else {
        throw ReportError("\(dir)/\(file): cannot be read")
      }
      guard let size = ReportPage.pngSize(data) else {
        throw ReportError("\(dir)/\(file): is not a PNG file")
      }
      page.images.append(.init(file: file, caption: index.caption(file), png: data, size: size))
    }
    page.config = config
    let path = dir + "/" + reportFile
    try write(Data(page.html().utf8), to: path)
    return path
  }

  // MARK: - Pieces of the page

  /// What the run's surprise is about (latents, weights, nothing), as the model declared it in
  /// `artifacts.json`; runs that predate the declaration are read as latent.
  static func posterior(_ dir: String) -> TrainingCurves.Posterior {
    let declared = (try? ArtifactIndex.read(runDirectory: dir))?.surprise
    return declared.flatMap(TrainingCurves.Posterior.init(rawValue:)) ?? .latent
  }

  static func readConfig(_ dir: String) throws -> [(String, String)]? {
    let path = dir + "/config.json"
    guard let data = FileManager.default.contents(atPath: path) else { return nil }
    guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
      throw ReportError("\(path): is not a JSON object")
    }
    return flatten(object, prefix: "")
  }

  /// Nested objects as dotted keys ("<model>.hidden"), sorted; values as compact text.
  static func flatten(_ object: [String: Any], prefix: String) -> [(String, String)] {
    var rows: [(String, String)] = []
    for key in object.keys.sorted() {
      let value = object[key]!
      if let nested = value as? [String: Any] {
        rows += flatten(nested, prefix: prefix + key + ".")
      } else if let s = value as? String {
        rows.append((prefix + key, s))
      } else if let data = try? JSONSerialization.data(withJSONObject: value, options: [.fragmentsAllowed]) {
        rows.append((prefix + key, String(decoding: data, as: UTF8.self)))
      } else {
        rows.append((prefix + key, "\(value)"))
      }
    }
    return rows
  }

  static func pageTitle(_ config: [(String, String)]?, dir: String) -> String {
    let c = Dictionary(config ?? [], uniquingKeysWith: { a, _ in a })
    if let model = c["model"], let data = c["data"] { return "Elbo run: \(model) on \(data)" }
    if let model = c["model"] { return "Elbo run: \(model)" }
    return "Elbo run: " + (dir as NSString).lastPathComponent
  }

  static func subtitle(_ records: [MetricsRecord], dir: String, generated: Date) -> String {
    let f = ISO8601DateFormatter()
    var parts = [dir]
    if let last = records.last(where: { $0.kind == "train" || $0.kind == "epoch" }),
       let step = last.number("step") {
      parts.append("step \(Int(step))")
      if let e = records.last(where: { $0.kind == "epoch" })?.number("epoch") {
        parts.append("\(Int(e)) epoch\(e == 1 ? "" : "s") completed")
      }
    }
    parts.append("report written \(f.string(from: generated))")
    return parts.joined(separator: " · ")
  }

  /// The last epoch record, the last evaluation (from `elbo eval`) and the last training window.
  static func summaryTables(_ records: [MetricsRecord]) -> [ReportPage.Table] {
    var tables: [ReportPage.Table] = []
    func add(_ kind: String, _ title: String) {
      guard let r = records.last(where: { $0.kind == kind }) else { return }
      let rows = r.keys.filter { $0 != "kind" }.sorted(by: metricOrder).map { key in
        (key, ReportPage.format(r[key]!))
      }
      tables.append(.init(title: title, rows: rows))
    }
    add("epoch", "Last epoch")
    add("eval", "Evaluation (elbo eval)")
    add("train", "Last training window")
    if let bad = records.last(where: { $0.kind == "nonfinite" }) {
      let n = records.filter { $0.kind == "nonfinite" }.count
      tables.append(.init(title: "Non-finite steps skipped", rows: [
        ("count", "\(n)"), ("last at step", bad["step"].map(ReportPage.format) ?? "?"),
        ("term", bad["term"].map(ReportPage.format) ?? "?")]))
    }
    return tables
  }

  /// Step and epoch first, test metrics next, then the rest alphabetically.
  static func metricOrder(_ a: String, _ b: String) -> Bool {
    func rank(_ k: String) -> Int {
      switch k {
      case "step": return 0
      case "epoch": return 1
      default: return k.hasPrefix("test_") ? 2 : 3
      }
    }
    return rank(a) != rank(b) ? rank(a) < rank(b) : a < b
  }

  /// `files` with those named in `first` leading, in that order, and the rest sorted.
  static func ordered(_ files: [String], first: [String]) -> [String] {
    let present = Set(files)
    var out: [String] = []
    for f in first where present.contains(f) && !out.contains(f) { out.append(f) }
    return out + files.filter { !out.contains($0) }.sorted()
  }

  // MARK: - Files

  static func createDirectory(_ path: String) throws {
    do {
      try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    } catch {
      throw ReportError("\(path): cannot create the directory (\(error.localizedDescription))")
    }
  }

  /// Writes atomically (a temporary file renamed into place): a reader, or a run killed while
  /// writing, never sees half a file.
  public static func write(_ data: Data, to path: String) throws {
    do {
      try data.write(to: URL(fileURLWithPath: path), options: .atomic)
    } catch {
      throw ReportError("\(path): cannot be written (\(error.localizedDescription))")
    }
  }
}

/// `artifacts.json`: the captions (and steps) of the images and plots a workload drew, so that
/// a report rebuilt later from the directory alone can still say what each picture shows.
public struct ArtifactIndex: Codable, Equatable {
  public struct Entry: Codable, Equatable {
    /// Path relative to the run directory, e.g. "images/reconstructions.png".
    public var file: String
    public var caption: String
    /// Optimizer step at which it was drawn.
    public var step: Int
  }
  public var entries: [Entry] = []
  /// What the surprise term of the training curves is about: "latent", "weights" or "none"
  /// (the model declares it; nil: latent).
  public var surprise: String?

  public static let fileName = "artifacts.json"

  public init() {}

  public static func read(runDirectory dir: String) throws -> ArtifactIndex {
    let path = dir + "/" + fileName
    guard let data = FileManager.default.contents(atPath: path) else { return ArtifactIndex() }
    do {
      return try JSONDecoder().decode(ArtifactIndex.self, from: data)
    } catch {
      throw ReportError("\(path): not an artifact index ({\"entries\": [{file, caption, step}]})")
    }
  }

  /// Records (or replaces) the entry for `file`.
  public mutating func record(file: String, caption: String, step: Int) {
    let entry = Entry(file: file, caption: caption, step: step)
    if let i = entries.firstIndex(where: { $0.file == file }) { entries[i] = entry } else {
      entries.append(entry)
    }
  }

  public func write(runDirectory dir: String) throws {
    let e = JSONEncoder()
    e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    try RunReport.write(try e.encode(self), to: dir + "/" + ArtifactIndex.fileName)
  }

  /// "caption (step N)", or the file name when the index does not know it.
  public func caption(_ file: String) -> String {
    guard let e = entries.first(where: { $0.file == file }) else {
      return (file as NSString).lastPathComponent
    }
    return "\(e.caption) (step \(e.step))"
  }
}
