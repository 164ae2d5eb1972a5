@_exported import ElboTestSupport
import ElboCheckpoint
import Foundation
import XCTest

/// The parameters stored in a run's latest checkpoint, by name.
func checkpointParameters(_ runDir: String) throws -> [String: [Float]] {
  let latest = try String(contentsOfFile: runDir + "/checkpoints/latest", encoding: .utf8)
    .trimmingCharacters(in: .whitespacesAndNewlines)
  let state = try CheckpointStore.read(path: runDir + "/checkpoints/" + latest)
  var out: [String: [Float]] = [:]
  for t in state.tensors where t.name.hasPrefix("params/") { out[t.name] = t.data }
  return out
}

/// Largest |a − b| over all tensors (which must have the same names and sizes).
func maxDifference(_ a: [String: [Float]], _ b: [String: [Float]]) -> Float {
  precondition(Set(a.keys) == Set(b.keys), "different parameter names")
  var worst: Float = 0
  for (k, va) in a {
    let vb = b[k]!
    precondition(va.count == vb.count)
    for i in va.indices { worst = max(worst, abs(va[i] - vb[i])) }
  }
  return worst
}

extension XCTestCase {
  /// Runs `elbo args…` (under mpirun with `ranks` > 1) and fails the calling test, with both
  /// outputs, unless it exits 0.
  @discardableResult
  func elbo(_ args: [String], ranks: Int = 1, file: StaticString = #filePath,
            line: UInt = #line) throws -> ElboProcess.Result {
    let r = try ElboProcess.run(args, ranks: ranks)
    XCTAssertEqual(r.status, 0, "elbo \(args.joined(separator: " ")) failed on \(ranks) rank(s):"
                   + "\n\(r.stdout)\n\(r.stderr)", file: file, line: line)
    return r
  }

  /// The records of one `kind` in a run directory's metrics.jsonl, in order.
  func records(_ run: String, kind: String) throws -> [[String: Any]] {
    try String(contentsOfFile: run + "/metrics.jsonl", encoding: .utf8).split(separator: "\n")
      .map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
      .filter { $0["kind"] as? String == kind }
  }
}
