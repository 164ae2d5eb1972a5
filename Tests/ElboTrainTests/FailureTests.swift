import Foundation
import XCTest

/// Fail fast, never hang, never spoil the last good checkpoint (DESIGN.md, "Failure story").
final class FailureTests: XCTestCase {
  let tiny = ["train", "vae", "--data", "mnist-5k", "--hidden", "32", "--latent", "4",
              "--threads", "1"]

  /// A non-finite loss stops the run with a line naming the term; the parameters it would have
  /// produced reach neither the weights nor a checkpoint; `latest` still names the last good one.
  func testNonFiniteLossStopsAndKeepsTheLastCheckpoint() throws {
    let out = scratchDirectory("nonfinite") + "/run"
    var r = try ElboProcess.run(tiny + ["--out", out, "--max-steps", "5"])
    XCTAssertEqual(r.status, 0, r.stderr)
    let before = try checkpointParameters(out)
    // An absurd learning rate makes the next step's logits overflow.
    r = try ElboProcess.run(tiny + ["--out", out, "--resume", "latest", "--max-steps", "20",
                                    "--lr", "1e30"], ranks: 2)
    XCTAssertNotEqual(r.status, 0)
    let line = r.stderr.split(separator: "\n").first { $0.contains("non-finite") }
    XCTAssertNotNil(line, r.stderr)
    XCTAssertTrue(line?.contains("log_px_given_z") == true || line?.contains("kl") == true,
                  "the line should name the component that went bad: \(r.stderr)")
    let latest = try String(contentsOfFile: out + "/checkpoints/latest", encoding: .utf8)
    XCTAssertTrue(latest.hasPrefix("ckpt-00000005"), latest)
    XCTAssertEqual(maxDifference(before, try checkpointParameters(out)), 0)
  }

  /// The same with the sharded optimizer step on 2 ranks, where each rank holds only its shard
  /// of the reduced gradient: the ranks agree (through the loss-terms all-reduce) and stop
  /// together, naming the term, after the allowed skips; nothing reaches the parameters or
  /// `latest`.
  func testNonFiniteStopsTheShardedStepOnTwoRanks() throws {
    let out = scratchDirectory("nonfinite-sharded") + "/run"
    let sharded = ["--allreduce", "sharded"]
    var r = try ElboProcess.run(tiny + sharded + ["--out", out, "--max-steps", "5"], ranks: 2)
    XCTAssertEqual(r.status, 0, r.stderr)
    let before = try checkpointParameters(out)
    r = try ElboProcess.run(tiny + sharded + ["--out", out, "--resume", "latest", "--max-steps",
                                              "20", "--lr", "1e30", "--nonfinite-skips", "2"],
                            ranks: 2)
    XCTAssertNotEqual(r.status, 0)
    XCTAssertTrue(r.stdout.contains("step skipped (2/2)"), r.stdout)
    let line = r.stderr.split(separator: "\n").first { $0.contains("non-finite") }
    XCTAssertNotNil(line, r.stderr)
    let latest = try String(contentsOfFile: out + "/checkpoints/latest", encoding: .utf8)
    XCTAssertTrue(latest.hasPrefix("ckpt-00000005"), latest)
    XCTAssertEqual(maxDifference(before, try checkpointParameters(out)), 0)
  }

  /// Skipping is opt-in and bounded: with --nonfinite-skips the run survives isolated bad steps
  /// but still stops when they persist.
  func testPersistentNonFiniteStopsEvenWithSkips() throws {
    let out = scratchDirectory("skips") + "/run"
    let r = try ElboProcess.run(tiny + ["--out", out, "--max-steps", "30", "--lr", "1e30",
                                        "--nonfinite-skips", "3"])
    XCTAssertNotEqual(r.status, 0)
    XCTAssertTrue(r.stdout.contains("step skipped (3/3)"), r.stdout)
    XCTAssertTrue(r.stderr.contains("non-finite"), r.stderr)
  }

  /// A rank killed with SIGKILL ends the whole job quickly with a non-zero exit.
  func testKilledRankEndsTheJob() throws {
    let out = scratchDirectory("sigkill") + "/run"
    var victim: pid_t = 0
    var killedAt = Date()
    let r = try ElboProcess.run(tiny + ["--out", out, "--epochs", "200", "--log-every", "40"],
                                ranks: 2, timeout: 60) { mpirun in
      // Wait until both ranks run, then kill one of mpirun's children.
      for _ in 0..<200 {
        usleep(50_000)
        let kids = childProcesses(of: mpirun.processIdentifier)
        if kids.count >= 2 { victim = kids[1]; break }
      }
      usleep(1_500_000)
      killedAt = Date()
      if victim > 0 { kill(victim, SIGKILL) }
    }
    XCTAssertGreaterThan(victim, 0, "no rank found to kill")
    let seconds = Date().timeIntervalSince(killedAt)
    print("job ended \(seconds) s after SIGKILL of one rank, exit \(r.status)")
    XCTAssertNotEqual(r.status, 0)
    XCTAssertLessThan(seconds, 10)
  }

  /// Killing the job at an arbitrary moment while it checkpoints every step leaves a `latest`
  /// that loads, and the run resumes from it.
  func testKillDuringCheckpointingLeavesALoadableLatest() throws {
    let out = scratchDirectory("killckpt") + "/run"
    for delay in [0.05, 0.13, 0.31] {
      let dir = out + "-\(delay)"
      _ = try ElboProcess.run(tiny + ["--out", dir, "--epochs", "100", "--checkpoint-every", "1",
                                      "--keep", "2"], ranks: 2, timeout: 60) { mpirun in
        // Once checkpoints are being written (one per step), kill everything mid-stream.
        for _ in 0..<400 where !FileManager.default.fileExists(atPath: dir + "/checkpoints/latest") {
          usleep(25_000)
        }
        usleep(useconds_t(delay * 1_000_000))
        for kid in childProcesses(of: mpirun.processIdentifier) { kill(kid, SIGKILL) }
        kill(mpirun.processIdentifier, SIGKILL)
      }
      let inspect = try ElboProcess.run(["inspect", dir])
      XCTAssertEqual(inspect.status, 0, "latest does not load after a kill: \(inspect.stderr)")
      let resumed = try ElboProcess.run(tiny + ["--out", dir, "--resume", "latest",
                                                "--max-steps", "200"])
      XCTAssertEqual(resumed.status, 0, resumed.stderr)
    }
  }
}

/// Direct children of `pid` (from /proc).
func childProcesses(of pid: pid_t) -> [pid_t] {
  let path = "/proc/\(pid)/task/\(pid)/children"
  guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [] }
  return text.split(separator: " ").compactMap { pid_t($0) }
}
