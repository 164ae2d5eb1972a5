import CKernels
import ElboDistributed
import ElboModels

/// How a step's flat gradient is summed over the ranks, and the optimizer step that follows.
///
/// - `fused`: backward first, then ONE `MPI_Allreduce` of the whole flat buffer; every rank
///   updates all parameters.
/// - `bucketed`: fixed-order buckets of the flat buffer, each started with `MPI_Iallreduce` as
///   soon as backward has finished writing it (last layers first), overlapped with the rest of
///   backward; the step waits for all of them before the optimizer.
/// - `sharded` (ZeRO stage 1, Rajbhandari et al. 2020): the flat buffer is cut into one
///   contiguous shard per rank (`Sharder.share`). After backward, `MPI_Reduce_scatter` leaves
///   each rank the sum of its own shard only; each rank runs the optimizer on its shard of the
///   parameters and optimizer state; `MPI_Allgatherv` then gives every rank all parameters.
///   The same bytes move as in a ring all-reduce, and each rank does 1/N of the optimizer work.
///   Before a checkpoint the optimizer state is all-gathered too, so checkpoints hold the full
///   state whatever the method and a run resumes on any number of ranks. When all ranks are on
///   one node the shards move through a shared-memory window instead of MPI's collectives
///   (``SharedMemoryShardExchange``: each float copied once by its writer and once by its
///   reader); across nodes through `MPI_Reduce_scatter` and `MPI_Allgatherv`.
///
/// All three give the same parameters up to float summation order. `elbo bench <model>` on several
/// ranks times all of them side by side. `elbo train --allreduce` picks one; the default is
/// ``trainerDefault``.
public enum AllreduceMethod: String, Codable, CaseIterable, Sendable {
  case fused, bucketed, sharded

  /// The method the training loop uses unless told otherwise: sharded. Measured here (README,
  /// "Measured"; `mpirun -np 2 elbo bench <model> --threads 1 --steps 2000` on the 784-200-200-50 autoencoder, batch 100, every
  /// method in interleaved blocks of one process, 25 rounds on a shared machine): the sharded
  /// step through shared memory took 0.74–0.87× the fused step in every round (median 0.82×):
  /// its reduce-scatter + all-gather took 0.37–0.75× a raw `MPI_Allreduce` of the same bytes,
  /// and Adam runs on half the parameters. In the 12 quiet rounds it reached 52.7–60.8k
  /// examples/s (median 58.2k) against fused's 45.5–51.9k (median 50.0k). Through MPI's
  /// collectives (other nodes) it took 0.97–1.06× the fused step, because OpenMPI's
  /// `MPI_Reduce_scatter` first copies the whole buffer; over TCP it is not measured.
  /// Fused and bucketed tie when the machine is otherwise idle, because with shared memory the
  /// copies are CPU work on the same cores backward needs, so overlap only hides waiting;
  /// bucketed is faster when other jobs stall the ranks, and slower over TCP.
  public static let trainerDefault: AllreduceMethod = .sharded
  /// Floats per bucket of the bucketed method (64 Ki floats = 256 KiB: a 425k-float
  /// gradient becomes 7 buckets, the first started after the decoder's last layer).
  public static let defaultBucketFloats = 1 << 16

  /// How the method is named in the training header and the help.
  public var summary: String {
    switch self {
    case .fused: return "fused gradient all-reduce"
    case .bucketed: return "bucketed gradient all-reduce"
    case .sharded: return "sharded optimizer step (gradient reduce-scatter, parameter all-gather)"
    }
  }
}

