import Foundation
import XCTest

/// `launch/train --max-restarts N`: a job whose rank is SIGKILLed is started again from its
/// latest checkpoint and finishes; resumed on the same number of ranks from a checkpoint, it
/// ends with the parameters of an uninterrupted run, bitwise.
final class RestartTests: XCTestCase {
  let tiny = ["vae", "--data", "mnist-5k", "--hidden", "32", "--latent", "4", "--threads", "1",
              "--seed", "11", "--log-every", "20", "--checkpoint-every", "20", "--epochs", "1000"]

  var launchTrain: String {
    var dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    for _ in 0..<2 { dir.deleteLastPathComponent() }
    return dir.path + "/launch/train"
  }

  /// The elbo processes (ranks) training into `out`.
  func ranks(of out: String) -> [pid_t] {
    let procs = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
    return procs.compactMap { pid_t($0) }.filter { pid in
      guard let cmd = try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline")) else {
        return false
      }
      let args = cmd.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
      return args.first?.hasSuffix("/elbo") == true && args.contains(out)
    }
  }

  func testKilledRankIsRestartedFromLatestAndFinishesBitwise() throws {
    let dir = scratchDirectory("restarts")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let out = dir + "/run", steps = 400
    setenv("ELBO_BIN", ElboProcess.binary, 1)
    defer { unsetenv("ELBO_BIN") }
    var killed: pid_t = 0
    let r = try ElboProcess.runTool(launchTrain, ["--max-restarts", "3", "-n", "2"] + tiny
                                      + ["--max-steps", "\(steps)", "--out", out],
                                    timeout: 240) { _ in
      // Once a checkpoint past the first is committed, kill one rank.
      for _ in 0..<1200 {
        usleep(25_000)
        if let latest = try? String(contentsOfFile: out + "/checkpoints/latest", encoding: .utf8),
           latest.contains("ckpt-"), !latest.contains("00000020") { break }
      }
      if let victim = self.ranks(of: out).last {
        killed = victim
        kill(victim, SIGKILL)
      }
    }
    XCTAssertGreaterThan(killed, 0, "no rank found to kill")
    XCTAssertEqual(r.status, 0, "launch/train did not finish the run:\n\(r.stderr)")
    let log = (try? String(contentsOfFile: out + "/restarts.log", encoding: .utf8)) ?? ""
    XCTAssertEqual(log.split(separator: "\n").count, 1, "one restart logged: \(log)")
    XCTAssertTrue(log.contains("signal 9 (KILL)") || log.contains("exit status 1"), log)
    XCTAssertTrue(r.stdout.contains("resumed from step"), r.stdout)

    try elbo(["train"] + tiny + ["--max-steps", "\(steps)", "--out", dir + "/straight"],
             ranks: 2)
    XCTAssertEqual(maxDifference(try checkpointParameters(dir + "/straight"),
                                 try checkpointParameters(out)), 0,
                   "restarted run differs from an uninterrupted one")
  }

  func testRefusedInputIsNotRestarted() throws {
    setenv("ELBO_BIN", ElboProcess.binary, 1)
    defer { unsetenv("ELBO_BIN") }
    let out = scratchDirectory("restarts-bad") + "/run"
    let r = try ElboProcess.runTool(launchTrain, ["--max-restarts", "3", "vae", "--hidden", "0",
                                                  "--out", out], timeout: 60)
    XCTAssertEqual(r.status, 2, r.stderr)
    XCTAssertFalse(r.stderr.contains("restart 1/3"), r.stderr)
  }
}
