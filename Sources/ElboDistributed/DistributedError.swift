/// A failed collective or a disagreement between ranks, described in one line.
///
/// The description names the rank, the job size and the collective (its `name:` label), e.g.
/// `rank 1/4: gradient all-reduce: MPI_Allreduce failed: MPI_ERR_TRUNCATE: message truncated`.
public struct DistributedError: Error, CustomStringConvertible, Sendable {
  /// The rank that raised the error.
  public var rank: Int
  /// The number of ranks in the job.
  public var size: Int
  /// The label of the collective (or check) that failed.
  public var collective: String
  /// What went wrong.
  public var message: String

  public init(rank: Int, size: Int, collective: String, message: String) {
    self.rank = rank
    self.size = size
    self.collective = collective
    self.message = message
  }

  public var description: String { "rank \(rank)/\(size): \(collective): \(message)" }
}
