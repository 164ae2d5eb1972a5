import ElboData
import ElboModels
import ElboReport
import ElboTestSupport
import Foundation
import XCTest

@testable import ElboExperiments
import ElboTrain

/// The classifier's own pictures and calibration: the expected calibration error against hand
/// computations, the entropy histogram, the three artifacts of an untrained network on a tiny
/// synthetic data set (in process), and a short run of each variant through the binary, whose
/// run directory and report (also rebuilt by `elbo report`) hold them.
final class BBBClassifierPicturesTests: XCTestCase {
  // MARK: - Calibration and entropy, by hand

  /// Six predictions in three of the 15 bins ((m−1)/15, m/15]:
  ///  - confidence 0.95 (bin 14): right, wrong         → |1 − 1.90| = 0.90
  ///  - confidence 0.55 (bin 8):  right, right, wrong  → |2 − 1.65| = 0.35
  ///  - confidence 0.30 (bin 4):  wrong                → |0 − 0.30| = 0.30
  /// ECE = Σ_m (|B_m|/n)·|acc − conf| = Σ_m |correct_m − Σ conf_m| / n = 1.55 / 6.
  func testExpectedCalibrationErrorOfAHandComputedCase() {
    let cases: [([Double], Int)] = [
      ([0.95, 0.05], 0), ([0.95, 0.05], 1),
      ([0.45, 0.55], 1), ([0.55, 0.45], 0), ([0.55, 0.45], 1),
      ([0.3, 0.25, 0.25, 0.2], 2),
    ]
    let predictions = cases.map { ClassPrediction(probabilities: $0.0, label: $0.1) }
    XCTAssertEqual(predictions.map(\.correct), [true, false, true, true, false, false])
    var bins = ReliabilityBins()
    for p in predictions { bins.add(p) }
    XCTAssertEqual(bins.count.enumerated().filter { $0.element > 0 }.map(\.offset), [4, 8, 14])
    XCTAssertEqual(bins.count[8], 3)
    XCTAssertEqual(bins.accuracy[8], 2.0 / 3, accuracy: 1e-15)
    XCTAssertEqual(bins.meanConfidence[14], 0.95, accuracy: 1e-15)
    XCTAssertTrue(bins.accuracy[0].isNaN, "an empty bin has no accuracy")
    XCTAssertEqual(bins.expectedCalibrationError, 1.55 / 6, accuracy: 1e-12)
    let metrics = classifierTestMetrics(predictions)
    XCTAssertEqual(metrics["test_ece"]!, 1.55 / 6, accuracy: 1e-12)
    XCTAssertEqual(metrics["test_error"]!, 0.5, accuracy: 1e-15)

    // Bin edges: (m−1)/M exclusive, m/M inclusive; 0 falls in the first bin, 1 in the last.
    let b = ReliabilityBins()
    XCTAssertEqual([0, 0.05, 1.0 / 15 + 1e-12, 0.5, 1].map(b.bin), [0, 0, 1, 7, 14])
    // Calibrated within each bin: ECE 0. Four predictions at 0.75, three right.
    var calibrated = ReliabilityBins()
    for correct in [true, true, true, false] { calibrated.add(confidence: 0.75, correct: correct) }
    XCTAssertEqual(calibrated.expectedCalibrationError, 0, accuracy: 1e-15)
    XCTAssertEqual(ReliabilityBins().expectedCalibrationError, 0)
  }

  func testPredictionSummary() {
    let uniform = ClassPrediction(probabilities: [Double](repeating: 0.25, count: 4), label: 3)
    XCTAssertEqual(uniform.entropy, log(4), accuracy: 1e-12)
    XCTAssertEqual(uniform.predicted, 0, "the first of tied maxima")
    XCTAssertEqual(uniform.logLikelihood, log(0.25), accuracy: 1e-12)
    let sure = ClassPrediction(probabilities: [0, 1, 0], label: 0)
    XCTAssertEqual(sure.entropy, 0)
    XCTAssertEqual(sure.confidence, 1)
    XCTAssertTrue(sure.logLikelihood.isFinite && sure.logLikelihood < -700)
  }

