/// How the KL term of a full-data ELBO is spread over the minibatches of an epoch, and scaled.
///
/// The ELBO over N examples split into M minibatches (Blundell et al. 2015, §3.4, eq. 8–9):
///
///   F = Σ_{i=1..M} F_i,   F_i = π_i·KL(q ‖ p) − Σ_{n ∈ batch i} log p(y_n | x_n, w),
///
/// is exact for any shares with Σ_i π_i = 1. Elbo minimises F_i / B at minibatch i (B = global
/// batch), multiplied on the KL side by β (β < 1 tempers the posterior, β = 1 is the ELBO) and by
/// a linear warm-up λ_t = min(1, (t + 1)/T) over the first T optimizer steps.
///
/// Shares:
/// - `uniform`: π_i = 1/M, i.e. KL/(M·B) per example — KL/N when B divides N;
/// - `blundell`: π_i = 2^(M−i)/(2^M − 1), i = 1…M: early minibatches of each epoch carry most of
///   the KL, later ones are fit almost by the data alone (Blundell's eq. 9).
public struct KLWeighting: Codable, Equatable, Sendable {
  public enum Share: String, Codable, Sendable, CaseIterable { case uniform, blundell }

  public var share: Share = .uniform
  public var beta: Float = 1
  /// Warm-up steps T (0: none).
  public var warmupSteps = 0

  public init(share: Share = .uniform, beta: Float = 1, warmupSteps: Int = 0) {
    self.share = share; self.beta = beta; self.warmupSteps = warmupSteps
  }

  public init(from decoder: Decoder) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    if let v = try c.decodeIfPresent(Share.self, forKey: .share) { share = v }
    if let v = try c.decodeIfPresent(Float.self, forKey: .beta) { beta = v }
    if let v = try c.decodeIfPresent(Int.self, forKey: .warmupSteps) { warmupSteps = v }
  }

  /// π_i for minibatch `index` (0-based, i = index + 1) of an epoch of M minibatches. Written
  /// as 2^−i / (1 − 2^−M), equal to 2^(M−i)/(2^M − 1) and finite for any M.
  public func share(minibatch index: Int, of m: Int) -> Double {
    precondition(m > 0 && index >= 0 && index < m, "minibatch \(index) of \(m)")
    switch share {
    case .uniform: return 1 / Double(m)
    case .blundell: return exp2(-Double(index + 1)) / (1 - exp2(-Double(m)))
    }
  }

  /// λ_t: the warm-up factor at optimizer step `step` (0-based).
  public func warmup(step: Int) -> Double {
    warmupSteps > 0 ? min(1, Double(step + 1) / Double(warmupSteps)) : 1
  }

  /// Rezende & Mohamed's (2015, §6) annealed free energy for a per-example latent:
  /// β_t = min(1, 0.01 + t/T) multiplies log p(z) − log q(z|x) (or the KL) at optimizer step t
  /// (0-based), T = `steps` > 0. A function of the step alone, so a resumed run continues it.
  public static func freeEnergyWarmup(step t: Int, steps: Int) -> Double {
    precondition(steps > 0, "warm-up over \(steps) steps")
    return min(1, 0.01 + Double(t) / Double(steps))
  }

  /// β·λ_t·π_i: the multiple of the full KL that enters the loss of global step `step`, with M
  /// minibatches per epoch. (Divided by B in the per-example loss.)
  public func weight(step: Int, stepsPerEpoch m: Int) -> Double {
    Double(beta) * warmup(step: step) * share(minibatch: step % m, of: m)
  }
}

#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif
