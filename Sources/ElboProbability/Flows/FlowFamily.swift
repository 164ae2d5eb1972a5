// MARK: - Flow families: a chain of K flows of one kind, built from a spec
//
// Models do not build flows step by step; they hold a `FlowChainSpec` (the `--flow KIND
// --flow-length K` of the command line, a Codable config section) and ask it for a chain. Where a
// step's parameters come from is the spec's `parameters`:
//
//   global     every parameter lives in the model's ParameterStore (a 2-D density fit, a prior);
//   amortised  per-example parameters are read from context columns the encoder emits — for
//              planar, radial and Sylvester flows, the layout of Rezende & Mohamed (2015) and
//              van den Berg et al. (2018) — while IAF keeps its MADE weights in the store and
//              reads the encoder's h as a context input (Kingma et al. 2016, §4).
//
// `contextWidth(dimension:)` is how many encoder outputs the chain reads. Layout per kind:
//   planar, radial, sylvester-h/-t   step k reads its own column range, laid out step after step
//                                    (K × the step's width), so the encoder's last layer simply
//                                    grows by that width;
//   iaf                              every step reads the SAME columns
//                                    [offset, offset + iafContext) — the encoder's h — through its own context weights, so the
//                                    width is iafContext whatever K is.

/// The kinds of flow a chain can be made of (the values of `--flow`).
public enum FlowKind: String, Codable, CaseIterable, Sendable {
  case planar, radial, iaf
  case sylvesterH = "sylvester-h"
  case sylvesterT = "sylvester-t"
}

/// Where a chain's parameters come from (see the file comment).
public enum FlowParameterSource: String, Codable, CaseIterable, Sendable {
  case global, amortised
}

/// K flows of one kind: what a model stores in its config to describe its flow.
public struct FlowChainSpec: Codable, Equatable, Sendable {
  public var kind: FlowKind = .planar
  /// K; 0 is no flow (the chain is the identity).
  public var length = 0
  public var parameters: FlowParameterSource = .amortised
  /// IAF: hidden units of each step's MADE (Kingma et al. and van den Berg et al.'s reference
  /// code use 320), and the width of the context h it reads (amortised only).
  public var iafHidden = 320
  public var iafContext = 320
  /// IAF: hidden layers per step's MADE, 1 or 2 (the reference code uses 2).
  public var iafHiddenLayers = 1
  /// IAF: the hidden activation (ELU, as the reference code).
  public var iafActivation: Activation = .elu
  /// IAF: added to s before the sigmoid, so σ starts near 1 (Kingma et al. suggest +1 to +2).
  public var iafForgetBias: Float = 1
  /// IAF: scales the initial weights of each MADE's output layer (m and s heads).
  public var iafOutputInitScale: Float = 1
  /// IAF: whether each step maps the context through its own weights V (else adds it as it is).
  public var iafContextWeight = true
  /// Sylvester: M, the number of orthonormal columns of Q (H-SNF: M ≤ L; T-SNF: M = L). 0 means
  /// "the latent dimension".
  public var sylvesterColumns = 0
  /// H-SNF: Householder reflections per step (van den Berg et al.'s default is 8).
  public var sylvesterReflections = 8

  public init(kind: FlowKind = .planar, length: Int = 0,
              parameters: FlowParameterSource = .amortised) {
    self.kind = kind
    self.length = length
    self.parameters = parameters
  }

