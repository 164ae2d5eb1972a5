import ElboData
import ElboDistributed
import ElboModels
import ElboTrain
import Foundation

/// The VAE with a semi-implicit posterior (`--posterior semi-implicit`): its noise, loss,
/// test-set evaluation and `elbo eval` log-likelihood (see VAE+SemiImplicit.swift for the model).
///
/// Noise: the mixing noise ε of item g lives at the same address as its latent noise η
/// (seed, purpose, time, g), in the upper half of the block range (blocks from 2³¹ on; η uses
/// blocks from 0, k·⌈L/4⌉ of them), so it is keyed by example, never by rank, and a resumed
/// run redraws it exactly. Draw s (s < k: the ε₀ that generate z; k ≤ s < k + K: the extra
/// mixture components) uses blocks 2³¹ + s·⌈E/4⌉ ….
extension VAEExperiment {
  static let mixingBlockOffset: UInt32 = 1 << 31


  /// ε [S, R, E] for `items`, draws first..<first + S of each item's mixing stream.
  func fillMixing(_ eps: Tensor, items: ArraySlice<Int>, purpose: NoisePurpose, time: UInt64,
                  first: Int, offset: UInt32 = VAEExperiment.mixingBlockOffset) {
    let s = eps.shape[0], r = eps.shape[1], e = eps.shape[2]
    guard e > 0 else { return }
    let blocks = (e + 3) / 4
    for (row, g) in items.enumerated() {
      for d in 0..<s {
        var rng = RandomStream(NoiseAddress(seed: seed, purpose: purpose, time: time,
                                            item: UInt32(g)),
                               startBlock: offset + UInt32((first + d) * blocks))
        rng.fillNormal(UnsafeMutableBufferPointer(start: eps.pointer + (d * r + row) * e,
                                                  count: e))
      }
    }
  }

  /// The prior's noise of step (or evaluation) `time`: shared by every row and rank, at the
  /// address of item 2³² − 1 (no example has that index). nil for N(0, I).
  func priorNoise(purpose: NoisePurpose, time: UInt64, tape: Tape) -> Tensor? {
    guard let shape = model.priorNoiseShape else { return nil }
    let t = tape.tensor(shape)
    var rng = RandomStream(NoiseAddress(seed: seed, purpose: purpose, time: time, item: .max))
    rng.fillNormal(t.buffer)
    return t
  }

  /// η [k, R, L], ε₀ [k, R, E] and ε₁..ε_K [K, R, E] for `items` on `tape`.
  func semiImplicitNoise(items: ArraySlice<Int>, purpose: NoisePurpose, time: UInt64,
                         samples k: Int, mixture: Int, tape: Tape)
    -> (noise: Tensor, mixing: Tensor, mixture: Tensor) {
    let r = items.count, c = model.config
    _ = c
    let noise = tape.tensor([k, r, model.config.latent])
    fillNoise(noise, items: items, purpose: purpose, time: time)
    let mixing = tape.tensor([k, r, model.mixingDimension])
    fillMixing(mixing, items: items, purpose: purpose, time: time, first: 0)
    let extra = tape.tensor([model.isSemiImplicit ? mixture : 0, r, model.mixingDimension])
    fillMixing(extra, items: items, purpose: purpose, time: time, first: k)
    return (noise, mixing, extra)
  }

  /// The block where an item's HMC stream starts (momenta and accept uniforms of its chain).
  static let hmcBlockOffset: UInt32 = 3 << 30

