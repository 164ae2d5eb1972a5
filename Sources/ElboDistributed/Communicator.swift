import CMPI
import Foundation

/// The job's ranks: who we are, how many we are, and the collectives between us.
///
/// One shared instance per process (``initialize()``). MPI is initialised with
/// `MPI_THREAD_SERIALIZED` or better, `MPI_Finalize` is registered with `atexit` (mpirun reports a
/// job as failed when a rank exits without it) and `MPI_ERRORS_RETURN` is set on
/// `MPI_COMM_WORLD`, so a failed MPI call becomes a thrown ``DistributedError`` instead of
/// OpenMPI's default abort with a page of diagnostics.
///
/// Every blocking collective is watched by a ``Watchdog``: if it lasts longer than
/// ``watchdogTimeout`` (another rank has probably died or taken a different code path), the rank
/// prints one line and aborts the whole job, so a failure never turns into a silent hang.
///
/// Threading: call collectives from one thread at a time (the MPI thread level is SERIALIZED).
public final class Communicator: @unchecked Sendable {
  /// This process's rank in `MPI_COMM_WORLD` (0-based).
  public let rank: Int
  /// The number of ranks in `MPI_COMM_WORLD`.
  public let size: Int
  /// This process's rank among the ranks on the same node (shared-memory domain).
  public let localRank: Int
  /// The number of ranks on this node.
  public let localSize: Int
  /// The MPI processor name (the host name, as MPI sees it).
  public let hostname: String
  /// The MPI thread support level that was provided.
  public let threadLevel: Int32
  /// True on rank 0, which does the job's printing and file commits.
  public var isRoot: Bool { rank == 0 }

  /// Seconds a single collective may take before the job is aborted (default 300, or
  /// `ELBO_COLLECTIVE_TIMEOUT`). Values ≤ 0 disable the watchdog's abort.
  public var watchdogTimeout: Double {
    get { watchdog.timeout }
    set { watchdog.timeout = newValue }
  }

  /// The world communicator handle (for code that needs raw MPI).
  public let comm: MPI_Comm
  /// The watchdog that guards this communicator's collectives.
  public let watchdog: Watchdog
  /// This rank's debug log, if one was requested (``openDebugLog(directory:)``): every
  /// collective is logged as it is entered and left.
  public internal(set) var debugLog: DebugLog?

  nonisolated(unsafe) private static var shared: Communicator?
  private static let sharedLock = NSLock()

  /// Returns the process's communicator, initialising MPI on first use.
  ///
  /// Idempotent: later calls return the same instance. Works without mpirun too (a singleton
  /// run of size 1).
  public static func initialize() throws -> Communicator {
    sharedLock.lock()
    defer { sharedLock.unlock() }
    if let shared { return shared }
    let made = try Communicator()
    shared = made
    return made
  }

  private init() throws {
    let world = elbo_mpi_comm_world()!
    var initialized: Int32 = 0
    MPI_Initialized(&initialized)
    var provided: Int32 = elbo_mpi_thread_serialized()
    if initialized == 0 {
      let rc = MPI_Init_thread(nil, nil, elbo_mpi_thread_serialized(), &provided)
      if rc != elbo_mpi_success() {
        throw DistributedError(rank: 0, size: 0, collective: "MPI initialisation",
                               message: "MPI_Init_thread failed (\(Communicator.errorString(rc)))")
      }
      // Finalising at exit keeps mpirun from reporting a clean exit as a failure.
      atexit {
        var finalized: Int32 = 0
        MPI_Finalized(&finalized)
        if finalized == 0 { MPI_Finalize() }
      }
    } else {
      MPI_Query_thread(&provided)
    }
    threadLevel = provided
    comm = world
    MPI_Comm_set_errhandler(world, elbo_mpi_errors_return())

    var r: Int32 = 0
    var s: Int32 = 1
    MPI_Comm_rank(world, &r)
    MPI_Comm_size(world, &s)
    rank = Int(r)
    size = Int(s)

    var local: MPI_Comm? = elbo_mpi_comm_null()
    var lr: Int32 = 0
    var ls: Int32 = 1
    if MPI_Comm_split_type(world, elbo_mpi_comm_type_shared(), r, elbo_mpi_info_null(), &local)
      == elbo_mpi_success()
    {
      MPI_Comm_rank(local, &lr)
      MPI_Comm_size(local, &ls)
      MPI_Comm_free(&local)
    }
    localRank = Int(lr)
    localSize = Int(ls)

    var nameBuf = [CChar](repeating: 0, count: Int(elbo_mpi_max_processor_name()) + 1)
    var nameLen: Int32 = 0
    MPI_Get_processor_name(&nameBuf, &nameLen)
    hostname = String(cString: nameBuf)

    let env = ProcessInfo.processInfo.environment["ELBO_COLLECTIVE_TIMEOUT"]
    let timeout = env.flatMap(Double.init) ?? 300
    watchdog = Watchdog(timeout: timeout, prefix: "elbo: rank \(rank)/\(size): ")
    watchdog.start()
  }

  /// Prints `elbo: rank R/N: <message>` on stderr and ends the whole job with `MPI_Abort`.
  ///
  /// In a size-1 run it just exits with `code` after printing.
  public func abort(_ message: String, code: Int32 = 1) -> Never {
    Communicator.printLine("elbo: rank \(rank)/\(size): \(message)")
    if size == 1 { exit(code) }
    MPI_Abort(comm, code)
    exit(code)  // MPI_Abort does not return; this satisfies `Never` if it somehow does.
  }

  /// Writes one line to stderr, unbuffered, so it survives an abort that follows at once.
  static func printLine(_ line: String) {
    let text = line.hasSuffix("\n") ? line : line + "\n"
    text.withCString { ptr in
      _ = fputs(ptr, stderr)
    }
    fflush(stderr)
  }

  /// The text of an MPI error code.
  static func errorString(_ code: Int32) -> String {
    var buf = [CChar](repeating: 0, count: Int(elbo_mpi_max_error_string()) + 1)
    var len: Int32 = 0
    if MPI_Error_string(code, &buf, &len) != elbo_mpi_success() { return "MPI error \(code)" }
    return String(cString: buf)
  }

  /// Throws a ``DistributedError`` for a non-success MPI return code.
  @inline(__always)
  func check(_ rc: Int32, _ call: String, _ name: String) throws {
    if rc != elbo_mpi_success() {
      throw DistributedError(rank: rank, size: size, collective: name,
                             message: "\(call) failed: \(Communicator.errorString(rc))")
    }
  }

  /// Runs a blocking collective under the watchdog's eye (and logs it in the debug log).
  /// Public for collective work that does not go through this type, such as parallel HDF5.
  @inline(__always)
  public func watched<R>(_ name: String, _ body: () throws -> R) rethrows -> R {
    guard let debugLog else {
      watchdog.begin(name)
      defer { watchdog.end() }
      return try body()
    }
    debugLog.write("enter \(name)")
    let t0 = Watchdog.now()
    watchdog.begin(name)
    defer {
      watchdog.end()
      debugLog.write("leave \(name) " + String(format: "%.3f ms", (Watchdog.now() - t0) * 1000))
    }
    return try body()
  }
}
