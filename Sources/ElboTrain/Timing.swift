#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

/// Seconds on a monotonic clock.
public func now() -> Double {
  var ts = timespec()
  clock_gettime(CLOCK_MONOTONIC, &ts)
  return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

/// The median of `v` (NaN when empty).
public func median(_ v: [Double]) -> Double {
  let s = v.sorted()
  return s.isEmpty ? .nan : s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

/// Rounded for JSON lines: one and three decimals.
public func round1(_ v: Double) -> Double { (v * 10).rounded() / 10 }
public func round3(_ v: Double) -> Double { (v * 1000).rounded() / 1000 }
