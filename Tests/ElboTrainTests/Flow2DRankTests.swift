import ElboDistributed
import ElboModels
import ElboTestSupport
@testable import ElboExperiments
import ElboTrain
import XCTest

/// flow-2d on several ranks, in process: the noise rows of a global batch split over the ranks
/// give, once summed, the one-process gradient and term sums of the whole batch (the ε of a row
/// is keyed by its global index, and each share's loss is divided by the GLOBAL batch); and the
/// sharded KL evaluation equals the one-process sum over all its samples. Runs on 1 rank in
/// `swift test` and on 2 and 3 under launch/test's mpirun groups.
final class Flow2DRankTests: XCTestCase {
  let world: Communicator = {
    do { return try Communicator.initialize() } catch { fatalError("MPI: \(error)") }
  }()

  func experiment(_ posterior: Flow2D.Posterior = .flow) throws -> Flow2DExperiment {
    var c = Flow2DExperiment.Config()
    c.posterior = posterior
    c.mixSamples = 4
    c.target = posterior == .flow ? .u3 : .twoModes
    c.flow = FlowChainSpec(kind: .planar, length: 3, parameters: .global)
    c.samplesPerEpoch = 60
    c.evalSamples = 1001
    c.warmupSteps = 10
    return try Flow2DExperiment(config: c, seed: 5)
  }

  /// Gradient and term sums of `items` at `step` on this rank alone.
  func gradient(_ e: Flow2DExperiment, items: ArraySlice<Int>, step: Int, batch: Int)
    -> (grad: [Float], sums: [Double]) {
    e.store.zeroGrad()
    let tape = Tape()
    let out = e.loss(items: items, step: step, epoch: 0, globalBatch: batch, tape: tape)
    if let l = out.loss { tape.backward(l) }
    return (Array(e.store.flatGrads), out.sums.flat)
  }

  func testShardedBatchAndEvaluationEqualOneProcess() throws {
    try checkShardedBatchAndEvaluation(.flow)
  }

  /// The same for the semi-implicit posteriors: SIVI's mixing draws and UIVI's HMC chains
  /// (their momenta and accept draws) come from each row's own stream, so they too are split
  /// over the ranks without changing the batch's gradient.
  func testSemiImplicitAndUIVIShardedBatchEqualOneProcess() throws {
    try checkShardedBatchAndEvaluation(.semiImplicit)
    try checkShardedBatchAndEvaluation(.uivi)
  }

  func checkShardedBatchAndEvaluation(_ posterior: Flow2D.Posterior) throws {
    TestRanks.assertWorldSize(world.size)
    let e = try experiment(posterior)
    let batch = 23, step = 4                               // uneven shares; β = 0.41 (warm-up)
    let items = Sharder(itemCount: 60, seed: 5).permutation(epoch: 0)[0..<batch]
    let whole = gradient(e, items: items, step: step, batch: batch)
    let share = Sharder.share(of: batch, rank: world.rank, size: world.size)
    var (grad, sums) = gradient(e, items: items[(items.startIndex + share.lowerBound)...]
                                  .prefix(share.count), step: step, batch: batch)
    try world.allreduceSum(&grad, name: "flow-2d gradient")
    try world.allreduceSum(&sums, name: "flow-2d term sums")
    let scale = whole.grad.map(abs).max() ?? 1
    XCTAssertGreaterThan(scale, 1e-3, "the gradient is empty: the test would pass vacuously")
    assertClose(grad, whole.grad, atol: 1e-5 * scale)
    // The flow's terms are row-wise elementwise ops: exact under any split. A semi-implicit q
    // runs an MLP, and sgemm's rounding of a row depends on how many rows share the call
    // (~1e-7 relative), as for every MLP-based model.
    let rtol = posterior == .flow ? 1e-9 : 1e-5
    assertClose(sums, whole.sums, atol: 1e-9, rtol: rtol)

    let kl = try XCTUnwrap(try e.evaluate(epoch: 0, communicator: world)["kl"])
    let alone = e.evaluationSums(rows: 0..<1001)
    XCTAssertEqual(kl, alone[0] / 1001 + e.logZ.value, accuracy: 1e-9 * max(1, abs(kl)))
  }
}
