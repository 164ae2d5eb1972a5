import ElboProbability
import Foundation
import XCTest

/// End-to-end runs of `elbo train flow-2d` (the binary, on 1–2 ranks): the KL and log Z in the
/// metrics and in `elbo eval --json`, the density picture in the report, `elbo sample`, 2 ranks
/// equal to 1 rank, bitwise resume, and one-line errors.
final class Flow2DRunTests: XCTestCase {
  static let args = ["train", "flow-2d", "--target", "u2", "--flow-length", "2",
                     "--samples-per-epoch", "400", "--eval-samples", "3000", "--batch-size", "50",
                     "--warmup-steps", "10", "--threads", "1", "--log-every", "4"]

  func jsonLine(_ stdout: String) throws -> [String: Any] {
    let lines = stdout.split(separator: "\n").filter { $0.hasPrefix("{") }
    XCTAssertEqual(lines.count, 1, "expected ONE JSON line in:\n\(stdout)")
    return try JSONSerialization.jsonObject(with: Data(lines.last!.utf8)) as! [String: Any]
  }

  func testRunLogsKLDrawsTheDensitiesAndEvalRepeatsIt() throws {
    let dir = scratchDirectory("flow2d-run")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let run = dir + "/r"
    let r = try elbo(Self.args + ["--max-steps", "12", "--out", run])
    XCTAssertTrue(r.stdout.contains("log Z = "), r.stdout)
    let train = try records(run, kind: "train")
    XCTAssertNotNil(train.first?["kl_estimate"] as? Double, "\(train)")
    XCTAssertEqual(try XCTUnwrap(train.first?["beta"] as? Double), 0.01 + 3.0 / 10, accuracy: 1e-6)
    let epoch = try XCTUnwrap(try records(run, kind: "epoch").last)
    let kl = try XCTUnwrap(epoch["kl"] as? Double, "\(epoch)")
    let se = try XCTUnwrap(epoch["kl_std_error"] as? Double)
    XCTAssertGreaterThan(kl, -3 * se, "KL below 0 by more than its noise")
    XCTAssertNotNil(epoch["log_z"] as? Double)
    for file in ["report.html", "images/density.png", "plots/free_energy.svg"] {
      XCTAssertTrue(FileManager.default.fileExists(atPath: "\(run)/\(file)"), file)
    }
    let png = try Data(contentsOf: URL(fileURLWithPath: run + "/images/density.png"))
    XCTAssertEqual(Array(png.prefix(4)), [0x89, 0x50, 0x4E, 0x47], "not a PNG")
    // Two 200-pixel panels and a 6-pixel gap (width and height are big-endian at 16..<24).
    let size = png[16..<24].map { Int($0) }
    XCTAssertEqual([size[2] << 8 | size[3], size[6] << 8 | size[7]], [406, 200])
    let report = try String(contentsOfFile: run + "/report.html", encoding: .utf8)
    XCTAssertTrue(report.contains("density.png"))

    let eval = try jsonLine(try elbo(["eval", run, "--json", "--threads", "1"]).stdout)
    XCTAssertEqual(eval["model"] as? String, "flow-2d")
    XCTAssertEqual(try XCTUnwrap(eval["kl"] as? Double), kl, accuracy: 1e-9 * max(1, abs(kl)))
    XCTAssertEqual(try XCTUnwrap(eval["log_z"] as? Double), epoch["log_z"] as! Double)

    try elbo(["sample", run, "-n", "500", "--out", dir + "/s.png"])
    let s = try Data(contentsOf: URL(fileURLWithPath: dir + "/s.png"))
    XCTAssertEqual(Array(s.prefix(4)), [0x89, 0x50, 0x4E, 0x47], "not a PNG")
  }

  /// The same run on 1 and 2 ranks ends at the same parameters (float summation order only);
  /// stopped and resumed, bitwise the uninterrupted run on the same ranks.
  func testTwoRanksEqualOneAndResumeIsBitwise() throws {
    let dir = scratchDirectory("flow2d-ranks")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let args = Self.args + ["--flow", "radial", "--target", "u1"]
    for n in [1, 2] {
      try elbo(args + ["--out", "\(dir)/n\(n)a", "--max-steps", "16"], ranks: n)
      try elbo(args + ["--out", "\(dir)/n\(n)b", "--max-steps", "6"], ranks: n)
      let r = try elbo(args + ["--out", "\(dir)/n\(n)b", "--max-steps", "16",
                               "--resume", "latest"], ranks: n)
      XCTAssertTrue(r.stdout.contains("resumed from step 6"), r.stdout)
      XCTAssertEqual(maxDifference(try checkpointParameters("\(dir)/n\(n)a"),
                                   try checkpointParameters("\(dir)/n\(n)b")), 0,
                     "resume on \(n) rank(s) is not bitwise")
    }
    // Same tolerance and reasoning as DataParallelTests: 16 Adam steps of lr 10⁻².
    let d = maxDifference(try checkpointParameters("\(dir)/n1a"),
                          try checkpointParameters("\(dir)/n2a"))
    XCTAssertLessThan(d, 2e-5 * 10, "parameters on 2 ranks differ from 1 rank by \(d)")
    let one = try records("\(dir)/n1a", kind: "train"), two = try records("\(dir)/n2a", kind: "train")
    XCTAssertEqual(one.count, two.count)
    for (a, b) in zip(one, two) {
      let x = a["elbo"] as! Double, y = b["elbo"] as! Double
      XCTAssertEqual(y, x, accuracy: 1e-5 * max(1, abs(x)), "elbo at step \(a["step"]!)")
    }
  }

  /// `elbo bench flow-2d` prints one JSON line with the chain and the time per sample and flow.
  func testBenchmarkPrintsTheChainAndItsSpeed() throws {
    let r = try elbo(["bench", "flow-2d", "--flow-length", "4", "--steps", "5", "--threads", "1"])
    let line = try jsonLine(r.stdout)
    XCTAssertEqual(line["model"] as? String, "flow-2d")
    XCTAssertEqual(line["flow_length"] as? Int, 4)
    XCTAssertGreaterThan(try XCTUnwrap(line["us_per_sample_per_flow"] as? Double), 0)
  }

  func testBadTargetAndUnbuiltFlowAreOneLineErrors() throws {
    let dir = scratchDirectory("flow2d-bad")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    func expectOneLine(_ extra: [String], mentions: String) throws {
      let r = try ElboProcess.run(["train", "flow-2d", "--out", dir + "/r"] + extra, timeout: 60)
      XCTAssertNotEqual(r.status, 0, "\(extra) should fail")
      let lines = r.stderr.split(separator: "\n").filter { $0.hasPrefix("elbo:") }
      XCTAssertTrue(lines.contains { $0.contains(mentions) }, "'\(mentions)' missing:\n\(r.stderr)")
      XCTAssertFalse(r.stderr.contains("Fatal error"), r.stderr)
    }
    try expectOneLine(["--target", "u9"], mentions: "u9")
    try expectOneLine(["--flow-length", "-1"], mentions: "--flow-length")
    try expectOneLine(["--samples-per-epoch", "0"], mentions: "--samples-per-epoch")
    try expectOneLine(["--flow", "nope"], mentions: "nope")
  }
}