  /// The training loss: −(1/B) Σ L_K over this rank's items (UIVI: its surrogate loss).
  func semiImplicitLoss(items: ArraySlice<Int>, step: Int, epoch: Int, globalBatch: Int,
                        tape: Tape) -> StepLoss {
    let r = items.count, c = model.config
    let x = tape.tensor([r, c.inputs])
    fillBatch(x, items: items, epoch: epoch)
    if c.posterior == .uivi {
      return uiviLoss(x: x, items: items, step: step, globalBatch: globalBatch, tape: tape)
    }
    if c.posterior == .hierarchical {
      let t = hierarchicalTerms(x: x, items: items, purpose: .latentNoise, time: UInt64(step),
                                normalizer: Float(globalBatch),
                                klWeight: config.klWeight(step: step), tape: tape)
      return StepLoss(loss: t.loss, sums: TermSums(
        bound: sumDouble(t.bound),
        components: [t.logLikelihood, t.kl, t.surprise, t.logPrior!, t.logQSurrogate!]
          .map(sumDouble)))
    }
    let n = semiImplicitNoise(items: items, purpose: .latentNoise, time: UInt64(step),
                              samples: c.samples, mixture: c.mixSamples, tape: tape)
    let t = model.semiImplicitTerms(x: x, noise: n.noise, mixing: n.mixing, mixture: n.mixture,
                                    priorNoise: priorNoise(purpose: .latentNoise,
                                                           time: UInt64(step), tape: tape),
                                    normalizer: Float(globalBatch),
                                    klWeight: config.klWeight(step: step), on: tape)
    return StepLoss(loss: t.loss, sums: TermSums(
      bound: sumDouble(t.bound),
      components: [t.logLikelihood, t.kl, t.surprise, t.logPrior!, t.logQSurrogate!]
        .map(sumDouble)))
  }

  /// The block where an item's ν (for ζ ~ r_ψ(ζ|z), hierarchical VI's prior bound) starts.
  static let reverseBlockOffset: UInt32 = (1 << 31) + (1 << 30)

  /// Hierarchical VI's terms (VAE+Hierarchical.swift) for `items`: one η, one ε₀ per item, and
  /// ν per item (semi-implicit prior) or the mixture prior's shared noise.
  func hierarchicalTerms(x: Tensor, items: ArraySlice<Int>, purpose: NoisePurpose, time: UInt64,
                         normalizer: Float, klWeight: Float, tape: Tape) -> VAE.Terms {
    let r = items.count
    let n = semiImplicitNoise(items: items, purpose: purpose, time: time, samples: 1, mixture: 0,
                              tape: tape)
    var prior: Tensor? = nil
    if model.config.prior == .semiImplicit {
      let nu = tape.tensor([1, r, model.config.priorNoise])
      fillMixing(nu, items: items, purpose: purpose, time: time, first: 0,
                 offset: VAEExperiment.reverseBlockOffset)
      prior = nu.reshaped([r, model.config.priorNoise])
    } else {
      prior = priorNoise(purpose: purpose, time: time, tape: tape)
    }
    return model.hierarchicalTerms(x: x, noise: n.noise, mixing: n.mixing, priorNoise: prior,
                                   normalizer: normalizer, klWeight: klWeight, on: tape)
  }

  /// UIVI's loss (VAE+UIVI.swift). Chain g's stream is the item's latent-noise address from
  /// block 3·2³⁰ on. The gradient of log h gets this rank's share of a* − ā, (a* − ā_rank)·R/B,
  /// which the gradient sum over ranks turns into a* − ā of the global batch.
  func uiviLoss(x: Tensor, items: ArraySlice<Int>, step: Int, globalBatch: Int,
                tape: Tape) -> StepLoss {
    let r = items.count, c = model.config
    let n = semiImplicitNoise(items: items, purpose: .latentNoise, time: UInt64(step),
                              samples: 1, mixture: c.mixSamples, tape: tape)
    var streams = items.map {
      RandomStream(NoiseAddress(seed: seed, purpose: .latentNoise, time: UInt64(step),
                                item: UInt32($0)), startBlock: VAEExperiment.hmcBlockOffset)
    }
    var hmc = HamiltonianMonteCarlo.Settings()
    hmc.burnIn = config.hmcBurnIn; hmc.samples = config.hmcSamples
    hmc.leapfrogSteps = config.hmcLeapfrogSteps; hmc.targetAcceptance = config.hmcTargetAcceptance
    let (t, acceptance) = model.uiviTerms(
      x: x, noise: n.noise, mixing: n.mixing, mixture: n.mixture,
      priorNoise: priorNoise(purpose: .latentNoise, time: UInt64(step), tape: tape),
      normalizer: Float(globalBatch), klWeight: config.klWeight(step: step), hmc: hmc,
      streams: &streams, on: tape)
    let g = model.store.grad(model.hmcStepSizeIndex!)
    g[0] += (config.hmcTargetAcceptance - acceptance) * Float(r) / Float(globalBatch)
    return StepLoss(loss: t.loss, sums: TermSums(
      bound: sumDouble(t.bound),
      components: [t.logLikelihood, t.kl, t.surprise, t.logPrior!, t.logQSurrogate!]
        .map(sumDouble) + [Double(acceptance) * Double(r)]))
  }

