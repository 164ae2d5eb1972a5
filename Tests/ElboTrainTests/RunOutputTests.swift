import ElboReport
import ElboTestSupport
import Foundation
import XCTest

/// What a run leaves in its directory: config, metrics as JSONL and CSV, checkpoints, image
/// grids, plots and report.html; --overwrite and --resume; `elbo report`.
final class RunOutputTests: XCTestCase {
  let common = ["train", "vae", "--data", "mnist-5k", "--batch-size", "100", "--hidden", "32",
                "--latent", "4", "--seed", "5", "--threads", "1"]

  @discardableResult
  func train(_ out: String, _ extra: [String], ranks: Int = 1,
             file: StaticString = #filePath, line: UInt = #line) throws -> ElboProcess.Result {
    let r = try ElboProcess.run(common + ["--out", out] + extra, ranks: ranks)
    XCTAssertEqual(r.status, 0, "elbo failed:\n\(r.stdout)\n\(r.stderr)", file: file, line: line)
    return r
  }

  func testRunDirectoryHoldsEverything() throws {
    let dir = scratchDirectory("outputs") + "/run"
    defer { try? FileManager.default.removeItem(atPath: (dir as NSString).deletingLastPathComponent) }
    let r = try train(dir, ["--epochs", "1", "--log-every", "10"])
    XCTAssertTrue(r.stdout.contains("report: \(dir)/report.html"), r.stdout)
    let fm = FileManager.default
    let top = try fm.contentsOfDirectory(atPath: dir)
    XCTAssertEqual(Set(top.filter { !$0.hasPrefix("events.out.tfevents.") }),
                   ["config.json", "metrics.jsonl", "metrics.csv", "checkpoints", "images",
                    "plots", "artifacts.json", "report.html"])
    XCTAssertEqual(top.filter { $0.hasPrefix("events.out.tfevents.") }.count, 1,
                   "one TensorBoard event file")
    XCTAssertEqual(Set(try fm.contentsOfDirectory(atPath: dir + "/images")),
                   ["reconstructions.png", "samples.png"])
    XCTAssertEqual(Set(try fm.contentsOfDirectory(atPath: dir + "/plots")),
                   ["free_energy.svg", "log_likelihood.svg", "surprise.svg"])
    // 16 training images above their 16 reconstructions (4 rows of 8), 64 samples (8 × 8);
    // 28-px tiles with 1-px gaps.
    let recon = try Data(contentsOf: URL(fileURLWithPath: dir + "/images/reconstructions.png"))
    let samples = try Data(contentsOf: URL(fileURLWithPath: dir + "/images/samples.png"))
    XCTAssertEqual(ReportPage.pngSize(recon).map { [$0.width, $0.height] }, [8 * 29 - 1, 4 * 29 - 1])
    XCTAssertEqual(ReportPage.pngSize(samples).map { [$0.width, $0.height] }, [8 * 29 - 1, 8 * 29 - 1])
    // The CSV holds the same records as the JSONL.
    try assertCSVMatchesJSONL(dir)
    let html = try String(contentsOfFile: dir + "/report.html", encoding: .utf8)
    XCTAssertEqual(html.components(separatedBy: "data:image/png;base64,").count - 1, 2)
    XCTAssertTrue(html.contains("Free energy F = −ELBO"))
  }

  /// Reads metrics.csv with Python's csv module and compares it cell by cell with metrics.jsonl.
  func assertCSVMatchesJSONL(_ dir: String, file: StaticString = #filePath, line: UInt = #line) throws {
    let out = try python("""
      import csv, json, sys
      d = sys.argv[1]
      records = [json.loads(l) for l in open(d + '/metrics.jsonl') if l.strip()]
      rows = list(csv.DictReader(open(d + '/metrics.csv')))
      keys = set().union(*[r.keys() for r in records])
      assert set(rows[0].keys()) == keys, (sorted(rows[0].keys()), sorted(keys))
      assert len(rows) == len(records), (len(rows), len(records))
      for r, row in zip(records, rows):
          for k in keys:
              if k not in r: assert row[k] == '', (k, row[k])
              elif isinstance(r[k], str): assert row[k] == r[k], (k, row[k], r[k])
              else: assert float(row[k]) == float(r[k]), (k, row[k], r[k])
      print(len(rows))
      """, args: [dir])
    XCTAssertGreaterThan(Int(out) ?? 0, 0, "no rows", file: file, line: line)
  }

  /// After --resume the CSV holds the earlier run's records and the new ones, like the JSONL.
  func testCSVStaysCorrectAfterResume() throws {
    let dir = scratchDirectory("csv") + "/run"
    defer { try? FileManager.default.removeItem(atPath: (dir as NSString).deletingLastPathComponent) }
    try train(dir, ["--max-steps", "30", "--log-every", "10"])
    try train(dir, ["--max-steps", "50", "--log-every", "10", "--resume", "latest"])
    try assertCSVMatchesJSONL(dir)
    let csv = try String(contentsOfFile: dir + "/metrics.csv", encoding: .utf8)
    let rows = csv.split(separator: "\n").dropFirst()
    XCTAssertEqual(rows.filter { $0.hasPrefix("train,") }.map { $0.split(separator: ",")[1] },
                   ["10", "20", "30", "40", "50"])
    // 40 steps per epoch: the epoch end at 40, and the final evaluation of each stop (30, 50).
    XCTAssertEqual(rows.filter { $0.hasPrefix("epoch,") }.map { $0.split(separator: ",")[1] },
                   ["30", "40", "50"])
  }

  func testOverwriteReplacesOnlyAnElboRun() throws {
    let root = scratchDirectory("overwrite")
    defer { try? FileManager.default.removeItem(atPath: root) }
    let dir = root + "/run"
    try train(dir, ["--max-steps", "4", "--log-every", "2"])
    func trainRecords() throws -> Int {
      try String(contentsOfFile: dir + "/metrics.jsonl", encoding: .utf8)
        .components(separatedBy: "\"kind\":\"train\"").count - 1
    }
    XCTAssertEqual(try trainRecords(), 2)

    // Without --overwrite: refused, one line.
    let refused = try ElboProcess.run(common + ["--out", dir, "--max-steps", "2"])
    XCTAssertNotEqual(refused.status, 0)
    XCTAssertTrue(refused.stderr.contains("--out \(dir): exists and is not empty"), refused.stderr)
    XCTAssertTrue(refused.stderr.contains("--overwrite"), refused.stderr)

    // With it: the earlier run is replaced (one record, not two plus one).
    try train(dir, ["--max-steps", "2", "--log-every", "2", "--overwrite"])
    XCTAssertEqual(try trainRecords(), 1)
    XCTAssertEqual(try checkpointParameters(dir).count, 12)  // a fresh, loadable checkpoint

    // Together with --resume: an error, nothing touched.
    let both = try ElboProcess.run(common + ["--out", dir, "--resume", "latest", "--overwrite"])
    XCTAssertNotEqual(both.status, 0)
    XCTAssertTrue(both.stderr.contains("--overwrite and --resume cannot be combined"), both.stderr)
    XCTAssertEqual(try trainRecords(), 1)

    // A file an Elbo run does not write: refused, and everything stays.
    let mine = dir + "/notes.txt"
    try "my notes".write(toFile: mine, atomically: true, encoding: .utf8)
    let foreign = try ElboProcess.run(common + ["--out", dir, "--max-steps", "2", "--overwrite"])
    XCTAssertNotEqual(foreign.status, 0)
    XCTAssertTrue(foreign.stderr.contains("notes.txt"), foreign.stderr)
    XCTAssertEqual(try String(contentsOfFile: mine, encoding: .utf8), "my notes")
    XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/config.json"))

    // No Elbo config.json: not recognisably a run, refused untouched.
    let other = root + "/other"
    try FileManager.default.createDirectory(atPath: other, withIntermediateDirectories: true)
    try "earlier\n".write(toFile: other + "/metrics.jsonl", atomically: true, encoding: .utf8)
    let notARun = try ElboProcess.run(common + ["--out", other, "--max-steps", "2", "--overwrite"])
    XCTAssertNotEqual(notARun.status, 0)
    XCTAssertTrue(notARun.stderr.contains("no Elbo config.json"), notARun.stderr)
    XCTAssertEqual(try String(contentsOfFile: other + "/metrics.jsonl", encoding: .utf8), "earlier\n")
    for r in [refused, both, foreign, notARun] {
      XCTAssertEqual(r.stderr.split(separator: "\n").filter { $0.hasPrefix("elbo:") }.count, 1,
                     r.stderr)
    }
  }

