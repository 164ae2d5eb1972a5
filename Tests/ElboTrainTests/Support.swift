import ElboCheckpoint
import Foundation
import XCTest

/// Runs the `elbo` executable built next to the test bundle, optionally under mpirun.
enum ElboProcess {
  struct Result {
    let status: Int32
    let stdout: String
    let stderr: String
    let seconds: Double
  }

  static var binary: String {
    let dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().path
    return dir + "/elbo"
  }

  static var environment: [String: String] {
    var env = ProcessInfo.processInfo.environment
    env["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
    env["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
    env["OMPI_MCA_btl_vader_single_copy_mechanism"] = "none"
    env["OMPI_MCA_io"] = "romio321"
    env["HDF5_USE_FILE_LOCKING"] = "FALSE"
    // Tests below spawn mpirun themselves: do not inherit an enclosing mpirun's identity.
    for key in env.keys where key.hasPrefix("OMPI_COMM_WORLD") || key.hasPrefix("PMIX_")
      || key.hasPrefix("OMPI_MCA_orte") || key.hasPrefix("OMPI_MCA_ess") { env[key] = nil }
    return env
  }

  /// Runs `elbo args…` on `ranks` processes (1: without mpirun). Kills it after `timeout` s.
  @discardableResult
  static func run(_ args: [String], ranks: Int = 1, timeout: Double = 300,
                  onStart: ((Process) -> Void)? = nil) throws -> Result {
    if ranks == 1 { return try runTool(binary, args, timeout: timeout, onStart: onStart) }
    return try runTool("/usr/bin/env", ["mpirun", "--oversubscribe", "--bind-to", "none", "-np",
                                        "\(ranks)", binary] + args,
                       timeout: timeout, onStart: onStart)
  }

  /// Runs any program with the environment above (a browser, `script`, …).
  @discardableResult
  static func runTool(_ executable: String, _ args: [String], timeout: Double = 300,
                      onStart: ((Process) -> Void)? = nil) throws -> Result {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: executable)
    p.arguments = args
    p.environment = environment
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    let t0 = Date()
    try p.run()
    onStart?(p)
    // Read both pipes concurrently so that a chatty process cannot block on a full pipe.
    let outBox = DataBox(), errBox = DataBox()
    let group = DispatchGroup()
    for (pipe, box) in [(out, outBox), (err, errBox)] {
      group.enter()
      DispatchQueue.global().async {
        box.data = pipe.fileHandleForReading.readDataToEndOfFile()
        group.leave()
      }
    }
    let deadline = Date().addingTimeInterval(timeout)
    while p.isRunning && Date() < deadline { usleep(20_000) }
    if p.isRunning { p.terminate(); kill(-p.processIdentifier, SIGKILL) }
    p.waitUntilExit()
    group.wait()
    return Result(status: p.terminationStatus,
                  stdout: String(decoding: outBox.data, as: UTF8.self),
                  stderr: String(decoding: errBox.data, as: UTF8.self),
                  seconds: Date().timeIntervalSince(t0))
  }
}

/// Written by one reader thread, read after `DispatchGroup.wait()` (which orders the accesses).
final class DataBox: @unchecked Sendable { var data = Data() }

/// A fresh scratch directory under the system temp directory.
func scratchDirectory(_ name: String) -> String {
  let path = NSTemporaryDirectory() + "/elbo-test-\(name)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
  try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
  return path
}

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
