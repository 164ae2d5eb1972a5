#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

/// The compression rate of a latent-variable model (seed 001, "Lossy compression" and
/// "Compression rate"; Gregor et al. 2016, "Towards Conceptual Compression", §2):
///
///   r = (1/d) E_x[ KL(q(z|x) ‖ π(z)) ] / ln 2      bits per data dimension,
///
/// the number of bits needed to communicate the posterior of a new x (bits-back coding of z),
/// spread over the d dimensions of x. With several stochastic layers z_1 … z_L (the KL of layer t
/// is of q_t(z_t | z_<t, x) to p(z_t)), the rate of the first k layers is cumulative:
///
///   r_k = (1/d) Σ_{t ≤ k} E_x[ KL_t ] / ln 2,
///
/// so r_L = r. The expectation over x is whatever the caller averaged (a test set); how each KL
/// was computed (closed form or Monte Carlo) is the caller's to state.
public struct CompressionRate: Sendable, Equatable {
  /// One stochastic layer: its name and E_x[KL_t] in nats.
  public struct Layer: Sendable, Equatable {
    public let name: String
    public let klNats: Double
    public init(name: String, klNats: Double) {
      self.name = name
      self.klNats = klNats
    }
  }

  /// d, the dimension of x the rate is spread over.
  public let dimension: Int
  /// The layers, in the order z_1 … z_L (at least one).
  public let layers: [Layer]

  /// - Parameters: dimension d ≥ 1; layers: at least one, each E_x[KL] in nats.
  public init(dimension: Int, layers: [Layer]) {
    precondition(dimension >= 1 && !layers.isEmpty, "a compression rate needs d ≥ 1 and a layer")
    self.dimension = dimension
    self.layers = layers
  }

  /// A model with one stochastic layer z.
  public init(dimension: Int, klNats: Double) {
    self.init(dimension: dimension, layers: [Layer(name: "z", klNats: klNats)])
  }

  /// Σ_t E_x[KL_t] in nats.
  public var klNats: Double { layers.reduce(0) { $0 + $1.klNats } }

  /// r in bits per dimension.
  public var bitsPerDimension: Double { bits(klNats) }

  /// r_k for k = 1 … L (the last is r).
  public var cumulativeBitsPerDimension: [Double] {
    var sum = 0.0
    return layers.map { sum += $0.klNats; return bits(sum) }
  }

  /// The record `elbo eval` and the epoch evaluation log: `compression_bits_per_dim` (r),
  /// `compression_kl_nats` (Σ_t E_x KL_t) and `compression_dimension` (d); with more than one
  /// layer also, per layer t (its name n), `compression_kl_nats_<n>` and the cumulative
  /// `compression_bits_per_dim_<n>` (r_t).
  public var metrics: [String: Double] {
    var m = ["compression_bits_per_dim": bitsPerDimension, "compression_kl_nats": klNats,
             "compression_dimension": Double(dimension)]
    if layers.count > 1 {
      for (layer, r) in zip(layers, cumulativeBitsPerDimension) {
        m["compression_kl_nats_\(layer.name)"] = layer.klNats
        m["compression_bits_per_dim_\(layer.name)"] = r
      }
    }
    return m
  }

  private func bits(_ nats: Double) -> Double { nats / (Double(dimension) * log(2.0)) }
}
