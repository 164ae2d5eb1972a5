import ElboDistributed
import ElboModels

/// How a step's flat gradient is summed over the ranks.
///
/// - `fused`: backward first, then ONE `MPI_Allreduce` of the whole flat buffer.
/// - `bucketed`: fixed-order buckets of the flat buffer, each started with `MPI_Iallreduce` as
///   soon as backward has finished writing it (last layers first), overlapped with the rest of
///   backward; the step waits for all of them before the optimizer.
///
/// `elbo bench vae` on several ranks times both side by side. `elbo train --allreduce` picks
/// one; the default is ``trainerDefault``.
public enum AllreduceMethod: String, Codable, CaseIterable, Sendable {
  case fused, bucketed

  /// The method the training loop uses unless told otherwise: fused. Measured here (README,
  /// "Measured"): on 2 ranks × 1 thread the two tie when the machine is otherwise idle, because
  /// with shared memory the copies are CPU work on the same cores backward needs, so overlap
  /// only hides waiting; bucketed is faster when other jobs stall the ranks, and slower over TCP.
  public static let trainerDefault: AllreduceMethod = .fused
  /// Floats per bucket of the bucketed method (64 Ki floats = 256 KiB: the VAE's 425k-float
  /// gradient becomes 7 buckets, the first started after the decoder's last layer).
  public static let defaultBucketFloats = 1 << 16
}

/// Backward on the tape plus the all-reduce of the store's flat gradient, by either method.
final class GradientSync {
  let method: AllreduceMethod
  let store: ParameterStore
  let communicator: Communicator
  let reducer: GradientReducer

  init(_ method: AllreduceMethod, store: ParameterStore, communicator: Communicator,
       bucketFloats: Int = AllreduceMethod.defaultBucketFloats) {
    self.method = method
    self.store = store
    self.communicator = communicator
    reducer = GradientReducer(communicator: communicator, mode: .sum, bucketSize: bucketFloats)
  }

  /// Buckets the last bucketed step had started before backward reached the first layer (whose
  /// gradient is final last): the ones overlapped with backward's remaining work.
  private(set) var startedDuringBackward = 0

  /// Buckets per reduction (1 for the fused method).
  var bucketCount: Int {
    method == .fused ? 1 : reducer.bucketRanges(count: store.count).count
  }

  /// Runs backward from `loss` (none: this rank had no items) and sums the gradient over ranks.
  /// Returns the seconds spent in backward (bucket starts included) and in the final reduction
  /// or wait. Every rank makes the same collective calls in the same order either way.
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
}
