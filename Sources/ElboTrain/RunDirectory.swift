import ElboReport
import Foundation

/// The directory a run writes (rank 0 only):
///
///     config.json      the resolved options (also stored in every checkpoint)
///     metrics.jsonl    one JSON record per logging window, epoch, evaluation, skipped step
///     metrics.csv      the same records as a table (columns: the union of their keys)
///     checkpoints/     HDF5 checkpoints and `latest`
///     images/          PNG grids the workload draws (reconstructions, samples, …)
///     plots/           SVG training curves, and plots the workload draws
///     artifacts.json   captions and steps of the workload's images and plots
///     report.html      one self-contained page of all of the above
///     events.out.tfevents.*  the metrics as TensorBoard scalars (one file per process that trained)
///     restarts.log     launch/train --max-restarts: each restart and its cause
///
/// A run never writes into a directory that holds something else: a new run needs a new or
/// empty directory, `--resume` reuses its own on purpose, and `--overwrite` replaces an earlier
/// run only when everything in the directory is recognisably an Elbo run's.
public struct RunDirectory: Sendable {
  public let path: String
  public var checkpoints: String { path + "/checkpoints" }
  public var metricsFile: String { path + "/metrics.jsonl" }
  public var metricsCSVFile: String { path + "/metrics.csv" }
  public var configFile: String { path + "/config.json" }
  public var images: String { path + "/images" }
  public var plots: String { path + "/plots" }
  public var reportFile: String { path + "/" + RunReport.reportFile }

  /// Every name a run writes at the top of its directory (`--overwrite` deletes only these),
  /// besides the TensorBoard event files (``isRunEntry(_:)``).
  public static let entries = ["config.json", "metrics.jsonl", "metrics.csv", "checkpoints",
                               "images", "plots", ArtifactIndex.fileName, RunReport.reportFile,
                               "restarts.log"]

  /// Whether `name` at the top of a run directory is something a run writes.
  public static func isRunEntry(_ name: String) -> Bool {
    entries.contains(name) || name.hasPrefix("events.out.tfevents.")
  }

  public init(path: String) { self.path = path }

  /// Creates the directory for a new run. A non-empty directory is refused, unless `overwrite`
  /// and it holds an earlier Elbo run, which is then deleted.
  public func createForNewRun(overwrite: Bool = false) throws {
    let fm = FileManager.default
    var isDir: ObjCBool = false
    if fm.fileExists(atPath: path, isDirectory: &isDir) {
      guard isDir.boolValue else {
        throw ElboError("--out \(path): exists and is not a directory")
      }
      let contents = (try? fm.contentsOfDirectory(atPath: path)) ?? []
      if !contents.isEmpty {
        guard overwrite else {
          throw ElboError("--out \(path): exists and is not empty (it may hold an earlier run); "
            + "choose another --out, --resume to continue that run, or --overwrite to replace it")
        }
        try deleteEarlierRun(contents)
      }
    }
    try ensureWritable()
  }

  /// Deletes an earlier run, after checking that it is one: a config.json that is an Elbo
  /// config, and nothing but the names a run writes. Anything else is refused untouched.
  func deleteEarlierRun(_ contents: [String]) throws {
    let fm = FileManager.default
    let config = fm.contents(atPath: configFile)
      .flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] }
    guard let config, config["model"] is String else {
      throw ElboError("--out \(path): --overwrite refused: the directory has no Elbo "
        + "config.json, so it does not look like an Elbo run; remove it yourself or choose "
        + "another --out")
    }
    let foreign = contents.filter { !RunDirectory.isRunEntry($0) && !$0.hasPrefix(".write-test-") }
    guard foreign.isEmpty else {
      throw ElboError("--out \(path): --overwrite refused: the directory holds files an Elbo "
        + "run does not write (\(foreign.sorted().prefix(3).joined(separator: ", "))"
        + "\(foreign.count > 3 ? ", …" : "")); remove them or choose another --out")
    }
    // config.json last: if deleting stops half-way, the directory is still recognisable.
    let order = contents.filter { $0 != "config.json" } + ["config.json"]
    for name in order where contents.contains(name) {
      do {
        try fm.removeItem(atPath: path + "/" + name)
      } catch {
        throw ElboError("--out \(path): --overwrite could not delete \(name) "
          + "(\(error.localizedDescription))")
      }
    }
  }

  /// Checks (by creating) that the run and checkpoint directories can be written.
  public func ensureWritable() throws {
    do {
      try FileManager.default.createDirectory(atPath: checkpoints,
                                              withIntermediateDirectories: true)
      let probe = path + "/.write-test-\(getpid())"
      guard FileManager.default.createFile(atPath: probe, contents: Data()) else {
        throw ElboError("--out \(path): directory is not writable")
      }
      try? FileManager.default.removeItem(atPath: probe)
    } catch let e as ElboError {
      throw e
    } catch {
      throw ElboError("--out \(path): cannot create the run directory (\(error.localizedDescription))")
    }
  }
}