  /// Drawing images every step (rank 0, its own non-recording tape) leaves training bitwise
  /// unchanged, on 2 ranks where rank 1 does not draw at all.
  func testImagesDoNotChangeTraining() throws {
    let root = scratchDirectory("images-off")
    defer { try? FileManager.default.removeItem(atPath: root) }
    let on = try train(root + "/on", ["--max-steps", "12", "--image-every", "1", "--log-every", "4"],
                       ranks: 2)
    let off = try train(root + "/off", ["--max-steps", "12", "--image-every", "1000",
                                        "--log-every", "4"], ranks: 2)
    // Drawn after every step (the last one by the end of training), or only at the end.
    for step in 1..<12 {
      XCTAssertTrue(on.stdout.contains("step \(step): images, plots and report.html redrawn"), on.stdout)
    }
    XCTAssertFalse(off.stdout.contains("redrawn"), off.stdout)
    XCTAssertTrue(off.stdout.contains("report: "), off.stdout)
    let a = try checkpointParameters(root + "/on"), b = try checkpointParameters(root + "/off")
    XCTAssertEqual(a.count, 12)
    for (name, x) in a { XCTAssertEqual(x.map(\.bitPattern), b[name]!.map(\.bitPattern), name) }
  }

  /// `elbo report` redraws plots and report.html from the files; bad input is one line.
  func testReportCommand() throws {
    let root = scratchDirectory("report")
    defer { try? FileManager.default.removeItem(atPath: root) }
    let dir = root + "/run"
    try train(dir, ["--max-steps", "6", "--log-every", "3"])
    let fm = FileManager.default
    try fm.removeItem(atPath: dir + "/report.html")
    try fm.removeItem(atPath: dir + "/plots/free_energy.svg")
    let r = try ElboProcess.run(["report", dir])
    XCTAssertEqual(r.status, 0, r.stderr)
    XCTAssertTrue(r.stdout.contains("wrote \(dir)/report.html"), r.stdout)
    XCTAssertTrue(fm.fileExists(atPath: dir + "/report.html"))
    XCTAssertTrue(fm.fileExists(atPath: dir + "/plots/free_energy.svg"))

    // `elbo eval` of a run directory keeps its record there, and the report shows it.
    let e = try ElboProcess.run(["eval", dir, "--k", "2"])
    XCTAssertEqual(e.status, 0, e.stderr)
    let log = try String(contentsOfFile: dir + "/metrics.jsonl", encoding: .utf8)
    XCTAssertTrue(log.split(separator: "\n").last?.contains("\"kind\":\"eval\"") ?? false, log)
    let html = try String(contentsOfFile: dir + "/report.html", encoding: .utf8)
    XCTAssertTrue(html.contains("Evaluation (elbo eval)") && html.contains("test_log_likelihood"))

    func expectError(_ args: [String], _ mention: String) throws {
      let r = try ElboProcess.run(args)
      XCTAssertNotEqual(r.status, 0, "expected failure for \(args)")
      let lines = r.stderr.split(separator: "\n").filter { $0.hasPrefix("elbo:") }
      XCTAssertEqual(lines.count, 1, r.stderr)
      XCTAssertTrue(lines.first?.contains(mention) ?? false, "'\(mention)' not in:\n\(r.stderr)")
    }
    try expectError(["report", root + "/missing"], "\(root)/missing: no such run directory")
    try fm.createDirectory(atPath: root + "/empty", withIntermediateDirectories: true)
    try expectError(["report", root + "/empty"], "\(root)/empty/metrics.jsonl: no such file")
    let existing = try String(contentsOfFile: dir + "/metrics.jsonl", encoding: .utf8)
      .split(separator: "\n").count
    let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: dir + "/metrics.jsonl"))
    handle.seekToEndOfFile()
    handle.write(Data("{\"kind\": \"train\", \"step\": \n".utf8))
    try handle.close()
    try expectError(["report", dir],
                    "\(dir)/metrics.jsonl: line \(existing + 1) is not a JSON object")
  }
}
