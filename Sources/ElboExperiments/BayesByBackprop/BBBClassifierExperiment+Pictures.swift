import ElboTrain
import ElboReport
import Foundation

/// The classifier's own pictures, all of the whole test set at the current parameters, with
/// the prediction the evaluation makes (S weight samples averaged for BBB, one deterministic
/// pass for the plain and dropout networks):
///  - `entropy.svg`: the predictive entropy on correctly classified vs misclassified images;
///  - `reliability.svg`: accuracy against confidence, with the expected calibration error;
///  - `uncertain.png`: the test images with the highest predictive entropy.
extension BBBClassifierExperiment {
  /// Tiles in `uncertain.png`: two rows of eight.
  static let uncertainColumns = 8, uncertainCount = 16

  /// Called on rank 0 only: `testPredictions` uses no collectives (after an evaluation at the
  /// same parameters it reuses that evaluation's predictions).
  public func artifacts(step: Int, final: Bool) throws -> [Artifact] {
    let predictions = testPredictions()
    let s = predictionSamples
    let prediction = s > 1 ? "S = \(s) weight samples" : "one deterministic pass"
    return [entropyPlot(predictions, step: step, prediction: prediction),
            reliabilityPlot(predictions, step: step, prediction: prediction),
            uncertainImages(predictions)]
  }

  func entropyPlot(_ predictions: [ClassPrediction], step: Int, prediction: String) -> Artifact {
    let h = EntropyHistogram(predictions, classes: model.config.classes)
    let nC = h.correct.reduce(0, +), nW = h.misclassified.reduce(0, +)
    let ratio = h.meanMisclassified / h.meanCorrect
    var p = Plot(title: "Predictive entropy at step \(step): misclassified/correct means "
                   + "\(fmt(ratio, 2))×",
                 xLabel: "predictive entropy H[p̄] (nats; log C = \(fmt(h.edges.last!)))",
                 yLabel: "density")
    let correct = "correct (\(nC); dashed: mean \(fmt(h.meanCorrect)))"
    let wrong = "misclassified (\(nW); dashed: mean \(fmt(h.meanMisclassified)))"
    let (xc, yc) = h.outline(h.correct), (xw, yw) = h.outline(h.misclassified)
    p.line(correct, x: xc, y: yc)
    p.line(wrong, x: xw, y: yw)
    // The means as vertical dashed lines in their group's colour, up to the tallest bar.
    let top = (yc + yw).max() ?? 1
    if nC > 0 { p.line(correct, x: [h.meanCorrect, h.meanCorrect], y: [0, top], dashed: true) }
    if nW > 0 {
      p.line(wrong, x: [h.meanMisclassified, h.meanMisclassified], y: [0, top], dashed: true)
    }
    return Artifact(
      fileName: "entropy.svg",
      caption: "Predictive entropy of p̄ (\(prediction)) on the \(predictions.count) test images, "
        + "as a density within each group: \(nC) correctly classified (mean "
        + "\(fmt(h.meanCorrect)) nats) and \(nW) misclassified (mean \(fmt(h.meanMisclassified)) "
        + "nats), ratio \(fmt(ratio))",
      content: .svg(p.svg()))
  }

  func reliabilityPlot(_ predictions: [ClassPrediction], step: Int, prediction: String)
    -> Artifact {
    var bins = ReliabilityBins()
    for p in predictions { bins.add(p) }
    let ece = bins.expectedCalibrationError, m = bins.binCount
    var plot = Plot(title: "Reliability at step \(step): ECE = \(fmt(ece, 4)) (\(m) bins)",
                    xLabel: "confidence max p̄", yLabel: "accuracy")
    // Each bin's accuracy as a bar over its interval; an empty bin breaks the bars.
    var x: [Double] = [], lower: [Double] = [], upper: [Double] = []
    for (b, acc) in bins.accuracy.enumerated() {
      let lo = Double(b) / Double(m), hi = Double(b + 1) / Double(m)
      x += [lo, hi]; lower += [0, 0]; upper += [acc, acc]
    }
    plot.band("accuracy in the bin", x: x, lower: lower, upper: upper)
    plot.points("mean confidence, accuracy", x: bins.meanConfidence, y: bins.accuracy)
    plot.line("perfect calibration", x: [0, 1], y: [0, 1], dashed: true)
    let used = bins.count.filter { $0 > 0 }.count
    return Artifact(
      fileName: "reliability.svg",
      caption: "Reliability diagram of p̄ (\(prediction)) on the \(predictions.count) test "
        + "images: accuracy against confidence in \(m) equal-width bins (\(used) non-empty); "
        + "expected calibration error Σ (|B|/n)·|accuracy − confidence| = \(fmt(ece, 4))",
      content: .svg(plot.svg()))
  }

  func uncertainImages(_ predictions: [ClassPrediction]) -> Artifact {
    // Highest entropy first; ties by index, so the picture is reproducible.
    let shown = predictions.indices.sorted {
      (predictions[$0].entropy, $1) > (predictions[$1].entropy, $0)
    }.prefix(Self.uncertainCount)
    let d = test.dimension
    let tiles = shown.map { Array(test.pixels[($0 * d)..<(($0 + 1) * d)]) }
    let png = PNG.grid(tiles, imageWidth: test.cols, imageHeight: test.rows,
                       columns: Self.uncertainColumns)
    let names = classNames
    func name(_ k: Int) -> String { k < names.count ? names[k] : "\(k)" }
    let list = shown.enumerated().map { (r, i) in
      let p = predictions[i]
      return "\(r + 1). \(name(p.label)) → \(name(p.predicted))\(p.correct ? "" : " ✗") "
        + "(H \(fmt(p.entropy)))"
    }.joined(separator: "; ")
    return Artifact(
      fileName: "uncertain.png",
      caption: "The \(shown.count) test images with the highest predictive entropy, row by "
        + "row, as true → predicted class (✗ marks an error) and entropy in nats: " + list,
      content: .png(png))
  }

  /// Fashion-MNIST's class names (Xiao et al. 2017); digits for anything else.
  var classNames: [String] {
    guard test.name.hasPrefix("fashion-mnist") else { return [] }
    return ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
            "Bag", "Ankle boot"]
  }
}

private func fmt(_ v: Double, _ decimals: Int = 3) -> String {
  String(format: "%.\(decimals)f", v)
}
