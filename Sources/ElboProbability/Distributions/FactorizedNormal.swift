import CKernels

/// A fully factorised Gaussian over the elements of a parameter tensor — the variational
/// posterior of Bayes by Backprop (Blundell et al., ICML 2015, §3.2; seed 004 §2):
///
///   q(w | μ, ρ) = Π_i N(w_i | μ_i, σ_i²),   σ = softplus(ρ) = log(1 + e^ρ).
///
/// ρ is unconstrained and σ > 0 for every ρ; unlike σ = e^ρ, softplus grows linearly, so a large
/// gradient step on ρ cannot blow σ up. `mean`, `rho` and the derived `standardDeviation` have
/// the shape of the parameter tensor ([in, out] for a weight matrix, [out] for a bias).
public struct FactorizedNormal {
  public let mean: Variable
  public let rho: Variable
  /// σ = softplus(ρ).
  public let standardDeviation: Variable

  public init(mean: Variable, rho: Variable) {
    precondition(mean.shape == rho.shape, "mean \(mean.shape) vs rho \(rho.shape)")
    self.mean = mean
    self.rho = rho
    standardDeviation = rho.softplus()
  }

  /// σ², e.g. for the variance of a pre-activation in the local reparameterisation.
  public var variance: Variable { standardDeviation.square() }

  /// Reparameterised sample w = μ + σ ⊙ ε (Blundell et al. §3.2, step 2), ε ~ N(0, I) a
  /// constant of the parameter's shape. Gradients reach μ (∂w/∂μ = 1) and ρ
  /// (∂w/∂ρ = ε·sigmoid(ρ)), the two paths of the paper's eq. (3)–(4).
  public func sample(noise: Tensor) -> Variable {
    precondition(noise.shape == mean.shape, "noise \(noise.shape) for a \(mean.shape) posterior")
    return mean + standardDeviation * mean.tape.constant(noise)
  }

  /// Σ_i log N(w_i | μ_i, σ_i²) → [1]. With w = μ + σε this is Blundell's log q(w|θ), whose
  /// gradient flows through w as well as through μ and σ directly.
  public func logProb(_ w: Variable) -> Variable {
    normalLogDensity(w, mean: mean, standardDeviation: standardDeviation)
  }
}

// MARK: - Fused densities (forward and backward side by side)

/// Σ_i log N(x_i | μ_i, σ_i²) = Σ_i [−½ log 2π − log σ_i − ½ z_i²], z = (x − μ)/σ → [1].
///
/// Fused because over a weight tensor of a million elements five composed ops would make five
/// full-size intermediates. log σ uses the vectorised kernel; the sum runs in Double.
/// Backward (g = ∂L/∂out): ∂/∂x = −z/σ, ∂/∂μ = z/σ, ∂/∂σ = (z² − 1)/σ.
public func normalLogDensity(_ x: Variable, mean: Variable, standardDeviation: Variable)
  -> Variable {
  precondition(x.shape == mean.shape && x.shape == standardDeviation.shape,
               "x \(x.shape), mean \(mean.shape), σ \(standardDeviation.shape) differ")
  let tape = x.tape
  let n = x.count
  let y = tape.output([1], x, mean, standardDeviation)
  let xp = x.value.pointer, mp = mean.value.pointer, sp = standardDeviation.value.pointer
  let logSigma = tape.tensor([n])
  ek_log(sp, logSigma.pointer, n)
  let lp = logSigma.pointer
  // The per-element terms in one vectorising loop, then one sum (accumulated in Double).
  let term = tape.tensor([n]), tp = term.pointer
  for i in 0..<n {
    let z = (xp[i] - mp[i]) / sp[i]
    tp[i] = lp[i] + 0.5 * z * z
  }
  let s = -Double(ek_sum(tp, n))
  y.value[0] = Float(s - 0.5 * Double(log2Pi) * Double(n))
  guard y.requiresGrad else { return y }
  tape.record(y) {
    let g = y.grad[0]
    // One plain loop per input that needs it (no branches inside, so each vectorises).
    if x.requiresGrad {
      let dx = x.grad.pointer
      for i in 0..<n { dx[i] -= g * (xp[i] - mp[i]) / (sp[i] * sp[i]) }
    }
    if mean.requiresGrad {
      let dm = mean.grad.pointer
      for i in 0..<n { dm[i] += g * (xp[i] - mp[i]) / (sp[i] * sp[i]) }
    }
    if standardDeviation.requiresGrad {
      let ds = standardDeviation.grad.pointer
      for i in 0..<n {
        let inv = 1 / sp[i], z = (xp[i] - mp[i]) * inv
        ds[i] += g * (z * z - 1) * inv
      }
    }
  }
  return y
}

/// KL(N(μ, σ²) ‖ N(0, s²)) summed over elements → [1]:
///   Σ_i [log s − log σ_i + (σ_i² + μ_i²)/(2s²) − ½].
/// Backward: ∂/∂μ = μ/s², ∂/∂σ = −1/σ + σ/s².
public func normalKLToCentered(mean: Variable, standardDeviation: Variable, priorStd s: Float)
  -> Variable {
  precondition(mean.shape == standardDeviation.shape, "mean vs σ shapes differ")
  precondition(s > 0, "prior standard deviation must be positive")
  let tape = mean.tape
  let n = mean.count
  let y = tape.output([1], mean, standardDeviation)
  let mp = mean.value.pointer, sp = standardDeviation.value.pointer
  let logSigma = tape.tensor([n])
  ek_log(sp, logSigma.pointer, n)
  let lp = logSigma.pointer
  let h = 1 / (2 * s * s)
  var acc = 0.0
  for i in 0..<n { acc += Double((sp[i] * sp[i] + mp[i] * mp[i]) * h - lp[i]) }
  y.value[0] = Float(acc + Double(n) * (Double(logf(s)) - 0.5))
  guard y.requiresGrad else { return y }
  tape.record(y) {
    let g = y.grad[0], inv2 = 2 * h  // 1/s²
    if mean.requiresGrad {
      let dm = mean.grad.pointer
      for i in 0..<n { dm[i] += g * mp[i] * inv2 }
    }
    if standardDeviation.requiresGrad {
      let ds = standardDeviation.grad.pointer
      for i in 0..<n { ds[i] += g * (sp[i] * inv2 - 1 / sp[i]) }
    }
  }
  return y
}

#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif
