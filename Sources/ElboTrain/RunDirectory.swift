import Foundation

/// The directory a run writes: `config.json`, `metrics.jsonl`, `checkpoints/`.
///
/// Only rank 0 writes run files. A run never writes into a directory that already holds a run
/// (an earlier run is never overwritten); resuming reuses the directory on purpose.
public struct RunDirectory: Sendable {
  public let path: String
  public var checkpoints: String { path + "/checkpoints" }
  public var metricsFile: String { path + "/metrics.jsonl" }
  public var configFile: String { path + "/config.json" }

  public init(path: String) { self.path = path }

  /// Creates the directory for a new run; fails if it already holds one or cannot be written.
  public func createForNewRun() throws {
    let fm = FileManager.default
    var isDir: ObjCBool = false
    if fm.fileExists(atPath: path, isDirectory: &isDir) {
      guard isDir.boolValue else {
        throw ElboError("--out \(path): exists and is not a directory")
      }
      let contents = (try? fm.contentsOfDirectory(atPath: path)) ?? []
      if !contents.isEmpty {
        throw ElboError("--out \(path): directory is not empty (it may hold an earlier run); "
          + "choose another --out, or use --resume to continue that run")
      }
    }
    try ensureWritable()
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

/// Appends one JSON object per line to `metrics.jsonl` (rank 0 only).
public final class MetricsLog {
  private let handle: FileHandle?

  public init(path: String?) throws {
    guard let path else { handle = nil; return }
    if !FileManager.default.fileExists(atPath: path) {
      FileManager.default.createFile(atPath: path, contents: nil)
    }
    guard let h = FileHandle(forWritingAtPath: path) else {
      throw ElboError("\(path): cannot open the metrics log for writing")
    }
    h.seekToEndOfFile()
    handle = h
  }

  /// Writes `fields` as one JSON line (keys sorted, so lines are diffable).
  public func write(_ fields: [String: Any]) {
    guard let handle else { return }
    let clean = fields.mapValues { v -> Any in
      if let d = v as? Double, !d.isFinite { return d.isNaN ? "NaN" : (d > 0 ? "Infinity" : "-Infinity") }
      return v
    }
    guard let data = try? JSONSerialization.data(withJSONObject: clean, options: [.sortedKeys])
    else { return }
    handle.write(data)
    handle.write(Data([0x0A]))
  }

  deinit { try? handle?.close() }
}
