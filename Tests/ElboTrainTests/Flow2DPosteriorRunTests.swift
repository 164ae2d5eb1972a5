import ElboTestSupport
import Foundation
import XCTest

/// `elbo train flow-2d --posterior uivi|semi-implicit` end to end (the binary): the HMC
/// acceptance in the train records, the mode shares in the evaluation and `elbo eval --json`,
/// the density picture, the same run on 2 ranks, and one-line errors for the new flags.
final class Flow2DPosteriorRunTests: XCTestCase {
  static let args = ["train", "flow-2d", "--target", "two-modes", "--samples-per-epoch", "400",
                     "--eval-samples", "1000", "--batch-size", "50", "--mix-samples", "4",
                     "--threads", "1", "--log-every", "4"]

  func jsonLine(_ stdout: String) throws -> [String: Any] {
    let line = try XCTUnwrap(stdout.split(separator: "\n").last { $0.hasPrefix("{") })
    return try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
  }

  func testUIVIRunLogsAcceptanceAndModeSharesOnOneAndTwoRanks() throws {
    let dir = scratchDirectory("flow2d-uivi")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    var shares: [[Double]] = []
    for n in [1, 2] {
      let run = dir + "/r\(n)"
      try elbo(Self.args + ["--posterior", "uivi", "--max-steps", "8", "--out", run], ranks: n)
      let train = try records(run, kind: "train")
      let acceptance = try XCTUnwrap(train.first?["hmc_acceptance"] as? Double, "\(train)")
      XCTAssertGreaterThan(acceptance, 0.3)
      XCTAssertLessThanOrEqual(acceptance, 1)
      XCTAssertTrue(FileManager.default.fileExists(atPath: run + "/images/density.png"))
      let eval = try jsonLine(try elbo(["eval", run, "--json", "--threads", "1"]).stdout)
      let lower = try XCTUnwrap(eval["mass_near_lower_mode"] as? Double, "\(eval)")
      let upper = try XCTUnwrap(eval["mass_near_upper_mode"] as? Double)
      XCTAssertLessThanOrEqual(lower + upper, 1)
      shares.append([lower, upper])
    }
    // 2 ranks: the same rows and chains, split (only the MLP's rounding differs).
    assertClose(shares[1], shares[0], atol: 2e-3)
  }

  func testSemiImplicitRunEvaluates() throws {
    let dir = scratchDirectory("flow2d-sivi")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let run = dir + "/r"
    try elbo(Self.args + ["--posterior", "semi-implicit", "--max-steps", "8", "--out", run])
    let epoch = try XCTUnwrap(try records(run, kind: "epoch").last)
    XCTAssertNotNil(epoch["kl"] as? Double)
    XCTAssertNotNil(epoch["mass_near_lower_mode"] as? Double, "\(epoch)")
  }

  func testBadPosteriorFlagsAreOneLineErrors() throws {
    let dir = scratchDirectory("flow2d-bad-posterior")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    func expectOneLine(_ extra: [String], mentions: String) throws {
      let r = try ElboProcess.run(["train", "flow-2d", "--out", dir + "/r"] + extra, timeout: 60)
      XCTAssertNotEqual(r.status, 0, "\(extra) should fail")
      let lines = r.stderr.split(separator: "\n").filter { $0.hasPrefix("elbo:") }
      XCTAssertTrue(lines.contains { $0.contains(mentions) }, "'\(mentions)' missing:\n\(r.stderr)")
      XCTAssertFalse(r.stderr.contains("Fatal error"), r.stderr)
    }
    try expectOneLine(["--posterior", "banana"], mentions: "banana")
    try expectOneLine(["--posterior", "uivi", "--hmc-step-size=-0.1"], mentions: "--hmc-step-size")
    try expectOneLine(["--posterior", "uivi", "--hmc-samples", "0"], mentions: "--hmc-samples")
    try expectOneLine(["--posterior", "semi-implicit", "--mix-samples=-1"],
                      mentions: "--mix-samples")
  }
}
