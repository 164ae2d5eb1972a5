/// The semi-implicit VAE trained with hierarchical VI's auxiliary bound (seed 003, Way 1;
/// `HierarchicalVI`). Same q(z|x) = ∫ N(μ(x, ε), σ²(x, ε)) N(ε; 0, I) dε as `semi-implicit`;
/// a reverse model s_ξ(ε|z, x) = N(m(z, x), diag v(z, x)) (an MLP on [z ‖ x], tanh) bounds the
/// entropy term from above, so per example (one sample, ε₀ the draw that made z)
///
///   L = log p(x|z) + log p̂(z) − [log q(z|x, ε₀) + log N(ε₀; 0, I) − log s_ξ(ε₀|z, x)]  ≤ ELBO,
///
/// with log p̂(z) = log p(z) for N(0, I) and dsivi-agg, and for the semi-implicit prior the
/// cross-entropy bound L_CE^aux with r_ψ(ζ|z) (an MLP on z): log p(z|ζ) + log N(ζ; 0, I) −
/// log r_ψ(ζ|z), ζ ~ r_ψ(ζ|z). Maximising over ξ (and ψ) tightens the bound toward the ELBO.
extension VAE {
  /// Declares s_ξ: [L + D] → H → 2E (hierarchical posteriors only), after W_ε.
  static func declareReverse(_ config: Config, store: ParameterStore) -> MLP? {
    guard config.posterior == .hierarchical, config.mixingNoise > 0 else { return nil }
    return MLP(store, "reverse", sizes: [config.latent + config.inputs, config.hidden,
                                         2 * config.mixingNoise], activation: .tanh)
  }

  /// `terms` for hierarchical VI.
  /// - Parameters: x [R, D]; noise η [1, R, L]; mixing ε₀ [1, R, E]; priorNoise: the mixture
  ///   prior's noise (dsivi-agg), or ν [R, E_ζ] for ζ ~ r_ψ(ζ|z) (semi-implicit prior).
  /// - Returns: Terms with bound = L, kl = L_H^aux − log p̂(z), logPrior = log p̂(z),
  ///   logQSurrogate = L_H^aux (per example).
  public func hierarchicalTerms(x: Tensor, noise: Tensor, mixing: Tensor, priorNoise: Tensor?,
                                normalizer: Float, klWeight beta: Float = 1,
                                on tape: Tape) -> Terms {
    let r = x.rows, l = config.latent, e = config.mixingNoise
    precondition(noise.shape == [1, r, l] && mixing.shape == [1, r, e],
                 "hierarchical VI takes one sample per example")
    let xv = tape.constant(x)
    let q = semiImplicitPosterior(xv)
    let (z3, q03) = q.sample(mixing: mixing, noise: noise)
    let z = z3.reshaped([r, l])                                          // [R, L]
    let q0 = DiagonalNormal(mean: q03.mean.reshaped([r, l]),
                            logVariance: q03.logVariance.reshaped([r, l]))
    let logPxz = BernoulliLogits(logits: decoder(z, store)).logProb(x)   // [R]
    // s_ξ(ε|z, x): [R, L + D] → [R, 2E].
    let sOut = reverse!(concatColumns([z, xv]), store)
    let s = DiagonalNormal(mean: sOut.columns(0..<e), logVariance: sOut.columns(e..<(2 * e)))
    let logQ = HierarchicalVI.entropyUpperBound(
      z: z, mixing: tape.constant(mixing.reshaped([r, e])), conditional: q0, reverse: s)
    let logPrior: Variable
    if config.prior == .semiImplicit {
      let ez = config.priorNoise
      let rOut = prior!.reverse!(z, store)                               // [R, 2E_ζ]
      let rz = DiagonalNormal(mean: rOut.columns(0..<ez), logVariance: rOut.columns(ez..<(2 * ez)))
      logPrior = HierarchicalVI.priorLowerBound(z: z, reverse: rz, noise: priorNoise!) { zeta in
        let out = self.prior!.net!(zeta, self.store)                     // [R, 2L]
        return DiagonalNormal(mean: out.columns(0..<l), logVariance: out.columns(l..<(2 * l)))
      }
    } else {
      logPrior = priorLogDensity(z, noise: priorNoise)
    }
    let surprise = logPrior - logQ                                       // [R]
    let bound = logPxz + surprise
    let objective = beta == 1 ? bound : logPxz + surprise.affine(scale: beta)
    let loss = objective.sum().affine(scale: -1 / normalizer)
    var terms = Terms(loss: loss, bound: bound.value, logLikelihood: logPxz.value,
                      kl: (-surprise).value, surprise: surprise.value,
                      logDet: VAE.zeroTensor(r, tape), posteriorMean: q0.mean.value)
    terms.logPrior = logPrior.value
    terms.logQSurrogate = logQ.value
    return terms
  }

  /// The shape of the per-step prior noise under hierarchical VI: ν [R, E_ζ] per example for
  /// the semi-implicit prior's r_ψ, else the mixture prior's shared noise.
  public func hierarchicalPriorNoiseShape(rows r: Int) -> [Int]? {
    config.prior == .semiImplicit ? [r, config.priorNoise] : priorNoiseShape
  }
}
