import CMPI

/// A Swift scalar type with a matching MPI datatype.
public protocol MPIScalar: Sendable {
  /// The MPI datatype of one element.
  static var mpiType: MPI_Datatype { get }
}

extension Float: MPIScalar { public static var mpiType: MPI_Datatype { elbo_mpi_float() } }
extension Double: MPIScalar { public static var mpiType: MPI_Datatype { elbo_mpi_double() } }
extension Int64: MPIScalar { public static var mpiType: MPI_Datatype { elbo_mpi_int64() } }
extension UInt64: MPIScalar { public static var mpiType: MPI_Datatype { elbo_mpi_uint64() } }
extension Int32: MPIScalar { public static var mpiType: MPI_Datatype { elbo_mpi_int() } }
extension UInt8: MPIScalar { public static var mpiType: MPI_Datatype { elbo_mpi_uint8() } }

/// MPI counts are `int`; larger buffers are processed in chunks of this many elements.
let maxChunk = 1 << 30

/// Collectives. Every call takes a `name` that labels errors and watchdog messages, and every
/// rank must make the same calls in the same order with the same element counts.
extension Communicator {
  // MARK: All-reduce

  private func allreduce<T: MPIScalar>(_ buf: UnsafeMutableBufferPointer<T>, _ op: MPI_Op,
                                       _ name: String) throws
  {
    guard let base = buf.baseAddress, buf.count > 0 else {
      try barrier(name: name)  // keep ranks in step even for empty buffers
      return
    }
    try watched(name) {
      var offset = 0
      while offset < buf.count {
        let n = min(maxChunk, buf.count - offset)
        try check(MPI_Allreduce(elbo_mpi_in_place(), base + offset, Int32(n), T.mpiType, op, comm),
                  "MPI_Allreduce", name)
        offset += n
      }
    }
  }

  /// Sums `buf` element-wise over all ranks, in place.
  public func allreduceSum<T: MPIScalar>(_ buf: UnsafeMutableBufferPointer<T>, name: String) throws {
    try allreduce(buf, elbo_mpi_sum(), name)
  }
  /// Element-wise maximum over all ranks, in place.
  public func allreduceMax<T: MPIScalar>(_ buf: UnsafeMutableBufferPointer<T>, name: String) throws {
    try allreduce(buf, elbo_mpi_max(), name)
  }
  /// Element-wise minimum over all ranks, in place.
  public func allreduceMin<T: MPIScalar>(_ buf: UnsafeMutableBufferPointer<T>, name: String) throws {
    try allreduce(buf, elbo_mpi_min(), name)
  }

  /// Sums an array element-wise over all ranks, in place.
  public func allreduceSum<T: MPIScalar>(_ array: inout [T], name: String) throws {
    try array.withUnsafeMutableBufferPointer { try allreduceSum($0, name: name) }
  }
  /// Element-wise maximum of an array over all ranks, in place.
  public func allreduceMax<T: MPIScalar>(_ array: inout [T], name: String) throws {
    try array.withUnsafeMutableBufferPointer { try allreduceMax($0, name: name) }
  }
  /// Element-wise minimum of an array over all ranks, in place.
  public func allreduceMin<T: MPIScalar>(_ array: inout [T], name: String) throws {
    try array.withUnsafeMutableBufferPointer { try allreduceMin($0, name: name) }
  }

  /// The sum of one scalar over all ranks.
  public func allreduceSum<T: MPIScalar>(_ value: T, name: String) throws -> T {
    var v = [value]
    try allreduceSum(&v, name: name)
    return v[0]
  }
  /// The maximum of one scalar over all ranks.
  public func allreduceMax<T: MPIScalar>(_ value: T, name: String) throws -> T {
    var v = [value]
    try allreduceMax(&v, name: name)
    return v[0]
  }
  /// The minimum of one scalar over all ranks.
  public func allreduceMin<T: MPIScalar>(_ value: T, name: String) throws -> T {
    var v = [value]
    try allreduceMin(&v, name: name)
    return v[0]
  }

  /// True on every rank if `flag` is true on any rank (e.g. "some rank saw a non-finite loss").
  public func allreduceLogicalOr(_ flag: Bool, name: String) throws -> Bool {
    var v: [Int32] = [flag ? 1 : 0]
    try v.withUnsafeMutableBufferPointer { try allreduce($0, elbo_mpi_lor(), name) }
    return v[0] != 0
  }

  // MARK: Broadcast

  /// Copies `buf` from `root` to every rank; all ranks pass buffers of the same count.
  public func broadcast<T: MPIScalar>(_ buf: UnsafeMutableBufferPointer<T>, root: Int = 0,
                                      name: String) throws
  {
    try checkRoot(root, name)
    guard let base = buf.baseAddress, buf.count > 0 else { return }
    try watched(name) {
      var offset = 0
      while offset < buf.count {
        let n = min(maxChunk, buf.count - offset)
        try check(MPI_Bcast(base + offset, Int32(n), T.mpiType, Int32(root), comm), "MPI_Bcast",
                  name)
        offset += n
      }
    }
  }

