import Foundation

/// The VAE with a semi-implicit posterior (Yin & Zhou, ICML 2018, "SIVI", §3 and their SIVAE;
/// Titsias & Ruiz, AISTATS 2019, §4.3; seed 003 Way 2).
///
/// Posterior: q(z|x) = ∫ N(z; μ(x, ε), diag σ²(x, ε)) N(ε; 0, I_E) dε, where the encoder reads
/// [x, ε]: its first layer is x·W₁ + b₁ + ε·W_ε (W_ε = `mixingWeight`, [E, H₁]), so x·W₁ + b₁
/// is computed once per example and shared by every draw of ε — the K+1 encoder passes of a
/// step cost K+1 small products E×H₁ plus the layers after the first, not K+1 passes over the
/// 784 inputs. With ε = 0 the encoder is exactly the Gaussian VAE's.
///
/// Objective (per example, maximised; `SIVI`): with ψ_k = T_φ(x, ε_k), z = μ(ψ₀) + σ(ψ₀) ⊙ η,
///   L_K = log p(x|z) + log p(z) − log (1/(K+1)) Σ_{k=0..K} q(z|ψ_k),
/// a lower bound on the ELBO for every K (Yin & Zhou, Theorem 1), rising with K. With k > 1
/// samples, the mean of the k terms (ψ₁..ψ_K shared by them).
///
/// Shapes: R rows, k samples, K mixture components, E mixing dimensions, H₁ the first hidden
/// width, L latent units.
extension VAE {
  /// The family of q(z|x).
  public enum PosteriorFamily: String, Codable, Sendable, CaseIterable {
    /// N(μ(x), diag σ²(x)): the plain VAE (its parameter layout is unchanged).
    case gaussian
    /// ∫ N(μ(x, ε), diag σ²(x, ε)) N(ε; 0, I_E) dε, trained with SIVI's K-sample surrogate.
    case semiImplicit = "semi-implicit"
    /// The same q, trained with UIVI's unbiased entropy gradient (VAE+UIVI.swift).
    case uivi
    /// The same q, trained with hierarchical VI's auxiliary bound (VAE+Hierarchical.swift).
    case hierarchical
  }

  /// Whether q is semi-implicit (the encoder reads mixing noise).
  public var isSemiImplicit: Bool { config.posterior != .gaussian }

  /// W_ε [E, H₁] for a semi-implicit posterior; nil for the Gaussian one. Its initialisation
  /// bound is that of a first layer reading all D + E inputs (PyTorch's default).
  static func declareMixingWeight(_ config: Config, store: ParameterStore, encoder: MLP) -> Int? {
    guard config.posterior != .gaussian, config.mixingNoise > 0 else { return nil }
    let inputs = config.inputs + config.mixingNoise
    defer { if config.posterior == .uivi { declareHMCStepSize(config, store: store) } }
    return store.declare("encoder.mixing.weight", [config.mixingNoise, encoder.layers[0].outputs],
                         .uniform(bound: 1 / Float(inputs).squareRoot()))
  }

  /// The semi-implicit posterior of a batch x [R, D]: ψ = T_φ(x, ε) as a closure over the
  /// encoder's first-layer term x·W₁ + b₁ (computed here, once).
  public func semiImplicitPosterior(_ x: Variable) -> SemiImplicitNormal {
    let r = x.value.rows, l = config.latent, layers = encoder.layers
    let first = layers[0](x, store)                                     // [R, H₁]
    let h1 = first.value.cols
    let tape = x.tape
    let e = mixingDimension
    return SemiImplicitNormal(mixingDimension: e) { eps in
      let s = eps.shape[0]
      precondition(eps.shape == [s, r, e], "mixing noise \(eps.shape), expected [S, \(r), \(e)]")
      // Pre-activation of the first layer for every draw: [S, R, H₁] (x's part broadcast).
      var h: Variable
      if let w = self.mixingWeight {
        let noiseTerm = matmul(tape.constant(eps.reshaped([s * r, eps.shape[2]])),
                               self.store.variable(w, on: tape))        // [SR, H₁]
        h = (noiseTerm.reshaped([s, r, h1]) + first.reshaped([1, r, h1])).reshaped([s * r, h1])
      } else {
        h = s == 1 ? first : VAE.repeated(first, s)                    // E = 0: no mixing
      }
      for layer in layers.dropFirst() { h = layer(self.encoder.activation(h), self.store) }
      // h is the encoder output [SR, 2L] (when there is one layer, the first layer's own).
      return DiagonalNormal(mean: h.columns(0..<l).reshaped([s, r, l]),
                            logVariance: h.columns(l..<(2 * l)).reshaped([s, r, l]))
    }
  }

