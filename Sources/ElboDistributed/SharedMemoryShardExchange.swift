import CMPI

/// ``ShardExchange`` through an MPI-3 shared-memory window, for jobs whose ranks all run on
/// one node: ranks read each other's staging memory with plain loads, and no MPI message
/// carries data.
///
/// Every rank owns two staging areas of `capacity` floats in one window
/// (`MPI_Win_allocate_shared`), which every other rank maps too:
/// - reduce-scatter: each rank copies the blocks of its buffer that *other* ranks own into its
///   staging area; after a barrier, each rank adds the other ranks' contributions to its own
///   block, in rank order, straight from their staging areas;
/// - all-gather: each rank copies its own block into its staging area; after a barrier, each
///   rank copies the other ranks' blocks out of their areas.
///
/// Each float is written once by the rank that has it and read once by the rank that needs it.
/// OpenMPI's shared-memory transport (vader, without a single-copy mechanism, as in containers)
/// copies every message into a shared FIFO and out again, and its reduce-scatter first copies
/// the whole buffer into a scratch buffer; here a 425k-float exchange costs about half.
///
/// Synchronisation: one barrier per call, between `MPI_Win_sync`s (memory barriers), inside a
/// passive-target epoch opened once (`MPI_Win_lock_all`). Calls alternate between the two areas,
/// so no second barrier is needed to protect readers: call k writes area k mod 2 while slower
/// ranks may still be reading area (k − 1) mod 2 in call k − 1, and area k mod 2 is free because
/// a rank passes the barrier of call k − 1 only after every rank has finished the reads of call
/// k − 2.
///
/// The window lives until `MPI_Finalize` (freeing it is collective, which a `deinit` that ranks
/// reach at different times must not do); one per ``GradientSync``-like owner is a few MB.
public final class SharedMemoryShardExchange: ShardExchange {
  public let communicator: Communicator
  /// Floats per staging area: the largest buffer this exchange can move.
  public let capacity: Int
  public var transport: String { "shared memory" }

  private let window: MPI_Win
  /// areas[parity][rank]: rank's staging area for calls of that parity.
  private let areas: [[UnsafeMutablePointer<Float>]]
  private var parity = 0

  /// A shared-memory exchange for buffers of up to `capacity` floats, or nil when the job is
  /// not a single node of several ranks (then every rank returns nil; use
  /// ``CollectiveShardExchange``). Collective when it allocates: every rank must call it.
  public static func make(communicator: Communicator,
                          capacity: Int) throws -> SharedMemoryShardExchange? {
    // localSize == size on one rank means every rank is on this node: all ranks agree.
    guard communicator.size > 1, communicator.localSize == communicator.size else { return nil }
    return try SharedMemoryShardExchange(communicator: communicator, capacity: capacity)
  }

  private init(communicator c: Communicator, capacity: Int) throws {
    self.communicator = c
    self.capacity = capacity
    let name = "shared-memory window"
    // Areas padded to whole 4 KiB pages: MPI places the ranks' segments back to back, and a copy
    // between buffers whose addresses differ mod 64 bytes runs several times slower (measured
    // here: 0.25 ms instead of 0.03 ms for a 425k-float gradient's half).
    let stride = (max(capacity, 1) + 1023) / 1024 * 1024
    let bytes = 2 * stride * MemoryLayout<Float>.stride
    var base: UnsafeMutableRawPointer?
    var win: MPI_Win? = nil
    try c.watched(name) {
      try c.check(MPI_Win_allocate_shared(MPI_Aint(bytes), Int32(MemoryLayout<Float>.stride),
                                          elbo_mpi_info_null(), c.comm, &base, &win),
                  "MPI_Win_allocate_shared", name)
    }
    guard let win else {
      throw DistributedError(rank: c.rank, size: c.size, collective: name,
                             message: "MPI_Win_allocate_shared returned no window")
    }
    window = win
    try c.check(MPI_Win_set_errhandler(win, elbo_mpi_errors_return()), "MPI_Win_set_errhandler",
                name)
    var mapped: [UnsafeMutablePointer<Float>] = []
    for q in 0..<c.size {
      var size: MPI_Aint = 0
      var unit: Int32 = 0
      var peer: UnsafeMutableRawPointer?
      try c.check(MPI_Win_shared_query(win, Int32(q), &size, &unit, &peer),
                  "MPI_Win_shared_query", name)
      guard let peer, Int(size) >= bytes else {
        throw DistributedError(rank: c.rank, size: c.size, collective: name,
                               message: "rank \(q)'s shared segment is missing or too small "
                                 + "(\(size) bytes, \(bytes) needed)")
      }
      mapped.append(peer.bindMemory(to: Float.self, capacity: 2 * stride))
    }
    areas = [mapped, mapped.map { $0 + stride }]
    // One passive-target epoch for the window's life: MPI_Win_sync needs one.
    try c.check(MPI_Win_lock_all(MPI_MODE_NOCHECK, win), "MPI_Win_lock_all", name)
  }

