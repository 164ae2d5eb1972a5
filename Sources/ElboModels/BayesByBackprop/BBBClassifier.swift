/// Bayes by Backprop classification of images (Blundell et al. 2015, §5.1, Table 1): an MLP
/// 784-H-H-10 on pixel intensities in [0, 1].
///
/// Generative story:  w ~ p(w),   y | x, w ~ Categorical(softmax(f_w(x)))
/// Posterior:         q(w|θ) factorised Gaussian (variant `bbb`; scale-mixture prior by
///                    default, as in the paper); baselines `plain` and `dropout`.
/// Predictive:        p(y|x) ≈ (1/S) Σ_s softmax(f_{w_s}(x)) — probabilities averaged over S
///                    weight samples, not logits.
///
/// Shapes: x [R, 784], labels [R] (class indices as Floats), logits [R, 10].
public final class BBBClassifier {
  public struct Config: Codable, Equatable, Sendable {
    public var network = BBBNetworkConfig()
    public var inputs = 784
    public var classes = 10

    public init() {}

    public init(from decoder: Decoder) throws {
      let c = try decoder.container(keyedBy: CodingKeys.self)
      if let v = try c.decodeIfPresent(BBBNetworkConfig.self, forKey: .network) { network = v }
      if let v = try c.decodeIfPresent(Int.self, forKey: .inputs) { inputs = v }
      if let v = try c.decodeIfPresent(Int.self, forKey: .classes) { classes = v }
    }

    public var sizes: [Int] {
      [inputs] + Array(repeating: network.hidden, count: network.hiddenLayers) + [classes]
    }
  }

  public let config: Config
  public let store = ParameterStore()
  public let network: BBBNetwork

  public init(_ config: Config, seed: UInt64) {
    self.config = config
    network = BBBNetwork(store, "net", sizes: config.sizes, config: config.network)
    store.allocate(seed: seed)
  }

  /// Minibatch terms; see `MinibatchELBO` for `klScale` and `normalizer`.
  public func terms(x: Tensor, labels: Tensor, noise: NetworkNoise, klScale: Float,
                    normalizer: Float, on tape: Tape) -> BBBTerms {
    let pass = network.forward(tape.constant(x), store: store, noise: noise)
    let ll = categoricalLogLikelihood(logits: pass.output, labels: labels)
    let loss = MinibatchELBO.loss(logLikelihood: ll, kl: pass.kl, klScale: klScale,
                                  normalizer: normalizer)
    return BBBTerms(loss: loss, logLikelihood: ll.value, kl: pass.kl.map { Double($0.scalar) },
                    surprise: pass.surprise.map { Double($0.scalar) })
  }

  /// Adds softmax(f_w(x)) for one weight sample (or the point network) into `probabilities`
  /// [R, C] (accumulated in Double, to be divided by S). Use a non-recording tape.
  public func accumulateProbabilities(x: Tensor, weightNoise: [Tensor], into probabilities:
                                      UnsafeMutablePointer<Double>, on tape: Tape) {
    let logits = network.predict(tape.constant(x), store: store, weightNoise: weightNoise).value
    let r = logits.rows, c = logits.cols, lp = logits.pointer
    for row in 0..<r {
      let l = lp + row * c
      var m = l[0]
      for j in 1..<c { m = max(m, l[j]) }
      var s = 0.0
      for j in 0..<c { s += exp(Double(l[j] - m)) }
      for j in 0..<c { probabilities[row * c + j] += exp(Double(l[j] - m)) / s }
    }
  }
}

#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif
