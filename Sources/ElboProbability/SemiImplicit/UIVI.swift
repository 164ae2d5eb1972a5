/// Unbiased implicit variational inference (Titsias & Ruiz, AISTATS 2019; seed 003, Way 3).
///
/// Semi-implicit q(z) = ∫ q(z|ε) q(ε) dε with q(ε) = N(0, I_E) and q(z|ε) = N(μ(ε), diag σ²(ε))
/// (shapes: z [R, L], ε [R, E]). The entropy term of the ELBO needs ∇_z log q(z), which has no
/// closed form, but (their eq. 6)
///
///   ∇_z log q(z) = E_{q(ε|z)} [∇_z log q(z|ε)],   ∇_z log q(z|ε) = −(z − μ(ε)) / σ²(ε),
///
/// with the reverse conditional q(ε|z) ∝ q(z|ε) N(ε; 0, I) sampled by HMC. The chain starts at
/// the ε that made z — an exact draw from q(ε|z) — so it is stationary from the first step and
/// short chains (5 burn-in + 5 samples) suffice. With z = μ_φ(ε) + σ_φ(ε) ⊙ η reparameterised,
///
///   ∂/∂φ E_q log q_φ(z) = E[ ∇_z log q(z)ᵀ ∂z/∂φ ]        (the score-function term E ∂_φ log q = 0)
///
/// so ⟨stop(score), z_φ⟩ is a surrogate whose gradient is unbiased for the entropy gradient.
///
/// API note: where the agreed sketch took one `rng`, this takes one `RandomStream` per row,
/// so that a row's chain depends only on its own stream (the same on any number of ranks).
public enum UIVI {
  /// The score estimate ∇_z log q(z) ≈ (1/S) Σ_s −(z − μ(ε_s))/σ²(ε_s), ε_s the S kept HMC
  /// states of q(ε|z), warm-started at `start`.
  /// - z [R, L] (constant), start [R, E] (the ε that made z).
  /// - conditional: maps ε [R, E] (a Variable on the tape it is given) to q(z|ε) as a
  ///   DiagonalNormal [R, L]; it must read the model's parameters as CONSTANTS on ε's tape (the
  ///   chain's gradient is w.r.t. ε only and must not reach the model's gradient buffer).
  /// - streams: one per row, advanced in place.
  /// - Returns the score [R, L] (a Tensor: use it as a stop-gradient), the mean acceptance,
  ///   and the final chain states [R, E].
  public static func score(z: Tensor, start: Tensor, conditional: (Variable) -> DiagonalNormal,
                           sampler: inout HamiltonianMonteCarlo, streams: inout [RandomStream])
    -> (score: Tensor, acceptance: Float, states: Tensor) {
    let r = z.rows, l = z.cols, e = start.cols
    precondition(start.rows == r, "UIVI.score: z has \(r) rows, start \(start.rows)")
    let tape = Tape()
    let epsGrad = Tensor(zeros: [r, e])                      // ∇_ε log π(ε) [R, E]
    // log π(ε) = log N(ε; 0, I) + log q(z|ε), and its gradient by the tape (rows independent,
    // so the gradient of the row sum is each row's gradient).
    let target: HamiltonianMonteCarlo.Target = { x in
      tape.reset()
      epsGrad.fill(0)
      let eps = tape.parameter(x, grad: epsGrad)
      let q = conditional(eps)
      let logPi = StandardNormal.logProb(eps) + q.logProb(tape.constant(z))
      tape.backward(logPi.sum())
      return (logPi.value, epsGrad)
    }
    let score = Tensor(zeros: [r, l])                        // Σ_s ∇_z log q(z|ε_s) [R, L]
    let evalTape = Tape(recording: false)
    let samples = sampler.settings.samples
    let run = sampler.run(from: start, target: target, streams: &streams) { _, states in
      evalTape.reset()
      let q = conditional(evalTape.constant(states))
      let mu = q.mean.value, logVar = q.logVariance.value
      for i in 0..<(r * l) {
        score[i] -= (z[i] - mu[i]) * Foundation.exp(-logVar[i]) / Float(samples)
      }
    }
    return (score, run.acceptance, run.states)
  }

  /// Σ_l stop(score)_l · z_l per row → [R]: its gradient w.r.t. the parameters behind the
  /// reparameterised z [R, L] is UIVI's estimate of ∂/∂φ log q(z) (the value itself means
  /// nothing; log the other ELBO terms instead).
  public static func entropySurrogate(z: Variable, score: Tensor) -> Variable {
    precondition(z.shape == score.shape, "entropySurrogate: z \(z.shape) vs score \(score.shape)")
    return (z * z.tape.constant(score)).sum(axis: -1)
  }
}

import Foundation