  /// Test-set SIVI bound L_K (K = --mix-samples, one sample) and its parts, and active units of
  /// μ(x, ε = 0), each rank on its share, every example counted once.
  func semiImplicitEvaluate(epoch: Int, communicator: Communicator) throws -> [String: Double] {
    let mine = Sharder.share(of: test.count, rank: communicator.rank, size: communicator.size)
    let l = model.config.latent, d = test.dimension
    var sums = [Double](repeating: 0, count: 5 + 2 * l)  // bound, ll, kl, log p, surrogate, Σμ, Σμ²
    let tape = Tape(recording: false)
    let chunk = max(1, min(1000, 20_000 / max(1, model.mixtureSamples + 1)))
    var start = mine.lowerBound
    while start < mine.upperBound {
      let end = min(start + chunk, mine.upperBound)
      tape.reset()
      let x = tape.tensor([end - start, d])
      images.fillTest(x, rows: start..<end)
      let n = semiImplicitNoise(items: ArraySlice(start..<end), purpose: .evaluation,
                                time: UInt64(epoch), samples: 1,
                                mixture: model.mixtureSamples, tape: tape)
      let t = model.config.posterior == .hierarchical
        ? hierarchicalTerms(x: x, items: ArraySlice(start..<end), purpose: .evaluation,
                            time: UInt64(epoch), normalizer: 1, klWeight: 1, tape: tape)
        : model.semiImplicitTerms(x: x, noise: n.noise, mixing: n.mixing, mixture: n.mixture,
                                  priorNoise: priorNoise(purpose: .evaluation,
                                                         time: UInt64(epoch), tape: tape),
                                  normalizer: 1, on: tape)
      for (i, term) in [t.bound, t.logLikelihood, t.kl, t.logPrior!, t.logQSurrogate!]
        .enumerated() { sums[i] += sumDouble(term) }
      ActiveUnits.accumulate(model.semiImplicitCentralLatent(tape.constant(x)).value,
                             rows: end - start, latent: l, into: &sums, at: 5)
      start = end
    }
    var total = sums
    try communicator.allreduceSum(&total, name: "test-set evaluation")
    let count = Double(test.count)
    let active = ActiveUnits.count(total, at: 5, latent: l, examples: count)
    return ["test_elbo": total[0] / count, "test_log_px_given_z": total[1] / count,
            "test_kl": total[2] / count, "test_surprise": -total[2] / count,
            "test_log_prior": total[3] / count, "test_log_q_surrogate": total[4] / count,
            "active_units": Double(active)]
  }

  /// `elbo eval`: the importance-sampled test log-likelihood with S = `samples` draws per
  /// example and log q(z|x) estimated by a mixture over M = `mixture` draws of ε
  /// (`VAE.semiImplicitLogLikelihood`: a stochastic lower bound on log p(x) for every S, M).
  func semiImplicitLogLikelihood(samples: Int, mixture: Int, communicator: Communicator,
                                 progress: ProgressHandler?) throws -> Double {
    let mine = Sharder.share(of: test.count, rank: communicator.rank, size: communicator.size)
    let d = test.dimension
    let tape = Tape(recording: false)
    var sum = 0.0
    for (done, g) in mine.enumerated() {
      tape.reset()
      let x = tape.tensor([1, d])
      images.fillTest(x, rows: g..<(g + 1))
      let n = semiImplicitNoise(items: [g], purpose: .evaluation, time: UInt64.max >> 16,
                                samples: samples, mixture: mixture, tape: tape)
      // The prior's K draws are fresh per example (keyed by the example's index as time).
      sum += model.semiImplicitLogLikelihood(
        x: x, noise: n.noise, mixing: n.mixing, mixture: n.mixture,
        priorNoise: priorNoise(purpose: .evaluation, time: (UInt64.max >> 17) + UInt64(g),
                               tape: tape), on: tape)
      if (done + 1) % 100 == 0 || done + 1 == mine.count { progress?(done + 1, mine.count) }
    }
    let total = try communicator.allreduceSum(sum, name: "log-likelihood evaluation")
    return total / Double(test.count)
  }

