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
// `contextWidth(dimension:)` is how many encoder outputs the chain reads; step k reads its own
// column range, laid out step after step, so the encoder's last layer simply grows by that width.

/// The kinds of flow a chain can be made of (the values of `--flow`).
public enum FlowKind: String, Codable, CaseIterable, Sendable {
  case planar, radial, iaf
  case sylvesterH = "sylvester-h"
  case sylvesterT = "sylvester-t"
}

extension FlowKind {
  /// The kinds `FlowChainSpec.makeChain` builds today (it stops the process on the others), so
  /// that a command can refuse the rest with one line; a kind joins when its flow is built.
  public static let built: Set<FlowKind> = [.planar, .radial]
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
  /// IAF: hidden units of each step's MADE (one hidden layer block; Kingma et al. use 2 × 320
  /// on MNIST), and the width of the context h it reads (amortised only).
  public var iafHidden = 320
  public var iafContext = 320
  /// Sylvester: M, the number of orthogonal columns (H-SNF: Householder reflections per step;
  /// T-SNF: M = L with a permutation). 0 means "the latent dimension".
  public var sylvesterColumns = 0

  public init(kind: FlowKind = .planar, length: Int = 0,
              parameters: FlowParameterSource = .amortised) {
    self.kind = kind
    self.length = length
    self.parameters = parameters
  }

  /// Throws a one-line description of the first invalid field.
  public func validate() throws {
    if length < 0 { throw FlowSpecError("flow length must be ≥ 0, got \(length)") }
    if iafHidden < 1 { throw FlowSpecError("iafHidden must be ≥ 1, got \(iafHidden)") }
    if iafContext < 1 { throw FlowSpecError("iafContext must be ≥ 1, got \(iafContext)") }
    if sylvesterColumns < 0 {
      throw FlowSpecError("sylvesterColumns must be ≥ 0, got \(sylvesterColumns)")
    }
  }

  /// Context columns the chain reads from the encoder, for latent dimension L (0 when global or
  /// K = 0).
  public func contextWidth(dimension l: Int) -> Int {
    guard parameters == .amortised, length > 0 else { return 0 }
    switch kind {
    case .planar: return length * PlanarFlow.contextWidth(l)
    case .radial: return length * RadialFlow.contextWidth(l)
    case .iaf, .sylvesterH, .sylvesterT:
      preconditionFailure("FlowChainSpec: \(kind.rawValue) is not built yet")
    }
  }

  /// The chain f_K ∘ … ∘ f₁ on latent dimension L. Global parameters are declared in `store` as
  /// `<name>.<k>.…` (call before `store.allocate`); amortised steps read their column ranges of
  /// the context, starting at `contextOffset`.
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
      case (.iaf, _), (.sylvesterH, _), (.sylvesterT, _):
        preconditionFailure("FlowChainSpec: \(kind.rawValue) is not built yet")
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
