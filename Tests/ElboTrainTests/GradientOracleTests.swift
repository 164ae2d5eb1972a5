import ElboAutograd
import ElboDistributed
import ElboNN
import ElboTensor
import ElboTestSupport
@testable import ElboTrain
import XCTest

/// The gradient oracle: after the exchange, every rank's reduced gradient is the one-process
/// gradient of the GLOBAL batch, element by element, for every ``AllreduceMethod``; and plain SGD
/// (no momentum: the step is linear in the gradient) leaves the same parameters on N ranks as on
/// one. Adam is nearly invariant to a uniform gradient scale, so summing where the mean is meant
/// (or the reverse, or a loss normalised by the local batch) passes an Adam comparison; these
/// fail. Runs on 1 rank in `swift test` and on 2 and 3 under launch/test's mpirun groups.
///
/// The model is built here from ElboNN layers (not a workload): an MLP 6 → 5 → 4 with a
/// Bernoulli-logits likelihood, loss = −(1/B) Σ_rows log p(t | x), B = the global batch of 11
/// rows (split 6+5 on 2 ranks and 4+4+3 on 3: uneven shares).
final class GradientOracleTests: XCTestCase {
  let world: Communicator = {
    do { return try Communicator.initialize() } catch { fatalError("MPI: \(error)") }
  }()

  static let batch = 11, inputs = 6, outputs = 4

  struct Model {
    let store = ParameterStore()
    let mlp: MLP
    init() {
      mlp = MLP(store, "oracle", sizes: [GradientOracleTests.inputs, 5,
                                          GradientOracleTests.outputs], activation: .tanh)
      store.allocate(seed: 21)
    }
  }

  /// The global batch at `step` (the same on every rank): inputs in (−1.5, 1.5), binary targets.
  func globalBatch(step: Int) -> (x: [Float], t: [Float]) {
    var rng = RandomStream(NoiseAddress(seed: 77, purpose: .dataGeneration, time: UInt64(step)))
    let x = (0..<(Self.batch * Self.inputs)).map { _ in 3 * rng.uniform() - 1.5 }
    let t = (0..<(Self.batch * Self.outputs)).map { _ in rng.uniform() < 0.4 ? Float(1) : 0 }
    return (x, t)
  }

  /// −(1/B) Σ_{rows} log p(t | x) over `rows` of the global batch (B = the global batch size).
  func loss(_ m: Model, rows: Range<Int>, step: Int, tape: Tape) -> Variable? {
    guard !rows.isEmpty else { return nil }
    let (x, t) = globalBatch(step: step)
    let xs = Array(x[(rows.lowerBound * Self.inputs)..<(rows.upperBound * Self.inputs)])
    let ts = Array(t[(rows.lowerBound * Self.outputs)..<(rows.upperBound * Self.outputs)])
    let logits = m.mlp(tape.constant(Tensor(xs, shape: [rows.count, Self.inputs])), m.store)
    let ll = bernoulliLogLikelihood(logits: logits,
                                    targets: Tensor(ts, shape: [rows.count, Self.outputs]))
    return ll.sum().affine(scale: -1 / Float(Self.batch))
  }

  /// The one-process gradient of the whole global batch at the model's current parameters
  /// (computed on this rank alone, no communication).
  func oracleGradient(params: [Float], step: Int) -> [Float] {
    let m = Model()
    _ = m.store.flatValues.update(fromContentsOf: params)
    m.store.zeroGrad()
    let tape = Tape()
    tape.backward(loss(m, rows: 0..<Self.batch, step: step, tape: tape)!)
    return Array(m.store.flatGrads)
  }

  /// Every method, and the sharded one through shared memory and through MPI collectives.
  let variants = AllreduceMethod.allCases.map(\.rawValue) + ["sharded-mpi"]

  func makeSync(_ variant: String, _ store: ParameterStore) throws -> GradientSync {
    try GradientSync(AllreduceMethod(rawValue: variant) ?? .sharded, store: store,
                     communicator: world, bucketFloats: 16, sharedMemory: variant != "sharded-mpi")
  }

