import Foundation

/// Real NVP density estimation (Dinh, Sohl-Dickstein & Bengio, ICLR 2017) with MLP coupling
/// networks, for vectors (2-D toys, flattened images).
///
/// Model: y = f⁻¹(z), z ~ N(0, I_D), f = f_K ∘ … ∘ f₁ a chain of K affine couplings
/// (``AffineCoupling``, masks alternating between steps). The density is exact by the change of
/// variables (eq. 3):
///   log p(y) = log N(f(y); 0, I) + Σ_k log|det ∂f_k/∂y_{k−1}|,   Σ_k log|det| = Σ_k Σ_j s_kj.
/// Training: maximum likelihood, loss = −(1/B) Σ log p(y) over the global batch (for images, y is
/// the logit of dequantised pixels and the loss carries the transform's Jacobian too: see
/// ``LogitTransform``).
/// Sampling: z ~ N(0, I), y = f⁻¹(z), each coupling inverted in closed form (eq. 8).
///
/// Shapes: R rows, D coordinates, K couplings with MLP widths [D] + hidden + [2D].
///   coupling k: `coupling.<k>.net.fc<i>.{weight,bias}` (PyTorch `nn.Linear` init, the last
///   layer zeroed so that f starts as the identity and p(y) as the base), `coupling.<k>.scale` [D]
///   (the tanh bound σ, = 1).
public final class RealNVP {
  public struct Config: Codable, Equatable, Sendable {
    /// D.
    public var dimension = 2
    /// K, coupling steps (even: each coordinate is transformed K/2 times).
    public var couplings = 8
    /// Hidden widths of every coupling network.
    public var hidden = [256, 256]
    public var mask: CouplingMask = .alternating
    public var activation: Activation = .relu
    public init() {}
  }

  public let config: Config
  public let store = ParameterStore()
  /// Data → latent: z = f(y).
  public let flow: FlowChain
  public let couplings: [AffineCoupling]

  public init(_ config: Config, seed: UInt64) {
    self.config = config
    (flow, couplings) = makeCouplingChain(store: store, name: "coupling",
                                          dimension: config.dimension, steps: config.couplings,
                                          hidden: config.hidden, pattern: config.mask,
                                          activation: config.activation)
    store.allocate(seed: seed)
    couplings.forEach { $0.zeroOutputLayer() }
  }

  /// log N(z; 0, I) per row: −½‖z‖² − (D/2) log 2π. z [R, D] → [R].
  public static func standardNormalLogProb(_ z: Variable) -> Variable {
    let d = Float(z.value.cols)
    return z.square().sum(axis: -1).affine(scale: -0.5, shift: -0.5 * d * Float(log(2 * Double.pi)))
  }

  /// log p(y) per row, y [R, D] → [R] (on y's tape; gradients reach every parameter).
  public func logDensity(_ y: Variable) -> Variable {
    precondition(y.value.rank == 2 && y.value.cols == config.dimension,
                 "RealNVP: y \(y.shape), expected [R, \(config.dimension)]")
    let (z, logDet) = flow(y)
    return RealNVP.standardNormalLogProb(z) + logDet
  }

  /// y = f⁻¹(z) for given latents z [R, D] (no recording).
  public func decode(_ z: Tensor) -> Tensor {
    let tape = Tape(recording: false)
    return flow.inverse(tape.constant(z), context: nil)!.value
  }

  /// `count` samples y [count, D]: z from NoiseAddress(seed, .sampling, item r), y = f⁻¹(z).
  public func sample(count: Int, seed: UInt64) -> Tensor {
    let d = config.dimension
    let z = Tensor(zeros: [count, d])
    for r in 0..<count {
      var rng = RandomStream(NoiseAddress(seed: seed, purpose: .sampling, item: UInt32(r)))
      rng.fillNormal(UnsafeMutableBufferPointer(start: z.pointer + r * d, count: d))
    }
    return decode(z)
  }
}

/// Real NVP's preprocessing of 8-bit images (Dinh et al. 2017, §4.1) and the accounting that
/// turns a density of the transformed data into bits per dimension of the discrete pixels.
///
///   dequantise  x = (v + u)/256,   v ∈ {0, …, 255} the pixel, u ~ U(0, 1)   (x ∈ (0, 1))
///   logit       y = logit(α + (1 − 2α)x),   α = 0.05
///               log|dy/dx| = Σ_d [log(1 − 2α) − log p_d − log(1 − p_d)],  p_d = α + (1 − 2α)x_d
///   density     log p(x) = log p(y) + log|dy/dx|      (of x on the unit cube)
///   discrete    log P(v) ≥ E_u log p((v + u)/256) − D log 256   (Jensen: P(v) = ∫ p(x) dx over a
///               cell of volume 256^−D; Theis et al. 2016), one u per example
///   bits/dim    b = −(log p(x) − D log 256) / (D ln 2).
public struct LogitTransform: Sendable, Equatable {
  public var alpha: Double = 0.05
  public init(alpha: Double = 0.05) { self.alpha = alpha }

  /// y [D] from pixel values v [D] (integers 0…255 stored as Float) and uniforms u [D], and
  /// log|dy/dx| (in Double).
  public func forward(pixels v: UnsafePointer<Float>, uniforms u: UnsafePointer<Float>,
                      out y: UnsafeMutablePointer<Float>, count d: Int) -> Double {
    var logJacobian = 0.0
    let scale = 1 - 2 * alpha
    for j in 0..<d {
      let x = (Double(v[j]) + Double(u[j])) / 256
      let p = alpha + scale * x
      y[j] = Float(log(p) - log1p(-p))
      logJacobian += log(scale) - log(p) - log1p(-p)
    }
    return logJacobian
  }

  /// x = (σ(y) − α)/(1 − 2α), clamped to [0, 1]: from the model's space back to intensities.
  public func intensities(_ y: Float) -> Float {
    let s = 1 / (1 + exp(-Double(y)))
    return Float(min(1, max(0, (s - alpha) / (1 - 2 * alpha))))
  }

  /// Bits per dimension of the discrete data from log p(x) (nats, density of x on the unit
  /// cube) of one D-pixel example.
  public static func bitsPerDimension(logDensity: Double, dimension d: Int) -> Double {
    -(logDensity - Double(d) * log(256.0)) / (Double(d) * log(2.0))
  }
}
