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
