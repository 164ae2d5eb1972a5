import Foundation

/// The live progress line rank 0 draws when its stdout is a terminal:
///
///     epoch 2/10 |██████████▍          |  1234/6000  ETA 3m12s  2345 ex/s  F 104.21
///
/// redrawn in place (carriage return, erase to end of line) at most 10 times a second. When
/// stdout is not a terminal (CI, Slurm logs, pipes) there is no bar and the loop prints plain
/// lines instead, which read well in a log file.
public final class ProgressLine {
  private let write: (String) -> Void
  private let columns: () -> Int
  private var visible = false
  private var lastDraw = Date.distantPast
  /// Seconds between redraws: a terminal redrawn every step of a fast model would spend more
  /// time drawing than the eye can follow.
  public static let minimumInterval = 0.1

  /// - Parameters:
  ///   - columns: the terminal width now (it may change while training).
  ///   - write: writes text without adding a newline, and flushes.
  public init(columns: @escaping () -> Int, write: @escaping (String) -> Void) {
    self.columns = columns
    self.write = write
  }

  /// A line on this process's stdout, or nil when stdout is not a terminal.
  ///
  /// Under `mpirun` with several ranks, OpenMPI hands each rank a pseudo-terminal even when
  /// mpirun's own output goes to a file or a Slurm log, so `isatty` cannot tell; there
  /// (`ranks > 1`) the plain lines are used unless `ELBO_PROGRESS=bar` asks for the bar.
  /// `ELBO_PROGRESS=plain` forces plain lines anywhere.
  public static func standardOutput(ranks: Int) -> ProgressLine? {
    switch ProcessInfo.processInfo.environment["ELBO_PROGRESS"] {
    case "plain": return nil
    case "bar": break
    default: guard isatty(1) == 1, ranks == 1 else { return nil }
    }
    return ProgressLine(columns: terminalColumns, write: { text in
      fputs(text, stdout)
      fflush(stdout)
    })
  }

  /// The terminal's width (TIOCGWINSZ), else $COLUMNS, else 80.
  static func terminalColumns() -> Int {
    var size = winsize()
    if ioctl(1, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 { return Int(size.ws_col) }
    return ProcessInfo.processInfo.environment["COLUMNS"].flatMap { Int($0) } ?? 80
  }

  /// Redraws the line with `render(width)` if the last redraw is ≥ `minimumInterval` ago (or
  /// `force`). `render` is only called when drawing.
  public func update(force: Bool = false, now: Date = Date(), _ render: (Int) -> String) {
    guard force || now.timeIntervalSince(lastDraw) >= ProgressLine.minimumInterval else { return }
    lastDraw = now
    // One column short of the width: writing the last column makes some terminals wrap, and a
    // wrapped line can no longer be redrawn with a carriage return.
    write("\r" + render(max(columns() - 1, 20)) + "\u{1B}[K")
    visible = true
  }

  /// Erases the line so that an ordinary line can be printed; the next update redraws it.
  public func clear() {
    guard visible else { return }
    write("\r\u{1B}[K")
    visible = false
    lastDraw = .distantPast
  }

  /// Leaves the last state on screen and moves to the next line.
  public func finish() {
    guard visible else { return }
    write("\n")
    visible = false
  }
}

/// The text of the progress line, as a pure function of the numbers it shows.
public enum ProgressBar {
  /// - Parameters:
  ///   - epoch: 1-based epoch of the next step; `epochs` the number the run will reach.
  ///   - step: optimizer steps done; `totalSteps` the steps of the whole run.
  ///   - secondsPerStep: recent wall time per step (nil: not known yet); gives the ETA.
  ///   - examplesPerSecond: recent throughput (nil: not known yet).
  ///   - loss: the current F = −ELBO (nil: none yet).
  ///   - width: characters available; the result is never longer. The bar shrinks first,
  ///     then disappears, then the line is cut.
  public static func render(epoch: Int, epochs: Int, step: Int, totalSteps: Int,
                            secondsPerStep: Double?, examplesPerSecond: Double?, loss: Double?,
                            width: Int) -> String {
    let left = "epoch \(epoch)/\(epochs) "
    var right = "  \(step)/\(totalSteps)"
    if step < totalSteps {
      let eta = secondsPerStep.map { Double(totalSteps - step) * $0 }
      right += "  ETA " + (eta.map(duration) ?? "--")
    } else {
      right += "  done"
    }
    if let e = examplesPerSecond, e.isFinite { right += "  \(Int(e.rounded())) ex/s" }
    if let l = loss { right += "  F " + (l.isFinite ? String(format: "%.2f", l) : "\(l)") }

    let barWidth = min(40, width - left.count - right.count - 2)
    guard barWidth >= 8 else {
      let text = left + right.dropFirst(2)
      return String(text.prefix(width))
    }
    let fraction = totalSteps > 0 ? min(max(Double(step) / Double(totalSteps), 0), 1) : 0
    return left + "|" + bar(fraction, width: barWidth) + "|" + right
  }

  /// `width` cells filled to `fraction` with full blocks and one partial (eighths) block.
  static func bar(_ fraction: Double, width: Int) -> String {
    let eighths = Int((fraction * Double(width * 8)).rounded(.down))
    let full = eighths / 8, part = eighths % 8
    let partial = ["", "▏", "▎", "▍", "▌", "▋", "▊", "▉"][part]
    let filled = String(repeating: "█", count: full) + partial
    return filled + String(repeating: " ", count: width - full - (part > 0 ? 1 : 0))
  }

  /// 7s, 3m05s, 2h04m, 3d05h.
  static func duration(_ seconds: Double) -> String {
    guard seconds.isFinite, seconds >= 0 else { return "--" }
    let s = Int(seconds.rounded())
    if s < 60 { return "\(s)s" }
    if s < 3600 { return String(format: "%dm%02ds", s / 60, s % 60) }
    if s < 86400 { return String(format: "%dh%02dm", s / 3600, (s % 3600) / 60) }
    return String(format: "%dd%02dh", s / 86400, (s % 86400) / 3600)
  }
}
