import CMPI
import Foundation

/// Aborts the job when one collective has been in progress for too long.
///
/// OpenMPI 4.1 has no fault tolerance: when a rank dies or takes a different code path, the other
/// ranks block forever inside their next collective. Every blocking collective therefore sets a
/// marker ("in collective X since T") and clears it afterwards; a background thread looks at the
/// marker every ~0.5 s and, past the timeout, prints one line and aborts. Setting and clearing
/// the marker is a lock and two stores, negligible next to any MPI call.
public final class Watchdog: @unchecked Sendable {
  private let lock = NSLock()
  private var current: String?
  private var since: Double = 0
  private var fired = false
  private var started = false
  private var _timeout: Double
  private let prefix: String
  private let interval: Double
  /// What to do when a collective is stuck; the default prints the message and calls
  /// `MPI_Abort`. Tests replace it.
  public var onStuck: (String) -> Void

  /// Creates a watchdog; `prefix` starts each message (e.g. `"elbo: rank 1/4: "`).
  public init(timeout: Double, prefix: String, interval: Double = 0.5,
              onStuck: ((String) -> Void)? = nil)
  {
    _timeout = timeout
    self.prefix = prefix
    self.interval = interval
    self.onStuck = onStuck ?? { message in
      Communicator.printLine(message)
      abortWorld()
    }
  }

  /// Seconds a collective may take before ``onStuck`` runs (≤ 0 disables).
  public var timeout: Double {
    get { lock.lock(); defer { lock.unlock() }; return _timeout }
    set { lock.lock(); _timeout = newValue; lock.unlock() }
  }

  /// Starts the checking thread (once).
  public func start() {
    lock.lock()
    defer { lock.unlock() }
    if started { return }
    started = true
    let thread = Thread { [weak self] in
      while let self {
        Thread.sleep(forTimeInterval: self.interval)
        self.check(now: Watchdog.now())
      }
    }
    thread.name = "elbo-watchdog"
    thread.stackSize = 1 << 18
    thread.start()
  }

  /// Marks the start of collective `name`.
  @inline(__always)
  public func begin(_ name: String) {
    let t = Watchdog.now()
    lock.lock()
    current = name
    since = t
    lock.unlock()
  }

  /// Marks the end of the current collective.
  @inline(__always)
  public func end() {
    lock.lock()
    current = nil
    lock.unlock()
  }

  /// The collective in progress, if any, and how long it has run (for diagnostics).
  public var inProgress: (name: String, seconds: Double)? {
    lock.lock()
    defer { lock.unlock() }
    guard let current else { return nil }
    return (current, Watchdog.now() - since)
  }

  /// One check of the marker; runs ``onStuck`` once per stuck collective.
  func check(now: Double) {
    lock.lock()
    guard let name = current, _timeout > 0, now - since > _timeout, !fired else {
      lock.unlock()
      return
    }
    fired = true
    let limit = _timeout
    lock.unlock()
    let shown = limit == limit.rounded() ? String(Int(limit)) : String(limit)
    onStuck(prefix + "stuck for \(shown) s in collective '\(name)' "
      + "(another rank has probably failed); aborting the job")
    lock.lock()
    fired = false
    current = nil
    lock.unlock()
  }

  static func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
  }
}

/// Ends the whole job from any thread (the watchdog's default action).
func abortWorld() {
  MPI_Abort(elbo_mpi_comm_world(), 1)
  exit(1)
}
