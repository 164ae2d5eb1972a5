import ElboProbability
import Foundation

/// A trained VAE's joint for one binary image x, log p(x, z) = log Bernoulli(x | σ(decoder(z)))
/// + log N(z; 0, I), as a function of the latent z ∈ R^L, for the evidence estimators of seed 001
/// (importance sampling from q(z|x), Laplace at the posterior mode).
///
/// The decoder runs in Float on a tape: ``logJoints(_:)`` takes all rows in one pass, and the
/// gradient is reverse mode with z as the leaf. Two Hessians (``curvature``):
///   gaussNewton (default): ∇² log p(x, z) = −I − Jᵀ diag(σ(1 − σ)) J + Σ_i (x_i − σ_i) ∇²l_i, with
///     l = decoder(z), J = ∂l/∂z [D, L], σ = σ(l); the last sum is dropped. A ReLU decoder's logits
///     are piecewise linear, ∇²l_i = 0 off the kinks, so for it this is the Hessian almost
///     everywhere; for smooth activations it is the Gauss–Newton (Fisher) curvature. It is always
///     negative definite, so Newton never needs damping. J is central differences of the logits
///     (h = 1e-2; continuous across ReLU kinks, so a crossed kink costs O(h), not O(1/h)).
///   differences: central differences of the gradient (h = 1e-2; the Float gradient's rounding,
///     ~1e-6 relative, would swamp a smaller step) — exact for smooth decoders up to O(h²), but
///     across a ReLU kink the gradient jumps and the estimate is indefinite.
/// Either way all 2L displaced points go through the decoder in one pass. Backward also
/// accumulates into the store's parameter gradients; evaluation never reads them.
public struct VAELatentJoint: LatentJoint {
  public let vae: VAE
  /// x [D], values in {0, 1}
  public let x: [Float]
  public var curvature: Curvature = .gaussNewton

  public enum Curvature: Sendable { case gaussNewton, differences }

  public init(vae: VAE, x: [Float]) {
    precondition(x.count == vae.config.inputs, "VAELatentJoint: \(x.count) pixels for a "
                   + "\(vae.config.inputs)-input VAE")
    self.vae = vae
    self.x = x
  }

  public var latentDimension: Int { vae.config.latent }

  /// x repeated over n rows [n, D].
  func targets(_ n: Int) -> Tensor {
    var rows: [Float] = []
    rows.reserveCapacity(n * x.count)
    for _ in 0..<n { rows += x }
    return Tensor(rows, shape: [n, x.count])
  }

  /// log p(x, z_r) for the rows z [n, L], on `tape`: [n].
  func logJoint(_ z: Variable) -> Variable {
    let n = z.shape[0]
    return BernoulliLogits(logits: vae.decoder(z, vae.store)).logProb(targets(n))
      + StandardNormal.logProb(z)
  }

  func matrix(_ zs: [[Double]]) -> Tensor {
    Tensor(zs.flatMap { $0.map { Float($0) } }, shape: [zs.count, latentDimension])
  }

  public func logJoints(_ zs: [[Double]]) -> [Double] {
    let tape = Tape(recording: false)
    return logJoint(tape.constant(matrix(zs))).value.array.map(Double.init)
  }

  public func logJoint(_ z: [Double]) -> Double { logJoints([z])[0] }

  /// ∇_z log p(x, z_r) for every row at once: rows do not interact, so the gradient of the sum
  /// over rows is each row's own gradient.
  func gradients(_ zs: [[Double]]) -> [[Double]] {
    let tape = Tape()
    let value = matrix(zs), grad = Tensor(zeros: value.shape)
    tape.backward(logJoint(tape.parameter(value, grad: grad)).sum())
    let g = grad.array, l = latentDimension
    return (0..<zs.count).map { r in (0..<l).map { Double(g[r * l + $0]) } }
  }

  public func gradient(_ z: [Double]) -> [Double] { gradients([z])[0] }

  public func hessian(_ z: [Double]) -> [Double] {
    let l = latentDimension, h = 1e-2
    var points: [[Double]] = []
    for j in 0..<l {
      var plus = z, minus = z
      plus[j] += h; minus[j] -= h
      points.append(plus); points.append(minus)
    }
    var hess = [Double](repeating: 0, count: l * l)
    switch curvature {
    case .differences:
      let g = gradients(points)
      for j in 0..<l { for i in 0..<l { hess[i * l + j] = (g[2 * j][i] - g[2 * j + 1][i]) / (2 * h) } }
    case .gaussNewton:
      let d = x.count
      let tape = Tape(recording: false)
      let logits = vae.decoder(tape.constant(matrix(points + [z])), vae.store).value.array  // [2L+1, D]
      // J[i, j] = ∂l_i/∂z_j by central differences; w_i = σ(l_i)(1 − σ(l_i)) at z.
      var jac = [Double](repeating: 0, count: d * l)
      for j in 0..<l { for i in 0..<d {
        jac[i * l + j] = Double(logits[(2 * j) * d + i] - logits[(2 * j + 1) * d + i]) / (2 * h)
      } }
      for i in 0..<d {
        let p = 1 / (1 + exp(-Double(logits[2 * l * d + i])))
        let w = p * (1 - p)
        for a in 0..<l where jac[i * l + a] != 0 {
          let wa = w * jac[i * l + a]
          for b in 0...a { hess[a * l + b] -= wa * jac[i * l + b] }
        }
      }
      for a in 0..<l { hess[a * l + a] -= 1 }  // the prior's −I
    }
    for i in 0..<l { for j in 0..<i {
      // Gauss–Newton filled the lower triangle; differences leave H slightly asymmetric.
      let s = curvature == .gaussNewton ? hess[i * l + j] : 0.5 * (hess[i * l + j] + hess[j * l + i])
      hess[i * l + j] = s; hess[j * l + i] = s
    } }
    return hess
  }
}

extension VAE {
  /// The evidence problems of binary images x [N, D] (row-major): each image's joint, and
  /// q₀(z|x) = N(μ(x), diag σ²(x)) from the encoder (the flow's base when there is a flow; any
  /// proposal keeps importance sampling unbiased).
  public func evidenceProblems(images x: [Float], count n: Int) -> [EvidenceProblem] {
    let d = config.inputs, l = config.latent
    let tape = Tape(recording: false)
    let q = posterior(tape.constant(Tensor(Array(x.prefix(n * d)), shape: [n, d])))
    let mu = q.mean.value.array, logVar = q.logVariance.value.array
    return (0..<n).map { r in
      EvidenceProblem(
        joint: VAELatentJoint(vae: self, x: Array(x[(r * d)..<((r + 1) * d)])),
        posterior: DiagonalGaussian(mean: (0..<l).map { Double(mu[r * l + $0]) },
                                    standardDeviation: (0..<l).map {
                                      exp(0.5 * Double(logVar[r * l + $0])) }))
    }
  }
}
