/// Streaming importance-sampled estimate of log p(x) for a batch of examples.
///
///   log p(x) ≈ log (1/K) Σ_{s=1..K} p(x, z_s)/q(z_s|x),  z_s ~ q(z|x)
/// (Burda et al. 2016, §5; with K = 5000 their "test log-likelihood").
///
/// K is processed in chunks (each a call to `logWeights(chunk, first)`) so that memory stays
/// bounded; the chunks are merged with a running log-sum-exp in Double, per example.
public struct ImportanceSampledLogLikelihood {
  private var maxLog: [Double]
  private var sumExp: [Double]
  private(set) var samples = 0

  public init(examples: Int) {
    maxLog = Array(repeating: -.infinity, count: examples)
    sumExp = Array(repeating: 0, count: examples)
  }

  /// Adds a chunk of log-weights laid out [chunk, examples].
  public mutating func add(logWeights: Tensor) {
    let n = maxLog.count
    precondition(logWeights.count % n == 0, "log-weights \(logWeights.shape) for \(n) examples")
    let chunk = logWeights.count / n
    let p = logWeights.pointer
    for e in 0..<n {
      var m = maxLog[e]
      for s in 0..<chunk { m = Swift.max(m, Double(p[s * n + e])) }
      guard m.isFinite else { maxLog[e] = m; continue }
      // Rescale the running sum to the new maximum, then add this chunk.
      var acc = maxLog[e].isFinite ? sumExp[e] * exp(maxLog[e] - m) : 0
      for s in 0..<chunk { acc += exp(Double(p[s * n + e]) - m) }
      maxLog[e] = m
      sumExp[e] = acc
    }
    samples += chunk
  }

  /// log p̂(x) per example.
  public var estimates: [Double] {
    let logK = log(Double(samples))
    return zip(maxLog, sumExp).map { m, s in m.isFinite ? m + log(s) - logK : m }
  }
}

#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif
