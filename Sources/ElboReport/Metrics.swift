import Foundation

/// An error in a run directory's files: one line naming the file and the problem.
public struct ReportError: Error, CustomStringConvertible, Sendable {
  public let description: String
  public init(_ description: String) { self.description = description }
}

/// One field of a metrics record, as read back from `metrics.jsonl`.
///
/// Numbers are kept as Double (steps and epochs are far below 2⁵³, so integers are exact).
/// Non-finite values are written to JSON as the strings "NaN", "Infinity", "-Infinity" (JSON has
/// no literal for them); `double` reads them back as numbers.
public enum MetricValue: Equatable, Sendable, Decodable {
  case number(Double)
  case text(String)
  case bool(Bool)
  /// null, or a nested array/object (no metric Elbo logs has one; tolerated, shown empty).
  case empty

  public init(from decoder: Decoder) throws {
    let c = try decoder.singleValueContainer()
    if c.decodeNil() { self = .empty } else if let b = try? c.decode(Bool.self) {
      self = .bool(b)
    } else if let d = try? c.decode(Double.self) { self = .number(d) } else if let s = try? c.decode(String.self) {
      self = .text(s)
    } else if (try? c.decode([String: MetricValue].self)) != nil || (try? c.decode([MetricValue].self)) != nil {
      self = .empty
    } else {
      throw DecodingError.dataCorruptedError(in: c, debugDescription: "not a JSON value")
    }
  }

  /// The value as a number: numbers, and the strings JSON uses for non-finite values.
  public var double: Double? {
    switch self {
    case .number(let d): return d
    case .text("NaN"): return .nan
    case .text("Infinity"): return .infinity
    case .text("-Infinity"): return -.infinity
    default: return nil
    }
  }

  /// The value as written in a CSV cell. Integral numbers print without a fraction, so that an
  /// integer (a step) and an integral Double (a unit count) look alike whichever way they were
  /// logged; others in the shortest form that reads back to the same Double.
  public var csvCell: String {
    switch self {
    case .number(let d):
      if d.isFinite && d == d.rounded() && abs(d) < 1e15 { return String(Int64(d)) }
      return "\(d)"
    case .text(let s):
      let special = s.contains(",") || s.contains("\"") || s.contains("\n") || s.contains("\r")
      return special ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
    case .bool(let b): return b ? "true" : "false"
    case .empty: return ""
    }
  }
}

/// One line of `metrics.jsonl`: `kind` ("train", "epoch", "eval", "nonfinite"), `step`, … .
public typealias MetricsRecord = [String: MetricValue]

extension Dictionary where Key == String, Value == MetricValue {
  public var kind: String? { if case .text(let k)? = self["kind"] { return k } else { return nil } }
  public func number(_ key: String) -> Double? { self[key]?.double }
}

/// Reading `metrics.jsonl` and deriving `metrics.csv` from it.
public enum MetricsFile {
  /// Parses JSON-lines text; blank lines are ignored. `file` names the source in errors.
  /// `lenient` skips lines that do not parse instead (the training loop's own plots use it: a
  /// line cut short by a crash must not stop a resumed run from drawing).
  public static func parse(_ text: String, file: String, lenient: Bool = false) throws
    -> [MetricsRecord]
  {
    var records: [MetricsRecord] = []
    let decoder = JSONDecoder()
    for (n, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
      let trimmed = line.trimmingCharacters(in: .whitespaces)
      if trimmed.isEmpty { continue }
      do {
        records.append(try decoder.decode(MetricsRecord.self, from: Data(trimmed.utf8)))
      } catch {
        if lenient { continue }
        throw ReportError("\(file): line \(n + 1) is not a JSON object "
          + "(\(trimmed.prefix(40))\(trimmed.count > 40 ? "…" : ""))")
      }
    }
    return records
  }

  /// Reads and parses `path`; a missing or unreadable file is an error naming it.
  public static func read(_ path: String) throws -> [MetricsRecord] {
    guard FileManager.default.fileExists(atPath: path) else {
      throw ReportError("\(path): no such file (is this a run directory?)")
    }
    guard let data = FileManager.default.contents(atPath: path) else {
      throw ReportError("\(path): cannot be read")
    }
    guard let text = String(data: data, encoding: .utf8) else {
      throw ReportError("\(path): is not UTF-8 text")
    }
    return try parse(text, file: path)
  }

  /// Leading CSV columns; the rest follow in order of first appearance (keys sorted within a
  /// record). The order is a function of the records alone, so a CSV rebuilt from
  /// `metrics.jsonl` equals the one written incrementally.
  public static let leadingColumns = ["kind", "step", "epoch"]

  /// Columns for `records`: the union of their keys, in the stable order above.
  public static func columns(_ records: [MetricsRecord]) -> [String] {
    var columns = leadingColumns
    var seen = Set(columns)
    for r in records { for k in r.keys.sorted() where !seen.contains(k) { seen.insert(k); columns.append(k) } }
    return columns
  }

  /// One CSV line (no newline): the record's cells under `columns`, empty where it has none.
  public static func csvRow(_ record: MetricsRecord, columns: [String]) -> String {
    columns.map { record[$0]?.csvCell ?? "" }.joined(separator: ",")
  }

  /// The whole CSV: a header line and one line per record.
  public static func csv(_ records: [MetricsRecord]) -> String {
    let cols = columns(records)
    var out = cols.map { MetricValue.text($0).csvCell }.joined(separator: ",") + "\n"
    for r in records { out += csvRow(r, columns: cols) + "\n" }
    return out
  }
}
