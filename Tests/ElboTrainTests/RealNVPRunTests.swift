import Foundation
import XCTest

/// End-to-end runs of `elbo train realnvp` (the binary, 1–2 ranks) with tiny coupling networks: a
/// toy run with its picture and the true density's NLL beside the model's, an image run whose
/// bits/dim agree with its NLL, `elbo eval --json` reproducing the last epoch, `elbo sample`, 2
/// ranks equal to 1 rank and bitwise resume on 2 ranks, `elbo bench realnvp`.
final class RealNVPRunTests: XCTestCase {
  static let toy = ["train", "realnvp", "--data", "8-gaussians", "--couplings", "4",
                    "--hidden", "16,16", "--toy-train", "1000", "--toy-test", "500",
                    "--threads", "1", "--log-every", "4"]
  static let images = ["train", "realnvp", "--data", "mnist-5k", "--couplings", "2",
                       "--hidden", "8", "--threads", "1", "--log-every", "4"]

  func jsonLine(_ stdout: String) throws -> [String: Any] {
    let lines = stdout.split(separator: "\n").filter { $0.hasPrefix("{") }
    XCTAssertEqual(lines.count, 1, "expected ONE JSON line in:\n\(stdout)")
    return try JSONSerialization.jsonObject(with: Data(lines.last!.utf8)) as! [String: Any]
  }

  func testToyRunLearnsAndWritesDensityPictureEvalAndSample() throws {
    let dir = scratchDirectory("realnvp-toy")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let run = dir + "/r"
    try elbo(Self.toy + ["--max-steps", "60", "--lr", "3e-3", "--out", run])
    let epochs = try records(run, kind: "epoch")
    let first = try XCTUnwrap(epochs.first?["test_nll"] as? Double)
    let last = try XCTUnwrap(epochs.last?["test_nll"] as? Double)
    let truth = try XCTUnwrap(epochs.last?["true_test_nll"] as? Double)
    XCTAssertLessThan(last, first, "training lowers the test NLL")
    XCTAssertGreaterThan(last, truth - 0.1, "no model beats the true density by much on 500 points")
    XCTAssertTrue(FileManager.default.fileExists(atPath: "\(run)/images/density.png"))
    let eval = try jsonLine(try elbo(["eval", run, "--json", "--threads", "1"]).stdout)
    XCTAssertEqual(try XCTUnwrap(eval["test_nll"] as? Double), last, accuracy: 1e-9 * abs(last))
    try elbo(["sample", run, "-n", "200", "--out", dir + "/s.png"])
    let png = try Data(contentsOf: URL(fileURLWithPath: dir + "/s.png"))
    XCTAssertEqual(Array(png.prefix(4)), [0x89, 0x50, 0x4E, 0x47], "not a PNG")
  }

  /// An image run (mnist-5k, so that the dequantisation noise is part of what must agree):
  /// bits/dim consistent with the NLL and reproduced by `elbo eval --json`; the same run on 2
  /// ranks ends at the 1-rank parameters (float summation order only); stopped at step 4 and
  /// resumed on 2 ranks, bitwise the uninterrupted 2-rank run.
  func testImageRunBitsPerDimTwoRanksEqualOneAndResumeIsBitwise() throws {
    let dir = scratchDirectory("realnvp-ranks")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let args = Self.images + ["--max-steps", "8"]
    try elbo(args + ["--out", "\(dir)/n1"])
    let epoch = try XCTUnwrap(try records("\(dir)/n1", kind: "epoch").last)
    let nll = try XCTUnwrap(epoch["test_nll"] as? Double)
    let bits = try XCTUnwrap(epoch["test_bits_per_dim"] as? Double)
    XCTAssertEqual(bits, (nll + 784 * log(256.0)) / (784 * log(2.0)), accuracy: 1e-9)
    XCTAssertGreaterThan(bits, 0)
    let train = try XCTUnwrap(try records("\(dir)/n1", kind: "train").last)
    let ll = try XCTUnwrap(train["log_likelihood"] as? Double)
    XCTAssertEqual(try XCTUnwrap(train["bits_per_dim"] as? Double),
                   -(ll - 784 * log(256.0)) / (784 * log(2.0)), accuracy: 1e-6)
    for file in ["images/samples.png", "images/data.png", "report.html"] {
      XCTAssertTrue(FileManager.default.fileExists(atPath: "\(dir)/n1/\(file)"), file)
    }
    let eval = try jsonLine(try elbo(["eval", "\(dir)/n1", "--json", "--threads", "1"]).stdout)
    XCTAssertEqual(try XCTUnwrap(eval["test_bits_per_dim"] as? Double), bits, accuracy: 1e-9)

    try elbo(args + ["--out", "\(dir)/n2"], ranks: 2)
    try elbo(Self.images + ["--max-steps", "4", "--eval-every", "100", "--out", "\(dir)/n2b"],
             ranks: 2)
    let r = try elbo(args + ["--out", "\(dir)/n2b", "--resume", "latest"], ranks: 2)
    XCTAssertTrue(r.stdout.contains("resumed from step 4"), r.stdout)
    XCTAssertEqual(maxDifference(try checkpointParameters("\(dir)/n2"),
                                 try checkpointParameters("\(dir)/n2b")), 0,
                   "resume on 2 ranks is not bitwise")
    let d = maxDifference(try checkpointParameters("\(dir)/n1"),
                          try checkpointParameters("\(dir)/n2"))
    XCTAssertLessThan(d, 2e-5, "parameters on 2 ranks differ from 1 rank by \(d)")
    let one = try records("\(dir)/n1", kind: "train"), two = try records("\(dir)/n2", kind: "train")
    XCTAssertEqual(one.count, two.count)
    for (a, b) in zip(one, two) {
      let x = a["log_likelihood"] as! Double, y = b["log_likelihood"] as! Double
      XCTAssertEqual(y, x, accuracy: 1e-5 * abs(x), "log_likelihood at step \(a["step"]!)")
    }
    let test2 = try XCTUnwrap(try records("\(dir)/n2", kind: "epoch").last?["test_nll"] as? Double)
    XCTAssertEqual(test2, nll, accuracy: 1e-5 * abs(nll), "test NLL on 2 ranks")
  }

  func testBenchPrintsOneJSONLine() throws {
    let r = try elbo(["bench", "realnvp", "--data", "two-moons", "--couplings", "2", "--hidden",
                      "8", "--toy-train", "400", "--steps", "3", "--warmup", "1", "--threads", "1"])
    let line = try jsonLine(r.stdout)
    XCTAssertEqual(line["model"] as? String, "realnvp")
    XCTAssertNotNil(line["gemm_gflop_per_step"], "\(line)")
  }
}
