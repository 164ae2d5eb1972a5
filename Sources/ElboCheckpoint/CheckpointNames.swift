import Foundation

/// File names inside a checkpoint directory.
///
/// `ckpt-<step, at least 8 digits>.h5` is a committed checkpoint; a second commit of the same
/// step never replaces the first but gets the next generation: `ckpt-<step>-2.h5`, `-3`, ….
/// `ckpt-….h5.tmp-<pid>-<hex>` is a write in progress (or left by a crash; ignored by loading).
/// `latest` holds the file name of the newest committed checkpoint and a newline.
enum CheckpointNames {
  static let latest = "latest"

  static func committed(step: Int64, generation: Int) -> String {
    let s = String(format: "%08lld", step)
    return generation <= 1 ? "ckpt-\(s).h5" : "ckpt-\(s)-\(generation).h5"
  }

  static func temporary(step: Int64) -> String {
    String(format: "ckpt-%08lld.h5.tmp-%d-%08x", step, getpid(), UInt32.random(in: 0...UInt32.max))
  }

  static func isTemporary(_ name: String) -> Bool {
    name.hasPrefix("ckpt-") && name.contains(".h5.tmp-")
  }

  /// (step, generation) of a committed checkpoint's file name, or nil for anything else.
  static func parse(_ name: String) -> (step: Int64, generation: Int)? {
    guard name.hasPrefix("ckpt-"), name.hasSuffix(".h5") else { return nil }
    let core = name.dropFirst(5).dropLast(3)
    let parts = core.split(separator: "-", omittingEmptySubsequences: false)
    guard parts.count == 1 || parts.count == 2, parts[0].count >= 8,
      parts.allSatisfy({ !$0.isEmpty && $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber) }),
      let step = Int64(parts[0])
    else { return nil }
    if parts.count == 2 {
      guard let g = Int(parts[1]), g >= 2 else { return nil }
      return (step, g)
    }
    return (step, 1)
  }

  /// Committed checkpoint file names in `directory`, newest (highest step, generation) first.
  static func committedFiles(in directory: String) -> [String] {
    let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
    return names.compactMap { n in parse(n).map { (n, $0) } }
      .sorted { ($0.1.step, $0.1.generation) > ($1.1.step, $1.1.generation) }
      .map(\.0)
  }
}
