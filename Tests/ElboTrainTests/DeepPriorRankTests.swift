import ElboData
import ElboDistributed
import ElboExperiments
import ElboModels
import ElboTestSupport
import ElboTrain
import Foundation
import XCTest

/// Deep Prior trained data-parallel, sharded by task: after N steps on every rank of the job —
/// each rank reading only its tasks from the collection file — the parameters equal N
/// one-process steps on the whole global batch (the same collection in memory, on each rank
/// alone). Runs on 1 rank in `swift test` and on 2 and 3 under launch/test's mpirun groups.
///
/// Tolerance as FlowVAERankTests: the ranks sum the same per-task terms in another grouping, so
/// parameters agree to float summation order (≪ 2e-5 after 6 Adam steps); a dropped, doubled or
/// mis-keyed task moves them by ~lr = 1e-3 per step. Tasks have unequal sizes (3…7 points), so
/// every batch is padded.
final class DeepPriorRankTests: XCTestCase {
  let world: Communicator = {
    do { return try Communicator.initialize() } catch { fatalError("MPI: \(error)") }
  }()

  static let batch = 6, steps = 6, tasks = 30

  /// 30 harmonic tasks cut to sizes 3…7 (unequal), as a generated collection.
  static func collection() throws -> GeneratedCollection {
    let full = try HarmonicTasks.make(seed: 5, options: CollectionOptions(datasets: tasks,
                                                                          points: 7))
    var points = [Float](), offsets = [0]
    for i in 0..<tasks {
      let n = 3 + i % 5
      points += full.points[(i * 14)..<(i * 14 + 2 * n)]
      offsets.append(offsets.last! + n)
    }
    return GeneratedCollection(points: points, dimension: 2, offsets: offsets,
                               metadata: full.metadata)
  }

  func config(_ encoder: DeepPriorExperiment.Encoder) -> DeepPriorExperiment.Config {
    var c = DeepPriorExperiment.Config()
    c.collection = "memory"; c.testCollection = "memory"
    c.encoder = encoder; c.flowLength = 2; c.latent = 3; c.hidden = 8
    c.contextPoints = 2; c.predictSamples = 3; c.trainEvalTasks = 10
    return c
  }

  func testWorldSizeIsTheLaunchedSize() {
    TestRanks.assertWorldSize(world.size)
  }

  func testStepsEqualOneProcessAndEachRankReadsOnlyItsTasks() throws {
    let made = try Self.collection()
    let path = NSTemporaryDirectory() + "/elbo-deep-prior-ranks-\(world.size).h5"
    if world.isRoot {
      try CollectionFile.write(path: path, points: made.points, dimension: 2,
                               offsets: made.offsets, metadata: made.metadata, kind: "harmonic")
    }
    try world.barrier(name: "collection written")
    for encoder in DeepPriorExperiment.Encoder.allCases {
      let b = Self.batch
      let file = try CollectionFile(path: path, communicator: world)
      let e = try DeepPriorExperiment(config: config(encoder), seed: 8, train: file,
                                      test: InMemoryCollection(made), communicator: world)
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

      // The reference, on this rank alone, from memory: the same permutation, whole batches.
      let ref = try DeepPriorExperiment(config: config(encoder), seed: 8,
                                        train: InMemoryCollection(made),
                                        test: InMemoryCollection(made))
      let adam = Adam(parameterCount: ref.store.count)
      let sharder = Sharder(itemCount: ref.itemCount, seed: 8)
      let perEpoch = sharder.stepsPerEpoch(globalBatch: b)
      var refBounds: [Double] = [], myRows = 0
      for step in 0..<Self.steps {
        let permutation = sharder.permutation(epoch: step / perEpoch)
        let start = (step % perEpoch) * b
        let mine = Sharder.share(of: b, rank: world.rank, size: world.size)
        for j in permutation[(start + mine.lowerBound)..<(start + mine.upperBound)] {
          myRows += made.offsets[j + 1] - made.offsets[j]
        }
        let tape = Tape()
        ref.store.zeroGrad()
        let loss = ref.loss(items: permutation[start..<(start + b)], step: step,
                            epoch: step / perEpoch, globalBatch: b, tape: tape)
        tape.backward(try XCTUnwrap(loss.loss))
        adam.update(ref.store.flatValues, UnsafeBufferPointer(ref.store.flatGrads))
        refBounds.append(loss.sums.bound)
      }
      // Read only its own tasks' rows: the start-up read of the picture's tasks is the test
      // collection's (in memory here), so the file's counter holds the steps' reads alone.
      XCTAssertEqual(file.rowsRead, myRows, "rank \(world.rank): rows read from the file")
      assertClose(bounds, refBounds, atol: 1e-3, rtol: 1e-6, "Σ ELBO per step (\(encoder))")
      let got = Array(e.store.flatValues), want = Array(ref.store.flatValues)
      let worst = zip(got, want).map { abs($0 - $1) }.max()!
      let moved = zip(want, initial).map { abs($0 - $1) }.max()!
      print("deep prior \(encoder): max |θ(N=\(world.size)) − θ(one process)| = \(worst), "
        + "moved \(moved)")
      XCTAssertLessThan(worst, 2e-5, "rank \(world.rank)/\(world.size), \(encoder)")
      XCTAssertGreaterThan(moved, 1e-4, "training moved the parameters")
      // Evaluation is collective and gives every rank the same figures as one process.
      let metrics = try e.evaluate(epoch: 0, communicator: world)
      XCTAssert(metrics["test_mse"]!.isFinite && metrics["test_log_likelihood"]!.isFinite)
    }
  }
}
