@testable import ElboTrain
import Foundation
import XCTest

/// The progress line: its text as a pure function, the redraw throttle, and what a terminal and
/// a pipe each get from a real run.
final class ProgressTests: XCTestCase {
  func testBarShowsEpochStepETAThroughputAndLoss() {
    let line = ProgressBar.render(epoch: 2, epochs: 10, step: 1234, totalSteps: 6000,
                                  secondsPerStep: 0.04, examplesPerSecond: 2345.4, loss: 104.214,
                                  width: 100)
    XCTAssertTrue(line.hasPrefix("epoch 2/10 |"), line)
    XCTAssertTrue(line.hasSuffix("|  1234/6000  ETA 3m11s  2345 ex/s  F 104.21"), line)
    XCTAssertLessThanOrEqual(line.count, 100)
    // 1234/6000 of a 40-cell bar = 8.23 cells: 8 full cells and one eighth.
    XCTAssertTrue(line.contains("|" + String(repeating: "█", count: 8) + "▏ "), line)
  }

  func testUnknownsAndTheEnd() {
    let start = ProgressBar.render(epoch: 1, epochs: 1, step: 0, totalSteps: 50,
                                   secondsPerStep: nil, examplesPerSecond: nil, loss: nil, width: 80)
    XCTAssertTrue(start.hasSuffix("  0/50  ETA --"), start)
    let end = ProgressBar.render(epoch: 1, epochs: 1, step: 50, totalSteps: 50,
                                 secondsPerStep: 0.1, examplesPerSecond: 10, loss: .nan, width: 100)
    XCTAssertTrue(end.contains("|" + String(repeating: "█", count: 40) + "|"), end)
    XCTAssertTrue(end.hasSuffix("50/50  done  10 ex/s  F nan"), end)
  }

  func testNarrowTerminalsDropTheBarThenCut() {
    for width in [20, 30, 45, 60] {
      let line = ProgressBar.render(epoch: 12, epochs: 100, step: 123456, totalSteps: 600000,
                                    secondsPerStep: 1, examplesPerSecond: 99999, loss: 1e6,
                                    width: width)
      XCTAssertLessThanOrEqual(line.count, width, line)
      XCTAssertTrue(line.hasPrefix("epoch 12/100"), line)
    }
  }

  func testDurations() {
    XCTAssertEqual(ProgressBar.duration(7.4), "7s")
    XCTAssertEqual(ProgressBar.duration(185), "3m05s")
    XCTAssertEqual(ProgressBar.duration(7440), "2h04m")
    XCTAssertEqual(ProgressBar.duration(3 * 86400 + 5 * 3600), "3d05h")
    XCTAssertEqual(ProgressBar.duration(.infinity), "--")
  }

  /// At most one redraw per 0.1 s, unless forced; a printed line clears it first.
  func testRedrawsAreThrottledAndCleared() {
    var written: [String] = []
    let line = ProgressLine(columns: { 60 }, write: { written.append($0) })
    let t0 = Date()
    // Calls every 1/16 s (exact in binary): every other one is drawn.
    for i in 0..<8 {
      line.update(now: t0.addingTimeInterval(Double(i) / 16)) { _ in "step \(i)" }
    }
    XCTAssertEqual(written, ["\rstep 0\u{1B}[K", "\rstep 2\u{1B}[K", "\rstep 4\u{1B}[K",
                             "\rstep 6\u{1B}[K"])
    written = []
    line.update(force: true, now: t0.addingTimeInterval(0.4375)) { w in "w=\(w)" }
    line.clear()
    line.clear()  // nothing visible: no output
    line.update(now: t0.addingTimeInterval(0.44)) { _ in "again" }  // redraws at once after clear
    line.finish()
    XCTAssertEqual(written, ["\rw=59\u{1B}[K", "\r\u{1B}[K", "\ragain\u{1B}[K", "\n"])
  }

  let run = ["train", "vae", "--data", "mnist-5k", "--batch-size", "100", "--hidden", "32",
             "--latent", "4", "--threads", "1", "--max-steps", "24", "--log-every", "8"]

  /// Not a terminal (a pipe, as in CI and Slurm logs): plain lines, no carriage returns.
  func testPipeGetsPlainLines() throws {
    let dir = scratchDirectory("plain")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let r = try ElboProcess.run(run + ["--out", dir + "/run"])
    XCTAssertEqual(r.status, 0, r.stderr)
    XCTAssertFalse(r.stdout.contains("\r") || r.stdout.contains("\u{1B}"), r.stdout)
    for step in [8, 16, 24] { XCTAssertTrue(r.stdout.contains("step \(step)/24  epoch 1"), r.stdout) }
  }

  /// A terminal (a pty from `script`): the bar, redrawn with carriage returns, instead of the
  /// per-window lines; ordinary lines (checkpoint, report) still on lines of their own.
  func testTerminalGetsTheBar() throws {
    let dir = scratchDirectory("tty")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let command = ([ElboProcess.binary] + run + ["--out", dir + "/run"]).joined(separator: " ")
    let r = try ElboProcess.runTool("/usr/bin/script", ["-qec", command, "/dev/null"])
    XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
    XCTAssertTrue(r.stdout.contains("\repoch 1/1 |"), r.stdout)
    XCTAssertTrue(r.stdout.contains("24/24  done"), r.stdout)
    XCTAssertTrue(r.stdout.contains("ex/s  F "), r.stdout)
    XCTAssertFalse(r.stdout.contains("step 8/24  epoch 1"), "per-window lines replaced by the bar")
    XCTAssertTrue(r.stdout.contains("\ncheckpoint: "), r.stdout)
  }

  /// Two ranks under mpirun, started from a terminal: OpenMPI gives each rank a pty whatever
  /// mpirun's own output is, so the loop must not trust isatty there and prints plain lines.
  func testMultiRankRunPrintsPlainLinesEvenOnATerminal() throws {
    let dir = scratchDirectory("mpitty")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let command = (["mpirun", "--oversubscribe", "--bind-to", "none", "-np", "2",
                    ElboProcess.binary] + run + ["--out", dir + "/run"]).joined(separator: " ")
    let r = try ElboProcess.runTool("/usr/bin/script", ["-qec", command, "/dev/null"])
    XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
    XCTAssertFalse(r.stdout.contains("\repoch"), r.stdout)
    for step in [8, 16, 24] { XCTAssertTrue(r.stdout.contains("step \(step)/24  epoch 1"), r.stdout) }
  }
}
