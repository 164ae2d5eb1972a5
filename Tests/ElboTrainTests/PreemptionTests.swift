import ElboTrain
import Foundation
import XCTest

/// Preemption: SIGTERM or SIGUSR1 to a rank, or SIGUSR1 to mpirun (which forwards it), stops the
/// run at a step boundary with a checkpoint and the "requeue me" status; resuming reaches the
/// parameters of an uninterrupted run, bitwise.
final class PreemptionTests: XCTestCase {
  let tiny = ["train", "vae", "--data", "mnist-5k", "--hidden", "32", "--latent", "4",
              "--threads", "1", "--seed", "5", "--log-every", "10"]

  enum Target { case rank(Int32), mpirun(Int32) }

  /// Starts a long run on `ranks`, sends the signal once it is training, and returns the run's
  /// result with the seconds from the signal to the end.
  func interrupt(_ out: String, ranks: Int, _ target: Target)
    throws -> (ElboProcess.Result, Double) {
    var signalled = Date()
    let r = try ElboProcess.run(tiny + ["--out", out, "--epochs", "1000"], ranks: ranks,
                                timeout: 120) { p in
      // Training has begun once the first train record is in the metrics log.
      for _ in 0..<600 {
        usleep(50_000)
        if let text = try? String(contentsOfFile: out + "/metrics.jsonl", encoding: .utf8),
           text.contains("\"train\"") { break }
      }
      signalled = Date()
      switch target {
      case let .rank(sig):
        let victim = ranks == 1 ? p.processIdentifier
          : childProcesses(of: p.processIdentifier).last ?? p.processIdentifier
        kill(victim, sig)
      case let .mpirun(sig): kill(p.processIdentifier, sig)
      }
    }
    return (r, Date().timeIntervalSince(signalled))
  }

  /// The step of the run's last "stopped" record.
  func stoppedStep(_ out: String) throws -> Int {
    let stopped = try records(out, kind: "stopped")
    XCTAssertEqual(stopped.count, 1, "one stopped record")
    return stopped.last?["step"] as? Int ?? -1
  }

  func checkStopAndResume(_ name: String, ranks: Int, _ target: Target) throws {
    let dir = scratchDirectory("preempt-\(name)")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let (r, seconds) = try interrupt(dir + "/split", ranks: ranks, target)
    print("\(name): exit \(r.status) \(String(format: "%.2f", seconds)) s after the signal")
    XCTAssertEqual(r.status, StopRequested.exitStatus, "\(name): \(r.stdout)\n\(r.stderr)")
    XCTAssertLessThan(seconds, 10, name)
    XCTAssertTrue(r.stderr.contains("stopped on request at step"), r.stderr)
    let step = try stoppedStep(dir + "/split")
    XCTAssertGreaterThan(step, 0)
    // The checkpoint is the step it stopped at.
    let inspect = try elbo(["inspect", dir + "/split"])
    XCTAssertTrue(inspect.stdout.contains("step \(step),"), inspect.stdout)

    let end = step + 15
    let resumed = try elbo(tiny + ["--out", dir + "/split", "--epochs", "1000", "--resume",
                                   "latest", "--max-steps", "\(end)"], ranks: ranks)
    XCTAssertTrue(resumed.stdout.contains("resumed from step \(step)"), resumed.stdout)
    try elbo(tiny + ["--out", dir + "/straight", "--epochs", "1000", "--max-steps", "\(end)"],
             ranks: ranks)
    let d = maxDifference(try checkpointParameters(dir + "/straight"),
                          try checkpointParameters(dir + "/split"))
    XCTAssertEqual(d, 0, "\(name): stop + resume is not bitwise equal to a straight run")
  }

  func testSigtermOnOneRankOfTwo() throws {
    try checkStopAndResume("sigterm-rank", ranks: 2, .rank(SIGTERM))
  }

  func testSigusr1ToMpirunIsForwarded() throws {
    try checkStopAndResume("sigusr1-mpirun", ranks: 2, .mpirun(SIGUSR1))
  }

  func testSigtermOnASingleProcess() throws {
    try checkStopAndResume("sigterm-single", ranks: 1, .rank(SIGTERM))
  }
}