  /// Every prediction is counted once, in its group; densities integrate to one.
  func testEntropyHistogramCountsEveryPrediction() {
    var rng = SystemRandomNumberGenerator()
    let predictions = (0..<500).map { _ -> ClassPrediction in
      let raw = (0..<10).map { _ in Double.random(in: 0...1, using: &rng) }
      let sharp = raw.map { pow($0, 8) }
      let total = sharp.reduce(0, +)
      return ClassPrediction(probabilities: sharp.map { $0 / total }, label: Int.random(in: 0..<10))
    } + [ClassPrediction(probabilities: [Double](repeating: 0.1, count: 10), label: 0)]
    let h = EntropyHistogram(predictions, classes: 10)
    XCTAssertEqual(h.correct.reduce(0, +) + h.misclassified.reduce(0, +), predictions.count)
    XCTAssertEqual(h.correct.reduce(0, +), predictions.filter(\.correct).count)
    XCTAssertGreaterThanOrEqual(h.correct.last!, 1, "entropy log C goes in the last bin")
    let correct = predictions.filter(\.correct)
    XCTAssertEqual(h.meanCorrect, correct.map(\.entropy).reduce(0, +) / Double(correct.count),
                   accuracy: 1e-12)
    let (x, y) = h.outline(h.misclassified)
    var area = 0.0
    for i in stride(from: 1, to: x.count - 1, by: 2) { area += (x[i + 1] - x[i]) * y[i] }
    XCTAssertEqual(area, 1, accuracy: 1e-12)
  }

  // MARK: - The artifacts, in process

  /// 3 classes of 4×4 images: 30 training and 40 test images.
  func tinySplit() throws -> ImageSplit {
    func set(_ n: Int, _ name: String) throws -> ImageDataset {
      var pixels: [Float] = [], labels: [Int32] = []
      for i in 0..<n {
        labels.append(Int32(i % 3))
        pixels += (0..<16).map { Float(($0 * 7 + i * 5) % 17) / 16 }
      }
      return try ImageDataset(name: name, rows: 4, cols: 4, pixels: pixels, labels: labels)
    }
    return ImageSplit(train: try set(30, "tiny/train"), test: try set(40, "tiny/test"))
  }

  func testArtifactsOfEachVariant() throws {
    for variant in NetworkVariant.allCases {
      var options = BBBClassifierExperiment.Config()
      options.network.variant = variant
      options.network.hidden = 8
      options.predictSamples = 3
      let w = try BBBClassifierExperiment(config: options, data: try tinySplit(), seed: 1)
      let predictions = w.testPredictions()
      XCTAssertEqual(predictions.count, 40)
      XCTAssertEqual(predictions.map(\.label), (0..<40).map { $0 % 3 })
      XCTAssertEqual(w.testPredictions(), predictions, "the same parameters predict the same")
      let h = EntropyHistogram(predictions, classes: 3)
      XCTAssertEqual(h.correct.reduce(0, +) + h.misclassified.reduce(0, +), 40)

      let artifacts = try w.artifacts(step: 7, final: true)
      XCTAssertEqual(artifacts.map(\.fileName), ["entropy.svg", "reliability.svg", "uncertain.png"])
      let s = variant == .bbb ? "S = 3 weight samples" : "one deterministic pass"
      for a in artifacts.prefix(2) { XCTAssertTrue(a.caption.contains(s), a.caption) }
      guard case .svg(let entropy) = artifacts[0].content,
            case .svg(let reliability) = artifacts[1].content,
            case .png(let png) = artifacts[2].content
      else { XCTFail("wrong content kinds"); continue }
      try checkEntropySVG(entropy, caption: artifacts[0].caption, total: 40)
      try checkReliabilitySVG(reliability, caption: artifacts[1].caption)
      // 16 tiles of 4×4 in 8 columns, 1-px gaps.
      let image = try XCTUnwrap(DecodedPNG(png))
      XCTAssertEqual([image.width, image.height, image.channels], [8 * 5 - 1, 2 * 5 - 1, 1])
      // Listed from the highest entropy down.
      let top = predictions.map(\.entropy).max()!
      let first = predictions.first { $0.entropy == top }!
      XCTAssertTrue(artifacts[2].caption.contains("1. \(first.label) → \(first.predicted)"),
                    artifacts[2].caption)
      XCTAssertTrue(artifacts[2].caption.contains("(H \(String(format: "%.3f", top)))"),
                    artifacts[2].caption)
    }
  }

  /// entropy.svg: one outline and one dashed mean line per non-empty group; the caption's
  /// group sizes add up to the test set.
  func checkEntropySVG(_ svg: String, caption: String, total: Int,
                       file: StaticString = #filePath, line: UInt = #line) throws {
    let series = try svgSeries(svg)
    let groups = series.filter {
      $0.key.hasPrefix("correct (") || $0.key.hasPrefix("misclassified (")
    }
    XCTAssertEqual(groups.count, series.count, "\(series)", file: file, line: line)
    XCTAssertFalse(groups.isEmpty, file: file, line: line)
    for (name, drawn) in groups { XCTAssertEqual(drawn, 2, name, file: file, line: line) }
    XCTAssertTrue(svg.contains("stroke-dasharray"), file: file, line: line)
    // "… on the N test images, …: A correctly classified (mean …) and B misclassified …"
    let words = caption.split(separator: " ")
    func count(before word: String) -> Int? {
      words.firstIndex(of: Substring(word)).flatMap { Int(words[$0 - 1]) }
    }
    XCTAssertEqual((count(before: "correctly") ?? -1) + (count(before: "misclassified") ?? -1),
                   total, caption, file: file, line: line)
    XCTAssertTrue(caption.contains("mean "), caption, file: file, line: line)
  }

