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
/// Bucketed use (overlap with backward): ``begin(_:)`` with the gradient buffer, then
/// ``startBucket(_:)`` for each bucket as soon as backward has finished writing it, then
/// ``finish()`` before the optimizer reads the gradients. Buckets must be started in the same
/// order on every rank (MPI matches non-blocking collectives by issue order); ``bucketRanges(count:)``
/// gives a fixed partition into runs of ``bucketSize`` floats.
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

  /// Sets the buffer the next buckets refer to; call before ``startBucket(_:)``.
  public func begin(_ grads: UnsafeMutableBufferPointer<Float>) {
    buffer = grads
    pending.removeAll()
  }

  /// Starts the non-blocking sum of `range` of the buffer given to ``begin(_:)``.
  public func startBucket(_ range: Range<Int>) throws {
    guard let buffer, range.lowerBound >= 0, range.upperBound <= buffer.count else {
      throw DistributedError(rank: communicator.rank, size: communicator.size, collective: name,
                             message: "bucket \(range) is outside the gradient buffer "
                               + "(\(buffer?.count ?? 0) floats; call begin(_:) first)")
    }
    let slice = UnsafeMutableBufferPointer(rebasing: buffer[range])
    pending.append(try communicator.iallreduceSum(slice, name: name))
  }

  /// Waits for every started bucket and applies ``mode``'s scaling to the whole buffer.
  public func finish() throws {
    defer { pending.removeAll() }
    for request in pending { try request.wait() }
    if mode == .average, let buffer { scale(buffer) }
    buffer = nil
  }

  /// Bucketed reduction of the whole buffer in fixed order (no overlap; for tests and
  /// as the reference for the overlapped path).
  public func reduceBucketed(_ grads: UnsafeMutableBufferPointer<Float>) throws {
    begin(grads)
    for range in bucketRanges(count: grads.count) { try startBucket(range) }
    try finish()
  }

  private func scale(_ grads: UnsafeMutableBufferPointer<Float>) {
    guard communicator.size > 1 else { return }
    let s = 1 / Float(communicator.size)
    for i in grads.indices { grads[i] *= s }
  }
}
