/// A semi-implicit Gaussian: q(z) = ∫ N(z; μ(ψ), diag σ²(ψ)) q(ε) dε with ψ = T(ε), ε ~ N(0, I_E)
/// (Yin & Zhou, ICML 2018, §2; Titsias & Ruiz, AISTATS 2019, eq. 1; seed 003 "semi-implicit
/// model"). The marginal has no closed form; the conditional q(z|ψ) does. Any latent model
/// can use it by giving T as a closure — an amortised posterior captures its input x in it.
///
/// Where the noise enters (the choice made here, and why): T receives ε next to the model's
/// other inputs, as in Titsias & Ruiz's VAE (their encoder reads [x, ε], ε ~ N(0, I_10)); Yin &
/// Zhou's SIVAE concatenates Bernoulli noise at three depths of the encoder. Standard normal ε
/// keeps T smooth in ε, which UIVI's HMC over q(ε|z) needs.
///
/// Shapes: S draws of ε per row, R rows (examples), E mixing dimensions, L latent dimensions.
/// T maps ε [S, R, E] (row r of every draw belongs to example r) to a DiagonalNormal [S, R, L].
public struct SemiImplicitNormal {
  /// E, the dimension of the mixing noise ε (0: q is the explicit Gaussian T(·) alone).
  public let mixingDimension: Int
  /// ψ = T(ε): ε [S, R, E] (a constant on the tape) → q(z|ψ) with mean and log σ² [S, R, L].
  public let conditional: (Tensor) -> DiagonalNormal

  public init(mixingDimension: Int, conditional: @escaping (Tensor) -> DiagonalNormal) {
    self.mixingDimension = mixingDimension
    self.conditional = conditional
  }

  /// A reparameterised draw: ψ₀ = T(ε₀), z = μ(ψ₀) + σ(ψ₀) ⊙ η.
  /// - Parameters: mixing ε₀ [k, R, E]; noise η [k, R, L].
  /// - Returns: z [k, R, L] and the generating conditional q(z|ψ₀) [k, R, L].
  public func sample(mixing: Tensor, noise: Tensor) -> (z: Variable, generating: DiagonalNormal) {
    let q0 = conditional(mixing)
    precondition(q0.mean.shape == noise.shape, "noise \(noise.shape), expected \(q0.mean.shape)")
    return (q0.sample(noise: noise), q0)
  }

  /// SIVI's surrogate of log q(z) (see `SIVI`): log (1/(K+1)) [q(z|ψ₀) + Σ_{k=1..K} q(z|ψ_k)]
  /// for each of k draws z, where ψ₀ generated that z and the K draws ψ_k = T(ε_k) are shared
  /// by the k draws of a row (as in Yin & Zhou's code). In expectation an upper bound on
  /// log q(z) that falls with K.
  /// - Parameters: z [k, R, L]; generating q(z|ψ₀) [k, R, L]; mixing ε₁..ε_K [K, R, E] (K ≥ 0).
  /// - Returns: [k, R].
  public func surrogateLogDensity(_ z: Variable, generating q0: DiagonalNormal,
                                  mixing: Tensor) -> Variable {
    let k = z.shape[0], r = z.shape[1], l = z.shape[2], m = mixing.shape[0]
    let logQ0 = q0.logProb(z)                                          // [k, R]
    if m == 0 { return logQ0 }
    let qk = conditional(mixing)                                        // [K, R, L]
    // Every z against every shared component: [k, 1, R, L] against [1, K, R, L] → [k, K, R]
    // (k = 1: z [R, L] against [K, R, L], a suffix broadcast, the binary ops' fast path).
    let lseShared: Variable                                             // [k, R]
    if k == 1 {
      lseShared = qk.logProb(z.reshaped([r, l])).logsumexp(axis: 0).reshaped([1, r])
    } else {
      let shared = DiagonalNormal(mean: qk.mean.reshaped([1, m, r, l]),
                                  logVariance: qk.logVariance.reshaped([1, m, r, l]))
      lseShared = shared.logProb(z.reshaped([k, 1, r, l])).logsumexp(axis: 1)
    }
    // log(q(z|ψ₀) + Σ_k q(z|ψ_k)) as a two-column log-sum-exp, then the 1/(K+1).
    let both = concatColumns([logQ0.reshaped([k * r, 1]), lseShared.reshaped([k * r, 1])])
    return both.logsumexp(axis: 1).reshaped([k, r])
      .affine(scale: 1, shift: -logf(Float(m + 1)))
  }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
