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

  public init(_ store: ParameterStore, _ name: String, mixingDimension: Int, hidden: Int) {
    self.mixingDimension = mixingDimension
    mlp = MLP(store, "\(name).mlp", sizes: [mixingDimension, hidden, hidden, 2], activation: .relu)
    logVariance = store.declare("\(name).logVariance", [2], .constant(Float(Foundation.log(0.25))))
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
