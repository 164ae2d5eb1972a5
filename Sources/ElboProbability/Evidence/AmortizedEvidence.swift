import Foundation

/// Amortised variational inference (seed 001, "Variational approx: Amortized inference" and
/// "Amortization & reparametrization"): one encoder q_φ(z|x) serves every observation, trained by
/// stochastic gradient ascent on the reparameterised ELBO averaged over many x,
///
///   L(φ) = E_x E_{ε~N(0,I)} [log p(x, g_φ(x, ε))] + E_x H[q_φ(·|x)],   g_φ(x, ε) = Ax + b + s ⊙ ε,
///
/// with q_φ(z|x) = N(Ax + b, diag s²), s = exp ρ (Rezende et al. 2014; Kingma & Welling 2014). The
/// entropy H = Σ_j ρ_j + (d/2) log 2πe is analytic, so only log p(x, z) is sampled. Its ELBO is a
/// lower bound for every x, below log p(x) by KL(q_φ(·|x) ‖ p(z|x)). For the linear-Gaussian
/// model a linear encoder can reach the mean-field optimum of every x at once (the posterior mean
/// is linear in x and its precision does not depend on x), so amortisation costs nothing there.
///
/// Shapes: x ∈ R^D, z ∈ R^d; A [d, D] row-major, b [d], ρ [d].
public struct AmortizedGaussianEncoder: Equatable {
  public let inputs: Int
  public let latent: Int
  /// A [d, D]
  public var weight: [Double]
  /// b [d]
  public var bias: [Double]
  /// ρ = log s [d]
  public var logScale: [Double]

  /// A = 0, b = 0, s = 1: q(z|x) is the prior for every x before training.
  public init(inputs: Int, latent: Int) {
    self.inputs = inputs
    self.latent = latent
    weight = [Double](repeating: 0, count: latent * inputs)
    bias = [Double](repeating: 0, count: latent)
    logScale = [Double](repeating: 0, count: latent)
  }

  /// q_φ(z|x) = N(Ax + b, diag exp(2ρ)).
  public func posterior(_ x: [Double]) -> DiagonalGaussian {
    let ax = DenseMatrix.multiply(weight, rows: latent, cols: inputs, x)
    return DiagonalGaussian(mean: (0..<latent).map { ax[$0] + bias[$0] },
                            standardDeviation: logScale.map { exp($0) })
  }

  /// Gradients with respect to (A, b, ρ), laid out like the parameters.
  public struct Gradient {
    public var weight: [Double]
    public var bias: [Double]
    public var logScale: [Double]
  }

  // MARK: - Forward and backward of one reparameterised sample

  /// The one-sample ELBO log p(x, z) + H[q_φ(·|x)] at z = Ax + b + s ⊙ ε, and its gradient:
  ///   g = ∇_z log p(x, z);   ∂/∂A = g xᵀ;   ∂/∂b = g;   ∂/∂ρ_j = g_j s_j ε_j + 1 (the 1 from H).
  public func elbo(_ x: [Double], _ joint: some LatentJoint, noise eps: [Double])
    -> (value: Double, gradient: Gradient)
  {
    let q = posterior(x)
    let z = q.sample(noise: eps)
    let value = joint.logJoint(z) + q.entropy
    let g = joint.gradient(z)  // [d]
    var dA = [Double](repeating: 0, count: latent * inputs)
    for j in 0..<latent { for k in 0..<inputs { dA[j * inputs + k] = g[j] * x[k] } }
    let dRho = (0..<latent).map { g[$0] * q.standardDeviation[$0] * eps[$0] + 1 }
    return (value, Gradient(weight: dA, bias: g, logScale: dRho))
  }
}

/// Trains an ``AmortizedGaussianEncoder`` with Adam (Kingma & Ba 2015) on minibatches of
/// observations, one reparameterised sample per observation and step. The learning rate decays
/// linearly to zero over the run: at a constant rate the sampling noise of the gradient keeps
/// the encoder a few tenths of a nat from its optimum.
public struct AmortizedEvidence {
  public var steps: Int
  public var batchSize: Int
  public var learningRate: Double

  public init(steps: Int = 2000, batchSize: Int = 32, learningRate: Double = 0.01) {
    self.steps = steps
    self.batchSize = batchSize
    self.learningRate = learningRate
  }

  /// Runs `steps` Adam steps on `encoder`. Minibatches are drawn uniformly with replacement;
  /// `observe(step, encoder)` is called before the first step and after every `every` steps.
  /// - Parameters:
  ///   - observations: the training x's, each of length `encoder.inputs`.
  ///   - joint: log p(x, ·) for an observation.
  public func train(_ encoder: inout AmortizedGaussianEncoder, observations: [[Double]],
                    joint: ([Double]) -> any LatentJoint, seed: UInt64, every: Int = 100,
                    observe: (Int, AmortizedGaussianEncoder) -> Void = { _, _ in }) {
    precondition(!observations.isEmpty, "amortised VI needs observations to train on")
    let nA = encoder.weight.count, d = encoder.latent
    let count = nA + 2 * d
    var m = [Double](repeating: 0, count: count), v = m
    let beta1 = 0.9, beta2 = 0.999, epsilon = 1e-8
    var draws = NormalDraws(seed: seed, purpose: .latentNoise)
    var pick = NormalDraws(seed: seed, purpose: .shuffle)
    observe(0, encoder)
    for step in 1...max(steps, 1) where steps > 0 {
      // The minibatch gradient of −L (Adam minimises), flat in the order A, b, ρ.
      var grad = [Double](repeating: 0, count: count)
      for _ in 0..<batchSize {
        let i = min(Int(pick.uniform() * Double(observations.count)), observations.count - 1)
        let x = observations[i]
        let g = encoder.elbo(x, joint(x), noise: draws.next(d)).gradient
        for k in 0..<nA { grad[k] -= g.weight[k] }
        for j in 0..<d { grad[nA + j] -= g.bias[j]; grad[nA + d + j] -= g.logScale[j] }
      }
      let scale = 1 / Double(batchSize)
      let c1 = 1 - pow(beta1, Double(step)), c2 = 1 - pow(beta2, Double(step))
      let rate = learningRate * (1 - Double(step - 1) / Double(steps))
      for k in 0..<count {
        let gk = grad[k] * scale
        m[k] = beta1 * m[k] + (1 - beta1) * gk
        v[k] = beta2 * v[k] + (1 - beta2) * gk * gk
        let update = rate * (m[k] / c1) / ((v[k] / c2).squareRoot() + epsilon)
        if k < nA { encoder.weight[k] -= update }
        else if k < nA + d { encoder.bias[k - nA] -= update }
        else { encoder.logScale[k - nA - d] -= update }
      }
      if step % every == 0 || step == steps { observe(step, encoder) }
    }
  }
}
