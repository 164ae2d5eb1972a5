/// A fully connected layer with a distribution over its weights (Blundell et al., ICML 2015):
/// y = x·W + b with W, b ~ q, q a factorised Gaussian (`FactorizedNormal`, σ = softplus(ρ)).
///
/// Parameters (one ordered list in the store, like `Linear`'s):
///   `<name>.weight.mu` [in, out], `<name>.weight.rho` [in, out], `<name>.bias.mu` [out],
///   `<name>.bias.rho` [out].
/// Initialisation: μ ~ U(−1/√in, 1/√in) (PyTorch's `nn.Linear` default, so the mean network
/// starts as the plain baseline does) and ρ = `rhoInit` (−5 gives σ ≈ 0.0067: the network starts
/// almost deterministic and the data decide where σ grows — Blundell et al. tuned ρ₀ the same way).
///
/// Two ways to push x through the layer, both unbiased for E_q[·]:
/// - weight reparameterisation: draw (W, b) once (`posterior(...).weight.sample`) and call
///   `self(x, weight:bias:)` — one weight sample shared by every row of the minibatch, as in the
///   paper;
/// - local reparameterisation (Kingma, Salimans & Welling, NeurIPS 2015, §2.3): since x·W + b is
///   Gaussian given x, sample the pre-activations directly,
///     y = x·μ_W + μ_b + √(x²·σ_W² + σ_b²) ⊙ ε,   ε ~ N(0, I) of shape [R, out],
///   which gives every row its own independent weight draw at the cost of one extra GEMM and
///   lowers the gradient variance.
public struct BayesianLinear {
  public let weightMean: Int, weightRho: Int, biasMean: Int, biasRho: Int
  public let inputs: Int
  public let outputs: Int

  public init(_ store: ParameterStore, _ name: String, _ inputs: Int, _ outputs: Int,
              rhoInit: Float) {
    let bound = 1 / Float(inputs).squareRoot()
    weightMean = store.declare("\(name).weight.mu", [inputs, outputs], .uniform(bound: bound))
    weightRho = store.declare("\(name).weight.rho", [inputs, outputs], .constant(rhoInit))
    biasMean = store.declare("\(name).bias.mu", [outputs], .uniform(bound: bound))
    biasRho = store.declare("\(name).bias.rho", [outputs], .constant(rhoInit))
    self.inputs = inputs
    self.outputs = outputs
  }

  /// q(W) and q(b) as variables on `tape`.
  public func posterior(_ store: ParameterStore, on tape: Tape) -> LayerPosterior {
    LayerPosterior(
      weight: FactorizedNormal(mean: store.variable(weightMean, on: tape),
                               rho: store.variable(weightRho, on: tape)),
      bias: FactorizedNormal(mean: store.variable(biasMean, on: tape),
                             rho: store.variable(biasRho, on: tape)))
  }

  /// x [R, in] → x·W + b [R, out] with sampled (or any fixed) W [in, out], b [out].
  public func callAsFunction(_ x: Variable, weight: Variable, bias: Variable) -> Variable {
    linear(x, weight, bias)
  }

  /// Local reparameterisation: x [R, in] → pre-activations [R, out] drawn from their exact
  /// Gaussian N(x·μ_W + μ_b, x²·σ_W² + σ_b²), `noise` ε [R, out].
  public func callAsFunction(_ x: Variable, posterior q: LayerPosterior, noise: Tensor)
    -> Variable {
    precondition(noise.shape == [x.value.rows, outputs],
                 "pre-activation noise \(noise.shape), expected [\(x.value.rows), \(outputs)]")
    let mean = linear(x, q.weight.mean, q.bias.mean)                 // [R, out]
    // σ_b² > 0 keeps the variance, and so the sqrt's derivative, away from 0 even for a row of
    // zero activations.
    let variance = matmul(x.square(), q.weight.variance) + q.bias.variance  // [R, out]
    return mean + variance.sqrt() * x.tape.constant(noise)
  }
}

/// The variational posterior of one layer's weight matrix and bias.
public struct LayerPosterior {
  public let weight: FactorizedNormal
  public let bias: FactorizedNormal

  public init(weight: FactorizedNormal, bias: FactorizedNormal) {
    self.weight = weight
    self.bias = bias
  }
}
