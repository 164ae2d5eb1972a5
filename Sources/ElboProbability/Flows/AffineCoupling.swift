// MARK: - Affine coupling (Real NVP; Dinh, Sohl-Dickstein & Bengio, ICLR 2017, §3.3–3.5, eq. 9)
//
// A binary mask b [L] splits z into a conditioning part b⊙z, copied, and the rest, scaled and
// shifted by functions of the conditioning part only:
//
//   z′ = b⊙z + (1 − b)⊙(z⊙exp(s(b⊙z)) + t(b⊙z)),
//   log|det ∂z′/∂z| = Σ_j (1 − b_j) s_j(b⊙z)                       (eq. 6, triangular Jacobian)
//   z  = b⊙z′ + (1 − b)⊙((z′ − t(b⊙z′))⊙exp(−s(b⊙z′)))               (closed-form inverse, eq. 8)
//
// s and t come from one MLP (the "coupling network") on [b⊙z | context] with 2L outputs
// [ŝ | t̂]; s and t are then zeroed on the conditioning coordinates, s = (1 − b)⊙σ⊙tanh(ŝ) and
// t = (1 − b)⊙t̂, so that z′ = z⊙exp(s) + t covers both cases of the formula. σ [L] is a learned
// per-coordinate scale (initialised to 1): tanh bounds each step's log-scale to (−σ_j, σ_j), the
// paper's "tanh … with a learned scale" (§4.1), which keeps exp(s) from overflowing early in
// training while letting the bound grow where the data need it.
//
// Invertible for every value of the parameters (exp(s) > 0); the inverse needs no iteration.
// Composed from tape ops, so gradients reach z, every MLP weight, σ and the context.
//
// Shapes: R rows, L coordinates, C context columns (0 without a context), H_l hidden widths.
//   mask b [L] (a constant), net [L + C] → H_1 → … → [2L], scale σ `<name>.scale` [L].

/// The mask patterns of a chain of coupling steps: which coordinates step k conditions on.
public enum CouplingMask: String, Codable, CaseIterable, Sendable {
  /// b_j = 1 for j + k even: the 1-D analogue of the paper's checkerboard, flipped each step.
  case alternating
  /// b_j = 1 for j < ⌈L/2⌉ on even steps, for j ≥ ⌈L/2⌉ on odd steps: the first half and the
  /// second half take turns (the paper's channel-wise mask on a vector).
  case halves

  /// b [L] of step k: 1 where the step copies (conditions on) the coordinate, 0 where it
  /// transforms it. Every step transforms at least one coordinate and conditions on at least one
  /// (L ≥ 2); two consecutive steps together transform every coordinate.
  public func mask(dimension l: Int, step k: Int) -> [Float] {
    precondition(l >= 2, "CouplingMask: a coupling needs dimension ≥ 2, got \(l)")
    let half = (l + 1) / 2
    return (0..<l).map { j in
      switch self {
      case .alternating: return (j + k) % 2 == 0 ? 1 : 0
      case .halves: return (j < half) == (k % 2 == 0) ? 1 : 0
      }
    }
  }
}

/// One affine coupling step with its coupling network's parameters in a `ParameterStore`.
public struct AffineCoupling: Flow {
  public let dimension: Int
  /// b [L]: 1 = conditioning (copied), 0 = transformed.
  public let mask: [Float]
  public let contextWidth: Int
  public let store: ParameterStore
  /// [b⊙z | context] [R, L + C] → [ŝ | t̂] [R, 2L].
  public let net: MLP
  /// σ [L], the tanh bound of s.
  public let scale: Int

  private let maskTensor: Tensor       // b [L]
  private let inverseMask: Tensor      // 1 − b [L]

  /// Declares `<name>.net.fc<i>.{weight,bias}` (PyTorch's `nn.Linear` init) and
  /// `<name>.scale` [L] (= 1) in `store`; call before `store.allocate`, then
  /// `zeroOutputLayer()` for a step that starts as the identity.
  /// - Parameters:
  ///   - hidden: the coupling MLP's hidden widths (≥ 1 layer).
  ///   - mask: b [L] (see ``CouplingMask/mask(dimension:step:)``).
  ///   - contextWidth: C, context columns appended to the network's input (0: none).
  public init(_ store: ParameterStore, _ name: String, dimension: Int, hidden: [Int],
              mask: [Float], contextWidth: Int = 0, activation: Activation = .relu) {
    precondition(mask.count == dimension && mask.allSatisfy { $0 == 0 || $0 == 1 },
                 "AffineCoupling: the mask must be \(dimension) zeros and ones")
    precondition(!hidden.isEmpty, "AffineCoupling: the coupling network needs a hidden layer")
    self.dimension = dimension
    self.mask = mask
    self.contextWidth = contextWidth
    self.store = store
    net = MLP(store, "\(name).net", sizes: [dimension + contextWidth] + hidden + [2 * dimension],
              activation: activation)
    scale = store.declare("\(name).scale", [dimension], .constant(1))
    maskTensor = Tensor(mask, shape: [dimension])
    inverseMask = Tensor(mask.map { 1 - $0 }, shape: [dimension])
  }

  /// Sets the coupling network's last layer to zero, so that s = t = 0 and the step is the
  /// identity (the usual start for deep coupling chains: the chain's density begins as the base).
  /// Call after `store.allocate`.
  public func zeroOutputLayer() {
    let last = net.layers[net.layers.count - 1]
    store.value(last.weight).fill(0)
    store.value(last.bias).fill(0)
  }

  // MARK: - The coupling network

  /// h = [ŝ | t̂] [R, 2L] from the conditioning part of z [R, L] (and the context).
  public func networkOutput(_ z: Variable, context: Variable?) -> Variable {
    let l = dimension
    precondition(z.value.rank == 2 && z.value.cols == l,
                 "AffineCoupling: z \(z.shape), expected [R, \(l)]")
    var input = maskColumns(z, maskTensor)                             // b⊙z [R, L]
    if contextWidth > 0 {
      guard let c = context, c.value.rank == 2, c.value.cols == contextWidth,
            c.value.rows == z.value.rows else {
        preconditionFailure("AffineCoupling: needs a context [R, \(contextWidth)], got "
                              + "\(context.map { "\($0.shape)" } ?? "none")")
      }
      input = concatColumns([input, c])                                // [R, L + C]
    }
    return net(input, store)                                           // [R, 2L]
  }

  /// s, t [R, L] of the conditioning part of z [R, L], composed from tape ops; both are 0 on
  /// the conditioning coordinates. (`forward` computes the same through the fused
  /// `affineCoupling` op; this form serves the inverse and the tests.)
  public func shiftAndLogScale(_ z: Variable, context: Variable?)
    -> (s: Variable, t: Variable) {
    let l = dimension, tape = z.tape
    let h = networkOutput(z, context: context)                         // [R, 2L]
    let notB = tape.constant(inverseMask)
    let sigma = store.variable(scale, on: tape)                        // σ [L]
    let s = h.columns(0..<l).tanh() * sigma * notB                     // [R, L]
    let t = h.columns(l..<2 * l) * notB                                // [R, L]
    return (s, t)
  }

  // MARK: - Forward and inverse

  /// z′ = z⊙exp(s) + t and log|det| = Σ_j s_j per row (s, t vanish where b = 1), one fused op
  /// after the coupling network.
  public func forward(_ z: Variable, context: Variable?) -> (z: Variable, logDet: Variable) {
    let h = networkOutput(z, context: context)
    return affineCoupling(z, h: h, scale: store.variable(scale, on: z.tape), mask: maskTensor)
  }

  /// z = (z′ − t)⊙exp(−s), s and t from b⊙z′ = b⊙z (the copied part is unchanged).
  public func inverse(_ z: Variable, context: Variable?) -> Variable? {
    let (s, t) = shiftAndLogScale(z, context: context)
    return (z - t) * s.affine(scale: -1).exp()
  }
}

/// K coupling steps whose masks alternate (step k uses `pattern.mask(dimension:step: k)`), named
/// `<name>.<k>`, as a chain; the steps are returned too (for `zeroOutputLayer`).
public func makeCouplingChain(store: ParameterStore, name: String, dimension: Int, steps: Int,
                              hidden: [Int], pattern: CouplingMask, contextWidth: Int = 0,
                              activation: Activation = .relu)
  -> (chain: FlowChain, steps: [AffineCoupling]) {
  let couplings = (0..<steps).map { k in
    AffineCoupling(store, "\(name).\(k)", dimension: dimension, hidden: hidden,
                   mask: pattern.mask(dimension: dimension, step: k), contextWidth: contextWidth,
                   activation: activation)
  }
  return (FlowChain(couplings), couplings)
}
