import ElboDistributed
import ElboExperiments
import ElboModels
import ElboTrain
import XCTest

/// The one training step (`Trainer.step`, which the loop and `elbo bench` call) on one process:
/// it is exactly "this rank's items → the model's loss → backward → update", and a non-finite
/// term never reaches the parameters.
final class TrainerStepTests: XCTestCase {
  func tinyVAE() throws -> VAEExperiment {
    var c = VAEExperiment.Config()
    c.data = "mnist-5k"
    c.hidden = 8
    c.latent = 2
    return try VAEExperiment(config: c, seed: 4)
  }

  /// With SGD without momentum, one step moves every parameter by exactly −lr·g, where g is the
  /// gradient of the model's own loss on the step's items (computed here without the trainer).
  func testStepIsLossBackwardUpdateOnTheStepsItems() throws {
    let communicator = try Communicator.initialize()
    let experiment = try tinyVAE()
    let store = experiment.store
    let lr: Float = 0.05
    let trainer = try Trainer(experiment: experiment, globalBatch: 50,
                              optimizer: SGD(parameterCount: store.count, learningRate: lr,
                                             momentum: 0),
                              method: .fused, seed: 4, communicator: communicator)
    let step = 3
    let items = trainer.items(step: step)
    XCTAssertEqual(items.count, 50 / communicator.size)

    // The gradient by hand, on a tape of our own.
    let before = Array(store.flatValues)
    let tape = Tape()
    store.zeroGrad()
    let loss = experiment.loss(items: items, step: step, epoch: step / trainer.stepsPerEpoch,
                               globalBatch: 50, tape: tape)
    tape.backward(try XCTUnwrap(loss.loss))
    let gradient = Array(store.flatGrads)
    XCTAssertGreaterThan(gradient.map(abs).max() ?? 0, 0)

    let outcome = try trainer.step(step)
    XCTAssertNil(outcome.nonFinite)
    XCTAssertEqual(outcome.sums, loss.sums, "the step reports the loss's own term sums")
    var worst: Float = 0
    for i in before.indices {
      let expected = before[i] - lr * gradient[i]
      worst = max(worst, abs(store.flatValues[i] - expected))
    }
    XCTAssertLessThanOrEqual(worst, 1e-6, "θ ← θ − lr·∇L on the step's items")
  }

  /// Clipping, against the gradient computed by hand: SGD without momentum moves θ by
  /// −lr·clip(g) with clip(g) = min(max(g, −v), v) elementwise, then scaled to norm ≤ c; the
  /// step reports the norm before the scaling. Both with the sharded and the fused exchange.
  func testClippingActsOnTheSummedGradient() throws {
    let communicator = try Communicator.initialize()
    for method in [AllreduceMethod.fused, .sharded] {
      for (value, norm) in [(Float(0.01), nil), (nil, Float(0.5)), (Float(0.02), Float(0.3))] {
        let experiment = try tinyVAE()
        let store = experiment.store
        let lr: Float = 0.05
        let trainer = try Trainer(experiment: experiment, globalBatch: 50,
                                  optimizer: SGD(parameterCount: store.count, learningRate: lr,
                                                 momentum: 0),
                                  method: method, clipping: GradientClipping(value: value, norm: norm),
                                  seed: 4, communicator: communicator)
        let step = 2
        let before = Array(store.flatValues)
        let tape = Tape()
        store.zeroGrad()
        let loss = experiment.loss(items: trainer.items(step: step), step: step,
                                   epoch: 0, globalBatch: 50, tape: tape)
        tape.backward(try XCTUnwrap(loss.loss))
        var g = Array(store.flatGrads).map(Double.init)
        if let v = value { g = g.map { min(max($0, -Double(v)), Double(v)) } }
        let length = g.map { $0 * $0 }.reduce(0, +).squareRoot()
        if let c = norm, length > Double(c) { g = g.map { $0 * Double(c) / length } }
        XCTAssertTrue(value.map { v in Array(store.flatGrads).contains { abs($0) > v } } ?? true,
                      "the elementwise case must clip something")
        XCTAssertTrue(norm.map { length > Double($0) } ?? true, "the norm case must clip")

        let outcome = try trainer.step(step)
        if norm != nil {
          XCTAssertEqual(try XCTUnwrap(outcome.gradientNorm), length, accuracy: 1e-4 * length)
        } else {
          XCTAssertNil(outcome.gradientNorm)
        }
        var worst = 0.0
        for i in before.indices {
          worst = max(worst, abs(Double(store.flatValues[i]) - (Double(before[i]) - Double(lr) * g[i])))
        }
        XCTAssertLessThanOrEqual(worst, 1e-6, "\(method) value \(String(describing: value)) norm \(String(describing: norm))")
      }
    }
  }

  /// A NaN in a parameter makes the loss terms non-finite: the step names a term and leaves every
  /// parameter (and the optimizer) untouched.
  func testNonFiniteStepLeavesTheParametersUntouched() throws {
    let communicator = try Communicator.initialize()
    let experiment = try tinyVAE()
    let store = experiment.store
    let adam = Adam(parameterCount: store.count)
    let trainer = try Trainer(experiment: experiment, globalBatch: 50, optimizer: adam,
                              seed: 4, communicator: communicator)
    _ = try trainer.step(0)
    store.flatValues[0] = .nan
    let before = Array(store.flatValues).map(\.bitPattern)
    let moments = adam.stateBuffers.map { Array($0.1) }
    let outcome = try trainer.step(1)
    let bad = try XCTUnwrap(outcome.nonFinite)
    XCTAssertTrue(experiment.terms.all.contains(bad) || bad.hasPrefix("gradient of"), bad)
    XCTAssertEqual(Array(store.flatValues).map(\.bitPattern), before)
    for (m, (_, buffer)) in zip(moments, adam.stateBuffers) {
      XCTAssertEqual(m.map(\.bitPattern), Array(buffer).map(\.bitPattern))
    }
  }
}
