/// Moves the shards of a flat `Float` buffer between ranks: the two halves of an all-reduce,
/// with work in between that each rank does on its own shard only (the sharded optimizer step,
/// ZeRO stage 1: reduce-scatter the gradient, update a shard, all-gather the parameters).
///
/// The buffer is cut into one contiguous block per rank: block r holds `counts[r]` elements and
/// starts at `counts[0] + … + counts[r−1]`. Every rank passes the same counts, and every rank
/// makes the same calls in the same order. Two transports:
/// - ``CollectiveShardExchange``: `MPI_Reduce_scatter` and `MPI_Allgatherv`; works anywhere;
/// - ``SharedMemoryShardExchange``: an MPI-3 shared-memory window, when all ranks are on one
///   node; half the copies of MPI's shared-memory transport.
public protocol ShardExchange: AnyObject {
  /// How the shards move, for logs and headers ("MPI collectives", "shared memory").
  var transport: String { get }
  /// Sums `buf` element-wise over all ranks, keeping only this rank's block of the sum:
  /// afterwards block `rank` of `buf` holds Σ over ranks of that block; the rest of `buf` is
  /// unspecified.
  func reduceScatterSum(_ buf: UnsafeMutableBufferPointer<Float>, counts: [Int],
                        name: String) throws
  /// Every rank's block of `buf` into every rank's `buf`: before the call block `rank` holds
  /// this rank's contribution; afterwards every block does, identical on every rank.
  func allgatherBlocks(_ buf: UnsafeMutableBufferPointer<Float>, counts: [Int],
                       name: String) throws
}

/// ``ShardExchange`` through MPI's collectives (`MPI_Reduce_scatter`, `MPI_Allgatherv`), on
/// any number of nodes and any network.
public final class CollectiveShardExchange: ShardExchange {
  public let communicator: Communicator
  public var transport: String { "MPI collectives" }

  public init(communicator: Communicator) { self.communicator = communicator }

  public func reduceScatterSum(_ buf: UnsafeMutableBufferPointer<Float>, counts: [Int],
                               name: String) throws {
    try communicator.reduceScatterSum(buf, counts: counts, name: name)
  }

  public func allgatherBlocks(_ buf: UnsafeMutableBufferPointer<Float>, counts: [Int],
                              name: String) throws {
    try communicator.allgatherBlocks(buf, counts: counts, name: name)
  }
}
