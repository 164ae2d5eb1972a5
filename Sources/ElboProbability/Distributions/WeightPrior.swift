import CKernels

/// A prior p(w) over network weights, factorised over elements (Blundell et al. 2015, §3.3).
///
/// `logProb` sums over all elements of `w` → [1]. A prior that has a closed-form KL from a
/// factorised Gaussian returns it from `klFrom`; the others return nil and the KL is estimated by
/// Monte Carlo, log q(w) − log p(w) at a sample (see `WeightKL`).
public protocol WeightPrior {
  func logProb(_ w: Variable) -> Variable
  /// KL(q ‖ p) summed over elements, in closed form, or nil if there is none.
  func klFrom(_ q: FactorizedNormal) -> Variable?
}

/// p(w) = Π N(w_i | 0, s²): the Gaussian prior. Its KL from a factorised Gaussian is analytic.
public struct CenteredNormalPrior: WeightPrior {
  public let standardDeviation: Float

  public init(standardDeviation: Float) {
    precondition(standardDeviation > 0, "prior σ must be positive")
    self.standardDeviation = standardDeviation
  }

  /// Σ log N(w_i | 0, s²) = −Σ w_i²/(2s²) − n(log s + ½ log 2π). Composed of ops (square, sum,
  /// affine): no calculus of its own.
  public func logProb(_ w: Variable) -> Variable {
    let s = standardDeviation
    let constant = -Float(w.count) * (logf(s) + 0.5 * log2Pi)
    return w.square().sum().affine(scale: -1 / (2 * s * s), shift: constant)
  }

  public func klFrom(_ q: FactorizedNormal) -> Variable? {
    normalKLToCentered(mean: q.mean, standardDeviation: q.standardDeviation,
                       priorStd: standardDeviation)
  }
}

/// Blundell et al.'s scale-mixture prior (eq. 7):
///
///   p(w) = Π_i [π N(w_i | 0, σ1²) + (1 − π) N(w_i | 0, σ2²)],   σ1 > σ2, σ2 ≪ 1,
///
/// a heavy-tailed prior that also concentrates many weights near 0. Not conjugate to a Gaussian
/// posterior: there is no closed-form KL, so it is estimated by Monte Carlo. The paper's grid:
/// π ∈ {¼, ½, ¾}, −log σ1 ∈ {0, 1, 2}, −log σ2 ∈ {6, 7, 8}.
public struct ScaleMixturePrior: WeightPrior {
  public let pi: Float
  public let sigma1: Float
  public let sigma2: Float

  public init(pi: Float, sigma1: Float, sigma2: Float) {
    precondition(pi > 0 && pi < 1, "mixture weight π must be in (0, 1)")
    precondition(sigma1 > 0 && sigma2 > 0, "mixture scales must be positive")
    self.pi = pi; self.sigma1 = sigma1; self.sigma2 = sigma2
  }

  /// The kernel's constants: c_k = log w_k − log σ_k − ½ log 2π, h_k = 1/(2σ_k²).
  var constants: (c1: Float, h1: Float, c2: Float, h2: Float) {
    (logf(pi) - logf(sigma1) - 0.5 * log2Pi, 1 / (2 * sigma1 * sigma1),
     logf(1 - pi) - logf(sigma2) - 0.5 * log2Pi, 1 / (2 * sigma2 * sigma2))
  }

  public func logProb(_ w: Variable) -> Variable {
    scaleMixtureLogDensity(w, self)
  }

  public func klFrom(_ q: FactorizedNormal) -> Variable? { nil }
}

/// Σ_i log[π N(x_i | 0, σ1²) + (1 − π) N(x_i | 0, σ2²)] → [1] (vectorised kernel, log-sum-exp of
/// the two components). Backward: ∂/∂x_i = −x_i (r_i/σ1² + (1 − r_i)/σ2²), r_i the first
/// component's responsibility.
public func scaleMixtureLogDensity(_ x: Variable, _ prior: ScaleMixturePrior) -> Variable {
  let tape = x.tape
  let n = x.count
  let (c1, h1, c2, h2) = prior.constants
  let y = tape.output([1], x)
  y.value[0] = Float(ek_scale_mixture_logpdf_sum(x.value.pointer, n, c1, h1, c2, h2))
  guard y.requiresGrad else { return y }
  tape.record(y) {
    ek_scale_mixture_logpdf_backward(x.value.pointer, y.grad[0], x.grad.pointer, n, c1, h1, c2, h2)
  }
  return y
}

/// The prior as it is configured (and stored in run configs).
public struct WeightPriorConfig: Codable, Equatable, Sendable {
  public enum Kind: String, Codable, Sendable, CaseIterable {
    case gaussian
    case scaleMixture = "scale-mixture"
  }
  public var kind: Kind = .scaleMixture
  /// σ of the Gaussian prior N(0, σ²).
  public var gaussianStd: Float = 1
  /// Scale mixture: π, −log σ1, −log σ2 (Blundell et al.'s parameterisation and defaults).
  public var pi: Float = 0.5
  public var negLogSigma1: Float = 0
  public var negLogSigma2: Float = 6

  public init() {}

  public init(from decoder: Decoder) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    func get<T: Decodable>(_ key: CodingKeys, _ value: inout T) throws {
      if let v = try c.decodeIfPresent(T.self, forKey: key) { value = v }
    }
    try get(.kind, &kind); try get(.gaussianStd, &gaussianStd); try get(.pi, &pi)
    try get(.negLogSigma1, &negLogSigma1); try get(.negLogSigma2, &negLogSigma2)
  }

  public func make() -> WeightPrior {
    switch kind {
    case .gaussian: return CenteredNormalPrior(standardDeviation: gaussianStd)
    case .scaleMixture:
      return ScaleMixturePrior(pi: pi, sigma1: expf(-negLogSigma1), sigma2: expf(-negLogSigma2))
    }
  }

  /// One line for the run's header.
  public var summary: String {
    switch kind {
    case .gaussian: return "Gaussian prior N(0, \(gaussianStd)²) (closed-form KL)"
    case .scaleMixture:
      return "scale-mixture prior π N(0, σ1²) + (1−π) N(0, σ2²), π = \(pi), −log σ1 = "
        + "\(negLogSigma1), −log σ2 = \(negLogSigma2) (Monte Carlo KL)"
    }
  }
}

#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif
