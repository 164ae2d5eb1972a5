import ElboReport
import ElboTestSupport
import Foundation
import XCTest

final class MetricsTests: XCTestCase {
  let jsonl = """
    {"epoch":1,"examples_per_second":1234.5,"kind":"train","neg_elbo":200.25,"step":10}
    {"epoch":1,"kind":"train","neg_elbo":"NaN","step":20,"surprise":-3}

    {"active_units":7,"epoch":1,"kind":"epoch","step":20,"test_elbo":-190.5}
    {"checkpoint":"runs/a,b/ckpt \\"x\\".h5","kind":"eval","k":5000,"step":20}
    """

  func testParseKeepsNumbersAndNonFiniteStrings() throws {
    let records = try MetricsFile.parse(jsonl, file: "m.jsonl")
    XCTAssertEqual(records.count, 4)
    XCTAssertEqual(records[0].kind, "train")
    XCTAssertEqual(records[0].number("step"), 10)
    XCTAssertEqual(records[0].number("neg_elbo"), 200.25)
    XCTAssertTrue(records[1].number("neg_elbo")!.isNaN)
    XCTAssertEqual(records[3]["checkpoint"], .text("runs/a,b/ckpt \"x\".h5"))
  }

  func testMalformedLineIsNamedUnlessLenient() throws {
    let bad = jsonl + "\n{\"kind\": \"train\", \"step\": 3"
    XCTAssertThrowsError(try MetricsFile.parse(bad, file: "run/metrics.jsonl")) { error in
      let text = "\(error)"
      XCTAssertTrue(text.contains("run/metrics.jsonl: line 6"), text)
      XCTAssertFalse(text.contains("\n"))
    }
    XCTAssertEqual(try MetricsFile.parse(bad, file: "x", lenient: true).count, 4)
    XCTAssertThrowsError(try MetricsFile.parse("[1, 2]", file: "x"))
  }

  /// Columns: kind, step, epoch, then the other keys by first appearance; every record one row,
  /// empty cells where it lacks a key; quoting per RFC 4180; integral numbers without ".0".
  func testCSV() throws {
    let csv = MetricsFile.csv(try MetricsFile.parse(jsonl, file: "m"))
    let lines = csv.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    XCTAssertEqual(lines[0], "kind,step,epoch,examples_per_second,neg_elbo,surprise,active_units,"
      + "test_elbo,checkpoint,k")
    XCTAssertEqual(lines[1], "train,10,1,1234.5,200.25,,,,,")
    XCTAssertEqual(lines[2], "train,20,1,,NaN,-3,,,,")
    XCTAssertEqual(lines[3], "epoch,20,1,,,,7,-190.5,,")
    XCTAssertEqual(lines[4], "eval,20,,,,,,,\"runs/a,b/ckpt \"\"x\"\".h5\",5000")
    XCTAssertEqual(lines.count, 6)  // header, 4 rows, final newline
    // Python's csv module reads the same table back.
    let out = try python("""
      import csv, sys
      rows = list(csv.DictReader(sys.stdin))
      print(len(rows), rows[3]['checkpoint'], rows[2]['active_units'], rows[0]['surprise'] == '')
      """, stdin: csv)
    XCTAssertEqual(out, "4 runs/a,b/ckpt \"x\".h5 7 True")
  }

  func testIntegralDoubleAndIntegerLookAlike() {
    XCTAssertEqual(MetricValue.number(5).csvCell, "5")
    XCTAssertEqual(MetricValue.number(0.1).csvCell, "0.1")
    XCTAssertEqual(MetricValue.number(-2.5e-7).csvCell, "-2.5e-07")
    XCTAssertEqual(MetricValue.number(1e20).csvCell, "1e+20")
  }
}

final class TrainingCurvesTests: XCTestCase {
  func record(_ kind: String, _ step: Int, _ fields: [String: Double]) -> MetricsRecord {
    var r: MetricsRecord = ["kind": .text(kind), "step": .number(Double(step))]
    for (k, v) in fields { r[k] = .number(v) }
    return r
  }

