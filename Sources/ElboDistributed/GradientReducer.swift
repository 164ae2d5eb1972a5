/// Reduces a model's flat gradient buffer over all ranks.
///
/// It sees only a contiguous `Float` buffer (the model keeps all gradients in one), so the whole
/// reduction is one `MPI_Allreduce`, or a fixed sequence of buckets overlapped with backward.
///
/// Two modes:
/// - ``Mode/sum``: plain element-wise sum. Elbo's trainer divides each rank's loss by the
///   *global* batch size, so the sum of per-rank gradients is already the gradient of the mean
///   loss; no scaling needed. This is the trainer's mode.
/// - ``Mode/average``: sum then scale by `1/size`; for losses that are means over the *local*
///   batch (equal local batch sizes assumed).
///
/// Bucketed use, overlapped with backward: ``begin(_:)`` with the gradient buffer, then
/// ``markFinal(_:)`` for each range of it that backward has finished writing (the tape reports
/// parameter gradients last layer first), then ``finish()`` before the optimizer reads the
/// gradients. The buffer is cut into fixed buckets of ``bucketSize`` floats, and buckets are
/// started with `MPI_Iallreduce` strictly from the last to the first, each as soon as all of it
/// is final — so every rank issues the same non-blocking collectives in the same order (MPI
/// matches them by issue order) whatever the timing. ``finish()`` starts any bucket not yet
/// started, in the same order, and waits for all.
///
/// Progress: OpenMPI 4.1 has no progress thread; a non-blocking collective advances only inside
/// MPI calls. ``markFinal(_:)`` therefore also tests the buckets in flight, so they move on
/// while backward computes the earlier layers.
///
/// Fused and bucketed reductions give identical sums when each element's sum is exact; for
/// general floats MPI may pick a different reduction algorithm (association order) for
/// different message sizes, so the two can differ in the last bit, while every rank always gets
/// the same result as every other rank for the same call.
public final class GradientReducer {
  /// How gradients from the ranks are combined.
  public enum Mode: Sendable { case sum, average }

  /// The communicator the reductions run over.
  public let communicator: Communicator
  /// The combination mode (default ``Mode/sum``, see the type's documentation).
  public var mode: Mode
  /// Floats per bucket in bucketed mode.
  public var bucketSize: Int
  /// The label used in errors and watchdog messages.
  public var name: String

  private var buffer: UnsafeMutableBufferPointer<Float>?
  private var buckets: [Range<Int>] = []
  /// Floats of each bucket not yet marked final.
  private var unmarked: [Int] = []
  /// The next bucket to start (they start from the last to the first); -1 when all started.
  private var next = -1
  private var pending: [CollectiveRequest] = []

  /// Creates a reducer; `bucketSize` is in floats (default 1 Mi floats = 4 MiB).
  public init(communicator: Communicator, mode: Mode = .sum, bucketSize: Int = 1 << 20,
              name: String = "gradient all-reduce")
  {
    self.communicator = communicator
    self.mode = mode
    self.bucketSize = max(1, bucketSize)
    self.name = name
  }

  /// One fused in-place sum over ranks, then scaling by `1/size`.
  public func allreduceAverage(_ grads: UnsafeMutableBufferPointer<Float>) throws {
    try communicator.allreduceSum(grads, name: name)
    scale(grads)
  }

  /// One fused in-place sum over ranks (no scaling).
  public func allreduceSum(_ grads: UnsafeMutableBufferPointer<Float>) throws {
    try communicator.allreduceSum(grads, name: name)
  }

  /// One fused reduction according to ``mode``.
  public func reduce(_ grads: UnsafeMutableBufferPointer<Float>) throws {
    switch mode {
    case .sum: try allreduceSum(grads)
    case .average: try allreduceAverage(grads)
    }
  }

  /// The fixed partition of `count` floats into buckets of ``bucketSize`` (last one shorter).
  public func bucketRanges(count: Int) -> [Range<Int>] {
    stride(from: 0, to: count, by: bucketSize).map { $0..<min($0 + bucketSize, count) }
  }

  /// Starts a bucketed reduction of `grads` (nothing is sent until buckets are final).
  public func begin(_ grads: UnsafeMutableBufferPointer<Float>) {
    buffer = grads
    buckets = bucketRanges(count: grads.count)
    unmarked = buckets.map(\.count)
    next = buckets.count - 1
    pending.removeAll()
  }

  /// Buckets of the current reduction already started (sent) — for tests and debug logs.
  public var bucketsStarted: Int { buckets.count - 1 - next }

  /// Declares `range` of the buffer final (backward will not write it again) and starts every
  /// bucket, in order, that is now entirely final. Ranges must not overlap within one reduction.
  public func markFinal(_ range: Range<Int>) throws {
    guard let buffer, range.lowerBound >= 0, range.upperBound <= buffer.count else {
      throw DistributedError(rank: communicator.rank, size: communicator.size, collective: name,
                             message: "range \(range) is outside the gradient buffer "
                               + "(\(buffer?.count ?? 0) floats; call begin(_:) first)")
    }
    guard !range.isEmpty else { return }
    // Buckets are consecutive runs of bucketSize floats: the ones `range` touches.
    for b in (range.lowerBound / bucketSize)...((range.upperBound - 1) / bucketSize) {
      unmarked[b] -= buckets[b].clamped(to: range).count
    }
    while next >= 0 && unmarked[next] <= 0 { try startNext() }
    // One test is one turn of MPI's progress engine, which advances every bucket in flight.
    try pending.first { !$0.isComplete }?.test()
  }

  /// Starts the buckets not started yet (in order), waits for all, and applies ``mode``'s
  /// scaling to the whole buffer.
  public func finish() throws {
    defer { pending.removeAll(); buffer = nil; buckets.removeAll(); next = -1 }
    while next >= 0 { try startNext() }
    for request in pending { try request.wait() }
    if mode == .average, let buffer { scale(buffer) }
  }

  /// Bucketed reduction of the whole buffer in the fixed order, no overlap (the reference for
  /// the overlapped path).
  public func reduceBucketed(_ grads: UnsafeMutableBufferPointer<Float>) throws {
    begin(grads)
    try finish()
  }

  private func startNext() throws {
    guard let buffer else { return }
    let slice = UnsafeMutableBufferPointer(rebasing: buffer[buckets[next]])
    next -= 1
    pending.append(try communicator.iallreduceSum(slice, name: name))
  }

  private func scale(_ grads: UnsafeMutableBufferPointer<Float>) {
    guard communicator.size > 1 else { return }
    let s = 1 / Float(communicator.size)
    for i in grads.indices { grads[i] *= s }
  }
}