  // Decoding: every field is optional and defaults as above, so configs written before a field
  // existed still decode.
  public init(from decoder: Decoder) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    func get<T: Decodable>(_ key: CodingKeys, _ value: inout T) throws {
      if let v = try c.decodeIfPresent(T.self, forKey: key) { value = v }
    }
    try get(.kind, &kind); try get(.length, &length); try get(.parameters, &parameters)
    try get(.iafHidden, &iafHidden); try get(.iafContext, &iafContext)
    try get(.iafHiddenLayers, &iafHiddenLayers); try get(.iafActivation, &iafActivation)
    try get(.iafForgetBias, &iafForgetBias); try get(.iafOutputInitScale, &iafOutputInitScale)
    try get(.iafContextWeight, &iafContextWeight)
    try get(.sylvesterColumns, &sylvesterColumns)
    try get(.sylvesterReflections, &sylvesterReflections)
  }

  /// `validate()` plus the checks that need the latent dimension L.
  public func validate(dimension l: Int) throws {
    try validate()
    guard length > 0 else { return }
    switch kind {
    case .iaf where l < 2:
      throw FlowSpecError("iaf needs a latent dimension ≥ 2, got \(l)")
    case .sylvesterH where sylvesterColumns > l:
      throw FlowSpecError("sylvesterColumns must be ≤ the latent dimension \(l), got "
                            + "\(sylvesterColumns)")
    case .sylvesterT where sylvesterColumns != 0 && sylvesterColumns != l:
      throw FlowSpecError("sylvester-t uses M = the latent dimension \(l); set sylvesterColumns "
                            + "to 0 or \(l), got \(sylvesterColumns)")
    default: return
    }
  }

  /// Throws a one-line description of the first invalid field.
  public func validate() throws {
    if length < 0 { throw FlowSpecError("flow length must be ≥ 0, got \(length)") }
    if iafHidden < 1 { throw FlowSpecError("iafHidden must be ≥ 1, got \(iafHidden)") }
    if iafContext < 1 { throw FlowSpecError("iafContext must be ≥ 1, got \(iafContext)") }
    if sylvesterColumns < 0 {
      throw FlowSpecError("sylvesterColumns must be ≥ 0, got \(sylvesterColumns)")
    }
    if !(1...2).contains(iafHiddenLayers) {
      throw FlowSpecError("iafHiddenLayers must be 1 or 2, got \(iafHiddenLayers)")
    }
    if kind == .sylvesterH && sylvesterReflections < 1 {
      throw FlowSpecError("sylvesterReflections must be ≥ 1, got \(sylvesterReflections)")
    }
    if !(iafOutputInitScale.isFinite && iafOutputInitScale >= 0) {
      throw FlowSpecError("iafOutputInitScale must be finite and ≥ 0, got \(iafOutputInitScale)")
    }
    if kind == .iaf && parameters == .amortised && !iafContextWeight && iafContext != iafHidden {
      throw FlowSpecError("iafContext must equal iafHidden (\(iafHidden)) when the context is "
                            + "added without weights (iafContextWeight false), got \(iafContext)")
    }
    if !iafForgetBias.isFinite {
      throw FlowSpecError("iafForgetBias must be finite, got \(iafForgetBias)")
    }
  }

  /// Sylvester: M and how step k makes Q (T-SNF alternates I and the reversal, starting with I).
  private func sylvesterShape(_ l: Int, step k: Int)
    -> (columns: Int, orthogonal: SylvesterFlow.Orthogonal) {
    switch kind {
    case .sylvesterH:
      return (sylvesterColumns == 0 ? l : sylvesterColumns,
              .householder(reflections: sylvesterReflections))
    default:
      return (l, k % 2 == 0 ? .identity : .reversal)
    }
  }

  /// Context columns the chain reads from the encoder, for latent dimension L (0 when global or
  /// K = 0).
  public func contextWidth(dimension l: Int) -> Int {
    guard parameters == .amortised, length > 0 else { return 0 }
    switch kind {
    case .planar: return length * PlanarFlow.contextWidth(l)
    case .radial: return length * RadialFlow.contextWidth(l)
    case .iaf: return iafContext
    case .sylvesterH, .sylvesterT:
      let (m, q) = sylvesterShape(l, step: 0)   // the width does not depend on Q's alternation
      return length * SylvesterFlow.contextWidth(dimension: l, columns: m, orthogonal: q)
    }
  }

  /// The chain f_K ∘ … ∘ f₁ on latent dimension L. Global parameters — and IAF's MADE weights
  /// in both variants — are declared in `store` as `<name>.<k>.…` (call before
  /// `store.allocate`); amortised steps read their column ranges of the context, starting at
  /// `contextOffset`. Call `validate(dimension:)` first: an invalid spec traps here.
  public func makeChain(store: ParameterStore, name: String, dimension l: Int,
                        contextOffset: Int = 0) -> FlowChain {
    var steps: [any Flow] = []
    var offset = contextOffset
    for k in 0..<length {
      switch (kind, parameters) {
      case (.planar, .global):
        steps.append(PlanarFlow(store, "\(name).\(k)", dimension: l))
      case (.planar, .amortised):
        steps.append(PlanarFlow(amortisedDimension: l, contextOffset: offset))
        offset += PlanarFlow.contextWidth(l)
      case (.radial, .global):
        steps.append(RadialFlow(store, "\(name).\(k)", dimension: l))
      case (.radial, .amortised):
        steps.append(RadialFlow(amortisedDimension: l, contextOffset: offset))
        offset += RadialFlow.contextWidth(l)
      case (.iaf, _):
        // Odd steps reverse the ordering; every step reads the same context columns.
        steps.append(InverseAutoregressiveFlow(
          store, "\(name).\(k)", dimension: l,
          hidden: Array(repeating: iafHidden, count: iafHiddenLayers),
          contextColumns: parameters == .amortised ? contextOffset..<contextOffset + iafContext
                                                   : nil,
          reversed: k % 2 == 1, maskIndex: k, activation: iafActivation,
          forgetBias: iafForgetBias, outputInitScale: iafOutputInitScale,
          contextWeight: iafContextWeight))
      case (.sylvesterH, .global), (.sylvesterT, .global):
        let (m, q) = sylvesterShape(l, step: k)
        steps.append(SylvesterFlow(store, "\(name).\(k)", dimension: l, columns: m,
                                   orthogonal: q))
      case (.sylvesterH, .amortised), (.sylvesterT, .amortised):
        let (m, q) = sylvesterShape(l, step: k)
        steps.append(SylvesterFlow(amortisedDimension: l, columns: m, orthogonal: q,
                                   contextOffset: offset))
        offset += SylvesterFlow.contextWidth(dimension: l, columns: m, orthogonal: q)
      }
    }
    return FlowChain(steps)
  }
}

/// An invalid `FlowChainSpec` field, as one line.
public struct FlowSpecError: Error, CustomStringConvertible {
  public let description: String
  public init(_ description: String) { self.description = description }
}
