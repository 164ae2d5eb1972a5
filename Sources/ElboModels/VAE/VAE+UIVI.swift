import Foundation

/// The semi-implicit VAE trained with UIVI's unbiased entropy gradient (Titsias & Ruiz,
/// AISTATS 2019, §3 and §4.3; seed 003 Way 3). Same q(z|x) as `--posterior semi-implicit`.
///
/// Objective: ELBO = E log p(x|z) + E log p(z) − E log q(z|x). The last term's gradient is
/// E[∇_z log q(z|x)ᵀ ∂z/∂φ] with ∇_z log q(z|x) = E_{q(ε|z,x)} ∇_z log q(z|x, ε) estimated by HMC
/// on q(ε|z, x) warm-started at the ε₀ that made z (`UIVI.score`), so the loss is
///   −[log p(x|z) + log p(z) − ⟨stop(score), z⟩]        (one sample z per example)
/// whose gradient is UIVI's. The logged `elbo` is the SIVI bound L_K of the same z (K =
/// --mix-samples, value only), a lower bound on the ELBO UIVI maximises.
///
/// HMC step size (rank-symmetric and checkpointed): every chain starts from h = exp(log h), a
/// one-element tensor "hmc.log_step_size" in the parameter store, adapts its own copy during
/// its burn-in (per chain, so a chain's path depends only on its own example's stream), and
/// log h itself follows the optimizer with gradient a* − ā, ā the global batch's mean
/// acceptance (the gradients are summed over ranks): Adam moves log h by ≈ lr per step towards
/// the target acceptance. So h lives in the checkpoint with the parameters and their Adam
/// moments, every rank holds the same h, and a resumed run continues it exactly. (Titsias &
/// Ruiz carry one adapted h across calls; this is that rule with the global acceptance.)
extension VAE {
  /// The name of log h in the store.
  public static let hmcStepSizeName = "hmc.log_step_size"

  /// Declares log h [1], initialised at log(0.5/L) (Titsias & Ruiz's VAE setting).
  static func declareHMCStepSize(_ config: Config, store: ParameterStore) {
    _ = store.declare(hmcStepSizeName, [1],
                      .constant(Float(Foundation.log(0.5 / Double(config.latent)))))
  }

  /// Index of log h in the store (UIVI posteriors only).
  public var hmcStepSizeIndex: Int? { store.index(of: VAE.hmcStepSizeName) }

  /// The current HMC step size h = exp(log h).
  public var hmcStepSize: Float { hmcStepSizeIndex.map { Foundation.exp(store.value($0)[0]) } ?? 0 }

  /// q(z|x, ε) for HMC's chains: ε [R, E] (a Variable on the chain's tape) → DiagonalNormal
  /// [R, L], reading every parameter as a constant, with the first layer's x·W₁ + b₁ [R, H₁]
  /// given (computed once per batch).
  func chainConditional(first: Tensor) -> (Variable) -> DiagonalNormal {
    let l = config.latent, layers = encoder.layers
    return { eps in
      let tape = eps.tape
      func const(_ i: Int) -> Variable { tape.constant(self.store.value(i)) }
      var h = matmul(eps, const(self.mixingWeight!)) + tape.constant(first)   // [R, H₁]
      for layer in layers.dropFirst() {
        h = linear(self.encoder.activation(h), const(layer.weight), const(layer.bias))
      }
      return DiagonalNormal(mean: h.columns(0..<l), logVariance: h.columns(l..<(2 * l)))
    }
  }

  /// `terms` for UIVI: the loss above, the logged SIVI bound and its parts, and HMC's mean
  /// acceptance over this batch's chains.
  /// - Parameters: x [R, D]; noise η [1, R, L]; mixing ε₀ [1, R, E]; mixture ε₁..ε_K [K, R, E]
  ///   (for the logged bound only); hmc: burn-in, samples, leapfrog steps, target acceptance
  ///   (its initial step size is replaced by the current h); streams: one per row.
  public func uiviTerms(x: Tensor, noise: Tensor, mixing: Tensor, mixture: Tensor,
                        priorNoise: Tensor? = nil, normalizer: Float, klWeight beta: Float = 1,
                        hmc: HamiltonianMonteCarlo.Settings, streams: inout [RandomStream],
                        on tape: Tape) -> (terms: Terms, acceptance: Float) {
    let r = x.rows, l = config.latent, e = config.mixingNoise
    precondition(noise.shape == [1, r, l] && mixing.shape == [1, r, e],
                 "UIVI takes one sample per example: noise \(noise.shape), mixing \(mixing.shape)")
    let q = semiImplicitPosterior(tape.constant(x))
    let (z3, _) = q.sample(mixing: mixing, noise: noise)
    let z = z3.reshaped([r, l])                                         // [R, L]
    let logPxz = BernoulliLogits(logits: decoder(z, store)).logProb(x)  // [R]
    let logPrior = priorLogDensity(z, noise: priorNoise)                // [R]

    // The score ∇_z log q(z|x) by HMC on q(ε|z, x), from ε₀, on tapes of its own.
    let side = Tape(recording: false)
    let first = withExtendedLifetime(side) { () -> Tensor in
      let w = encoder.layers[0]
      return linear(side.constant(x), side.constant(store.value(w.weight)),
                    side.constant(store.value(w.bias))).value.clone()
    }
    var settings = hmc
    settings.initialStepSize = hmcStepSize
    settings.sharing = .perChain
    var sampler = HamiltonianMonteCarlo(settings, chains: r)
    let (score, acceptance, _) = UIVI.score(
      z: z.value.clone(), start: mixing.reshaped([r, e]).clone(),
      conditional: chainConditional(first: first), sampler: &sampler, streams: &streams)
    let entropy = UIVI.entropySurrogate(z: z, score: score)            // [R]
    let objective = logPxz + (logPrior - entropy).affine(scale: beta)
    let loss = objective.sum().affine(scale: -1 / normalizer)

    // The logged bound: SIVI's L_K of the same z, values only.
    let eval = Tape(recording: false)
    let (logQ, mean) = withExtendedLifetime(eval) { () -> ([Float], Tensor) in
      let qe = semiImplicitPosterior(eval.constant(x))
      let q0 = qe.conditional(mixing)
      let zc = eval.constant(z.value.reshaped([1, r, l]))
      return (qe.surrogateLogDensity(zc, generating: q0, mixing: mixture).value.array,
              q0.mean.value.reshaped([r, l]).clone())
    }
    let logQt = Tensor(logQ, shape: [r])
    let lp = logPxz.value, pr = logPrior.value
    let bound = Tensor(zeros: [r]), kl = Tensor(zeros: [r]), surprise = Tensor(zeros: [r])
    for i in 0..<r {
      kl[i] = logQt[i] - pr[i]; surprise[i] = -kl[i]; bound[i] = lp[i] - kl[i]
    }
    var terms = Terms(loss: loss, bound: bound, logLikelihood: lp, kl: kl, surprise: surprise,
                      logDet: Tensor(zeros: [r]), posteriorMean: mean)
    terms.logPrior = pr
    terms.logQSurrogate = logQt
    return (terms, acceptance)
  }
}
