import ElboTestSupport
import Foundation
import XCTest

/// `elbo eval`'s importance-sampled log-likelihood is sharded over ranks (each example once,
/// noise keyed by example and sample): 1, 2 and 3 ranks give the same number, and rank 0 alone
/// prints progress (on stderr: stdout carries the one JSON line of `--json`).
final class EvaluationRankTests: XCTestCase {
  func testLogLikelihoodDoesNotDependOnTheNumberOfRanks() throws {
    let root = scratchDirectory("eval-ranks")
    defer { try? FileManager.default.removeItem(atPath: root) }
    let t = try ElboProcess.run(["train", "vae", "--data", "mnist-5k", "--batch-size", "100",
                                 "--hidden", "32", "--latent", "5", "--seed", "5", "--threads",
                                 "1", "--max-steps", "6", "--out", root + "/run"])
    XCTAssertEqual(t.status, 0, t.stderr)
    func logLikelihood(ranks: Int) throws -> Double {
      let r = try ElboProcess.run(["eval", root + "/run", "--k", "7", "--threads", "1",
                                   "--json"], ranks: ranks)
      XCTAssertEqual(r.status, 0, r.stderr)
      let done = r.stderr.components(separatedBy: "examples  done in").count - 1
      XCTAssertEqual(done, 1, "one final progress line, from rank 0:\n\(r.stderr)")
      let lines = r.stdout.split(separator: "\n")
      XCTAssertEqual(lines.count, 1, "--json prints one line:\n\(r.stdout)")
      let json = lines.first { $0.hasPrefix("{") }
      let record = try JSONSerialization.jsonObject(with: Data((json ?? "").utf8))
      return try XCTUnwrap((record as? [String: Any])?["test_log_likelihood"] as? Double)
    }
    let one = try logLikelihood(ranks: 1)
    XCTAssertTrue(one.isFinite && one < 0, "\(one)")
    // Chunks of different sizes change only sgemm's float rounding (~1e-7 nats per example).
    for ranks in [2, 3] {
      XCTAssertEqual(try logLikelihood(ranks: ranks), one, accuracy: 1e-6, "\(ranks) ranks")
    }
  }
}