  /// A run resumed from step 20 after it had logged up to 30: the re-logged 30 replaces the
  /// first, and the curve does not double back.
  func testResumedRecordsReplaceTheAbandonedOnes() {
    let rs = [10, 20, 30, 30, 40].enumerated().map { record("train", $1, ["neg_elbo": Double($0)]) }
    let kept = TrainingCurves.latestAttempt(rs)
    XCTAssertEqual(kept.map { $0.number("step")! }, [10, 20, 30, 40])
    XCTAssertEqual(kept[2].number("neg_elbo"), 3)  // the re-logged one
  }

  func testFiguresOfTheSeed() throws {
    var rs: [MetricsRecord] = []
    for s in stride(from: 10, through: 40, by: 10) {
      rs.append(record("train", s, ["neg_elbo": 300 - Double(s), "log_px_given_z": Double(s) - 290,
                                    "kl": 10, "surprise": -10.5]))
    }
    rs.append(record("epoch", 20, ["test_elbo": -250, "test_log_px_given_z": -240, "test_kl": 9,
                                   "test_surprise": -9.2]))
    rs.append(record("epoch", 40, ["test_elbo": -240, "test_log_px_given_z": -231, "test_kl": 8,
                                   "test_surprise": -8.1]))
    let figures = TrainingCurves.figures(rs)
    XCTAssertEqual(figures.map(\.fileName), ["free_energy.svg", "log_likelihood.svg", "surprise.svg"])
    let f = figures[0].plot.series
    XCTAssertEqual(f.first { $0.name.hasPrefix("train") }?.y, [290, 280, 270, 260])
    XCTAssertEqual(f.first { $0.name.hasPrefix("test") }?.y, [250, 240])  // F = −test_elbo
    XCTAssertEqual(figures[1].plot.title, "Log-likelihood log p(x|z)")
    let names = Set(figures[2].plot.series.map(\.name))
    XCTAssertEqual(names, ["surprise, train", "surprise, test", "−KL (analytic), train",
                           "−KL (analytic), test"])
    XCTAssertEqual(figures[2].plot.series.first { $0.name == "−KL (analytic), train" }?.y,
                   [-10, -10, -10, -10])
  }

  /// A workload with other term names (Bayes by Backprop: log_likelihood, no analytic KL).
  func testOtherWorkloadNames() {
    let rs = [record("train", 5, ["neg_elbo": 3, "log_likelihood": -1, "surprise": -2])]
    let figures = TrainingCurves.figures(rs)
    XCTAssertEqual(figures.map(\.fileName), ["free_energy.svg", "log_likelihood.svg", "surprise.svg"])
    XCTAssertEqual(figures[1].plot.title, "Log-likelihood")
    XCTAssertEqual(figures[2].plot.series.map(\.name), ["surprise, train"])
    XCTAssertTrue(TrainingCurves.figures([]).isEmpty)
  }

  /// A weight-space posterior (Bayes by Backprop declares it) is labelled in w, and its KL is
  /// not called analytic (for the scale mixture it is Monte Carlo); a model without a posterior
  /// gets no surprise figure.
  func testWeightPosteriorLabels() {
    let rs = [record("train", 5, ["neg_elbo": 3, "log_likelihood": -1, "surprise": -2, "kl": 2])]
    XCTAssertEqual(TrainingCurves.Posterior(rawValue: "weights"), .weights)
    XCTAssertEqual(TrainingCurves.figures(rs, posterior: .none).map(\.fileName),
                   ["free_energy.svg", "log_likelihood.svg"])
    let weights = TrainingCurves.figures(rs, posterior: .weights)[2].plot
    XCTAssertTrue(weights.title.contains("log p(w) − log q(w)"), weights.title)
    XCTAssertEqual(Set(weights.series.map(\.name)), ["surprise, train", "−KL, train"])
    let latent = TrainingCurves.figures(rs)[2].plot
    XCTAssertTrue(latent.title.contains("log q(z|x)"), latent.title)
  }
}
