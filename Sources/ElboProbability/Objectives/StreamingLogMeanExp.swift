#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

/// log (1/K) Σ_{s=1..K} e^{w_s} per example, over log-weights that arrive in chunks of any size
/// and in any order of examples, merged in Double with a running maximum:
///
///   m' = max(m, max_s w_s),   S' = S·e^{m − m'} + Σ_s e^{w_s − m'},   estimate = m + log S − log K
///
/// so the result equals the one-shot log-mean-exp to rounding (~1e-13 relative) however K is
/// split, including when a later chunk holds a new maximum. With w_s = log p(x, z_s) − log q(z_s|x)
/// this is the importance-sampled log p̂(x) of Burda et al. (2016, §5).
///
/// Unlike ``ImportanceSampledLogLikelihood`` (chunks laid out [chunk, examples]), each call takes
/// one example's weights contiguously, which is how `VAELogLikelihoodEvaluator` lays its rows out.
public struct StreamingLogMeanExp {
  private var maxLog: [Double]
  private var sumExp: [Double]
  /// Number of weights merged so far, per example.
  public private(set) var counts: [Int]

  /// - Parameter examples: number of independent estimates (≥ 0).
  public init(examples: Int) {
    maxLog = Array(repeating: -.infinity, count: examples)
    sumExp = Array(repeating: 0, count: examples)
    counts = Array(repeating: 0, count: examples)
  }

  /// Starts over for `examples` estimates, keeping the arrays' storage.
  public mutating func reset(examples: Int) {
    maxLog.removeAll(keepingCapacity: true)
    sumExp.removeAll(keepingCapacity: true)
    counts.removeAll(keepingCapacity: true)
    maxLog.append(contentsOf: repeatElement(-.infinity, count: examples))
    sumExp.append(contentsOf: repeatElement(0, count: examples))
    counts.append(contentsOf: repeatElement(0, count: examples))
  }

  /// Merges `weights` (log-weights of example `e`, any count ≥ 0) into its estimate.
  ///
  /// The maximum is taken in Float (exact), the exponentials and the sum in Double. A NaN weight
  /// makes the estimate NaN; +∞ makes it +∞; weights that are all −∞ leave it −∞.
  public mutating func add(example e: Int, weights: UnsafeBufferPointer<Float>) {
    guard !weights.isEmpty else { return }
    counts[e] += weights.count
    if maxLog[e].isNaN { return }
    var mf = -Float.infinity
    var sawNaN = false
    for w in weights {
      mf = Swift.max(mf, w)
      sawNaN = sawNaN || w.isNaN
    }
    if sawNaN { maxLog[e] = .nan; return }
    let m = Swift.max(maxLog[e], Double(mf))
    guard m.isFinite else { maxLog[e] = m; return }  // +∞, or −∞ with nothing yet
    // Rescale the running sum to the new maximum, then add this chunk.
    var acc = maxLog[e].isFinite ? sumExp[e] * exp(maxLog[e] - m) : 0
    for w in weights { acc += exp(Double(w) - m) }
    maxLog[e] = m
    sumExp[e] = acc
  }

  /// log p̂ per example: m + log S − log K (−∞ for an example whose weights were all −∞ or that
  /// got none).
  public var estimates: [Double] {
    (0..<maxLog.count).map { e in
      let m = maxLog[e]
      return m.isFinite ? m + log(sumExp[e]) - log(Double(counts[e])) : m
    }
  }
}
