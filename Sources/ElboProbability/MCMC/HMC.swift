import Foundation

/// Hamiltonian Monte Carlo on R independent chains, one per row (Neal 2011, "MCMC using
/// Hamiltonian dynamics", §5.2; Titsias & Ruiz 2019 use it for UIVI's reverse conditional).
///
/// Target: π(x) ∝ exp(log π(x)) on x ∈ ℝ^E, given as a closure that maps the chains' states
/// x [R, E] to log π(x) [R] (up to a constant per row) and ∇_x log π(x) [R, E]. Each iteration:
///
///   p ~ N(0, I)                                       fresh momentum, unit mass
///   (x*, p*) = leapfrog^L(x, p; h)                    L steps of size h (per chain or shared)
///   accept with probability a = min(1, exp(H(x, p) − H(x*, p*))),  H = −log π(x) + ½‖p‖²
///
/// The leapfrog map is volume-preserving and reversible for ANY force field (each half-step is a
/// shear), so the Metropolis test with the exact H leaves π invariant even when the gradient is
/// wrong; a wrong gradient only lowers the acceptance. (Tests of invariance therefore probe the
/// Metropolis step and the integrator's symmetry, not the gradient.)
///
/// Runs `burnIn` iterations, then `samples` iterations whose states are handed to `visit`.
/// Step-size adaptation (during burn-in only, so that the kept samples come from a fixed kernel
/// that leaves π invariant): after each burn-in iteration
///
///   h ← h · (1 + rate · (a − a*)/a*)
///
/// with a the Metropolis acceptance probability (of the chain, or the mean over chains for a
/// shared h) and a* the target acceptance. This is the rule of Titsias & Ruiz's MATLAB code (as
/// documented by a public reproduction of it): rate 0.01, a* = 0.9, initial h = 0.2 (0.5/dim z
/// for the VAE), 5 burn-in + 5 samples, 5 leapfrog steps, h carried over from one call to the
/// next. It was chosen over dual averaging (Hoffman & Gelman 2014) because the chains here are
/// short (5 + 5 iterations per call) and the step size lives across thousands of calls: a small
/// multiplicative nudge per call is what converges, and its whole state is h itself. (a* = 0.9
/// is high for HMC, whose optimum for long chains is ≈ 0.65 (Beskos et al. 2013); short
/// warm-started chains favour small, safe steps. Both are settings.)
///
/// Determinism: chain r draws its momenta and its accept uniforms from `streams[r]` only, so a
/// chain's path depends on its own stream and step size, never on which rank or batch holds
/// it. Each iteration takes whole Philox blocks, so a stream's state is its `block` counter:
/// `stepSizes` (plain Floats) and the streams' blocks are all a checkpoint has to save.
public struct HamiltonianMonteCarlo {
  /// A target: states x [R, E] → (log π(x) [R], ∇_x log π(x) [R, E]). The returned tensors are
  /// copied before the next call, so they may live in a tape's arena.
  public typealias Target = (Tensor) -> (logDensity: Tensor, gradient: Tensor)

  public enum StepSizeSharing: String, Codable, Sendable {
    /// One h for all chains, adapted on their mean acceptance.
    case shared
    /// One h per chain (row), adapted on its own acceptance.
    case perChain
  }

  public struct Settings: Codable, Equatable, Sendable {
    /// Iterations before the kept samples (step sizes adapt during these).
    public var burnIn = 5
    /// Kept iterations.
    public var samples = 5
    /// Leapfrog steps L per iteration.
    public var leapfrogSteps = 5
    /// Initial step size h > 0.
    public var initialStepSize: Float = 0.2
    /// Target acceptance a* ∈ (0, 1).
    public var targetAcceptance: Float = 0.9
    /// Adaptation rate (0: no adaptation).
    public var adaptationRate: Float = 0.01
    public var sharing: StepSizeSharing = .shared
    public init() {}

    /// Throws a sentence naming the bad setting.
    public func validate() throws {
      func fail(_ s: String) -> Error { HMCError(message: s) }
      if burnIn < 0 { throw fail("HMC burn-in must be ≥ 0 (got \(burnIn))") }
      if samples < 1 { throw fail("HMC samples must be ≥ 1 (got \(samples))") }
      if leapfrogSteps < 1 { throw fail("HMC leapfrog steps must be ≥ 1 (got \(leapfrogSteps))") }
      if !(initialStepSize > 0 && initialStepSize.isFinite) {
        throw fail("HMC step size must be a positive number (got \(initialStepSize))")
      }
      if !(targetAcceptance > 0 && targetAcceptance < 1) {
        throw fail("HMC target acceptance must lie in (0, 1) (got \(targetAcceptance))")
      }
      if !(adaptationRate >= 0 && adaptationRate < 1) {
        throw fail("HMC adaptation rate must lie in [0, 1) (got \(adaptationRate))")
      }
    }
  }

  public struct HMCError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
  }

  public let settings: Settings
  /// The adaptable state: one step size (shared) or one per chain. Save it to resume exactly.
  public var stepSizes: [Float]

  /// - Parameter chains: R (used for per-chain step sizes; a shared sampler serves any R).
  public init(_ settings: Settings = Settings(), chains: Int) {
    self.settings = settings
    stepSizes = [Float](repeating: settings.initialStepSize,
                        count: settings.sharing == .shared ? 1 : chains)
  }

  /// The step size of chain r.
  @inline(__always) func stepSize(_ r: Int) -> Float {
    settings.sharing == .shared ? stepSizes[0] : stepSizes[r]
  }

  /// Runs burn-in and sampling from `start` [R, E] (the warm start).
  /// - streams: one per chain (R of them), advanced in place.
  /// - visit: called after each kept iteration s ∈ 0..<samples with the states [R, E] (valid
  ///   during the call only).
  /// - Returns the final states [R, E] (own storage) and the mean Metropolis acceptance
  ///   probability over all iterations and chains.
  public mutating func run(from start: Tensor, target: Target, streams: inout [RandomStream],
                           visit: (Int, Tensor) -> Void = { _, _ in })
    -> (states: Tensor, acceptance: Float) {
    let r = start.rows, e = start.cols
    precondition(streams.count == r, "HMC: \(streams.count) streams for \(r) chains")
    precondition(settings.sharing == .shared || stepSizes.count == r,
                 "HMC: \(stepSizes.count) per-chain step sizes for \(r) chains")
    let x = start.clone().reshaped([r, e])                  // current states [R, E]
    let logP = Tensor(zeros: [r])                            // log π(x) [R]
    let grad = Tensor(zeros: [r, e])                         // ∇ log π(x) [R, E]
    let first = target(x)
    logP.copy(from: first.logDensity)
    grad.copy(from: first.gradient)
    let xNew = Tensor(zeros: [r, e]), pNew = Tensor(zeros: [r, e])
    let logPNew = Tensor(zeros: [r]), gradNew = Tensor(zeros: [r, e])
    let p0 = Tensor(zeros: [r, e])                           // momenta drawn this iteration
    var accept = [Float](repeating: 0, count: r)
    var acceptanceSum = 0.0

    let total = settings.burnIn + settings.samples
    for it in 0..<total {
      // Momenta p ~ N(0, I), row r from stream r.
      for c in 0..<r {
        streams[c].fillNormal(UnsafeMutableBufferPointer(start: p0.pointer + c * e, count: e))
      }
      xNew.copy(from: x); pNew.copy(from: p0); logPNew.copy(from: logP); gradNew.copy(from: grad)
      leapfrog(x: xNew, p: pNew, logDensity: logPNew, gradient: gradNew, target: target)

      // Metropolis: log a = H(x, p) − H(x*, p*); a NaN or infinite proposal is rejected.
      for c in 0..<r {
        var kinetic0 = 0.0, kinetic1 = 0.0
        for j in 0..<e {
          kinetic0 += 0.5 * Double(p0[c * e + j] * p0[c * e + j])
          kinetic1 += 0.5 * Double(pNew[c * e + j] * pNew[c * e + j])
        }
        let logA = (Double(logPNew[c]) - kinetic1) - (Double(logP[c]) - kinetic0)
        let a = logA.isNaN ? 0 : Float(Foundation.exp(min(0, logA)))
        accept[c] = a
        acceptanceSum += Double(a)
        // u ∈ (0, 1] from a block of its own (the stream then holds no buffered words, so its
        // whole state is its block counter): accept iff u ≤ a (a = 1 always, a = 0 never).
        let u = 1 - Float(streams[c].nextBlock().0 >> 8) * 0x1p-24
        if u <= a {
          for j in 0..<e { x[c * e + j] = xNew[c * e + j]; grad[c * e + j] = gradNew[c * e + j] }
          logP[c] = logPNew[c]
        }
      }
      if it < settings.burnIn { adapt(accept) } else { visit(it - settings.burnIn, x) }
    }
    return (x, Float(acceptanceSum / Double(max(1, total * r))))
  }

  /// h ← h · (1 + rate · (a − a*)/a*), per chain or on the mean acceptance.
  mutating func adapt(_ accept: [Float]) {
    let rate = settings.adaptationRate, target = settings.targetAcceptance
    guard rate > 0 else { return }
    if settings.sharing == .shared {
      let mean = accept.reduce(0, +) / Float(max(1, accept.count))
      stepSizes[0] *= 1 + rate * (mean - target) / target
    } else {
      for c in stepSizes.indices { stepSizes[c] *= 1 + rate * (accept[c] - target) / target }
    }
  }

  // MARK: - Leapfrog

  /// L leapfrog steps in place (Neal 2011, eq. 5.18–5.20), row c with step h_c:
  ///
  ///   p ← p + (h/2) ∇log π(x);   then L times: x ← x + h p,  g ← ∇log π(x),
  ///   p ← p + h g (the last time h/2, closing the symmetric splitting).
  ///
  /// On entry `logDensity`/`gradient` hold log π(x) and ∇log π(x) at the given x; on exit they
  /// hold them at the new x. Volume-preserving and reversible: running it again from (x, −p)
  /// returns to the start with the momentum negated.
  public func leapfrog(x: Tensor, p: Tensor, logDensity: Tensor, gradient: Tensor,
                       target: Target) {
    let r = x.rows, e = x.cols, steps = settings.leapfrogSteps
    for c in 0..<r {                                          // half kick
      let h = stepSize(c)
      for j in 0..<e { p[c * e + j] += 0.5 * h * gradient[c * e + j] }
    }
    for l in 0..<steps {
      for c in 0..<r {                                        // drift
        let h = stepSize(c)
        for j in 0..<e { x[c * e + j] += h * p[c * e + j] }
      }
      let next = target(x)
      logDensity.copy(from: next.logDensity)
      gradient.copy(from: next.gradient)
      let kick: Float = l == steps - 1 ? 0.5 : 1              // full kicks, the last one half
      for c in 0..<r {
        let h = kick * stepSize(c)
        for j in 0..<e { p[c * e + j] += h * gradient[c * e + j] }
      }
    }
  }
}