  /// `terms` for a semi-implicit posterior: the SIVI bound L_K and its parts.
  /// - Parameters:
  ///   - x: binarised inputs [R, D]; noise η [k, R, L]; mixing ε₀ [k, R, E] (the draws that
  ///     generate z); mixture ε₁..ε_K [K, R, E] (the extra components).
  ///   - normalizer, klWeight: as in `terms` (β multiplies log p(z) − surrogate in the loss).
  /// - Returns: Terms with bound = L_K, kl = surrogate − log p(z) (a Monte Carlo estimate of an
  ///   upper bound on the KL), surprise = −kl, logPrior and logQSurrogate.
  public func semiImplicitTerms(x: Tensor, noise: Tensor, mixing: Tensor, mixture: Tensor,
                                priorNoise: Tensor? = nil, normalizer: Float,
                                klWeight beta: Float = 1, on tape: Tape) -> Terms {
    let k = noise.shape[0], r = x.rows, l = config.latent
    precondition(noise.shape == [k, r, l], "noise \(noise.shape), expected [\(k), \(r), \(l)]")
    let q = semiImplicitPosterior(tape.constant(x))
    let (z, q0) = q.sample(mixing: mixing, noise: noise)               // [k, R, L]
    let logits = decoder(z.reshaped([k * r, l]), store)                 // [kR, D]
    let logPxz = BernoulliLogits(logits: logits).logProb(VAE.tiledRows(x, k, tape))
      .reshaped([k, r])                                                 // [k, R]
    let logPrior = priorLogDensity(z.reshaped([k * r, l]), noise: priorNoise)
      .reshaped([k, r])                                                 // [k, R]
    let logQ = q.surrogateLogDensity(z, generating: q0, mixing: mixture)  // [k, R]
    let surprise = logPrior - logQ                                      // [k, R]
    let meanLogPxz = logPxz.mean(axis: 0)                               // [R]
    let kl = -surprise.mean(axis: 0)                                    // [R]
    let bound = Bound.elbo(logLikelihood: meanLogPxz, kl: kl)
    let objective = beta == 1 ? bound : Bound.elbo(logLikelihood: meanLogPxz,
                                                   kl: kl.affine(scale: beta))
    let loss = objective.sum().affine(scale: -1 / normalizer)
    // μ(x, ε₀) of the first sample, [R, L] (a view: samples are the leading axis).
    let mean = q0.mean.value
    var terms = Terms(loss: loss, bound: bound.value, logLikelihood: meanLogPxz.value,
                      kl: kl.value, surprise: surprise.mean(axis: 0).value,
                      logDet: VAE.zeroTensor(r, tape),
                      posteriorMean: Tensor(storage: mean.storage, offset: mean.offset,
                                            shape: [r, l]))
    terms.logPrior = logPrior.mean(axis: 0).value
    terms.logQSurrogate = logQ.mean(axis: 0).value
    return terms
  }

  /// The central latent of a semi-implicit posterior: μ(x, ε = 0), [R, L] (reconstructions).
  public func semiImplicitCentralLatent(_ x: Variable) -> Variable {
    let r = x.value.rows
    let zero = x.tape.tensor([1, r, mixingDimension], zeroed: true)
    return semiImplicitPosterior(x).conditional(zero).mean.reshaped([r, config.latent])
  }

