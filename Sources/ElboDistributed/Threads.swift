import Foundation

extension Communicator {
  /// BLAS threads each rank should use: the node's online cores shared among its ranks
  /// (`max(1, cores / localSize)`), so ranks on one node do not oversubscribe the CPU.
  public func defaultThreadsPerRank() -> Int {
    let cores = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
    return max(1, max(1, cores) / max(1, localSize))
  }
}