  /// reliability.svg: accuracy bars, a point per non-empty bin, the diagonal; ECE in the title.
  func checkReliabilitySVG(_ svg: String, caption: String,
                           file: StaticString = #filePath, line: UInt = #line) throws {
    let series = try svgSeries(svg)
    XCTAssertEqual(series["perfect calibration"], 1, "\(series)", file: file, line: line)
    XCTAssertGreaterThanOrEqual(series["accuracy in the bin"] ?? 0, 1, file: file, line: line)
    XCTAssertGreaterThanOrEqual(series["mean confidence, accuracy"] ?? 0, 1, file: file, line: line)
    XCTAssertTrue(svg.contains("<title>Reliability at step 7: ECE = "), file: file, line: line)
    XCTAssertTrue(caption.contains("expected calibration error"), file: file, line: line)
  }

  // MARK: - Through the binary

  /// One epoch of MNIST-5k (40 steps) per variant, BBB on 2 ranks (rank 0 draws alone): the run
  /// directory holds the three pictures, the epoch record `test_ece`, the report inlines them,
  /// and `elbo report` rebuilds it from the files.
  func testRunsDrawTheirPicturesIntoTheReport() throws {
    let root = scratchDirectory("bbb-pictures")
    defer { try? FileManager.default.removeItem(atPath: root) }
    let fm = FileManager.default
    for (variant, ranks) in [("bbb", 2), ("plain", 1), ("dropout", 1)] {
      let dir = root + "/" + variant
      let r = try ElboProcess.run(["train", "bbb-classifier", "--data", "mnist-5k",
                                   "--hidden", "16", "--variant", variant, "--epochs", "1",
                                   "--threads", "1", "--log-every", "20", "--out", dir],
                                  ranks: ranks)
      XCTAssertEqual(r.status, 0, "\(variant):\n\(r.stdout)\n\(r.stderr)")
      XCTAssertTrue(fm.fileExists(atPath: dir + "/images/uncertain.png"), variant)
      for plot in ["entropy.svg", "reliability.svg"] {
        let svg = try String(contentsOfFile: "\(dir)/plots/\(plot)", encoding: .utf8)
        XCTAssertFalse(try svgSeries(svg).isEmpty, "\(variant) \(plot)")
      }
      let png = try Data(contentsOf: URL(fileURLWithPath: dir + "/images/uncertain.png"))
      let image = try XCTUnwrap(DecodedPNG(png))
      XCTAssertEqual([image.width, image.height], [8 * 29 - 1, 2 * 29 - 1])

      let epoch = try String(contentsOfFile: dir + "/metrics.jsonl", encoding: .utf8)
        .split(separator: "\n")
        .map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        .last { $0["kind"] as? String == "epoch" }!
      let ece = try XCTUnwrap(epoch["test_ece"] as? Double, "\(variant): no test_ece in \(epoch)")
      XCTAssertTrue(ece >= 0 && ece <= 1, "\(variant): ECE \(ece)")
      // The picture's ECE is the logged one (same predictions, same parameters).
      let reliability = try String(contentsOfFile: dir + "/plots/reliability.svg", encoding: .utf8)
      XCTAssertTrue(reliability.contains("ECE = \(String(format: "%.4f", ece))"), variant)
      let index = try ArtifactIndex.read(runDirectory: dir)
      try checkEntropySVG(try String(contentsOfFile: dir + "/plots/entropy.svg", encoding: .utf8),
                          caption: index.caption("plots/entropy.svg"), total: 1000)
      XCTAssertEqual(Set(index.entries.map(\.step)), [40], variant)

      // report.html: five inline plots (three curves, two of the model's) and one PNG; nothing
      // outside the file. Rebuilt by `elbo report` with the same content.
      try fm.removeItem(atPath: dir + "/report.html")
      let rebuilt = try ElboProcess.run(["report", dir])
      XCTAssertEqual(rebuilt.status, 0, rebuilt.stderr)
      let html = try String(contentsOfFile: dir + "/report.html", encoding: .utf8)
      XCTAssertEqual(html.components(separatedBy: "<svg ").count - 1, 5, variant)
      XCTAssertEqual(html.components(separatedBy: "src=\"data:image/png;base64,").count - 1, 1)
      for caption in ["Predictive entropy of p̄", "Reliability diagram",
                      "highest predictive entropy"] {
        XCTAssertTrue(html.contains(caption), "\(variant): '\(caption)' not in the report")
      }
      for outside in ["http://", "https://", "href=", "url(", "<script"] {
        XCTAssertFalse(html.contains(outside), "\(variant): the page refers to '\(outside)'")
      }
    }
  }
}
