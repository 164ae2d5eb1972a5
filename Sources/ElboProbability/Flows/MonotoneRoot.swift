// MARK: - The scalar equation behind the planar and Sylvester inverses
//
// Both flows add a tanh to a linear coordinate, so inverting them comes down to solving, once per
// coordinate,
//
//   g(x) = x + ρ tanh(κx + c) = target,   g′(x) = 1 + ρκ(1 − tanh²(κx + c)),
//
// which has exactly one root when ρκ > −1: then g′ ≥ 1 − max(0, −ρκ) > 0, g is strictly
// increasing, and since |ρ tanh| ≤ |ρ| the root lies in [target − |ρ|, target + |ρ|]. Newton's
// method from the bracket's midpoint converges quadratically; a step that leaves the bracket (or
// fails to shrink |g − target|) is replaced by bisection, so the solve always terminates at the
// root. In Double: the inverses are round-trip checks and density evaluations, not hot loops.

/// The root of x + ρ tanh(κx + c) = target, for ρκ > −1 (Newton with a bisection safeguard).
public func solveTanhShift(target: Double, rho: Double, kappa: Double, shift c: Double)
  -> Double {
  var lo = target - Swift.abs(rho), hi = target + Swift.abs(rho)
  var x = target - rho * _tanh(kappa * target + c)   // one fixed-point step as a guess
  if !(x >= lo && x <= hi) { x = 0.5 * (lo + hi) }
  for _ in 0..<200 {
    let t = _tanh(kappa * x + c)
    let gap = x + rho * t - target
    if gap == 0 { return x }
    if gap > 0 { hi = x } else { lo = x }
    if hi - lo <= 4 * Double.ulpOfOne * Swift.max(1, Swift.abs(x)) { return x }
    let slope = 1 + rho * kappa * (1 - t * t)
    let newton = x - gap / slope
    x = (newton > lo && newton < hi) ? newton : 0.5 * (lo + hi)
  }
  return x
}

#if canImport(Glibc)
import Glibc
@inline(__always) func _tanh(_ x: Double) -> Double { Glibc.tanh(x) }
@inline(__always) func _sqrt(_ x: Double) -> Double { Glibc.sqrt(x) }
#else
import Darwin
@inline(__always) func _tanh(_ x: Double) -> Double { Darwin.tanh(x) }
@inline(__always) func _sqrt(_ x: Double) -> Double { Darwin.sqrt(x) }
#endif