/// Backward on the tape, the reduction of the store's flat gradient over ranks, and the
/// optimizer step, by any ``AllreduceMethod``.
///
/// The training step calls, on every rank: ``backwardAndReduce(_:on:)``, then
/// ``nonFiniteFlags()`` folded into the loss-terms all-reduce (so all ranks agree whether to
/// skip), then ``update(_:)`` unless the step is skipped; and ``gatherOptimizerState(_:)``
/// before a checkpoint. Every rank makes the same collective calls in the same order.
public final class GradientSync {
  public let method: AllreduceMethod
  let store: ParameterStore
  let communicator: Communicator
  let reducer: GradientReducer
  /// This rank's contiguous shard of the flat buffers (`Sharder.share` of the parameter count):
  /// the part of the reduced gradient it checks for non-finite values, and, with the sharded
  /// method, the only part it reduces and updates.
  let shard: Range<Int>
  /// Every rank's shard size, by rank (the block counts of the reduce-scatter and all-gather).
  let shardCounts: [Int]
  /// How shards move between ranks (the sharded method on more than one rank; else nil).
  public let exchange: ShardExchange?

  /// Collective for the sharded method on several ranks (it may allocate a shared-memory
  /// window): every rank creates its GradientSyncs in the same order.
  ///
  /// - Parameter sharedMemory: with the sharded method, move shards through shared memory when
  ///   all ranks are on one node (false: always through MPI collectives, e.g. to compare).
  init(_ method: AllreduceMethod, store: ParameterStore, communicator: Communicator,
       bucketFloats: Int = AllreduceMethod.defaultBucketFloats, sharedMemory: Bool = true) throws {
    self.method = method
    self.store = store
    self.communicator = communicator
    reducer = GradientReducer(communicator: communicator, mode: .sum, bucketSize: bucketFloats)
    let size = communicator.size
    shard = Sharder.share(of: store.count, rank: communicator.rank, size: size)
    shardCounts = (0..<size).map { Sharder.share(of: store.count, rank: $0, size: size).count }
    if method == .sharded && size > 1 {
      let local = sharedMemory
        ? try SharedMemoryShardExchange.make(communicator: communicator, capacity: store.count)
        : nil
      exchange = local ?? CollectiveShardExchange(communicator: communicator)
    } else {
      exchange = nil
    }
  }

  /// Whether this method exchanges shards (the sharded method on more than one rank).
  var exchangesShards: Bool { exchange != nil }

  /// The method, and for the sharded one how its shards move (training header).
  var summary: String {
    guard let exchange else { return method.summary }
    return method.summary + " through \(exchange.transport)"
  }

  /// Buckets the last bucketed step had started before backward reached the first layer (whose
  /// gradient is final last): the ones overlapped with backward's remaining work.
  private(set) var startedDuringBackward = 0

  /// Buckets per reduction (1 for the fused and sharded methods).
  public var bucketCount: Int {
    method == .bucketed ? reducer.bucketRanges(count: store.count).count : 1
  }

  // MARK: - The step

  /// Runs backward from `loss` (none: this rank had no items) and sums the gradient over ranks:
  /// all of it (fused, bucketed) or this rank's ``shard`` of it (sharded). Returns the seconds
  /// spent in backward (bucket starts included) and in the final reduction or wait.
  func backwardAndReduce(_ loss: Variable?, on tape: Tape) throws -> (backward: Double,
                                                                      reduce: Double) {
    let grads = store.flatGrads
    let t0 = now()
    switch method {
    case .fused:
      if let loss { tape.backward(loss) }
      let t1 = now()
      try communicator.allreduceSum(grads, name: "gradient all-reduce")
      return (t1 - t0, now() - t1)
    case .sharded:
      if let loss { tape.backward(loss) }
      let t1 = now()
      try exchange?.reduceScatterSum(grads, counts: shardCounts, name: "gradient reduce-scatter")
      return (t1 - t0, now() - t1)
    case .bucketed:
      reducer.begin(grads)
      startedDuringBackward = 0
      var failure: Error?
      if let loss {
        let base = grads.baseAddress!
        // The tape reports each parameter gradient (a view of the flat buffer) once it is final.
        tape.backward(loss) { [reducer, unowned self] g in
          guard failure == nil else { return }
          let start = g.pointer - base
          self.startedDuringBackward = reducer.bucketsStarted  // before this, the last, is final
          do { try reducer.markFinal(start..<(start + g.count)) } catch { failure = error }
        }
      }
      let t1 = now()
      if let failure { throw failure }
      try reducer.finish()
      return (t1 - t0, now() - t1)
    }
  }

