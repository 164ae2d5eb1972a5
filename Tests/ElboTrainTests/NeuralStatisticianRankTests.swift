import ElboData
import ElboDistributed
import ElboExperiments
import ElboModels
import ElboTestSupport
import ElboTrain
import Foundation
import XCTest

/// The Neural Statistician trained data-parallel over whole data sets of unequal sizes: after N
/// steps on every rank of the job, the parameters equal N one-process steps on the whole global
/// batch of sets (each rank alone, the experiment's own loss, a plain backward and Adam). A
/// rank's batch pads its sets to its own longest, the one-process batch to the global longest:
/// equal results also show the padding is never counted. Runs on 1 rank in `swift test` and on
/// 2 and 3 under launch/test's mpirun groups.
///
/// Tolerance (as DataParallelTests): the ranks sum the same per-example terms in another
/// grouping (≈1e-7 relative per gradient), and Adam's step is ≤ ~lr, so 6 steps stay far below
/// 2e-5 apart unless the computation differs; a dropped, doubled or mis-keyed example (its
/// noise, or its α) moves them by ~lr = 1e-3 per step.
final class NeuralStatisticianRankTests: XCTestCase {
  let world: Communicator = {
    do { return try Communicator.initialize() } catch { fatalError("MPI: \(error)") }
  }()

  static let batch = 6, steps = 6

  /// 12 sets of 4–12 points (two epochs of 6 steps, so α is halved once), L = 2 layers.
  func experiment(files: (String, String)? = nil) throws -> NeuralStatisticianExperiment {
    var c = NeuralStatisticianExperiment.Config()
    if let files { c.data = files.0; c.testData = files.1 }
    c.datasets = 12; c.points = 12; c.minPoints = 4; c.testDatasets = 4
    c.hidden = 8; c.hiddenLayers = 2; c.context = 2; c.latent = 3; c.stochasticLayers = 2
    return try NeuralStatisticianExperiment(config: c, seed: 8)
  }

  func testWorldSizeIsTheLaunchedSize() {
    TestRanks.assertWorldSize(world.size)
  }

  func testStatisticianStepsEqualOneProcess() throws {
    try checkStepsEqualOneProcess(files: nil)
  }

  /// The same from collection files (`elbo data make ns-synthetic` bytes, the same sets as in
  /// memory): each rank reads only the rows of its own sets.
  func testFromCollectionFilesEachRankReadsOnlyItsSets() throws {
    let dir = NSTemporaryDirectory()
    let paths = (dir + "/elbo-ns-train-\(world.size).h5", dir + "/elbo-ns-test-\(world.size).h5")
    if world.isRoot {
      for (path, split, n) in [(paths.0, 0, 12), (paths.1, 1, 4)] {
        let g = try NSSynthetic.make(seed: 8, options: CollectionOptions(
          datasets: n, points: 12, extra: ["min-points": "4", "split": "\(split)"]))
        try CollectionFile.write(path: path, points: g.points, dimension: 1, offsets: g.offsets,
                                 metadata: g.metadata, kind: NSSynthetic.name)
      }
    }
    try world.barrier(name: "collections written")
    try checkStepsEqualOneProcess(files: paths)
  }

  func checkStepsEqualOneProcess(files: (String, String)?) throws {
    let b = Self.batch
    // The job: every rank its share of each global batch.
    let e = try experiment(files: files)
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
    let ref = try experiment()
    let adam = Adam(parameterCount: ref.store.count)
    let sharder = Sharder(itemCount: ref.itemCount, seed: 8)
    let perEpoch = sharder.stepsPerEpoch(globalBatch: b)
    var refBounds: [Double] = [], myRows = 0
    for step in 0..<Self.steps {
      let permutation = sharder.permutation(epoch: step / perEpoch)
      let start = (step % perEpoch) * b
      let mine = Sharder.share(of: b, rank: world.rank, size: world.size)
      for j in permutation[(start + mine.lowerBound)..<(start + mine.upperBound)] {
        myRows += ref.train.size(j)
      }
      let tape = Tape()
      ref.store.zeroGrad()
      let loss = ref.loss(items: permutation[start..<(start + b)], step: step,
                          epoch: step / perEpoch, globalBatch: b, tape: tape)
      tape.backward(try XCTUnwrap(loss.loss))
      adam.update(ref.store.flatValues, UnsafeBufferPointer(ref.store.flatGrads))
      refBounds.append(loss.sums.bound)
    }
    if let file = e.train.source as? CollectionFile {
      XCTAssertEqual(file.rowsRead, myRows, "rank \(world.rank): rows read from the training file")
      XCTAssertLessThan(myRows, ref.train.source.count * 12 * Self.steps / 2 + 1)
    }
    assertClose(bounds, refBounds, atol: 1e-3, rtol: 1e-6, "Σ bound per step")
    let got = Array(e.store.flatValues), want = Array(ref.store.flatValues)
    let worst = zip(got, want).map { abs($0 - $1) }.max()!
    let moved = zip(want, initial).map { abs($0 - $1) }.max()!
    print("neural statistician: max |θ(N=\(world.size)) − θ(one process)| = \(worst), moved \(moved)")
    XCTAssertLessThan(worst, 2e-5, "rank \(world.rank)/\(world.size)")
    XCTAssertGreaterThan(moved, 1e-3, "training moved the parameters")
  }
}