  /// Copies an array from `root` to every rank; other ranks' arrays are resized to match
  /// (the count is broadcast first, so they may pass an empty array).
  public func broadcast<T: MPIScalar>(_ array: inout [T], root: Int = 0, name: String) throws {
    var count: [Int64] = [Int64(array.count)]
    try count.withUnsafeMutableBufferPointer { try broadcast($0, root: root, name: name) }
    guard count[0] >= 0, count[0] <= Int64(Int.max / 16) else {
      throw DistributedError(rank: rank, size: size, collective: name,
                             message: "broadcast of an invalid element count \(count[0])")
    }
    let n = Int(count[0])
    if array.count != n {
      guard let zero = array.first ?? Communicator.zero(T.self) else {
        throw DistributedError(rank: rank, size: size, collective: name,
                               message: "cannot resize an array of \(T.self)")
      }
      array = [T](repeating: zero, count: n)
    }
    try array.withUnsafeMutableBufferPointer { try broadcast($0, root: root, name: name) }
  }

  /// Returns `root`'s string on every rank (UTF-8; other ranks' `string` is ignored).
  public func broadcast(string: String, root: Int = 0, name: String) throws -> String {
    var bytes = rank == root ? Array(string.utf8) : []
    try broadcast(&bytes, root: root, name: name)
    return String(decoding: bytes, as: UTF8.self)
  }

  // MARK: All-gather

  /// Every rank's `value`, indexed by rank.
  public func allgather<T: MPIScalar>(_ value: T, name: String) throws -> [T] {
    try allgather([value], name: name)
  }

  /// Every rank's fixed-size buffer, concatenated in rank order (`size × buf.count` elements);
  /// all ranks pass the same count.
  public func allgather<T: MPIScalar>(_ buf: UnsafeBufferPointer<T>, name: String) throws -> [T] {
    guard let base = buf.baseAddress, buf.count > 0 else { return [] }
    guard buf.count * size <= Int(Int32.max) else {
      throw DistributedError(rank: rank, size: size, collective: name,
                             message: "allgather of \(buf.count) elements per rank is too large")
    }
    var out = [T](repeating: base[0], count: buf.count * size)
    try watched(name) {
      try out.withUnsafeMutableBufferPointer { dst in
        try check(MPI_Allgather(base, Int32(buf.count), T.mpiType, dst.baseAddress,
                                Int32(buf.count), T.mpiType, comm), "MPI_Allgather", name)
      }
    }
    return out
  }

  /// Every rank's fixed-size array, concatenated in rank order.
  public func allgather<T: MPIScalar>(_ array: [T], name: String) throws -> [T] {
    try array.withUnsafeBufferPointer { try allgather($0, name: name) }
  }

  // MARK: Reduce-scatter and all-gather of contiguous blocks

  /// Sums `buf` element-wise over all ranks but keeps, on each rank, only its own block of the
  /// sum (`MPI_Reduce_scatter`, in place).
  ///
  /// `buf` is cut into one contiguous block per rank: block r holds `counts[r]` elements and
  /// starts at `counts[0] + … + counts[r−1]`; the counts may differ, and every rank passes the
  /// same ones (summing to `buf.count`). Afterwards block `rank` of `buf` holds
  /// Σ over ranks of that block; the rest of `buf` is unspecified (MPI works in it).
  /// With ``allgatherBlocks(_:counts:name:)`` this is an all-reduce split in two, with work in
  /// between that each rank does only on its own block (ZeRO stage 1: the optimizer step).
  public func reduceScatterSum<T: MPIScalar>(_ buf: UnsafeMutableBufferPointer<T>, counts: [Int],
                                             name: String) throws
  {
    let starts = try blockStarts(counts, total: buf.count, name)
    guard let base = buf.baseAddress, buf.count > 0 else {
      try barrier(name: name)  // keep ranks in step even for empty buffers
      return
    }
    let counts32 = counts.map { Int32($0) }
    try watched(name) {
      try check(MPI_Reduce_scatter(elbo_mpi_in_place(), base, counts32, T.mpiType, elbo_mpi_sum(),
                                   comm), "MPI_Reduce_scatter", name)
    }
    // In place, MPI leaves this rank's block at the start of the buffer: move it to its place.
    if starts[rank] > 0 && counts[rank] > 0 {
      (base + Int(starts[rank])).update(from: base, count: counts[rank])
    }
  }

  /// Every rank's block of `buf`, gathered into every rank's `buf` (`MPI_Allgatherv`, in place).
  ///
  /// Blocks as in ``reduceScatterSum(_:counts:name:)``: before the call block `rank` must hold
  /// this rank's contribution (the other blocks are overwritten); afterwards every rank's `buf`
  /// holds all blocks, identical on every rank.
  public func allgatherBlocks<T: MPIScalar>(_ buf: UnsafeMutableBufferPointer<T>, counts: [Int],
                                            name: String) throws
  {
    let starts = try blockStarts(counts, total: buf.count, name)
    guard let base = buf.baseAddress, buf.count > 0 else {
      try barrier(name: name)
      return
    }
    let counts32 = counts.map { Int32($0) }
    try watched(name) {
      try check(MPI_Allgatherv(elbo_mpi_in_place(), 0, elbo_mpi_datatype_null(), base, counts32,
                               starts, T.mpiType, comm), "MPI_Allgatherv", name)
    }
  }

