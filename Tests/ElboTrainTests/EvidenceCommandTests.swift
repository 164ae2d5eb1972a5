import Foundation
import XCTest

/// `elbo evidence`: its table and JSON lines, its files, and one clear line for bad flags.
final class EvidenceCommandTests: XCTestCase {
  func jsonLines(_ stdout: String) throws -> [[String: Any]] {
    try stdout.split(separator: "\n").map {
      try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
    }
  }

  func last(_ rows: [[String: Any]], _ estimator: String, variant: String? = nil) -> [String: Any]? {
    rows.last { $0["estimator"] as? String == estimator
      && (variant == nil || ($0["variant"] as? String)?.hasPrefix(variant!) == true) }
  }

  /// Every estimator on a small model: Laplace exact, importance sampling close, mean-field and
  /// amortised below the exact value; the report and one plot per estimator written.
  func testEveryEstimatorBesideTheExactValue() throws {
    let out = scratchDirectory("evidence") + "/lg"
    let r = try ElboProcess.run(["evidence", "--dims", "2,6", "--points", "4", "--json",
                                 "--out", out], timeout: 120)
    XCTAssertEqual(r.status, 0, r.stderr)
    let rows = try jsonLines(r.stdout)
    for row in rows { XCTAssertNotNil(row["exact"], "\(row)") }
    let laplace = try XCTUnwrap(last(rows, "laplace"))
    XCTAssertEqual(laplace["error"] as! Double, 0, accuracy: 1e-4)
    let importance = try XCTUnwrap(last(rows, "importance", variant: "mean-field"))
    XCTAssertEqual(importance["budget"] as? Int, 4096)
    XCTAssertEqual(importance["error"] as! Double, 0, accuracy: 0.02)
    let meanField = try XCTUnwrap(last(rows, "mean-field"))["error"] as! Double
    let amortized = try XCTUnwrap(last(rows, "amortized"))["error"] as! Double
    XCTAssertLessThan(meanField, 0)
    XCTAssertLessThan(amortized, 0)
    XCTAssertGreaterThan(amortized, meanField - 0.05, "amortised VI far from the mean-field optimum")
    let closed = try XCTUnwrap(last(rows, "perturbative", variant: "cumulants, closed"))
    XCTAssertLessThan(abs(closed["error"] as! Double), abs(meanField))
    let fm = FileManager.default
    XCTAssertTrue(fm.fileExists(atPath: out + "/report.html"))
    for e in ["importance", "laplace", "perturbative", "mean-field", "amortized"] {
      XCTAssertTrue(fm.fileExists(atPath: out + "/plots/evidence-\(e).svg"), e)
    }
    let lines = try String(contentsOfFile: out + "/evidence.jsonl", encoding: .utf8)
      .split(separator: "\n").count
    XCTAssertEqual(lines, rows.count)
  }

  func testTableNamesTheExactValue() throws {
    let r = try ElboProcess.run(["evidence", "--estimator", "laplace", "--budget", "1",
                                 "--out", scratchDirectory("evidence") + "/table"], timeout: 60)
    XCTAssertEqual(r.status, 0, r.stderr)
    XCTAssertTrue(r.stdout.contains("estimate"), r.stdout)
    XCTAssertTrue(r.stdout.contains("exact"), r.stdout)
    XCTAssertTrue(r.stdout.contains("Newton steps 1"), r.stdout)
  }

  func testBadFlagsGiveOneLineAndExitTwo() throws {
    let out = scratchDirectory("evidence") + "/bad"
    for (args, mention) in [(["--estimator", "gibbs"], "--estimator"), (["--dims", "3"], "--dims"),
                            (["--dims", "0,4"], "--dims"), (["--budget", "5"], "--budget"),
                            (["--estimator", "importance", "--budget", "0"], "--budget"),
                            (["--points", "0"], "--points"), (["/nonexistent-run"], "/nonexistent-run")] {
      let r = try ElboProcess.run(["evidence"] + args + ["--out", out], timeout: 60)
      XCTAssertEqual(r.status, 2, "\(args): \(r.stderr)")
      let lines = r.stderr.split(separator: "\n").filter { $0.hasPrefix("elbo:") }
      XCTAssertEqual(lines.count, 1, "\(args): \(r.stderr)")
      XCTAssertTrue(lines.first?.contains(mention) == true, "\(args): \(r.stderr)")
      XCTAssertFalse(r.stderr.contains("Fatal error"), r.stderr)
    }
  }

  /// On a (barely) trained VAE: importance sampling rises with K towards its limit, Laplace is
  /// finite; estimators that need a Gaussian joint are refused with one line.
  func testTrainedVAEImportanceAndLaplace() throws {
    let dir = scratchDirectory("evidence")
    let run = dir + "/vae"
    var r = try ElboProcess.run(["train", "vae", "--data", "mnist-5k", "--hidden", "32",
                                 "--latent", "4", "--threads", "1", "--max-steps", "40",
                                 "--out", run], timeout: 300)
    XCTAssertEqual(r.status, 0, r.stderr)
    r = try ElboProcess.run(["evidence", run, "--images", "5", "--k", "300", "--json",
                             "--out", dir + "/vae-evidence"], timeout: 300)
    XCTAssertEqual(r.status, 0, r.stderr)
    let rows = try jsonLines(r.stdout)
    let importance = rows.filter { $0["estimator"] as? String == "importance" }
    XCTAssertEqual(importance.map { $0["budget"] as! Int }, [1, 10, 100, 300])
    let first = importance.first!["estimate"] as! Double, lastIS = importance.last!["estimate"] as! Double
    XCTAssertGreaterThan(lastIS, first, "K = 300 should beat the one-sample bound")
    let laplace = try XCTUnwrap(last(rows, "laplace"))["estimate"] as! Double
    XCTAssertTrue(laplace.isFinite)
    XCTAssertEqual(laplace, lastIS, accuracy: 50)
    r = try ElboProcess.run(["evidence", run, "--estimator", "mean-field", "--out", dir + "/mf"],
                            timeout: 120)
    XCTAssertEqual(r.status, 2, r.stderr)
    XCTAssertTrue(r.stderr.contains("Gaussian in z"), r.stderr)
  }
}
