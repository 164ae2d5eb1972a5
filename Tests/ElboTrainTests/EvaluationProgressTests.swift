@testable import ElboTrain
import Foundation
import XCTest

/// The evaluation's progress: the text, plain lines in logs, the bar on a terminal.
final class EvaluationProgressTests: XCTestCase {
  func testBarShowsCountsETAAndRateWithinTheWidth() {
    let text = EvaluationProgress.render(title: "log-likelihood k = 5000", done: 1850, total: 5000,
                                         elapsed: 100, width: 100)
    XCTAssertTrue(text.hasPrefix("log-likelihood k = 5000 |"), text)
    XCTAssertTrue(text.contains("1850/5000 examples"), text)
    XCTAssertTrue(text.contains("ETA 2m50s"), text)   // 3150 left at 18.5 ex/s
    XCTAssertTrue(text.contains("18.5 ex/s"), text)
    XCTAssertLessThanOrEqual(text.count, 100)
    for w in [20, 40, 60] {
      XCTAssertLessThanOrEqual(EvaluationProgress.render(title: "ll", done: 1, total: 9,
                                                         elapsed: 1, width: w).count, w)
    }
    let start = EvaluationProgress.render(title: "ll", done: 0, total: 9, elapsed: 0, width: nil)
    XCTAssertEqual(start, "ll  0/9 examples  ETA --")
    let end = EvaluationProgress.render(title: "ll", done: 9, total: 9, elapsed: 65, width: nil)
    XCTAssertTrue(end.hasSuffix("9/9 examples  done in 1m05s  0.1 ex/s"), end)
  }

  func testPlainLinesArePeriodicAndTheLastIsAlwaysPrinted() {
    var lines: [String] = []
    let t0 = Date(timeIntervalSince1970: 0)
    let p = EvaluationProgress(title: "ll", line: nil, plainInterval: 30, now: t0,
                               printLine: { lines.append($0) })
    for (done, seconds) in [(1, 10.0), (2, 29), (3, 31), (4, 40), (5, 62), (6, 63)] {
      p.update(done: done, total: 6, now: t0.addingTimeInterval(seconds))
    }
    XCTAssertEqual(lines.count, 3, "\(lines)")  // at 31 s, 62 s and the end
    XCTAssertTrue(lines[0].hasPrefix("ll  3/6 examples  ETA"), lines[0])
    XCTAssertTrue(lines[2].contains("6/6 examples  done"), lines[2])
  }

  func testTerminalBarIsRedrawnAndFinished() {
    var out = ""
    let t0 = Date(timeIntervalSince1970: 0)
    let line = ProgressLine(columns: { 80 }, write: { out += $0 })
    let p = EvaluationProgress(title: "ll", line: line, now: t0, printLine: { _ in XCTFail() })
    p.update(done: 1, total: 2, now: t0.addingTimeInterval(1))
    p.update(done: 2, total: 2, now: t0.addingTimeInterval(1.01))  // forced: the last
    XCTAssertEqual(out.components(separatedBy: "\r").count - 1, 2, out.debugDescription)
    XCTAssertTrue(out.hasSuffix("\n"), out.debugDescription)
    XCTAssertNil(EvaluationProgress.standardOutput(title: "ll", rank: 1, ranks: 2))
  }
}