  /// The prior's header line (none for N(0, I)).
  func priorDescription() -> [String] {
    let c = model.config
    switch c.prior {
    case .standard: return []
    case .dsiviAgg:
      return ["prior dsivi-agg: p(z) = (1/\(c.priorSamples)) Σ_k q(z|u_k) over learned pseudo-inputs "
        + "u_k through the encoder (Molchanov et al. 2019)"
        + (model.isSemiImplicit ? "; one ε_k per component: E log p(z) ≥ E log (1/K) Σ_k q(z|u_k, ε_k)"
                                : ", exact")]
    case .semiImplicit:
      return ["prior semi-implicit: p(z) = ∫ N(μ_θ(ζ), σ²_θ(ζ)) N(ζ; 0, I_\(c.priorNoise)) dζ, "
        + "T_θ \(c.priorNoise)-\(c.priorHidden)-\(2 * c.latent) tanh; E log p(z) ≥ E log (1/K) "
        + "Σ_k p(z|ζ_k), K = \(c.priorSamples) draws shared by the batch (Molchanov et al. 2019)"]
    }
  }

  /// The run header's lines for a semi-implicit posterior.
  func semiImplicitObjectiveDescription(globalBatch: Int) -> [String] {
    let c = model.config
    if c.posterior == .hierarchical {
      return ["objective hierarchical VI (seed 003 Way 1): loss = −(1/B) Σ [log p(x|z) + log p̂(z) − "
        + "L_H], L_H = log q(z|x, ε₀) + log N(ε₀; 0, I) − log s_ξ(ε₀|z, x) ≥ log q(z|x) in "
        + "expectation (s_ξ: an MLP on [z, x]), B = \(globalBatch); "
        + "\(config.binarize.rawValue) binarisation",
        "posterior semi-implicit: q(z|x) = ∫ N(μ(x, ε), σ²(x, ε)) N(ε; 0, I_\(c.mixingNoise)) dε; "
          + "logged log_q_surrogate = L_H; `elbo eval` estimates log q with M = "
          + "\(config.evalMixSamples) draws"]
        + (c.prior == .semiImplicit
           ? ["prior semi-implicit: log p̂(z) = L_CE = log p(z|ζ) + log N(ζ; 0, I) − log r_ψ(ζ|z), "
              + "ζ ~ r_ψ(ζ|z) (r_ψ: an MLP on z), a lower bound on log p(z)"]
           : priorDescription())
    }
    if c.posterior == .uivi {
      return ["objective UIVI (Titsias & Ruiz 2019): loss = −(1/B) Σ [log p(x|z) + log p(z) − "
        + "⟨stop(score), z⟩] over the global batch, B = \(globalBatch), score ≈ ∇_z log q(z|x) by "
        + "HMC on q(ε|z, x) (\(config.hmcBurnIn) burn-in + \(config.hmcSamples) samples, "
        + "\(config.hmcLeapfrogSteps) leapfrog steps, target acceptance \(config.hmcTargetAcceptance), "
        + "step size adapted on the global acceptance; hmc_step_size per record); "
        + "\(config.binarize.rawValue) binarisation",
        "posterior semi-implicit: q(z|x) = ∫ N(μ(x, ε), σ²(x, ε)) N(ε; 0, I_\(c.mixingNoise)) dε; "
          + "logged elbo = the SIVI bound with K = \(c.mixSamples) mixture samples; `elbo eval` "
          + "estimates log q with M = \(config.evalMixSamples) draws"] + priorDescription()
    }
    let weight = config.klWarmup > 0
      ? "weight β_t = min(1, 0.01 + t/\(config.klWarmup)) on log p(z) − surrogate"
      : "weight 1"
    let posterior = model.isSemiImplicit
      ? "posterior semi-implicit: q(z|x) = ∫ N(μ(x, ε), σ²(x, ε)) N(ε; 0, I_\(c.mixingNoise)) dε "
        + "(ε into the encoder's first layer); L_K = log p(x|z) + log p(z) − log (1/(K+1)) "
        + "Σ_{k=0..K} q(z|ψ_k) with K = \(c.mixSamples) mixture samples (Yin & Zhou 2018), "
        + "a lower bound on the ELBO; `elbo eval` estimates log q with M = "
        + "\(config.evalMixSamples) draws"
      : "posterior N(μ(x), σ²(x)); bound log p(x|z) + log p̂(z) − log q(z|x), Monte Carlo"
    return ["objective \(model.isSemiImplicit ? "SIVI bound" : "ELBO") (k = \(c.samples)): loss = "
      + "−(1/B) Σ bound over the global batch, B = \(globalBatch); \(weight); "
      + "\(config.binarize.rawValue) binarisation", posterior] + priorDescription()
  }
}

