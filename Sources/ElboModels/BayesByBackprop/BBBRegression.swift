/// Bayes by Backprop on a 1-D regression toy (seed 004 §2, exercise 5; Blundell et al. 2015,
/// §5.2 and Fig. 5).
///
/// Generative story:  w ~ p(w),   y | x, w ~ N(f_w(x), σ_y²),   f: 1-50-50-1 (ReLU)
/// Posterior:         q(w|θ) factorised Gaussian (variant `bbb`); the baselines are point
///                    estimates (`plain`: maximum likelihood; `dropout`).
/// Noise σ_y:         learned as a point estimate (the parameter `likelihood.log_std`, no prior)
///                    unless fixed by the config — the network output is the mean only, as the
///                    seed asks, so σ_y is one number for all x.
/// Predictive:        p(y|x) ≈ (1/S) Σ_s N(y | f_{w_s}(x), σ_y²), w_s ~ q. By the law of total
///                    variance Var[y|x] = σ_y² (aleatoric) + Var_s f_{w_s}(x) (epistemic).
///
/// Shapes: x, y [R, 1].
public final class BBBRegression {
  public struct Config: Codable, Equatable, Sendable {
    public var network: BBBNetworkConfig = {
      var c = BBBNetworkConfig()
      c.hidden = 50
      return c
    }()
    /// σ_y when fixed; nil: learned.
    public var noiseStd: Float? = nil
    /// Starting σ_y when learned.
    public var noiseStdInit: Float = 0.5

    public init() {}

    public init(from decoder: Decoder) throws {
      let c = try decoder.container(keyedBy: CodingKeys.self)
      if let v = try c.decodeIfPresent(BBBNetworkConfig.self, forKey: .network) { network = v }
      noiseStd = try c.decodeIfPresent(Float.self, forKey: .noiseStd)
      if let v = try c.decodeIfPresent(Float.self, forKey: .noiseStdInit) { noiseStdInit = v }
    }

    public var sizes: [Int] {
      [1] + Array(repeating: network.hidden, count: network.hiddenLayers) + [1]
    }
  }

  public let config: Config
  public let store = ParameterStore()
  public let network: BBBNetwork
  /// Index of log σ_y [1] when learned.
  public let logNoiseStd: Int?

  public init(_ config: Config, seed: UInt64) {
    self.config = config
    network = BBBNetwork(store, "net", sizes: config.sizes, config: config.network)
    logNoiseStd = config.noiseStd == nil
      ? store.declare("likelihood.log_std", [1], .constant(logf(config.noiseStdInit))) : nil
    store.allocate(seed: seed)
  }

  /// σ_y now.
  public var noiseStd: Float {
    if let i = logNoiseStd { return expf(store.value(i)[0]) }
    return config.noiseStd!
  }

  /// log N(y | mean, σ_y²) per row → [R]; σ_y a parameter (learned) or a constant.
  func logLikelihood(mean: Variable, y: Tensor, tape: Tape) -> Variable {
    let r = mean.value.rows
    let logStd: Variable
    if let i = logNoiseStd {
      logStd = store.variable(i, on: tape)
    } else {
      let t = tape.tensor([1])
      t[0] = logf(config.noiseStd!)
      logStd = tape.constant(t)
    }
    let d = mean - tape.constant(y)                                   // [R, 1]
    let quad = d.square() * logStd.affine(scale: -2).exp()            // (y − f)²/σ²
    return (quad.affine(scale: -0.5, shift: -0.5 * log2Pi) - logStd).reshaped([r])
  }

  /// Minibatch terms; see `MinibatchELBO` for `klScale` and `normalizer`.
  public func terms(x: Tensor, y: Tensor, noise: NetworkNoise, klScale: Float, normalizer: Float,
                    on tape: Tape) -> BBBTerms {
    let pass = network.forward(tape.constant(x), store: store, noise: noise)
    let ll = logLikelihood(mean: pass.output, y: y, tape: tape)
    let loss = MinibatchELBO.loss(logLikelihood: ll, kl: pass.kl, klScale: klScale,
                                  normalizer: normalizer)
    return BBBTerms(loss: loss, logLikelihood: ll.value, kl: pass.kl.map { Double($0.scalar) },
                    surprise: pass.surprise.map { Double($0.scalar) })
  }

  /// f_w(x) [R] for one weight sample (or the point network). Use a non-recording tape.
  public func predictMean(x: Tensor, weightNoise: [Tensor], on tape: Tape) -> Tensor {
    network.predict(tape.constant(x), store: store, weightNoise: weightNoise).value
  }
}

#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif
