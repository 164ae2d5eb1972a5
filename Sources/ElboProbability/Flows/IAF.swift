import ElboNN

// MARK: - Inverse autoregressive flow (Kingma, Salimans, Jozefowicz, Chen, Sutskever & Welling,
// "Improving Variational Inference with Inverse Autoregressive Flow", NeurIPS 2016, §4 and
// Algorithm 1 — the numerically stable, sigmoid-gated form of seed 000's pseudo-code)
//
//   [m, s] = MADE(z, h),   σ = sigmoid(s + forget bias),
//   z′ = σ ⊙ z + (1 − σ) ⊙ m = m + σ ⊙ (z − m),   log|det ∂z′/∂z| = Σ_i log σ_i.
//
// MADE (Germain et al. 2015): m_i and s_i depend only on the z_j earlier than i in the step's
// ordering, so ∂z′/∂z is triangular in that ordering with diagonal σ, and Σ log σ is its exact
// log-determinant. log σ is `logSigmoid` (−softplus(−x), stable for any s).
//
// Network of one step, shapes with R rows, L latents, H hidden units, C context columns:
//   h¹ = act(z·(W¹ ⊙ M¹) + b¹ + c·V)      [R, H]   (context c only when amortised)
//   h² = act(h¹·(W² ⊙ M²) + b²)           [R, H]   (with two hidden layers)
//   [m | s] = h·(Wᵒ ⊙ [Mᵒ | Mᵒ]) + bᵒ     [R, 2L]  (one gemm for both heads)
// The context c [R, C] (the encoder's h, Kingma et al. §4) enters the first hidden layer
// unmasked: it does not depend on z, so the map stays autoregressive. A step costs four gemms of
// R × H × {L, C, H, 2L} and O(R·(H + L)) elementwise work.
//
// Masks: `MADEMasks` (natural ordering, degrees seeded by (maskSeed, step index)). A reversed
// step uses the same network with the ordering m⁰(d) = L − d, i.e. the first mask's rows and the
// output mask's columns reversed; a chain alternates natural and reversed steps so that every
// coordinate gets to depend on every other (Kingma et al. §4: "reverse the ordering").
//
// The forget bias: Kingma et al. initialise s "sufficiently positive, such as close to +1 or
// +2", so that at the start σ is near 1 and each step is close to the identity; the authors'
// reference code (van den Berg et al.'s IAF) adds a fixed +1 to s. Default +1 here.
//
// Two options follow the reference code, defaults off because they measured no better on the
// flow-posterior VAE (MNIST-5k, 2000 steps, IAF K = 4: test ELBO within ±0.6 nats of the
// defaults): `outputInitScale` < 1 shrinks the output layer's initial weights (Kingma et al.'s
// code multiplies m and log σ by 0.1, so a step starts near z′ = σ(b)·z); `contextWeight: false`
// adds the context to the first hidden layer as it is (their code, and van den Berg et al.'s:
// h¹ = act(… + c), C = H₁), without the step's own V.
//
// Inverse (exact, on the tape): z_i depends only on z′ and on z_<i (in the ordering), so
//   z ← m(z) + (z′ − m(z)) / σ(z)
// iterated L times from z = z′ is exact: after pass k every coordinate of degree ≤ k is final
// (its m, σ read only coordinates of lower degree, final one pass earlier). L network passes;
// differentiable like any composition of tape ops.

/// One IAF step: a MADE over z (with an optional context input) and the gated update.
public struct InverseAutoregressiveFlow: Flow {
  public let dimension: Int
  /// The MADE's hidden layers (1 or 2), the first with the context input when amortised.
  public let hiddenLayers: [MaskedLinear]
  /// H → 2L: columns 0..<L are m, L..<2L are s.
  public let outputLayer: MaskedLinear
  public let store: ParameterStore
  /// The context columns the first hidden layer reads (amortised), or nil (global).
  public let contextColumns: Range<Int>?
  /// m⁰(d) ∈ 1…L for every coordinate d: z′_d depends on z_j only if m⁰(j) < m⁰(d).
  public let ordering: [Int]
  public let activation: Activation
  public let forgetBias: Float
  /// Whether the context passes through the step's own weights V [C, H] (true) or is added to
  /// the first hidden layer as it is (false; needs C = H₁).
  public let contextWeight: Bool

  /// Declares `name.hidden1` (L → H, with context weights [C, H] when `contextColumns` is
  /// given), `name.hidden2` (H → H) for two layers, and `name.output` (H → 2L) in `store`.
  /// - Parameters:
  ///   - hidden: widths of the hidden layers, one or two (each ≥ 1).
  ///   - contextColumns: amortised: the context's columns fed to the first layer.
  ///   - reversed: use the ordering L, L − 1, …, 1 instead of 1, …, L.
  ///   - maskSeed, maskIndex: which `MADEMasks` mask (hidden degrees) the step uses.
  public init(_ store: ParameterStore, _ name: String, dimension: Int, hidden: [Int],
              contextColumns: Range<Int>? = nil, reversed: Bool = false,
              maskSeed: UInt64 = 0x1AF, maskIndex: Int = 0,
              activation: Activation = .elu, forgetBias: Float = 1,
              outputInitScale: Float = 1, contextWeight: Bool = true) {
    precondition(dimension >= 2, "InverseAutoregressiveFlow: needs L ≥ 2 latents, got "
                   + "\(dimension) (with one latent there is nothing to be autoregressive on)")
    precondition((1...2).contains(hidden.count) && hidden.allSatisfy { $0 >= 1 },
                 "InverseAutoregressiveFlow: one or two hidden layers of ≥ 1 unit, got \(hidden)")
    precondition(contextWeight || contextColumns == nil || contextColumns!.count == hidden[0],
                 "InverseAutoregressiveFlow: a context added without weights needs C = H₁ = "
                   + "\(hidden[0]), got C = \(contextColumns!.count)")
    let l = dimension
    let set = MADEMasks(inputs: l, hidden: hidden, seed: maskSeed, orderAgnostic: false)(maskIndex)
    var first = set.hidden[0], out = set.output                  // [L, H₁], [H_last, L]
    if reversed {
      first = Self.reversingRows(first)
      out = Self.reversingColumns(out)
    }
    let widths = [l] + hidden
    var layers: [MaskedLinear] = []
    for k in hidden.indices {
      layers.append(MaskedLinear(store, "\(name).hidden\(k + 1)", widths[k], widths[k + 1],
                                 mask: k == 0 ? first : set.hidden[k],
                                 contextInputs: k == 0 && contextWeight
                                   ? (contextColumns?.count ?? 0) : 0))
    }
    hiddenLayers = layers
    outputLayer = MaskedLinear(store, "\(name).output", hidden[hidden.count - 1], 2 * l,
                               mask: Self.sideBySide(out), initScale: outputInitScale)
    self.store = store
    self.dimension = l
    self.contextColumns = contextColumns
    ordering = reversed ? set.ordering.map { l + 1 - $0 } : set.ordering
    self.activation = activation
    self.forgetBias = forgetBias
    self.contextWeight = contextWeight
  }

  /// m [R, L] and the pre-sigmoid s + forget bias [R, L] of the MADE at z [R, L].
  public func network(_ z: Variable, context: Variable?) -> (m: Variable, s: Variable) {
    let l = dimension
    var c: Variable?
    if let range = contextColumns {
      guard let context else {
        preconditionFailure("InverseAutoregressiveFlow (amortised) needs a context [R, ≥ "
                              + "\(range.upperBound)]; pass the encoder's h")
      }
      precondition(context.value.rows == z.value.rows && context.value.cols >= range.upperBound,
                   "InverseAutoregressiveFlow: context \(context.shape) too narrow for columns "
                     + "\(range), or its rows differ from z \(z.shape)")
      c = context.columns(range)
    }
    var h = z
    for (k, layer) in hiddenLayers.enumerated() {
      if k == 0, let c, !contextWeight {
        h = activation(layer(h, store) + c)                          // [R, H]
      } else {
        h = activation(layer(h, store, context: k == 0 ? c : nil))   // [R, H]
      }
    }
    let out = outputLayer(h, store)                                 // [R, 2L] = [m | s]
    return (out.columns(0..<l), out.columns(l..<2 * l) + forgetBias)
  }

  public func forward(_ z: Variable, context: Variable?) -> (z: Variable, logDet: Variable) {
    precondition(z.value.cols == dimension,
                 "InverseAutoregressiveFlow: z \(z.shape), dimension \(dimension)")
    let (m, s) = network(z, context: context)
    let sigma = s.sigmoid()                                          // σ [R, L]
    let zNew = m + sigma * (z - m)                                   // σz + (1 − σ)m
    return (zNew, s.logSigmoid().sum(axis: -1))                      // Σ log σ [R]
  }

  /// The exact inverse by L passes of the network (see the file comment), on z′'s tape.
  public func inverse(_ z: Variable, context: Variable?) -> Variable? {
    var x = z
    for _ in 0..<dimension {
      let (m, s) = network(x, context: context)
      x = m + (z - m) / s.sigmoid()
    }
    return x
  }

  // MARK: - Masks

  /// [H, L] output mask → [H, 2L]: the same connectivity for the m and s heads.
  static func sideBySide(_ mask: Tensor) -> Tensor {
    let h = mask.rows, l = mask.cols
    let t = Tensor(zeros: [h, 2 * l])
    for i in 0..<h {
      for j in 0..<l {
        t[i * 2 * l + j] = mask[i * l + j]
        t[i * 2 * l + l + j] = mask[i * l + j]
      }
    }
    return t
  }

  /// Row d ← row L − 1 − d (inputs in reversed order).
  static func reversingRows(_ mask: Tensor) -> Tensor {
    let r = mask.rows, c = mask.cols
    let t = Tensor(zeros: mask.shape)
    for i in 0..<r { for j in 0..<c { t[i * c + j] = mask[(r - 1 - i) * c + j] } }
    return t
  }

  /// Column d ← column L − 1 − d (outputs in reversed order).
  static func reversingColumns(_ mask: Tensor) -> Tensor {
    let r = mask.rows, c = mask.cols
    let t = Tensor(zeros: mask.shape)
    for i in 0..<r { for j in 0..<c { t[i * c + j] = mask[i * c + (c - 1 - j)] } }
    return t
  }
}
