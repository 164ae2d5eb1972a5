import CStopSignals

/// Preemption: SIGTERM or SIGUSR1 asks a run to stop at the next step boundary, write a
/// checkpoint and exit with ``StopRequested/exitStatus``, so that a scheduler can requeue it and
/// `--resume latest` continues it exactly.
///
/// The signal reaches one process (a rank, or mpirun / the batch script that forwards it); the
/// ranks agree to stop through a slot in the loss-terms all-reduce that every step already makes
/// (``Trainer/step(_:)``), so the decision is taken on the same reduced value on every rank —
/// never by a rank-dependent branch — and costs no extra collective.
public enum StopSignals {
  /// Installs the handler (SIGTERM, SIGUSR1; a second signal of the same kind ends the process
  /// at once, the default action).
  public static func install() {
    _ = elbo_stop_signals_install()
  }

  /// The first stop signal this process received since ``install()``, or 0.
  public static var received: Int32 { elbo_stop_signal_received() }

  /// "SIGTERM", "SIGUSR1", or "signal N".
  public static func name(_ signal: Int32) -> String {
    switch signal {
    case 15: return "SIGTERM"
    case 10: return "SIGUSR1"
    default: return "signal \(signal)"
    }
  }
}

/// Thrown by the loop after it stopped on a stop signal and wrote its checkpoint.
public struct StopRequested: Error, CustomStringConvertible, Sendable {
  /// EX_TEMPFAIL (sysexits.h, "temporary failure; the user is invited to retry"): the status a
  /// batch script tests to requeue the job.
  public static let exitStatus: Int32 = 75
  /// The step the checkpoint holds (the next one to run).
  public let step: Int
  /// How many ranks received a stop signal.
  public let ranks: Int
  public let checkpoint: String

  public var description: String {
    "stopped on request at step \(step) (a stop signal reached \(ranks) rank(s)); checkpoint "
      + "\(checkpoint); continue with --resume latest (exit status \(Self.exitStatus))"
  }
}
