import ElboAutograd
import ElboNN
import ElboProbability
import ElboTestSupport
import XCTest

/// Sylvester flows (H-SNF and T-SNF, global and amortised): log|det J| against the autodiff
/// Jacobian at D ∈ {2, 5, 16}, Q's orthonormal columns, the numerical inverse, and
/// finite-difference gradients of every parameter, the context and z.
final class SylvesterTests: XCTestCase {
  var rng = TestRandom(seed: 20_261_212)
  let dimensions = [2, 5, 16]
  let rows = 3

  /// (M, Q) variants at latent dimension L: H-SNF with M = L and M < L, T-SNF with I and P.
  func variants(_ l: Int) -> [(columns: Int, q: SylvesterFlow.Orthogonal)] {
    var v: [(Int, SylvesterFlow.Orthogonal)] = [(l, .householder(reflections: 3))]
    if l > 2 { v.append((l - 2, .householder(reflections: 2))) }
    v += [(l, .identity), (l, .reversal)]
    return v
  }

  func global(_ l: Int, _ m: Int, _ q: SylvesterFlow.Orthogonal, seed: UInt64 = 1)
    -> (ParameterStore, SylvesterFlow) {
    let store = ParameterStore()
    let flow = SylvesterFlow(store, "snf", dimension: l, columns: m, orthogonal: q, initBound: 1)
    store.allocate(seed: seed)
    return (store, flow)
  }

  /// A context with the step's columns at offset 2 and one spare column after them. Entries up
  /// to ±2: tanh of the raw diagonals reaches ±0.96, near the edge R_ii R̃_ii → −1.
  /// With `fullBound`, F's entries are drawn in ±fullBound instead (the round trips use
  /// ±1.5/√M, the scale of an encoder's output layer: with |F_ij| up to 2 and M = 16, |z′| reaches
  /// ~30, whose Float rounding alone is ~1e-5).
  func context(_ l: Int, _ m: Int, _ q: SylvesterFlow.Orthogonal, rows: Int,
               fullBound: Float? = nil) -> Tensor {
    let width = 2 + SylvesterFlow.contextWidth(dimension: l, columns: m, orthogonal: q) + 1
    let c = rng.tensor([rows, width], -2, 2)
    if let fullBound {
      for r in 0..<rows { for j in 0..<m * m { c[r * width + 2 + j] *= fullBound / 2 } }
    }
    return c
  }

  // MARK: - log|det J|

  func testLogDetMatchesJacobian() {
    for l in dimensions {
      for (m, q) in variants(l) {
        let (_, flow) = global(l, m, q)
        let z = rng.tensor([rows, l], -2, 2)
        let name = "SNF global L=\(l) M=\(m) \(q)"
        let signs = FlowCheck.assertLogDetMatchesJacobian(name, z) { _, z in flow(z) }
        XCTAssertEqual(signs, [Double](repeating: 1, count: rows), "\(name): det J > 0")

        let amortised = SylvesterFlow(amortisedDimension: l, columns: m, orthogonal: q,
                                      contextOffset: 2)
        let c = context(l, m, q, rows: rows)
        let signsA = FlowCheck.assertLogDetMatchesJacobian("SNF amortised L=\(l) M=\(m) \(q)", z) {
          tape, z in amortised(z, context: tape.constant(c))
        }
        XCTAssertEqual(signsA, [Double](repeating: 1, count: rows), "\(name) amortised: det J > 0")
      }
    }
  }

  func testNearTheDiagonalEdgeStaysInvertible() {
    // Raw diagonals ±6: R_ii R̃_ii ≈ −1 where the signs differ, so 1 + R_ii R̃_ii h′ ≈ 0 near
    // a = 0. The determinant must stay positive and the log-determinant exact.
    let l = 5
    let (store, flow) = global(l, l, .identity, seed: 3)
    let d = store.value(store.index(of: "snf.diagonal")!)
    let dt = store.value(store.index(of: "snf.diagonalTilde")!)
    for i in 0..<l { d[i] = 6; dt[i] = i % 2 == 0 ? -6 : 6 }
    let z = rng.tensor([32, l], -3, 3)
    let signs = FlowCheck.assertLogDetMatchesJacobian("SNF at the edge", z) { _, z in flow(z) }
    XCTAssertEqual(signs, [Double](repeating: 1, count: 32), "det J changed sign")
  }

  func testSpecChainsMatchTheJacobian() {
    // T-SNF alternates I and P; H-SNF with M < L: K = 3 steps from the spec, both sources.
    for l in dimensions {
      for kind in [FlowKind.sylvesterH, .sylvesterT] {
        for source in FlowParameterSource.allCases {
          var spec = FlowChainSpec(kind: kind, length: 3, parameters: source)
          spec.sylvesterReflections = 2
          if kind == .sylvesterH { spec.sylvesterColumns = max(1, l - 1) }
          let store = ParameterStore()
          let chain = spec.makeChain(store: store, name: "s", dimension: l)
          store.allocate(seed: 6)
          if kind == .sylvesterT {
            let qs = chain.steps.map { ($0 as? SylvesterFlow)?.orthogonal }
            XCTAssertEqual(qs, [.identity, .reversal, .identity])
          }
          let c = rng.tensor([rows, max(1, spec.contextWidth(dimension: l))], -1.5, 1.5)
          FlowCheck.assertLogDetMatchesJacobian("\(kind) \(source) K=3 L=\(l)",
                                                rng.tensor([rows, l], -2, 2)) { tape, z in
            chain(z, context: tape.constant(c))
          }
        }
      }
    }
  }

