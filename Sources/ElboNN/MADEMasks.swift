/// The connectivity masks of a MADE (Germain et al., ICML 2015, §4), built from (seed, mask index).
///
/// Degrees: every input d gets m⁰(d) ∈ 1…D (the ordering: a permutation of 1…D, the identity
/// unless `orderAgnostic`); every hidden unit k of layer l = 1…L gets
///   m^l(k) ~ U{min_k' m^{l−1}(k'), …, D − 1}     (a unit of degree m may
/// depend on the inputs of degree ≤ m, and the bound D − 1 keeps it useful to some output).
/// Masks ([from, to], 1 = connected):
///   hidden   M^l[k', k] = 1[m^l(k) ≥ m^{l−1}(k')]
///   output   M^V[k, d]  = 1[m⁰(d) > m^L(k)]   (strict: output d sees only inputs before it)
///   direct   A[j, d]    = 1[m⁰(d) > m⁰(j)]    (optional direct input→output connections)
/// so logit d depends on x_j only if m⁰(j) < m⁰(d): the network is autoregressive in the ordering.
///
/// Reproducibility: mask i's ordering is drawn from NoiseAddress(seed, .connectivity, time 0,
/// item i) and layer l's degrees from (seed, .connectivity, time l, item i) — keyed by what they
/// are for, never by rank or by how many masks were built before — so mask i is the same on
/// every rank, in every process, and after a resume.
public struct MADEMasks: Sendable {
  /// D ≥ 2.
  public let inputs: Int
  /// H_1, …, H_L (L ≥ 1).
  public let hidden: [Int]
  public let seed: UInt64
  /// Whether each mask also draws its own input ordering (else m⁰(d) = d + 1 for every mask).
  public let orderAgnostic: Bool

  public init(inputs: Int, hidden: [Int], seed: UInt64, orderAgnostic: Bool) {
    precondition(inputs >= 2, "MADEMasks: a MADE needs D ≥ 2 inputs, got \(inputs)")
    precondition(!hidden.isEmpty && hidden.allSatisfy { $0 > 0 },
                 "MADEMasks: hidden sizes \(hidden) must be one or more positive widths")
    self.inputs = inputs
    self.hidden = hidden
    self.seed = seed
    self.orderAgnostic = orderAgnostic
  }

  /// The degrees and masks of mask `index` (index ≥ 0).
  public func callAsFunction(_ index: Int) -> MADEMaskSet {
    precondition(index >= 0 && index <= Int(UInt32.max),
                 "MADEMasks: mask index \(index) outside 0..<2³²")
    let d = inputs
    func stream(_ time: UInt64) -> RandomStream {
      RandomStream(NoiseAddress(seed: seed, purpose: .connectivity, time: time,
                                item: UInt32(index)))
    }
    // m⁰: 1…D, shuffled (Fisher–Yates) if order-agnostic.
    var ordering = Array(1...d)
    if orderAgnostic {
      var rng = stream(0)
      for i in stride(from: d - 1, to: 0, by: -1) {
        ordering.swapAt(i, rng.integer(below: i + 1))
      }
    }
    // m^l for l = 1…L, each layer from its own stream.
    var degrees: [[Int]] = []
    var previous = ordering
    for (l, width) in hidden.enumerated() {
      var rng = stream(UInt64(l + 1))
      let low = previous.min() ?? 1
      let layer = (0..<width).map { _ in low + rng.integer(below: d - low) }  // low…D−1
      degrees.append(layer)
      previous = layer
    }
    var layerMasks: [Tensor] = []
    previous = ordering
    for layer in degrees {
      layerMasks.append(MADEMasks.mask(from: previous, to: layer) { $1 >= $0 })
      previous = layer
    }
    return MADEMaskSet(
      index: index, ordering: ordering, degrees: degrees, hidden: layerMasks,
      output: MADEMasks.mask(from: previous, to: ordering) { $1 > $0 })
  }

  /// M[i, j] = connected(from[i], to[j]) as a [from.count, to.count] tensor of 0/1.
  static func mask(from: [Int], to: [Int], _ connected: (Int, Int) -> Bool) -> Tensor {
    let t = Tensor(zeros: [from.count, to.count])
    let p = t.pointer
    for i in from.indices {
      for j in to.indices where connected(from[i], to[j]) { p[i * to.count + j] = 1 }
    }
    return t
  }
}

/// One MADE mask: the degrees of every unit and the masks between consecutive layers.
public struct MADEMaskSet: @unchecked Sendable {
  public let index: Int
  /// m⁰(d) ∈ 1…D for every input d (a permutation of 1…D).
  public let ordering: [Int]
  /// m^l(k) for every hidden layer l = 1…L and unit k.
  public let degrees: [[Int]]
  /// M^1 [D, H_1], M^2 [H_1, H_2], …, M^L [H_{L−1}, H_L].
  public let hidden: [Tensor]
  /// M^V [H_L, D].
  public let output: Tensor
  /// A [D, D] for direct input→output connections (strictly autoregressive); built on each use.
  public var direct: Tensor { MADEMasks.mask(from: ordering, to: ordering) { $1 > $0 } }

  /// The inputs in sampling order: the d with m⁰(d) = 1 first, then 2, …
  public var samplingOrder: [Int] {
    ordering.indices.sorted { ordering[$0] < ordering[$1] }
  }
}
