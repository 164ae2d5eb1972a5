import ElboProbability

/// The semi-implicit q of the 2-D experiment (Titsias & Ruiz 2019, §5.1 toys; Yin & Zhou 2018):
///
///   ε ~ N(0, I_E),   q(z|ε) = N(z; MLP(ε), diag σ²),   q(z) = ∫ q(z|ε) N(ε; 0, I) dε,
///
/// MLP = E → H → H → 2 with ReLUs, σ² one learned vector [2] (Titsias & Ruiz: E = 3, H = 50,
/// σ initialised at 0.5). q(z) is a continuous mixture of Gaussians, so unlike the mean-field
/// Gaussian it can put mass on several modes; it has no density, so the fit needs either SIVI's
/// K-sample surrogate of log q(z) or UIVI's score ∇_z log q(z) (both in ElboProbability).
///
/// Parameters: `<name>.fc1…fc3.{weight,bias}`, `<name>.logVariance` [2].
public struct SemiImplicit2D {
  public let mixingDimension: Int
  let mlp: MLP
  let logVariance: Int

  public init(_ store: ParameterStore, _ name: String, mixingDimension: Int, hidden: Int,
              activation: Activation = .relu, initialStd: Float = 0.5) {
    self.mixingDimension = mixingDimension
    mlp = MLP(store, "\(name).mlp", sizes: [mixingDimension, hidden, hidden, 2],
              activation: activation)
    logVariance = store.declare("\(name).logVariance", [2],
                                .constant(2 * Float(Foundation.log(Double(initialStd)))))
  }

  /// Multiplies the last layer's initial weights by `factor` (call once, after allocation).
  ///
  /// Why: with PyTorch's default init the MLP's output hardly varies with ε (E‖MLP(ε) − b‖² ≈
  /// 10⁻⁴ here against σ² = 0.25), so q starts as the Gaussian N(b, σ²) and KL(q‖p) drags all
  /// of it onto one mode, as it does the mean-field Gaussian (two-modes: 3 of 4 seeds in 300
  /// steps). Scaled by 8, ε spreads the initial q about as much as σ does (E z² ≈ 0.5) and the
  /// fits split between the modes (4 of 4 seeds).
  public func scaleOutputLayer(_ store: ParameterStore, by factor: Float) {
    let w = store.value(mlp.layers[mlp.layers.count - 1].weight)
    for i in 0..<w.count { w[i] *= factor }
  }

  /// q(z|ε) for ε [..., E] → DiagonalNormal [..., 2].
  /// - frozen: read the parameters as constants (for UIVI's HMC over ε, whose gradient must
  ///   not reach the model's gradient buffer); otherwise as trainable parameters.
  public func conditional(_ eps: Variable, store: ParameterStore, frozen: Bool = false)
    -> DiagonalNormal {
    let tape = eps.tape
    func param(_ i: Int) -> Variable {
      frozen ? tape.constant(store.value(i)) : store.variable(i, on: tape)
    }
    var h = eps
    for (i, layer) in mlp.layers.enumerated() {
      h = linear(h, param(layer.weight), param(layer.bias))
      if i < mlp.layers.count - 1 { h = mlp.activation(h) }
    }
    let shape = Array(eps.shape.dropLast()) + [2]
    let mean = h.reshaped(shape)
    return DiagonalNormal(mean: mean,
                          logVariance: tape.constant(tape.tensor(shape, zeroed: true))
                            + param(logVariance))
  }
}

import Foundation
