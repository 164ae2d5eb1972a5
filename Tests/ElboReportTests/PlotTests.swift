import ElboReport
import ElboTestSupport
import Foundation
import XCTest

final class PlotTests: XCTestCase {
  func parse(_ svg: String) throws -> [String: Int] { try svgSeries(svg) }

  func testSeriesAreDrawnAndXMLIsValid() throws {
    var p = Plot(title: "F <train> & test", xLabel: "step", yLabel: "nats \"per\" image")
    p.line("train", x: [1, 2, 3, 4], y: [200, 150, 120, 110])
    p.line("smoothed", x: [1, 4], y: [190, 112], dashed: true)
    p.points("test", x: [2, 4], y: [160, 115])
    p.band("±2σ", x: [1, 2, 3], lower: [100, 100, 100], upper: [210, 200, 190])
    let svg = p.svg()
    let drawn = try parse(svg)
    XCTAssertEqual(drawn, ["train": 1, "smoothed": 1, "test": 2, "±2σ": 1])
    XCTAssertTrue(svg.contains("F &lt;train&gt; &amp; test"))
    XCTAssertTrue(svg.contains("nats &quot;per&quot; image"))
    XCTAssertTrue(svg.contains("stroke-dasharray"))
    XCTAssertFalse(p.isEmpty)
  }

  /// NaN and ±∞ are skipped: a line is broken into finite runs, points and band samples dropped,
  /// and no "nan"/"inf" ever reaches the SVG.
  func testNonFiniteValuesAreSkipped() throws {
    var p = Plot(title: "gaps", xLabel: "x", yLabel: "y")
    p.line("broken", x: [0, 1, 2, 3, 4, 5], y: [1, 2, .nan, 3, 4, .infinity])
    p.points("dots", x: [0, .nan, 2], y: [1, 1, -.infinity])
    p.band("b", x: [0, 1, 2], lower: [0, .nan, 0], upper: [1, 1, 1])
    let svg = p.svg()
    let drawn = try parse(svg)
    XCTAssertEqual(drawn["broken"], 2)  // runs [0,1] and [3,4]
    XCTAssertEqual(drawn["dots"], 1)
    XCTAssertEqual(drawn["b"], 2)       // two one-sample polygons
    for bad in ["nan", "NaN", "inf", "Inf"] { XCTAssertFalse(svg.contains(bad), bad) }
  }

  func testEmptyAndDegenerateInputsStillRender() throws {
    var empty = Plot(title: "nothing", xLabel: "x", yLabel: "y")
    empty.line("all nan", x: [1, 2], y: [.nan, .nan])
    XCTAssertTrue(empty.isEmpty)
    XCTAssertTrue(empty.svg().contains("no data yet"))
    XCTAssertEqual(try parse(empty.svg())["all nan"], 0)

    var flat = Plot(title: "one value", xLabel: "x", yLabel: "y")
    flat.line("c", x: [5, 5], y: [3, 3])
    XCTAssertEqual(try parse(flat.svg())["c"], 1)
    XCTAssertFalse(flat.svg().contains("nan"))
  }

  func testLogAxisSkipsNonPositiveValues() throws {
    var p = Plot(title: "log", xLabel: "x", yLabel: "y")
    p.logY = true
    p.line("l", x: [0, 1, 2, 3], y: [1000, 10, 0, 0.1])
    let svg = p.svg()
    XCTAssertEqual(try parse(svg)["l"], 2)  // [1000, 10] and [0.1]: the latter a dot
    XCTAssertTrue(svg.contains(">1000<") && svg.contains(">0.1<"), "decade tick labels")
  }

  func testTicksAreRound() {
    let (values, step) = Plot.ticksForTesting(0.13, 0.97)
    XCTAssertEqual(step, 0.2, accuracy: 1e-12)
    XCTAssertEqual(values.count, 4)
    XCTAssertEqual(values.first!, 0.2, accuracy: 1e-12)
  }
}