/// Appends one JSON object per line to `metrics.jsonl`, and keeps `metrics.csv` beside it
/// (rank 0 only).
///
/// The JSONL file is the record; the CSV is derived from it. Rows are appended while the
/// columns stay the same; when a record brings a new key (the first epoch record brings the
/// test metrics) the CSV is rebuilt from the JSONL with the wider header. It is also rebuilt
/// when the log is opened, so after `--resume` it holds the earlier records as well.
public final class MetricsLog {
  private let handle: FileHandle?
  private let path: String?
  private var csv: FileHandle?
  private var csvColumns: [String] = []
  private let decoder = JSONDecoder()
  /// The same scalars for TensorBoard (`tensorboard --logdir runs/`), beside metrics.jsonl.
  public let events: TensorBoardEventWriter?

  public init(path: String?) throws {
    self.path = path
    guard let path else { handle = nil; events = nil; return }
    events = try TensorBoardEventWriter(directory: (path as NSString).deletingLastPathComponent)
    if !FileManager.default.fileExists(atPath: path) {
      _ = FileManager.default.createFile(atPath: path, contents: nil)
    }
    guard let h = FileHandle(forWritingAtPath: path) else {
      throw ElboError("\(path): cannot open the metrics log for writing")
    }
    h.seekToEndOfFile()
    handle = h
    try rebuildCSV()
  }

  /// `metrics.csv` beside `metrics.jsonl`.
  var csvPath: String? { path.map { ($0 as NSString).deletingPathExtension + ".csv" } }

  /// Writes `fields` as one JSON line (keys sorted, so lines are diffable), and as a CSV row.
  public func write(_ fields: [String: Any]) {
    guard let handle else { return }
    let clean = fields.mapValues { v -> Any in
      if let d = v as? Double, !d.isFinite { return d.isNaN ? "NaN" : (d > 0 ? "Infinity" : "-Infinity") }
      return v
    }
    guard let data = try? JSONSerialization.data(withJSONObject: clean, options: [.sortedKeys])
    else { return }
    handle.write(data + Data([0x0A]))
    // Every number of the record as a scalar tagged "<kind>/<key>" at the record's step.
    if let events {
      let kind = fields["kind"] as? String ?? "record"
      let scalars = fields.keys.sorted().compactMap { key -> (tag: String, value: Float)? in
        guard key != "step", key != "kind", let number = fields[key] as? NSNumber,
              !(fields[key] is Bool) else { return nil }
        return ("\(kind)/\(key)", number.floatValue)
      }
      events.add(step: (fields["step"] as? NSNumber)?.intValue ?? 0, scalars: scalars)
    }
    // The CSV row comes from the JSON just written, so it is exactly what a rebuild would give.
    guard let record = try? decoder.decode(MetricsRecord.self, from: data) else { return }
    if record.keys.allSatisfy(csvColumns.contains), let csv {
      csv.write(Data((MetricsFile.csvRow(record, columns: csvColumns) + "\n").utf8))
    } else {
      try? rebuildCSV()
    }
  }

  /// Rewrites `metrics.csv` from `metrics.jsonl` (a line that does not parse — say, one cut
  /// short by a crash — is left out of the table; `metrics.jsonl` keeps it).
  private func rebuildCSV() throws {
    guard let path, let csvPath else { return }
    try? csv?.close()
    let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
    let records = try MetricsFile.parse(text, file: path, lenient: true)
    csvColumns = MetricsFile.columns(records)
    do {
      try RunReport.write(Data(MetricsFile.csv(records).utf8), to: csvPath)
    } catch {
      throw ElboError("\(error)")
    }
    guard let h = FileHandle(forWritingAtPath: csvPath) else {
      throw ElboError("\(csvPath): cannot open the metrics table for writing")
    }
    h.seekToEndOfFile()
    csv = h
  }

  deinit {
    try? handle?.close()
    try? csv?.close()
  }
}
