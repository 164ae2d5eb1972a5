// MARK: - Masked linear map: y = x·(W ⊙ M) + b
//
// Shapes: x [R, in], W [in, out] (input-major, like `linear`), M [in, out] with entries in {0, 1},
// b [out], y [R, out]; optional context c [R, C] with its weight V [C, out].
//
// Composed from existing ops, not a tape op of its own: W ⊙ M is the broadcasting `*` with the
// mask as a constant, and `linear` does the rest. The backward this gives is exactly the masked
// one — linear's backward puts xᵀ·dy into d(W ⊙ M), and `*`'s backward multiplies it by M on the
// way to dW, so dW = (xᵀ·dy) ⊙ M and a masked-out weight receives +0 or −0, i.e. exactly 0 —
// and dx = dy·(W ⊙ M)ᵀ reads the masked product the forward already made. A fused op would do
// the same work (one in×out elementwise pass forward, one gemm and one in×out pass backward); the
// composition adds only the memset of d(W ⊙ M) from the arena, one in×out pass against the
// backward's two R×in×out gemms, and carries no calculus of its own (STYLE.md: derived ops are
// built from primitives). Measured (R = 100, 784 → 500, forward + backward, shared 2-core
// machine): 2.0–2.5 ms against 3.0–3.4 ms for plain `linear` — within the noise of the unmasked
// layer, which bounds any fused op from below.

/// y = x·(W ⊙ M) + b (+ c·V): a linear map whose weight is multiplied by a fixed 0/1 mask.
///
/// - Parameters:
///   - x: inputs [R, in].
///   - w: weight [in, out].
///   - mask: M [in, out], entries 0 or 1 (a constant: it gets no gradient).
///   - b: bias [out], or nil for none.
///   - context: an optional unmasked term, (c [R, C], V [C, out]), whose product c·V is added to
///     the pre-activation. An inverse autoregressive flow feeds its context h this way: c does
///     not depend on the autoregressive inputs, so the connection keeps the map autoregressive.
public func maskedLinear(_ x: Variable, _ w: Variable, mask: Tensor, bias b: Variable?,
                         context: (input: Variable, weight: Variable)? = nil) -> Variable {
  precondition(mask.shape == w.shape,
               "maskedLinear: mask \(mask.shape) does not match W \(w.shape)")
  let masked = w * x.tape.constant(mask)                        // W ⊙ M [in, out]
  var y = b.map { linear(x, masked, $0) } ?? matmul(x, masked)  // [R, out]
  if let (c, v) = context {
    precondition(c.value.rows == x.value.rows && v.value.cols == w.value.cols,
                 "maskedLinear: context \(c.shape)·\(v.shape) does not give [\(x.value.rows), "
                   + "\(w.value.cols)]")
    y = y + matmul(c, v)                                        // + c·V [R, out]
  }
  return y
}

/// A fully connected layer with a connectivity mask (Germain et al., "MADE: Masked Autoencoder for
/// Distribution Estimation", ICML 2015, §4): y = x·(W ⊙ M) + b, optionally + c·V.
///
/// Parameters: `<name>.weight` [in, out], `<name>.bias` [out] (unless `bias: false`), and with
/// `contextInputs` C > 0 also `<name>.context` [C, out]. Initialisation as `Linear` (PyTorch's
/// `nn.Linear` default, U(−1/√fan-in, 1/√fan-in)); masked-out weights are initialised too, so a
/// later mask that uses them finds them at the same scale.
///
/// The mask is part of the layer's value, not of the parameter store: `mask` can be replaced
/// between steps (order-agnostic training draws a new one per minibatch), and `with(mask:)` gives a
/// copy with another mask, leaving `self` as it is. A tape keeps the mask tensor it was given until
/// `reset()`, so replacing the mask (the tensor, not its contents) between forward and backward is
/// safe; writing into a mask's storage in between is not.
///
/// Context hook (for IAF, Kingma et al., NeurIPS 2016): with `contextInputs` C > 0 the call takes a
/// context c [R, C] and adds the unmasked c·V to the pre-activation.
public struct MaskedLinear {
  public let weight: Int
  public let bias: Int?
  public let context: Int?
  public let inputs: Int
  public let outputs: Int
  public let contextInputs: Int
  /// M [in, out], entries 0 or 1.
  public var mask: Tensor {
    didSet { MaskedLinear.validate(mask, inputs, outputs) }
  }

  /// - Parameters:
  ///   - mask: M [inputs, outputs] of 0/1 entries; nil for all ones (a plain linear layer until a
  ///     mask is set).
  ///   - bias: whether the layer has a bias (a MADE's direct input→output connection has none).
  ///   - contextInputs: C ≥ 0, the width of the optional context input.
  ///   - initScale: multiplies the initial weight and bias bounds (1: `Linear`'s init; an IAF's
  ///     output layer uses a small one so that each step starts near the identity).
  public init(_ store: ParameterStore, _ name: String, _ inputs: Int, _ outputs: Int,
              mask: Tensor? = nil, bias: Bool = true, contextInputs: Int = 0,
              initScale: Float = 1) {
    precondition(contextInputs >= 0, "MaskedLinear '\(name)': contextInputs must be ≥ 0")
    precondition(initScale >= 0 && initScale.isFinite,
                 "MaskedLinear '\(name)': initScale must be finite and ≥ 0, got \(initScale)")
    let bound = initScale / Float(inputs).squareRoot()
    weight = store.declare("\(name).weight", [inputs, outputs], .uniform(bound: bound))
    self.bias = bias ? store.declare("\(name).bias", [outputs], .uniform(bound: bound)) : nil
    context = contextInputs > 0
      ? store.declare("\(name).context", [contextInputs, outputs],
                      .uniform(bound: 1 / Float(contextInputs).squareRoot()))
      : nil
    self.inputs = inputs
    self.outputs = outputs
    self.contextInputs = contextInputs
    let m = mask ?? Tensor(Array(repeating: 1, count: inputs * outputs), shape: [inputs, outputs])
    MaskedLinear.validate(m, inputs, outputs)
    self.mask = m
  }

  /// A copy of the layer (same parameters) with another mask [in, out].
  public func with(mask newMask: Tensor) -> MaskedLinear {
    var copy = self
    copy.mask = newMask
    return copy
  }

  /// x [R, in] (and context c [R, C] iff the layer was made with `contextInputs` > 0) → [R, out].
  public func callAsFunction(_ x: Variable, _ store: ParameterStore, context c: Variable? = nil)
    -> Variable {
    let tape = x.tape
    precondition((c != nil) == (context != nil),
                 c == nil ? "MaskedLinear: this layer has a context input; pass context:"
                          : "MaskedLinear: context passed to a layer made with contextInputs = 0")
    let ctx = c.flatMap { c in context.map { (input: c, weight: store.variable($0, on: tape)) } }
    return maskedLinear(x, store.variable(weight, on: tape), mask: mask,
                        bias: bias.map { store.variable($0, on: tape) }, context: ctx)
  }

  private static func validate(_ m: Tensor, _ inputs: Int, _ outputs: Int) {
    precondition(m.shape == [inputs, outputs],
                 "MaskedLinear: mask \(m.shape), expected [\(inputs), \(outputs)]")
    let p = m.pointer
    for i in 0..<m.count where p[i] != 0 && p[i] != 1 {
      preconditionFailure("MaskedLinear: mask entry \(i) is \(p[i]); masks hold only 0 and 1")
    }
  }
}
