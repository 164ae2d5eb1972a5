import Foundation
import XCTest

/// End-to-end runs of `elbo train nade` / `elbo train made` (the binary, on 1–2 ranks) on
/// MNIST-5k with small networks: the run directory (metrics with the exact test log-likelihood,
/// report, pictures), `elbo eval --json` reproducing the last epoch, `elbo sample`, 2 ranks equal
/// to 1 rank, and bitwise resume.
final class AutoregressiveRunTests: XCTestCase {
  static let nade = ["train", "nade", "--data", "mnist-5k", "--hidden", "16", "--threads", "1",
                     "--log-every", "5"]
  static let made = ["train", "made", "--data", "mnist-5k", "--hidden", "24,16", "--masks", "4",
                     "--test-masks", "3", "--order-agnostic", "--threads", "1", "--log-every", "5"]

  func jsonLine(_ stdout: String) throws -> [String: Any] {
    let lines = stdout.split(separator: "\n").filter { $0.hasPrefix("{") }
    XCTAssertEqual(lines.count, 1, "expected ONE JSON line in:\n\(stdout)")
    return try JSONSerialization.jsonObject(with: Data(lines.last!.utf8)) as! [String: Any]
  }

  /// A short run writes the exact test log-likelihood per epoch, the report and both pictures;
  /// `elbo eval --json` prints the same figure; `elbo sample` writes a PNG.
  func checkRunEvalAndSample(_ args: [String], model: String, extraKeys: [String]) throws {
    let dir = scratchDirectory("\(model)-run")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let run = dir + "/r"
    try elbo(args + ["--max-steps", "15", "--out", run])
    let train = try records(run, kind: "train")
    XCTAssertFalse(train.isEmpty)
    XCTAssertNotNil(train.first?["log_likelihood"] as? Double, "\(train.first!)")
    let epoch = try XCTUnwrap(try records(run, kind: "epoch").last)
    let ll = try XCTUnwrap(epoch["test_log_likelihood"] as? Double, "\(epoch)")
    XCTAssertLessThan(ll, 0)
    XCTAssertEqual(try XCTUnwrap(epoch["test_nll"] as? Double), -ll, accuracy: 1e-9)
    for key in extraKeys { XCTAssertNotNil(epoch[key], "\(key) missing from \(epoch)") }
    for file in ["report.html", "images/samples.png", "images/conditionals.png",
                 "plots/log_likelihood.svg"] {
      XCTAssertTrue(FileManager.default.fileExists(atPath: "\(run)/\(file)"), file)
    }
    XCTAssertFalse(FileManager.default.fileExists(atPath: "\(run)/plots/surprise.svg"))

    let eval = try jsonLine(try elbo(["eval", run, "--json", "--threads", "1"]).stdout)
    XCTAssertEqual(eval["model"] as? String, model)
    XCTAssertEqual(try XCTUnwrap(eval["test_log_likelihood"] as? Double), ll,
                   accuracy: 1e-9 * abs(ll))

    try elbo(["sample", run, "-n", "16", "--out", dir + "/s.png"])
    let png = try Data(contentsOf: URL(fileURLWithPath: dir + "/s.png"))
    XCTAssertEqual(Array(png.prefix(4)), [0x89, 0x50, 0x4E, 0x47], "not a PNG")
  }

  /// The same run on 1 and 2 ranks ends at the same parameters (float summation order only);
  /// stopped and resumed, bitwise the uninterrupted run on the same ranks.
  func checkRanksAndResume(_ args: [String], name: String) throws {
    let dir = scratchDirectory(name)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    for n in [1, 2] {
      try elbo(args + ["--out", "\(dir)/n\(n)a", "--max-steps", "16"], ranks: n)
      try elbo(args + ["--out", "\(dir)/n\(n)b", "--max-steps", "8"], ranks: n)
      let r = try elbo(args + ["--out", "\(dir)/n\(n)b", "--max-steps", "16",
                               "--resume", "latest"], ranks: n)
      XCTAssertTrue(r.stdout.contains("resumed from step 8"), r.stdout)
      XCTAssertEqual(maxDifference(try checkpointParameters("\(dir)/n\(n)a"),
                                   try checkpointParameters("\(dir)/n\(n)b")), 0,
                     "\(name): resume on \(n) rank(s) is not bitwise")
    }
    let d = maxDifference(try checkpointParameters("\(dir)/n1a"),
                          try checkpointParameters("\(dir)/n2a"))
    XCTAssertLessThan(d, 2e-5, "\(name): parameters on 2 ranks differ from 1 rank by \(d)")
    let one = try records("\(dir)/n1a", kind: "train"), two = try records("\(dir)/n2a", kind: "train")
    XCTAssertEqual(one.count, two.count)
    for (a, b) in zip(one, two) {
      let x = a["log_likelihood"] as! Double, y = b["log_likelihood"] as! Double
      XCTAssertEqual(y, x, accuracy: 1e-5 * abs(x), "\(name) log_likelihood at step \(a["step"]!)")
    }
  }

  func testNADERunWritesExactLikelihoodReportPicturesEvalAndSample() throws {
    try checkRunEvalAndSample(Self.nade, model: "nade", extraKeys: [])
  }

  func testNADETwoRanksEqualOneAndResumeIsBitwise() throws {
    try checkRanksAndResume(Self.nade + ["--binarize", "dynamic"], name: "nade-ranks")
  }

  func testMADERunWritesMaskAveragedLikelihoodReportPicturesEvalAndSample() throws {
    try checkRunEvalAndSample(Self.made, model: "made",
                              extraKeys: ["test_log_likelihood_mask0", "test_masks"])
  }

  func testMADETwoRanksEqualOneAndResumeIsBitwise() throws {
    try checkRanksAndResume(Self.made, name: "made-ranks")
  }

  func testNADEAndMADEConfigFilesAreAccepted() throws {
    let dir = scratchDirectory("ar-configs")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
      .deletingLastPathComponent().deletingLastPathComponent().path
    for (model, file) in [("nade", "nade-mnist5k"), ("nade", "nade-fashion-mnist"),
                          ("made", "made-mnist5k")] {
      try elbo(["train", model, "--config", "\(root)/configs/\(file).yaml", "--hidden", "8",
                "--max-steps", "1", "--threads", "1", "--out", "\(dir)/\(file)"])
      let config = try JSONSerialization.jsonObject(
        with: Data(contentsOf: URL(fileURLWithPath: "\(dir)/\(file)/config.json"))) as! [String: Any]
      XCTAssertEqual(config["model"] as? String, model)
      XCTAssertEqual(config["learningRate"] as? Double ?? 0, 1e-3, accuracy: 1e-9)
    }
  }
}
