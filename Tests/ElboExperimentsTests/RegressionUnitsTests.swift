@_exported import ElboTestSupport
import ElboAutograd
import ElboData
@testable import ElboExperiments
import ElboTrain
import XCTest

/// The regression network works in standardised units (`Standardization`); everything it
/// reports must be in data units. These tests pin the change of units and its Jacobian.
final class RegressionUnitsTests: XCTestCase {
  func testStandardizationFitsMeanAndStdAndInverts() {
    let s = Standardization(fitting: [1, 2, 3, 4])
    XCTAssertEqual(s.mean, 2.5, accuracy: 1e-12)
    XCTAssertEqual(s.std, 1.25.squareRoot(), accuracy: 1e-12)  // population std
    for u in [-3.0, 0, 2.5, 7.25] { XCTAssertEqual(s.inverse(s.forward(u)), u, accuracy: 1e-12) }
    XCTAssertEqual(s.forward(2.5), 0)
    // No spread, or a single value: the units cannot be estimated, so nothing changes.
    XCTAssertEqual(Standardization(fitting: [5, 5, 5]), .identity)
    XCTAssertEqual(Standardization(fitting: [5]), .identity)
  }

  /// The training log-likelihood the loss logs (the network's density of y' plus the Jacobian
  /// −log s_y per example) equals log N(y | inverse(f(x')), σ_y²) computed directly in data
  /// units by the evaluation path, and a fixed --noise-std is taken in data units.
  func testLoggedLogLikelihoodIsInDataUnits() throws {
    var o = BBBRegressionExperiment.Config()
    o.network.variant = .plain
    o.network.hidden = 8
    o.trainPoints = 40
    o.heldOutPoints = 4
    o.noiseStd = 0.25
    let w = try BBBRegressionExperiment(config: o, seed: 5)
    XCTAssertNotEqual(w.yUnits, .identity)
    XCTAssertEqual(w.noiseStd, 0.25, accuracy: 1e-6)

    let items = Array(0..<40)
    let sums = w.loss(items: items[...], step: 0, epoch: 0, globalBatch: 40, tape: Tape()).sums
    let direct = w.predictive(w.train.x[...], targets: w.train.y[...]).logLikelihood
      .reduce(0, +)
    XCTAssertEqual(sums.components[0], direct, accuracy: 1e-4 * abs(direct))
    // Without standardisation the Jacobian is 0: the same identity must hold.
    o.standardize = false
    let raw = try BBBRegressionExperiment(config: o, seed: 5)
    XCTAssertEqual(raw.yUnits, .identity)
    let rawSums = raw.loss(items: items[...], step: 0, epoch: 0, globalBatch: 40,
                           tape: Tape()).sums
    let rawDirect = raw.predictive(raw.train.x[...], targets: raw.train.y[...]).logLikelihood
      .reduce(0, +)
    XCTAssertEqual(rawSums.components[0], rawDirect, accuracy: 1e-4 * abs(rawDirect))
  }
}
