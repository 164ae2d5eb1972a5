/// A data-loading failure, described in one line that names the file and the problem.
///
/// Loaders never trap on bad input: every malformed, truncated or missing file surfaces as a
/// `DataError`, so the trainer can print it and exit cleanly (on every rank, identically).
public struct DataError: Error, CustomStringConvertible, Equatable, Sendable {
  /// The file or directory the problem is about, or `nil` when no path applies.
  public let path: String?
  /// What is wrong, without the path (e.g. "bad IDX magic 0x00000802, expected …").
  public let problem: String

  /// Creates an error about `path` (or about no particular file when `path` is `nil`).
  public init(_ path: String?, _ problem: String) {
    self.path = path
    self.problem = problem
  }

  /// `"<path>: <problem>"`, always a single line.
  public var description: String {
    let text = path.map { "\($0): \(problem)" } ?? problem
    // Paths and zlib/Foundation messages can in principle contain newlines; log parsers and
    // the per-rank error printer rely on one line per error.
    return String(text.map { $0.isNewline ? " " : $0 })
  }
}