  /// The start of each rank's block, after checking that `counts` splits `total` elements into
  /// one block per rank that MPI's `int` counts and displacements can address.
  func blockStarts(_ counts: [Int], total: Int, _ name: String) throws -> [Int32] {
    guard counts.count == size, counts.allSatisfy({ $0 >= 0 }), counts.reduce(0, +) == total else {
      throw DistributedError(rank: rank, size: size, collective: name,
                             message: "block counts \(counts.prefix(8)) do not split \(total) "
                               + "elements over \(size) ranks (one count ≥ 0 per rank, summing "
                               + "to the buffer's size)")
    }
    guard total <= Int(Int32.max) else {
      throw DistributedError(rank: rank, size: size, collective: name,
                             message: "\(total) elements is too large for one MPI call "
                               + "(at most \(Int32.max))")
    }
    var starts: [Int32] = [], start = 0
    for c in counts { starts.append(Int32(start)); start += c }
    return starts
  }

  // MARK: Barrier

  /// Waits until every rank has arrived.
  public func barrier(name: String) throws {
    try watched(name) { try check(MPI_Barrier(comm), "MPI_Barrier", name) }
  }

  // MARK: Non-blocking all-reduce

  /// Starts a non-blocking in-place sum of `buf` over all ranks (`MPI_Iallreduce`).
  ///
  /// The buffer must stay alive and untouched until ``CollectiveRequest/wait()`` returns, and
  /// every rank must start its non-blocking collectives in the same order. The watchdog guards
  /// the `wait()`, not the time in between.
  public func iallreduceSum<T: MPIScalar>(_ buf: UnsafeMutableBufferPointer<T>,
                                          name: String) throws -> CollectiveRequest
  {
    guard let base = buf.baseAddress, buf.count > 0 else {
      return CollectiveRequest(communicator: self, requests: [], name: name)
    }
    debugLog?.write("start \(name) (MPI_Iallreduce of \(buf.count) elements)")
    var requests: [MPI_Request?] = []
    var offset = 0
    while offset < buf.count {
      let n = min(maxChunk, buf.count - offset)
      var req: MPI_Request? = elbo_mpi_request_null()
      try check(MPI_Iallreduce(elbo_mpi_in_place(), base + offset, Int32(n), T.mpiType,
                               elbo_mpi_sum(), comm, &req), "MPI_Iallreduce", name)
      requests.append(req)
      offset += n
    }
    return CollectiveRequest(communicator: self, requests: requests, name: name)
  }

  private func checkRoot(_ root: Int, _ name: String) throws {
    guard root >= 0, root < size else {
      throw DistributedError(rank: rank, size: size, collective: name,
                             message: "root \(root) is not a rank of a \(size)-rank job")
    }
  }

  private static func zero<T: MPIScalar>(_: T.Type) -> T? {
    switch T.self {
    case is Float.Type: return Float(0) as? T
    case is Double.Type: return Double(0) as? T
    case is Int64.Type: return Int64(0) as? T
    case is UInt64.Type: return UInt64(0) as? T
    case is Int32.Type: return Int32(0) as? T
    case is UInt8.Type: return UInt8(0) as? T
    default: return nil
    }
  }
}

/// A non-blocking collective in flight; call ``wait()`` exactly once.
public final class CollectiveRequest {
  private let communicator: Communicator
  private var requests: [MPI_Request?]
  /// The collective's label.
  public let name: String

  init(communicator: Communicator, requests: [MPI_Request?], name: String) {
    self.communicator = communicator
    self.requests = requests
    self.name = name
  }

  /// True once the collective has completed (``wait()`` returned).
  public var isComplete: Bool { requests.isEmpty }

  /// Lets MPI advance the collective without blocking (`MPI_Test`); true once it is complete.
  @discardableResult
  public func test() throws -> Bool {
    var done: Int32 = 1
    for i in requests.indices {
      var flag: Int32 = 0
      try communicator.check(MPI_Test(&requests[i], &flag, elbo_mpi_status_ignore()), "MPI_Test",
                             name)
      if flag == 0 { done = 0 }
    }
    // A completed request is set to MPI_REQUEST_NULL by MPI_Test; waiting on it is a no-op.
    if done != 0 { requests.removeAll() }
    return done != 0
  }

  /// Blocks until the collective has completed on this rank.
  public func wait() throws {
    guard !requests.isEmpty else { return }
    let c = communicator
    try c.watched(name) {
      for i in requests.indices {
        try c.check(MPI_Wait(&requests[i], elbo_mpi_status_ignore()), "MPI_Wait", name)
      }
    }
    requests.removeAll()
  }
}