  /// Asserts `got[range] ≈ want[range]` tensor by tensor. Tolerance: the two differ only by the
  /// order of float sums over ≤ 11 rows (each rank sums its rows, then ranks are summed), i.e. by a
  /// few ulp of the largest partial sum of that tensor; 1e-5 × the tensor's largest |gradient|
  /// (+1e-8 absolute for all-but-zero tensors) is ~100× that and ~10⁵× below a scale error of 2×.
  func assertPerTensor(_ got: [Float], _ want: [Float], store: ParameterStore, in range: Range<Int>,
                       _ what: String, file: StaticString = #filePath, line: UInt = #line) {
    for (i, spec) in store.specs.enumerated() {
      let part = range.clamped(to: store.offsets[i]..<(store.offsets[i] + spec.count))
      guard !part.isEmpty else { continue }
      let scale = want[part].map { abs($0) }.max() ?? 0
      assertClose(Array(got[part]), Array(want[part]), atol: 1e-5 * scale + 1e-8,
                  "\(what): \(spec.name) on rank \(world.rank)/\(world.size)", file: file, line: line)
    }
  }

  func testWorldSizeIsTheLaunchedSize() {
    TestRanks.assertWorldSize(world.size)
  }

  /// After backwardAndReduce, the reduced gradient (all of it; with the sharded method on several
  /// ranks, this rank's shard) equals the one-process gradient of the global batch.
  func testReducedGradientIsTheGlobalBatchGradient() throws {
    for variant in variants {
      let m = Model()
      let want = oracleGradient(params: Array(m.store.flatValues), step: 0)
      XCTAssertGreaterThan(want.map { abs($0) }.max()!, 1e-3, "a gradient worth comparing")
      let sync = try makeSync(variant, m.store)
      if variant == "bucketed" && m.store.count > 16 { XCTAssertGreaterThan(sync.bucketCount, 1) }
      m.store.zeroGrad()
      let tape = Tape()
      let mine = Sharder.share(of: Self.batch, rank: world.rank, size: world.size)
      _ = try sync.backwardAndReduce(loss(m, rows: mine, step: 0, tape: tape), on: tape)
      let valid = sync.exchangesShards ? sync.shard : 0..<m.store.count
      XCTAssertEqual(sync.shardCounts.reduce(0, +), m.store.count)
      assertPerTensor(Array(m.store.flatGrads), want, store: m.store, in: valid,
                      "\(variant) reduced gradient")
    }
  }

  /// Five steps of SGD without momentum on N ranks leave the parameters of five one-process SGD
  /// steps on the global batch. The step size is large (0.5), so the parameters move by ≫ the
  /// tolerance: a gradient scaled by N (or 1/N) lands far away.
  func testSGDWithoutMomentumMatchesOneProcess() throws {
    let steps = 5, lr: Float = 0.5
    // The one-process reference.
    let ref = Model()
    let initial = Array(ref.store.flatValues)
    let refSGD = SGD(parameterCount: ref.store.count, learningRate: lr, momentum: 0)
    for step in 0..<steps {
      let g = oracleGradient(params: Array(ref.store.flatValues), step: step)
      g.withUnsafeBufferPointer { refSGD.update(ref.store.flatValues, $0) }
    }
    let want = Array(ref.store.flatValues)
    let moved = zip(want, initial).map { abs($0 - $1) }.max()!
    XCTAssertGreaterThan(moved, 0.05, "the reference steps moved the parameters")

    for variant in variants {
      let m = Model()
      let sgd = SGD(parameterCount: m.store.count, learningRate: lr, momentum: 0)
      let sync = try makeSync(variant, m.store)
      let mine = Sharder.share(of: Self.batch, rank: world.rank, size: world.size)
      for step in 0..<steps {
        m.store.zeroGrad()
        let tape = Tape()
        _ = try sync.backwardAndReduce(loss(m, rows: mine, step: step, tape: tape), on: tape)
        XCTAssertEqual(sync.nonFiniteFlags(), [Double](repeating: 0, count: m.store.specs.count))
        _ = try sync.update(sgd)
      }
      try sync.gatherOptimizerState(sgd)
      // Five steps compound the sum-order differences; per tensor, relative to its movement.
      for (i, spec) in m.store.specs.enumerated() {
        let r = m.store.offsets[i]..<(m.store.offsets[i] + spec.count)
        let got = Array(m.store.flatValues[r])
        assertClose(got, Array(want[r]), atol: 1e-5, rtol: 1e-5,
                    "\(variant): \(spec.name) after \(steps) SGD steps on rank \(world.rank)")
      }
      try world.parameterChecksumsAgree(UnsafeBufferPointer(m.store.flatValues),
                                        name: "\(variant) parameters")
    }
  }
}
