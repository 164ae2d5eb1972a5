import ElboReport
import Foundation
import XCTest

/// `RunReport` from a hand-made run directory: what the page holds, and one-line errors.
final class RunReportTests: XCTestCase {
  var dir = ""

  override func setUpWithError() throws {
    dir = NSTemporaryDirectory() + "/elbo-report-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    for sub in ["images", "plots"] {
      try FileManager.default.createDirectory(atPath: dir + "/" + sub, withIntermediateDirectories: true)
    }
    let metrics = """
      {"epoch":1,"kind":"train","neg_elbo":200.5,"log_px_given_z":-190,"kl":10.5,"surprise":-10,"step":10}
      {"epoch":1,"kind":"train","neg_elbo":150.5,"log_px_given_z":-140,"kl":10.5,"surprise":-11,"step":20}
      {"active_units":7,"epoch":1,"kind":"epoch","step":20,"test_elbo":-160.25}
      {"kind":"eval","k":100,"step":20,"test_log_likelihood":-155.125}
      """
    try metrics.write(toFile: dir + "/metrics.jsonl", atomically: true, encoding: .utf8)
    try #"{"model": "vae", "data": "mnist-5k", "vae": {"latent": 8}, "note": "<b>&</b>"}"#
      .write(toFile: dir + "/config.json", atomically: true, encoding: .utf8)
    try PNG.grid([[Float](repeating: 0.5, count: 4)], imageWidth: 2, imageHeight: 2, columns: 1)
      .write(to: URL(fileURLWithPath: dir + "/images/grid.png"))
    var p = Plot(title: "Workload plot", xLabel: "x", yLabel: "y")
    p.line("m", x: [0, 1], y: [0, 1])
    try p.svg().write(toFile: dir + "/plots/predictive.svg", atomically: true, encoding: .utf8)
    var index = ArtifactIndex()
    index.record(file: "images/grid.png", caption: "A grey tile", step: 20)
    try index.write(runDirectory: dir)
  }

  override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

  func testReportHoldsEverythingInline() throws {
    let written = try RunReport.rebuild(runDirectory: dir)
    XCTAssertEqual(written.map { ($0 as NSString).lastPathComponent },
                   ["free_energy.svg", "log_likelihood.svg", "surprise.svg", "report.html"])
    let html = try String(contentsOfFile: dir + "/report.html", encoding: .utf8)
    for id in ["metrics", "plots", "images", "config"] {
      XCTAssertTrue(html.contains("<section id=\"\(id)\">"), id)
    }
    XCTAssertEqual(html.components(separatedBy: "<svg ").count - 1, 4)  // 3 curves + workload's
    XCTAssertTrue(html.contains("data:image/png;base64,"))
    XCTAssertTrue(html.contains("A grey tile (step 20)"))
    XCTAssertTrue(html.contains("-160.2500"), "last epoch's test ELBO")
    XCTAssertTrue(html.contains("-155.1250"), "the eval record")
    XCTAssertTrue(html.contains("vae.latent"), "nested config keys flattened")
    XCTAssertTrue(html.contains("&lt;b&gt;&amp;&lt;/b&gt;"), "config text escaped")
    XCTAssertFalse(html.contains("http://") || html.contains("https://"), "nothing to fetch")
    XCTAssertFalse(html.contains("<script"))
    // Curves first, in the seed's order, then the workload's plot.
    let order = try ["free-energy", "log-likelihood", "surprise", "predictive"].map {
      try XCTUnwrap(html.range(of: "id=\"plots-\($0)-svg\""), $0).lowerBound
    }
    XCTAssertEqual(order, order.sorted())
  }

  func testBadInputGivesOneLineNamingTheFile() throws {
    func message(_ body: () throws -> Void) -> String {
      do { try body(); return "" } catch { return "\(error)" }
    }
    let missing = message { try RunReport.rebuild(runDirectory: dir + "/nope") }
    XCTAssertEqual(missing, "\(dir)/nope: no such run directory")

    try FileManager.default.removeItem(atPath: dir + "/metrics.jsonl")
    let noMetrics = message { try RunReport.rebuild(runDirectory: dir) }
    XCTAssertTrue(noMetrics.hasPrefix("\(dir)/metrics.jsonl: no such file"), noMetrics)

    try "{\"kind\":\"train\",\"step\":1}\nnot json\n".write(toFile: dir + "/metrics.jsonl",
                                                         atomically: true, encoding: .utf8)
    let malformed = message { try RunReport.rebuild(runDirectory: dir) }
    XCTAssertTrue(malformed.hasPrefix("\(dir)/metrics.jsonl: line 2 is not a JSON object"), malformed)

    try "{}\n".write(toFile: dir + "/metrics.jsonl", atomically: true, encoding: .utf8)
    try "[".write(toFile: dir + "/config.json", atomically: true, encoding: .utf8)
    let config = message { try RunReport.rebuild(runDirectory: dir) }
    XCTAssertTrue(config.hasPrefix("\(dir)/config.json: is not a JSON object"), config)
    for m in [missing, noMetrics, malformed, config] { XCTAssertFalse(m.contains("\n")) }
  }

  func testArtifactIndexReplacesByFile() {
    var index = ArtifactIndex()
    index.record(file: "images/a.png", caption: "A", step: 1)
    index.record(file: "images/b.png", caption: "B", step: 1)
    index.record(file: "images/a.png", caption: "A", step: 5)
    XCTAssertEqual(index.entries.map(\.file), ["images/a.png", "images/b.png"])
    XCTAssertEqual(index.caption("images/a.png"), "A (step 5)")
    XCTAssertEqual(index.caption("images/c.png"), "c.png")
  }
}