  /// Importance-sampled log p(x) for one example under a semi-implicit posterior, with log q
  /// itself estimated by a mixture over M fresh draws of ε (Yin & Zhou 2018 §3; the form of
  /// Sobolev & Vetrov's IWHVI and of DSIVI's evaluation):
  ///   log p̂(x) = log (1/S) Σ_s p(x, z_s) / q̂(z_s),
  ///   q̂(z_s) = (1/(M+1)) [q(z_s|ψ_s) + Σ_{m=1..M} q(z_s|ψ_m)],   z_s ~ q(z|ψ_s), ψ_s = T(x, ε_s).
  /// Bias: with ψ_s (the component that drew z_s) inside q̂, E[p(x, z_s)/q̂(z_s)] = p(x) exactly
  /// (the M + 1 components are exchangeable, so averaging over which one drew z turns the
  /// mixture into q̂'s own normaliser), so E log p̂(x) ≤ log p(x) for every S and M, like an
  /// IWAE bound; it tends to log p(x) as S → ∞ and tightens with M. Leaving ψ_s out would give
  /// an unbiased q̂ but a weight biased upward (E[1/q̂] ≥ 1/q): no bound.
  /// Cost per example: S + M encoder rows (after the shared first layer), S decoder rows, and
  /// two [S, L]·[L, M] products for the S × M densities.
  /// - Parameters: x [1, D]; noise η [S, 1, L]; mixing ε_s [S, 1, E]; mixture ε_m [M, 1, E].
  ///   Use a non-recording tape.
  public func semiImplicitLogLikelihood(x: Tensor, noise: Tensor, mixing: Tensor, mixture: Tensor,
                                        priorNoise: Tensor? = nil, on tape: Tape) -> Double {
    let s = noise.shape[0], l = config.latent, m = mixture.shape[0]
    precondition(x.rows == 1 && noise.shape == [s, 1, l], "one example at a time")
    let q = semiImplicitPosterior(tape.constant(x))
    let (z, q0) = q.sample(mixing: mixing, noise: noise)               // [S, 1, L]
    let zs = z.reshaped([s, l])
    let logPxz = BernoulliLogits(logits: decoder(zs, store))
      .logProb(VAE.tiledRows(x, s, tape)).value                         // [S]
    let logPrior = priorLogDensity(zs, noise: priorNoise).value          // [S]
    let logQ0 = q0.logProb(z).value                                     // [S, 1]
    var shared = [Double](repeating: -.infinity, count: s)
    if m > 0 {
      let qm = q.conditional(mixture)                                   // [M, 1, L]
      shared = SIVI.logSumDensities(zs.value, mean: qm.mean.value.reshaped([m, l]),
                                    logVariance: qm.logVariance.value.reshaped([m, l]))
    }
    var logW = [Double](repeating: 0, count: s)
    var best = -Double.infinity
    for i in 0..<s {
      let a = Double(logQ0.pointer[i]), b = shared[i], top = Swift.max(a, b)
      let logQ = top + Foundation.log(Foundation.exp(a - top) + Foundation.exp(b - top))
        - Foundation.log(Double(m + 1))
      logW[i] = Double(logPxz.pointer[i]) + Double(logPrior.pointer[i]) - logQ
      best = Swift.max(best, logW[i])
    }
    var sum = 0.0
    for w in logW { sum += Foundation.exp(w - best) }
    return best + Foundation.log(sum / Double(s))
  }

  // MARK: - Helpers

  /// v [R, C] repeated s times along the rows: [sR, C] (gradients summed back).
  static func repeated(_ v: Variable, _ s: Int) -> Variable {
    let r = v.value.rows, c = v.value.cols
    let none = v.tape.constant(v.tape.tensor([s, 1, 1], zeroed: true))
    return (v.reshaped([1, r, c]) + none).reshaped([s * r, c])
  }

  /// x [R, D] repeated k times: [kR, D] (arena memory).
  static func tiledRows(_ x: Tensor, _ k: Int, _ tape: Tape) -> Tensor {
    if k == 1 { return x }
    let t = tape.tensor([k * x.rows, x.cols])
    for s in 0..<k { (t.pointer + s * x.count).update(from: x.pointer, count: x.count) }
    return t
  }

  /// [n] zeros in the tape's arena.
  static func zeroTensor(_ n: Int, _ tape: Tape) -> Tensor { tape.tensor([n], zeroed: true) }
}