  /// The optimizer step on the reduced gradient: all parameters (fused, bucketed), or this
  /// rank's shard followed by the all-gather of the parameters (sharded). Returns the seconds
  /// spent in the optimizer and in the all-gather.
  func update(_ optimizer: Optimizer) throws -> (optimizer: Double, gather: Double) {
    let params = store.flatValues, grads = UnsafeBufferPointer(store.flatGrads)
    let t0 = now()
    guard let exchange else {
      optimizer.update(params, grads)
      return (now() - t0, 0)
    }
    optimizer.update(params, grads, range: shard)
    let t1 = now()
    try exchange.allgatherBlocks(params, counts: shardCounts, name: "parameter all-gather")
    return (t1 - t0, now() - t1)
  }

  /// Makes every rank's optimizer state whole (sharded: each rank has advanced only its shard of
  /// each state buffer), so that a checkpoint holds the full state. A no-op for the other
  /// methods and on one rank; collective otherwise.
  func gatherOptimizerState(_ optimizer: Optimizer) throws {
    guard let exchange else { return }
    for (name, buffer) in optimizer.stateBuffers {
      try exchange.allgatherBlocks(buffer, counts: shardCounts,
                                   name: "optimizer state all-gather (\(name))")
    }
  }

  // MARK: - Non-finite guard

  /// One flag per parameter tensor (in store order): 1 if this rank's ``shard`` of the reduced
  /// gradient of that tensor holds a NaN or ±∞, else 0.
  ///
  /// Summed over ranks (inside the loss-terms all-reduce, so no collective is added) the flags
  /// cover the whole reduced gradient: with the sharded method each rank has only its shard;
  /// with the others every rank holds the same reduced gradient, so each checks just its share.
  func nonFiniteFlags() -> [Double] {
    var flags = [Double](repeating: 0, count: store.specs.count)
    let g = store.flatGrads.baseAddress!
    guard !shard.isEmpty, ek_all_finite(g + shard.lowerBound, shard.count) == 0 else {
      return flags
    }
    for (i, spec) in store.specs.enumerated() {
      let part = shard.clamped(to: store.offsets[i]..<(store.offsets[i] + spec.count))
      if !part.isEmpty && ek_all_finite(g + part.lowerBound, part.count) == 0 { flags[i] = 1 }
    }
    return flags
  }

  /// The part of the reduced gradient this rank's optimizer step reads: all of it (fused,
  /// bucketed) or its ``shard`` (sharded). Clipping touches only this.
  private var updated: Range<Int> { exchange == nil ? 0..<store.count : shard }

  /// Clips every element this rank's optimizer reads to [−v, v] (no communication: the reduced
  /// values are the same on every rank that holds them).
  func clipElements(to v: Float) {
    let g = store.flatGrads
    for i in updated { g[i] = Swift.min(Swift.max(g[i], -v), v) }
  }

  /// Σ g² over this rank's ``shard`` of the reduced gradient, in Double: summed over the ranks
  /// (in the loss-terms all-reduce) it is the squared norm of the whole gradient, for every
  /// exchange method, since the shards partition the buffer.
  func shardSquaredNorm() -> Double {
    let g = store.flatGrads
    var s = 0.0
    for i in shard { s += Double(g[i]) * Double(g[i]) }
    return s
  }

  /// Multiplies the part of the reduced gradient this rank's optimizer reads by `factor`.
  func scaleGradient(by factor: Float) {
    let g = store.flatGrads
    for i in updated { g[i] *= factor }
  }

  /// "gradient of <tensor>" for the first tensor whose summed ``nonFiniteFlags()`` are set.
  func nonFiniteTensor<C: Collection>(_ summedFlags: C) -> String? where C.Element == Double {
    zip(store.specs, summedFlags).first { $0.1 != 0 }.map { "gradient of \($0.0.name)" }
  }
}
