// MARK: - Normalizing flows: bijectors on a batch of latent vectors
//
// A flow f maps z [R, L] row by row to z′ = f(z) [R, L], and reports log|det ∂z′/∂z| [R] for each
// row. Pushing a base density q₀ through a chain f = f_K ∘ … ∘ f₁ gives (change of variables,
// Rezende & Mohamed 2015, eq. 6–7)
//
//   z_K = f_K(… f₁(z₀)),   log q_K(z_K) = log q₀(z₀) − Σ_k log|det ∂f_k/∂z_{k−1}|.
//
// Everything is on the tape, so gradients reach z, the flows' parameters and the context.
//
// Shapes: R rows (examples), L latent dimensions; context [R, C] (an encoder's output).

/// A bijector on the rows of a batch, with its log-determinant per row.
///
/// Invertibility is each flow's own condition (documented on the flow); `logDet` is only a
/// log-density correction when it holds.
public protocol Flow {
  /// z′ = f(z) and log|det ∂z′/∂z| per row.
  /// - Parameters:
  ///   - z: [R, L].
  ///   - context: [R, C] or nil; a flow whose parameters are amortised reads them here.
  /// - Returns: z′ [R, L] and logDet [R].
  func forward(_ z: Variable, context: Variable?) -> (z: Variable, logDet: Variable)

  /// z = f⁻¹(z′), or nil where the flow has none (the default). Each flow documents how it
  /// inverts: in closed form (radial), exactly by L network passes on the tape (IAF), or by
  /// scalar monotone root-finds in Double (planar, Sylvester) — those return constants, with no
  /// gradient.
  func inverse(_ z: Variable, context: Variable?) -> Variable?
}

extension Flow {
  public func inverse(_ z: Variable, context: Variable?) -> Variable? { nil }

  /// `forward` without a context.
  public func callAsFunction(_ z: Variable, context: Variable? = nil)
    -> (z: Variable, logDet: Variable) {
    forward(z, context: context)
  }
}

/// f = f_K ∘ … ∘ f₁: the flows applied in order, log|det| = Σ_k log|det ∂f_k| (chain rule; the
/// determinant of a product is the product of determinants). Invertible iff every step is. An
/// empty chain is the identity (logDet = 0).
public struct FlowChain: Flow {
  public let steps: [any Flow]

  public init(_ steps: [any Flow]) { self.steps = steps }

  public func forward(_ z: Variable, context: Variable?) -> (z: Variable, logDet: Variable) {
    var x = z
    var logDet: Variable?
    for step in steps {
      let (y, ld) = step.forward(x, context: context)
      x = y
      logDet = logDet.map { $0 + ld } ?? ld
    }
    // [R] of zeros for the identity.
    return (x, logDet ?? z.tape.constant(Tensor(zeros: [z.value.rows])))
  }

  /// f₁⁻¹ ∘ … ∘ f_K⁻¹, or nil if any step has no inverse.
  public func inverse(_ z: Variable, context: Variable?) -> Variable? {
    var x = z
    for step in steps.reversed() {
      guard let y = step.inverse(x, context: context) else { return nil }
      x = y
    }
    return x
  }
}

/// A base density that can be sampled by reparameterisation and scored: what a flow pushes
/// forward. `DiagonalNormal` is one.
public protocol ReparameterisedDensity {
  /// z₀ = g(ε) with gradients to the density's parameters. ε: [R, L] (a constant).
  func sample(noise: Tensor) -> Variable
  /// log q₀(z) summed over the last axis: [R, L] → [R].
  func logProb(_ z: Variable) -> Variable
}

extension DiagonalNormal: ReparameterisedDensity {}

/// q_K: a base density pushed through a flow chain (Rezende & Mohamed 2015, §4.1, eq. 13), for
/// use as an approximate posterior q(z|x).
public struct FlowDistribution<Base: ReparameterisedDensity> {
  public let base: Base
  public let chain: FlowChain

  public init(base: Base, chain: FlowChain) {
    self.base = base
    self.chain = chain
  }

  /// A reparameterised sample and its log-density:
  /// z₀ = g(ε), z_K = f(z₀), log q_K(z_K) = log q₀(z₀) − Σ_k log|det ∂f_k|.
  /// - Parameters:
  ///   - noise: ε [R, L] (one sample per row; flows act on [R, L]).
  ///   - context: [R, C] for amortised flows, or nil.
  /// - Returns: z_K [R, L] and log q_K(z_K) [R].
  public func sample(noise: Tensor, context: Variable? = nil)
    -> (z: Variable, logProb: Variable) {
    precondition(noise.rank == 2, "FlowDistribution.sample: noise must be [R, L], got "
                   + "\(noise.shape); draw k samples as k·R rows")
    let z0 = base.sample(noise: noise)
    let (zK, logDet) = chain.forward(z0, context: context)
    return (zK, base.logProb(z0) - logDet)
  }
}
