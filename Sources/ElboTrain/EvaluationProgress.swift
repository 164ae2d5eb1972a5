import Foundation

/// Progress of a long evaluation (the importance-sampled log-likelihood), shown by rank 0:
///
///     log-likelihood k = 5000 |███████▌        |  1850/5000 examples  ETA 2m41s  11.5 ex/s
///
/// on a terminal (the same `ProgressLine` as training, redrawn at most 10 times a second), or a
/// plain line every `plainInterval` seconds otherwise (logs, pipes, several ranks; see
/// `ProgressLine.standardOutput`). Counts are rank 0's share; ranks get equal shares (±1), so
/// its fraction done is the run's. It does no communication, so ranks stay symmetric.
public final class EvaluationProgress {
  private let title: String
  private let line: ProgressLine?
  private let printLine: (String) -> Void
  private let start: Date
  private var lastPlain: Date
  /// Seconds between plain lines.
  public let plainInterval: Double

  /// - Parameters:
  ///   - title: what is evaluated, e.g. "log-likelihood k = 5000".
  ///   - line: the terminal line to draw on (nil: plain lines via `printLine`).
  public init(title: String, line: ProgressLine?, plainInterval: Double = 30,
              now: Date = Date(), printLine: @escaping (String) -> Void = { print($0) }) {
    self.title = title
    self.line = line
    self.printLine = printLine
    self.plainInterval = plainInterval
    start = now
    lastPlain = now
  }

  /// The progress for this process: nil on ranks other than 0, else a bar when stdout is a
  /// terminal (one rank) and plain lines otherwise.
  public static func standardOutput(title: String, rank: Int, ranks: Int) -> EvaluationProgress? {
    guard rank == 0 else { return nil }
    return EvaluationProgress(title: title, line: ProgressLine.standardOutput(ranks: ranks))
  }

  /// Reports `done` of `total` examples.
  public func update(done: Int, total: Int, now: Date = Date()) {
    let elapsed = now.timeIntervalSince(start)
    if let line {
      line.update(force: done == total, now: now) { width in
        EvaluationProgress.render(title: title, done: done, total: total, elapsed: elapsed,
                                  width: width)
      }
      if done == total { line.finish() }
    } else if done == total || now.timeIntervalSince(lastPlain) >= plainInterval {
      lastPlain = now
      printLine(EvaluationProgress.render(title: title, done: done, total: total,
                                          elapsed: elapsed, width: nil))
    }
  }

  /// The text shown: with a bar when `width` is given (never longer than it), else a plain line.
  ///
  /// - Parameters:
  ///   - done, total: examples evaluated and to evaluate (this rank's share).
  ///   - elapsed: seconds since the evaluation began; the ETA assumes the same rate.
  public static func render(title: String, done: Int, total: Int, elapsed: Double,
                            width: Int?) -> String {
    let rate = done > 0 && elapsed > 0 ? Double(done) / elapsed : nil
    var right = "  \(done)/\(total) examples"
    if done < total {
      right += "  ETA " + (rate.map { ProgressBar.duration(Double(total - done) / $0) } ?? "--")
    } else {
      right += "  done in " + ProgressBar.duration(elapsed)
    }
    if let rate { right += String(format: "  %.1f ex/s", rate) }
    guard let width else { return title + right }
    let left = title + " "
    let barWidth = min(40, width - left.count - right.count - 2)
    guard barWidth >= 8 else { return String((left + right.dropFirst(2)).prefix(width)) }
    let fraction = total > 0 ? min(max(Double(done) / Double(total), 0), 1) : 0
    return left + "|" + ProgressBar.bar(fraction, width: barWidth) + "|" + right
  }
}
