import Foundation

/// Runs the `elbo` executable built next to the test bundle, optionally under mpirun.
public enum ElboProcess {
  public struct Result {
    public let status: Int32
    public let stdout: String
    public let stderr: String
    public let seconds: Double
  }

  public static var binary: String {
    let dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().path
    return dir + "/elbo"
  }

  public static var environment: [String: String] {
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
  public static func run(_ args: [String], ranks: Int = 1, timeout: Double = 300,
                  onStart: ((Process) -> Void)? = nil) throws -> Result {
    if ranks == 1 { return try runTool(binary, args, timeout: timeout, onStart: onStart) }
    return try runTool("/usr/bin/env", ["mpirun", "--oversubscribe", "--bind-to", "none", "-np",
                                        "\(ranks)", binary] + args,
                       timeout: timeout, onStart: onStart)
  }

  /// Runs any program with the environment above (a browser, `script`, …).
  @discardableResult
  public static func runTool(_ executable: String, _ args: [String], timeout: Double = 300,
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
public func scratchDirectory(_ name: String) -> String {
  let path = NSTemporaryDirectory() + "/elbo-test-\(name)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
  try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
  return path
}