  public func reduceScatterSum(_ buf: UnsafeMutableBufferPointer<Float>, counts: [Int],
                               name: String) throws {
    try exchange(buf, counts, name) { base, starts, area, r, size in
      // Publish the blocks the other ranks own (this rank's own block stays in `buf`).
      for q in 0..<size where q != r && counts[q] > 0 {
        (area[r] + starts[q]).update(from: base + starts[q], count: counts[q])
      }
      try barrier(name)
      // Sum this rank's block over the ranks: its own contribution, then the others' in rank
      // order (a fixed order per block, so a rerun on as many ranks gives the same bits).
      let lo = starts[r], n = counts[r]
      let own = base + lo
      for q in 0..<size where q != r {
        add(own, UnsafePointer(own), UnsafePointer(area[q] + lo), n)
      }
    }
  }

  public func allgatherBlocks(_ buf: UnsafeMutableBufferPointer<Float>, counts: [Int],
                              name: String) throws {
    try exchange(buf, counts, name) { base, starts, area, r, size in
      (area[r] + starts[r]).update(from: base + starts[r], count: counts[r])
      try barrier(name)
      for q in 0..<size where q != r && counts[q] > 0 {
        (base + starts[q]).update(from: area[q] + starts[q], count: counts[q])
      }
    }
  }

  // MARK: - Helpers

  /// What both exchanges share: check the counts, keep the ranks in step on an empty buffer,
  /// run `body` (base, block starts, this call's staging areas, rank, size) under the watchdog,
  /// then switch to the other areas for the next call.
  private func exchange(_ buf: UnsafeMutableBufferPointer<Float>, _ counts: [Int], _ name: String,
                        _ body: (UnsafeMutablePointer<Float>, [Int], [UnsafeMutablePointer<Float>],
                                 Int, Int) throws -> Void) throws {
    let c = communicator
    let starts = try check(buf, counts, name).map { Int($0) }
    // Every rank passes the same count: an empty buffer only keeps the ranks in step.
    guard buf.count > 0, let base = buf.baseAddress else { return try c.barrier(name: name) }
    let area = areas[parity]
    try c.watched(name) { try body(base, starts, area, c.rank, c.size) }
    parity ^= 1
  }

  /// The block starts, after checking the counts and that the buffer fits a staging area.
  private func check(_ buf: UnsafeMutableBufferPointer<Float>, _ counts: [Int],
                     _ name: String) throws -> [Int32] {
    let c = communicator
    guard buf.count <= capacity else {
      throw DistributedError(rank: c.rank, size: c.size, collective: name,
                             message: "\(buf.count) floats exceed the shared-memory staging "
                               + "area (\(capacity) floats)")
    }
    return try c.blockStarts(counts, total: buf.count, name)
  }

  /// Every rank's writes to the window before it are visible to every rank after it.
  private func barrier(_ name: String) throws {
    let c = communicator
    try c.check(MPI_Win_sync(window), "MPI_Win_sync", name)
    try c.check(MPI_Barrier(c.comm), "MPI_Barrier", name)
    try c.check(MPI_Win_sync(window), "MPI_Win_sync", name)
  }

  /// d[i] = a[i] + b[i] for i < n (`d` may be `a` or `b`: element i is read before it is
  /// written).
  @inline(__always)
  private func add(_ d: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>,
                   _ b: UnsafePointer<Float>, _ n: Int) {
    for i in 0..<n { d[i] = a[i] + b[i] }
  }
}
