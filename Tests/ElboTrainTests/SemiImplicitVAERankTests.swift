import ElboDistributed
import ElboExperiments
import ElboModels
import ElboTrain
import XCTest

/// The semi-implicit VAE (`--posterior semi-implicit`, SIVI bound) trained data-parallel: after N steps on every rank of the job, the
/// parameters equal N one-process steps on the whole global batch (computed on each rank alone,
/// with the experiment's own loss, a plain backward and Adam). Runs on 1 rank in `swift test` and
/// on 2 and 3 under launch/test's mpirun groups.
///
/// Tolerance (as DataParallelTests): the ranks sum the same per-example terms in another
/// grouping (≈1e-7 relative per gradient), and Adam's step is ≤ ~lr, so 6 steps stay far below
/// 2e-5 apart unless the computation differs; a dropped, doubled or mis-keyed example (its
/// noise, its mixing noise ε or its mixture components) moves them by ~lr = 1e-3 per step.
final class SemiImplicitVAERankTests: XCTestCase {
  let world: Communicator = {
    do { return try Communicator.initialize() } catch { fatalError("MPI: \(error)") }
  }()

  static let batch = 30, steps = 6

  /// E = 4 mixing dimensions, K = 5 mixture components, a warm-up over 4 steps; SIVI with k = 2
  /// samples, or UIVI (one sample, HMC 2 + 2 iterations of 3 leapfrog steps, the step size
  /// adapted on the global acceptance — a rank adapting on its own would drift apart).
  func experiment(_ posterior: VAE.PosteriorFamily) throws -> VAEExperiment {
    var c = VAEExperiment.Config()
    c.data = "mnist-5k"; c.hidden = 16; c.latent = 3
    c.samples = posterior == .semiImplicit ? 2 : 1
    if posterior == .hierarchical { c.prior = .semiImplicit; c.priorSamples = 4 }
    c.hmcBurnIn = 2; c.hmcSamples = 2; c.hmcLeapfrogSteps = 3
    c.posterior = posterior; c.mixingNoise = 4; c.mixSamples = 5
    c.klWarmup = 4
    return try VAEExperiment(config: c, seed: 8)
  }

  func testWorldSizeIsTheLaunchedSize() {
    TestRanks.assertWorldSize(world.size)
  }

  func testSemiImplicitVAEStepsEqualOneProcess() throws {
    try stepsEqualOneProcess(.semiImplicit)
  }

  func testUIVIStepsEqualOneProcess() throws {
    try stepsEqualOneProcess(.uivi)
  }

  /// Hierarchical VI with the semi-implicit prior (its L_CE draws ν per example).
  func testHierarchicalStepsEqualOneProcess() throws {
    try stepsEqualOneProcess(.hierarchical)
  }

  func stepsEqualOneProcess(_ posterior: VAE.PosteriorFamily) throws {
    let b = Self.batch
    // The job: every rank its share of each global batch.
    let e = try experiment(posterior)
    let initial = Array(e.store.flatValues)
    let trainer = try Trainer(experiment: e, globalBatch: b,
                              optimizer: Adam(parameterCount: e.store.count), seed: 8,
                              communicator: world)
    var bounds: [Double] = []
    for step in 0..<Self.steps {
      let outcome = try trainer.step(step)
      XCTAssertNil(outcome.nonFinite)
      bounds.append(outcome.sums.bound)
    }

    // The reference, on this rank alone: the same permutation, the whole batch at once.
    let ref = try experiment(posterior)
    let adam = Adam(parameterCount: ref.store.count)
    let sharder = Sharder(itemCount: ref.itemCount, seed: 8)
    let perEpoch = sharder.stepsPerEpoch(globalBatch: b)
    var refBounds: [Double] = []
    for step in 0..<Self.steps {
      let permutation = sharder.permutation(epoch: step / perEpoch)
      let start = (step % perEpoch) * b
      let tape = Tape()
      ref.store.zeroGrad()
      let loss = ref.loss(items: permutation[start..<(start + b)], step: step,
                          epoch: step / perEpoch, globalBatch: b, tape: tape)
      tape.backward(try XCTUnwrap(loss.loss))
      adam.update(ref.store.flatValues, UnsafeBufferPointer(ref.store.flatGrads))
      refBounds.append(loss.sums.bound)
    }
    assertClose(bounds, refBounds, atol: 1e-3, rtol: 1e-6, "Σ bound per step")
    let got = Array(e.store.flatValues), want = Array(ref.store.flatValues)
    let worst = zip(got, want).map { abs($0 - $1) }.max()!
    let moved = zip(want, initial).map { abs($0 - $1) }.max()!
    print("\(posterior.rawValue) VAE: max |θ(N=\(world.size)) − θ(one process)| = \(worst), moved \(moved)")
    XCTAssertLessThan(worst, 2e-5, "rank \(world.rank)/\(world.size)")
    XCTAssertGreaterThan(moved, 1e-3, "training moved the parameters")
  }
}