  // MARK: - Q

  /// Q [L, M] made column by column as Q e_j, from one row's Householder vectors.
  func qMatrix(_ l: Int, _ m: Int, _ q: SylvesterFlow.Orthogonal, _ vectors: [Tensor])
    -> [[Double]] {
    let tape = Tape(recording: false)
    var basis = [Float](repeating: 0, count: m * m)
    for j in 0..<m { basis[j * m + j] = 1 }
    // Row j of the result is (Q e_j)ᵀ: Q's column j.
    let columns = SylvesterFlow.applyQ(tape.constant(Tensor(basis, shape: [m, m])), q,
                                       vectors.map { tape.constant($0) }, dimension: l)
      .value.array
    return (0..<l).map { i in (0..<m).map { j in Double(columns[j * l + i]) } }
  }

  func testQHasOrthonormalColumns() {
    for l in dimensions {
      for (m, q) in variants(l) {
        let n: Int
        if case let .householder(k) = q { n = k } else { n = 0 }
        let vectors = (0..<n).map { _ in rng.tensor([l], -1, 1) }
        let qm = qMatrix(l, m, q, vectors)
        var gram: [Double] = [], identity: [Double] = []
        for a in 0..<m {
          for b in 0..<m {
            gram.append((0..<l).reduce(0) { $0 + qm[$1][a] * qm[$1][b] })
            identity.append(a == b ? 1 : 0)
          }
        }
        assertClose(gram, identity, atol: 1e-6, "QᵀQ = I, L=\(l) M=\(m) \(q)")
        // Qᵀ undoes Q: applyQTranspose(applyQ(x)) = x.
        let tape = Tape(recording: false)
        let x = tape.constant(rng.tensor([rows, m]))
        let hv = vectors.map { tape.constant($0) }
        let back = SylvesterFlow.applyQTranspose(SylvesterFlow.applyQ(x, q, hv, dimension: l), q,
                                                 hv, columns: m)
        assertClose(back.value.array, x.value.array, atol: 1e-6, "QᵀQx = x, L=\(l) \(q)")
      }
    }
    // The reversal is the permutation P_ij = 1[i + j = L − 1], not the identity.
    let p = qMatrix(3, 3, .reversal, [])
    XCTAssertEqual(p, [[0, 0, 1], [0, 1, 0], [1, 0, 0]])
  }

  // MARK: - Inverse

  func testInverseRoundTrips() {
    for l in dimensions {
      for (m, q) in variants(l) {
        let (_, flow) = global(l, m, q)
        FlowCheck.assertRoundTrip("SNF global L=\(l) M=\(m) \(q)", rng.tensor([8, l], -2, 2),
                                  forward: { _, z in flow(z).z },
                                  inverse: { _, z in flow.inverse(z, context: nil) })
        let amortised = SylvesterFlow(amortisedDimension: l, columns: m, orthogonal: q,
                                      contextOffset: 2)
        let c = context(l, m, q, rows: 8, fullBound: 1.5 / Float(m).squareRoot())
        FlowCheck.assertRoundTrip("SNF amortised L=\(l) M=\(m) \(q)", rng.tensor([8, l], -2, 2),
                                  forward: { t, z in amortised(z, context: t.constant(c)).z },
                                  inverse: { t, z in amortised.inverse(z, context: t.constant(c)) })
      }
    }
  }

  func testChainInverseRoundTrips() {
    for kind in [FlowKind.sylvesterH, .sylvesterT] {
      for source in FlowParameterSource.allCases {
        var spec = FlowChainSpec(kind: kind, length: 4, parameters: source)
        spec.sylvesterReflections = 3
        let l = 5
        let store = ParameterStore()
        let chain = spec.makeChain(store: store, name: "s", dimension: l)
        store.allocate(seed: 2)
        let c = rng.tensor([8, spec.contextWidth(dimension: l)], -1.5, 1.5)
        FlowCheck.assertRoundTrip("\(kind) \(source) chain", rng.tensor([8, l], -2, 2),
                                  forward: { t, z in chain(z, context: t.constant(c)).z },
                                  inverse: { t, z in chain.inverse(z, context: t.constant(c)) })
      }
    }
  }

  // MARK: - Gradients

  func testGlobalGradientsOfEveryParameter() {
    for l in dimensions {
      for (m, q) in variants(l) {
        let (store, flow) = global(l, m, q)
        let z = rng.tensor([rows, l], -2, 2)
        FlowGradients.assertStore("SNF global L=\(l) M=\(m) \(q)", store) { tape in
          flow(tape.constant(z))
        }
      }
    }
  }

  func testAmortisedGradientsOfZAndContext() {
    for l in dimensions {
      for (m, q) in variants(l) {
        let flow = SylvesterFlow(amortisedDimension: l, columns: m, orthogonal: q)
        let c = rng.tensor([2, SylvesterFlow.contextWidth(dimension: l, columns: m,
                                                          orthogonal: q)], -1.5, 1.5)
        FlowGradients.assertInputs("SNF amortised L=\(l) M=\(m) \(q)",
                                   [rng.tensor([2, l], -2, 2), c]) { v in
          flow(v[0], context: v[1])
        }
      }
    }
  }
}
