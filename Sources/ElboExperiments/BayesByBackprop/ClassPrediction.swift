import ElboTrain
import Foundation

/// One test image's prediction from its predictive distribution
/// p̄ = (1/S) Σ_s softmax(f_{w_s}(x)): the predicted class argmax p̄, the confidence max p̄,
/// the predictive entropy H[p̄] and log p̄(y) of the true class.
public struct ClassPrediction: Equatable, Sendable {
  public let label: Int
  public let predicted: Int
  /// max_j p̄_j ∈ [1/C, 1].
  public let confidence: Double
  /// H[p̄] = −Σ_j p̄_j log p̄_j ∈ [0, log C], in nats.
  public let entropy: Double
  /// log p̄_y, floored at log(leastNormalMagnitude) so that a zero probability stays finite.
  public let logLikelihood: Double
  public var correct: Bool { predicted == label }

  /// - Parameters:
  ///   - probabilities: p̄ over the C classes (sums to 1); the first of tied maxima is predicted.
  ///   - label: the true class, in 0..<C.
  public init(probabilities p: some Collection<Double>, label: Int) {
    var best = 0, bestP = -Double.infinity, entropy = 0.0, py = 0.0
    for (j, pj) in p.enumerated() {
      if pj > bestP { best = j; bestP = pj }
      if pj > 0 { entropy -= pj * log(pj) }
      if j == label { py = pj }
    }
    self.label = label
    predicted = best
    confidence = bestP
    self.entropy = entropy
    logLikelihood = log(max(py, Double.leastNormalMagnitude))
  }
}

/// The test metrics of a set of predictions: error, mean log p̄(y), mean entropy on correct and on
/// misclassified images (and their ratio), and the expected calibration error.
func classifierTestMetrics(_ predictions: [ClassPrediction]) -> [String: Double] {
  var errors = 0.0, logLik = 0.0
  var hCorrect = 0.0, nCorrect = 0.0, hWrong = 0.0, nWrong = 0.0
  var bins = ReliabilityBins()
  for p in predictions {
    logLik += p.logLikelihood
    if p.correct {
      hCorrect += p.entropy; nCorrect += 1
    } else {
      errors += 1; hWrong += p.entropy; nWrong += 1
    }
    bins.add(p)
  }
  let n = Double(max(predictions.count, 1))
  let meanCorrect = hCorrect / max(nCorrect, 1), meanWrong = hWrong / max(nWrong, 1)
  return ["test_error": errors / n, "test_log_likelihood": logLik / n,
          "entropy_correct": meanCorrect, "entropy_misclassified": meanWrong,
          "entropy_ratio": meanWrong / meanCorrect, "test_ece": bins.expectedCalibrationError]
}

// MARK: - Calibration

/// A reliability diagram's bins: M equal-width confidence intervals B_m = ((m−1)/M, m/M] (the
/// first also takes 0), each with its number of predictions, their summed confidence and their
/// number correct (Guo et al., "On Calibration of Modern Neural Networks", ICML 2017, §2).
public struct ReliabilityBins: Equatable, Sendable {
  /// M = 15, as in Guo et al.
  public static let defaultCount = 15
  public private(set) var count: [Double]
  public private(set) var confidenceSum: [Double]
  public private(set) var correctSum: [Double]
  public var binCount: Int { count.count }

  public init(bins: Int = ReliabilityBins.defaultCount) {
    precondition(bins > 0, "ReliabilityBins: need at least one bin")
    count = Array(repeating: 0, count: bins)
    confidenceSum = count
    correctSum = count
  }

  /// The bin of confidence c: ⌈c·M⌉ − 1, clamped to 0..<M.
  public func bin(_ confidence: Double) -> Int {
    let m = binCount
    return min(max(Int((confidence * Double(m)).rounded(.up)) - 1, 0), m - 1)
  }

  public mutating func add(confidence: Double, correct: Bool) {
    let b = bin(confidence)
    count[b] += 1
    confidenceSum[b] += confidence
    correctSum[b] += correct ? 1 : 0
  }

  public mutating func add(_ p: ClassPrediction) {
    add(confidence: p.confidence, correct: p.correct)
  }

  /// acc(B_m) = correct / |B_m|, NaN for an empty bin.
  public var accuracy: [Double] { zip(correctSum, count).map { $1 > 0 ? $0 / $1 : .nan } }
  /// conf(B_m) = mean confidence in the bin, NaN for an empty bin.
  public var meanConfidence: [Double] { zip(confidenceSum, count).map { $1 > 0 ? $0 / $1 : .nan } }

  /// ECE = Σ_m (|B_m| / n) · |acc(B_m) − conf(B_m)| (Guo et al. eq. 3); 0 with no predictions.
  public var expectedCalibrationError: Double {
    let n = count.reduce(0, +)
    guard n > 0 else { return 0 }
    var ece = 0.0
    for m in 0..<binCount where count[m] > 0 {
      ece += abs(correctSum[m] - confidenceSum[m]) / n  // = |B_m|/n · |acc − conf|
    }
    return ece
  }
}

// MARK: - Entropy histogram

/// Predictive entropies binned on [0, log C] in equal-width bins, separately for correctly
/// classified and misclassified images. An entropy is at most log C; a value rounded past it
/// falls in the last bin.
public struct EntropyHistogram: Equatable, Sendable {
  public let edges: [Double]
  public private(set) var correct: [Int]
  public private(set) var misclassified: [Int]
  public private(set) var meanCorrect = 0.0, meanMisclassified = 0.0

  public init(_ predictions: [ClassPrediction], classes: Int, bins: Int = 30) {
    precondition(classes > 1 && bins > 0, "EntropyHistogram: need ≥ 2 classes and ≥ 1 bin")
    let top = log(Double(classes))
    edges = (0...bins).map { top * Double($0) / Double(bins) }
    correct = Array(repeating: 0, count: bins)
    misclassified = correct
    var sumC = 0.0, sumW = 0.0
    for p in predictions {
      let b = min(max(Int(p.entropy / top * Double(bins)), 0), bins - 1)
      if p.correct {
        correct[b] += 1; sumC += p.entropy
      } else {
        misclassified[b] += 1; sumW += p.entropy
      }
    }
    let nC = correct.reduce(0, +), nW = misclassified.reduce(0, +)
    meanCorrect = nC > 0 ? sumC / Double(nC) : .nan
    meanMisclassified = nW > 0 ? sumW / Double(nW) : .nan
  }

  /// A group's counts as a density (integrates to 1 over [0, log C]) traced as a step outline:
  /// x = e₀ e₀ e₁ e₁ … e_B e_B, y = 0 d₀ d₀ d₁ … d_{B−1} 0.
  public func outline(_ counts: [Int]) -> (x: [Double], y: [Double]) {
    let n = Double(max(counts.reduce(0, +), 1))
    var x: [Double] = [], y: [Double] = []
    var previous = 0.0
    for (b, c) in counts.enumerated() {
      let d = Double(c) / n / (edges[b + 1] - edges[b])
      x += [edges[b], edges[b]]; y += [previous, d]
      previous = d
    }
    x += [edges.last!, edges.last!]; y += [previous, 0]
    return (x, y)
  }
}
