import ElboDistributed
import ElboModels
import ElboTestSupport
import Foundation
import XCTest

@testable import ElboExperiments
import ElboTrain

/// One MPI world for this test bundle (MPI is initialised once per process).
private let world: Communicator = {
  do { return try Communicator.initialize() } catch { fatalError("MPI: \(error)") }
}()

/// NADE and MADE as experiments, in process: the per-epoch evaluation is the model's own exact
/// (NADE) or mask-averaged (MADE) log-likelihood over the test rows, the loss's sum is the batch's
/// log-likelihood, MADE's step uses the step's mask, and the pictures are there.
final class AutoregressiveExperimentTests: XCTestCase {
  func nade() throws -> NADEExperiment {
    var c = NADEExperiment.Config()
    c.data = "mnist-5k"; c.hidden = 12
    return try NADEExperiment(config: c, seed: 3)
  }

  func made() throws -> MADEExperiment {
    var c = MADEExperiment.Config()
    c.data = "mnist-5k"; c.hidden = [20]; c.masks = 5; c.testMasks = 3; c.orderAgnostic = true
    return try MADEExperiment(config: c, seed: 3)
  }

  /// All binary test rows [N, D].
  func testSet(_ images: BinaryImages) -> Tensor {
    let x = Tensor(zeros: [images.test.count, images.dimension])
    images.fillTest(x, rows: 0..<images.test.count)
    return x
  }

  func testNADEEvaluateIsTheMeanExactLogLikelihoodOfTheTestRows() throws {
    let e = try nade()
    let metrics = try e.evaluate(epoch: 0, communicator: world)
    let tape = Tape(recording: false)
    let logp = e.model.logLikelihood(tape.constant(testSet(e.images)), on: tape).value
    let mean = sumDouble(logp) / Double(logp.count)
    XCTAssertEqual(metrics["test_log_likelihood"]!, mean, accuracy: 1e-9 * abs(mean))
    XCTAssertEqual(metrics["test_nll"]!, -mean, accuracy: 1e-9 * abs(mean))
    // Untrained (p ≈ ½ per pixel): about D·log 2 nats.
    XCTAssertEqual(-mean, 784 * log(2.0), accuracy: 60)
  }

  func testNADELossSumsTheBatchLogLikelihood() throws {
    let e = try nade()
    let items = ArraySlice([5, 17, 3999])
    let tape = Tape()
    let step = e.loss(items: items, step: 0, epoch: 0, globalBatch: 10, tape: tape)
    let x = Tensor(zeros: [3, 784])
    e.images.fillTrain(x, items: items, epoch: 0)
    let check = Tape(recording: false)
    let expected = sumDouble(e.model.logLikelihood(check.constant(x), on: check).value)
    XCTAssertEqual(step.sums.bound, expected, accuracy: 1e-6 * abs(expected))
    XCTAssertEqual(Double(step.loss!.value[0]), -expected / 10, accuracy: 1e-4 * abs(expected))
    XCTAssertEqual(e.terms, TermNames(bound: "log_likelihood", components: []))
    XCTAssertNil(e.loss(items: [], step: 0, epoch: 0, globalBatch: 10, tape: tape).loss)
  }

  func testMADEEvaluateIsTheMeanOfTestLogLikelihood() throws {
    let e = try made()
    let metrics = try e.evaluate(epoch: 0, communicator: world)
    let x = testSet(e.images)
    let lme = e.model.testLogLikelihood(x)
    let mean = lme.reduce(0, +) / Double(lme.count)
    XCTAssertEqual(metrics["test_log_likelihood"]!, mean, accuracy: 1e-9 * abs(mean))
    XCTAssertEqual(metrics["test_nll"]!, -mean, accuracy: 1e-9 * abs(mean))
    let tape = Tape(recording: false)
    let mask0 = sumDouble(e.model.logLikelihood(x, maskIndex: 0, on: tape).value) / Double(lme.count)
    XCTAssertEqual(metrics["test_log_likelihood_mask0"]!, mask0, accuracy: 1e-9 * abs(mask0))
    XCTAssertEqual(metrics["test_masks"], 3)
    // log-mean-exp over masks ≥ the mean over masks (Jensen), so it beats the typical single mask.
    XCTAssertGreaterThan(mean, -784 * log(2.0) - 60)
  }

  func testMADELossUsesTheStepsMask() throws {
    let e = try made()
    let items = ArraySlice([0, 1, 2, 3])
    let x = Tensor(zeros: [4, 784])
    e.images.fillTrain(x, items: items, epoch: 0)
    var seen = Set<Int>()
    for step in 0..<6 {
      let m = e.model.trainingMaskIndex(step: UInt64(step))
      seen.insert(m)
      let tape = Tape()
      let got = e.loss(items: items, step: step, epoch: 0, globalBatch: 4, tape: tape).sums.bound
      let check = Tape(recording: false)
      let expected = sumDouble(e.model.logLikelihood(x, maskIndex: m, on: check).value)
      XCTAssertEqual(got, expected, accuracy: 1e-6 * abs(expected), "step \(step), mask \(m)")
    }
    XCTAssertGreaterThan(seen.count, 1, "the mask changes from step to step")
  }

  func testPicturesAndSamples() throws {
    for e in [try nade() as any Experiment, try made() as any Experiment] {
      let names = try e.artifacts(step: 0, final: true).map(\.fileName)
      XCTAssertEqual(names, ["samples.png", "conditionals.png"])
      let s = try XCTUnwrap(try e.samples(count: 16, seed: 9))
      guard case .png(let data) = s.content else { return XCTFail("not a PNG") }
      XCTAssertEqual(Array(data.prefix(4)), [0x89, 0x50, 0x4E, 0x47])
    }
  }

  func testConfigValidationNamesTheFlag() {
    var c = MADEExperiment.Config()
    c.hidden = [500, 0]
    XCTAssertThrowsError(try c.validate()) { XCTAssertTrue("\($0)".contains("--hidden")) }
    c = MADEExperiment.Config(); c.masks = 1; c.orderAgnostic = true
    XCTAssertThrowsError(try c.validate()) { XCTAssertTrue("\($0)".contains("--order-agnostic")) }
    var n = NADEExperiment.Config(); n.hidden = 0
    XCTAssertThrowsError(try n.validate()) { XCTAssertTrue("\($0)".contains("--hidden")) }
  }
}