extension VAEExperiment.Config {
  /// The semi-implicit options, each message naming its flag.
  func validateSemiImplicit() throws {
    if prior != .standard, priorSamples < 1 {
      throw ElboError("--prior-samples must be ≥ 1 (got \(priorSamples))")
    }
    if prior == .semiImplicit, priorNoise < 1 || priorHidden < 1 {
      throw ElboError("--prior-noise and --prior-hidden must be ≥ 1")
    }
    if prior != .standard, flow.length > 0 {
      throw ElboError("--prior \(prior.rawValue) does not combine with a flow: drop --flow-length")
    }
    if prior != .standard, objective != .elbo {
      throw ElboError("--prior \(prior.rawValue) trains the ELBO with a Monte Carlo prior term: "
        + "use --objective elbo")
    }
    guard posterior != .gaussian else { return }
    if mixSamples < 0 { throw ElboError("--mix-samples must be ≥ 0 (got \(mixSamples))") }
    if mixingNoise < 0 { throw ElboError("--mixing-noise must be ≥ 0 (got \(mixingNoise))") }
    if evalMixSamples < 0 {
      throw ElboError("--eval-mix-samples must be ≥ 0 (got \(evalMixSamples))")
    }
    if posterior == .hierarchical {
      if mixingNoise < 1 { throw ElboError("--posterior hierarchical needs --mixing-noise ≥ 1") }
      if samples != 1 {
        throw ElboError("--posterior hierarchical takes one sample per example: --k 1")
      }
    }
    if posterior == .uivi {
      if mixingNoise < 1 { throw ElboError("--posterior uivi needs --mixing-noise ≥ 1") }
      if samples != 1 { throw ElboError("--posterior uivi takes one sample per example: --k 1") }
      for (v, flag) in [(hmcBurnIn, "--hmc-burn-in")] where v < 0 {
        throw ElboError("\(flag) must be ≥ 0 (got \(v))")
      }
      for (v, flag) in [(hmcSamples, "--hmc-samples"), (hmcLeapfrogSteps, "--hmc-leapfrog-steps")]
        where v < 1 { throw ElboError("\(flag) must be ≥ 1 (got \(v))") }
      if !(hmcTargetAcceptance > 0 && hmcTargetAcceptance < 1) {
        throw ElboError("--hmc-target-acceptance must lie in (0, 1) (got \(hmcTargetAcceptance))")
      }
    }
    if flow.length > 0 {
      throw ElboError("--posterior \(posterior.rawValue) does not combine with a flow: "
        + "drop --flow-length or use --posterior gaussian")
    }
    if objective != .elbo {
      throw ElboError("--posterior \(posterior.rawValue) trains the SIVI bound: use "
        + "--objective elbo (an importance-weighted SIVI bound is not implemented)")
    }
  }
}
