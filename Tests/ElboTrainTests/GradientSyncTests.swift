import ElboDistributed
import ElboModels
@testable import ElboTrain
import XCTest

/// The gradient reduction and optimizer step of every ``AllreduceMethod`` (the sharded one over
/// both shard transports), on this process's ranks: one in `swift test`, 2 and 3 when
/// launch/test runs this class under mpirun.
final class GradientSyncTests: XCTestCase {
  let world: Communicator = {
    do { return try Communicator.initialize() } catch { fatalError("MPI: \(error)") }
  }()

  /// Four tensors of awkward sizes (408 floats), so shard borders fall inside tensors.
  func makeStore() -> ParameterStore {
    let s = ParameterStore()
    _ = s.declare("a", [7, 13], .uniform(bound: 1))
    _ = s.declare("b", [13], .constant(0.5))
    _ = s.declare("c", [101, 3], .normal(std: 1))
    _ = s.declare("d", [1], .zeros)
    s.allocate(seed: 5)
    return s
  }

  /// This rank's gradient at `step`: rank-dependent, with sums that are exact in Float (so every
  /// reduction order gives the same bits).
  func fillGradient(_ store: ParameterStore, step: Int) {
    let g = store.flatGrads
    for i in g.indices {
      g[i] = Float((i * 7 + step) % 61 - 30) * 0.125 + Float(world.rank) * 0.25
    }
  }

  /// Every method, and the sharded one through shared memory (where the job allows) and
  /// through MPI collectives ("sharded-mpi").
  let variants = AllreduceMethod.allCases.map(\.rawValue) + ["sharded-mpi"]

  func makeSync(_ variant: String, _ store: ParameterStore) throws -> GradientSync {
    let method = AllreduceMethod(rawValue: variant) ?? .sharded
    return try GradientSync(method, store: store, communicator: world, bucketFloats: 100,
                            sharedMemory: variant != "sharded-mpi")
  }

  /// After three steps every method leaves every rank with the same parameters, bit for bit
  /// (exact sums, elementwise Adam); the sharded method's all-gathered optimizer state equals
  /// the state of a full update.
  func testEveryMethodGivesTheSameParametersAndStateOnEveryRank() throws {
    var results: [String: (params: [Float], state: [[Float]])] = [:]
    for method in variants {
      let store = makeStore()
      let adam = Adam(parameterCount: store.count, learningRate: 0.01)
      let sync = try makeSync(method, store)
      XCTAssertEqual(sync.shardCounts.reduce(0, +), store.count)
      if world.size > 1 && sync.method == .sharded {
        let transport = method == "sharded" ? "shared memory" : "MPI collectives"
        XCTAssertEqual(sync.exchange?.transport, transport, method)
      }
      for step in 0..<3 {
        fillGradient(store, step: step)
        _ = try sync.backwardAndReduce(nil, on: Tape())
        XCTAssertEqual(sync.nonFiniteFlags(), [0, 0, 0, 0], "\(method)")
        _ = try sync.update(adam)
      }
      try sync.gatherOptimizerState(adam)
      XCTAssertEqual(adam.step, 3)
      try world.parameterChecksumsAgree(UnsafeBufferPointer(store.flatValues),
                                        name: "\(method) parameters")
      for (name, buffer) in adam.stateBuffers {
        try world.parameterChecksumsAgree(UnsafeBufferPointer(buffer), name: "\(method) \(name)")
      }
      results[method] = (Array(store.flatValues), adam.stateBuffers.map { Array($0.buffer) })
    }
    let fused = results["fused"]!
    let initial = makeStore()
    XCTAssertNotEqual(fused.params, Array(initial.flatValues), "the steps moved nothing")
    for method in variants.dropFirst() {
      XCTAssertEqual(results[method]!.params.map(\.bitPattern), fused.params.map(\.bitPattern),
                     "\(method) parameters")
      XCTAssertEqual(results[method]!.state.map { $0.map(\.bitPattern) },
                     fused.state.map { $0.map(\.bitPattern) }, "\(method) optimizer state")
    }
  }

  /// A NaN that rank 0 contributes to the gradient's last element (tensor "d", in the last
  /// rank's shard) is named as "gradient of d" on every rank once the flags are summed, as the
  /// training loop does inside its loss-terms all-reduce. With the sharded method on several
  /// ranks only the last rank holds that element of the reduced gradient.
  func testNonFiniteGradientIsNamedOnEveryRank() throws {
    for method in variants {
      let store = makeStore()
      let sync = try makeSync(method, store)
      fillGradient(store, step: 0)
      if world.rank == 0 { store.flatGrads[store.count - 1] = .nan }
      _ = try sync.backwardAndReduce(nil, on: Tape())
      var flags = sync.nonFiniteFlags()
      if sync.exchangesShards && world.rank < world.size - 1 {
        XCTAssertEqual(flags, [0, 0, 0, 0], "rank \(world.rank) does not hold the bad element")
      }
      try world.allreduceSum(&flags, name: "loss terms")
      XCTAssertEqual(sync.nonFiniteTensor(flags), "gradient of d", "\(method)")
    }
  }
}
