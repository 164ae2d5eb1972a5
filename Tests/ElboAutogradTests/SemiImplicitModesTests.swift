import ElboModels
import ElboTestSupport
import Foundation
import XCTest

/// A semi-implicit q fitted by SIVI to a 2-D target with two modes covers both, while the
/// mean-field Gaussian fitted by the same reverse KL sits on one (Yin & Zhou 2018, Fig. 1's
/// point). Target p(z) = ½ N((−2, 0), 0.5² I) + ½ N((2, 0), 0.5² I); both fits maximise
/// E_q log p(z) − E_q log q(z) by Adam (SIVI: the K = 20 surrogate, T(ε) = MLP 2-32-4 tanh of
/// ε ~ N(0, I₂), its weights scaled so that q starts spread over both modes by ε (from the
/// library's small default initialisation it fell on one mode, like the Gaussian); Gaussian:
/// its analytic entropy). Coverage = the smaller share of 4000 draws of q within 1.5 sd of a
/// mode (the target's own is ≈ 0.43 each).
final class SemiImplicitModesTests: XCTestCase {
  static let modes: [Float] = [-2, 2], sd: Float = 0.5

  /// log p(z) of the target for z [N, 2] (a two-component mixture with shared components).
  static func logTarget(_ z: Variable) -> Variable {
    let tape = z.tape
    let mean = tape.constant(Tensor([modes[0], 0, modes[1], 0], shape: [2, 2]))
    let lv = tape.constant(Tensor(Array(repeating: 2 * log(sd), count: 4), shape: [2, 2]))
    return SIVI.logMixtureDensity(z, shared: DiagonalNormal(mean: mean, logVariance: lv))
  }

  /// The share of draws within 1.5 sd of each mode (the smaller of the two): ≈ 0.43 for the
  /// target itself, ≈ 0 for a q on one mode, ≈ 0.15 for a broad q spread over both.
  static func coverage(_ z: [Float]) -> Float {
    let n = z.count / 2
    let near = modes.map { c in
      (0..<n).filter { abs(z[2 * $0] - c) < 1.5 * sd && abs(z[2 * $0 + 1]) < 1.5 * sd }.count
    }
    return Float(near.min()!) / Float(n)
  }

  func testSemiImplicitCoversBothModesAndTheGaussianOne() {
    // Semi-implicit q: T(ε) = MLP(ε) → (μ, log σ²).
    let store = ParameterStore()
    let net = MLP(store, "t", sizes: [2, 32, 4], activation: .tanh)
    store.allocate(seed: 1)
    // Start with μ(ε) spread over ±3 by ε (large weights), so that q begins spread by the
    // mixing noise rather than by σ.
    let w0 = store.value(net.layers[0].weight), w1 = store.value(net.layers[1].weight)
    for j in 0..<w0.count { w0[j] *= 3 }
    for j in 0..<w1.count where j % 4 < 2 { w1[j] *= 8 }
    let adam = Adam(parameterCount: store.count, learningRate: 1e-2)
    var rng = TestRandom(seed: 2)
    let rows = 64, k = 20
    func q(_ tape: Tape) -> SemiImplicitNormal {
      SemiImplicitNormal(mixingDimension: 2) { eps in
        let s = eps.shape[0], r = eps.shape[1]
        let out = net(tape.constant(eps.reshaped([s * r, 2])), store)  // [SR, 4]
        return DiagonalNormal(mean: out.columns(0..<2).reshaped([s, r, 2]),
                              logVariance: out.columns(2..<4).reshaped([s, r, 2]))
      }
    }
    let tape = Tape()
    for _ in 0..<1200 {
      tape.reset()
      store.zeroGrad()
      let qt = q(tape)
      let (z, q0) = qt.sample(mixing: rng.normal([1, rows, 2]), noise: rng.normal([1, rows, 2]))
      let logQ = qt.surrogateLogDensity(z, generating: q0, mixing: rng.normal([k, rows, 2]))
      let bound = SemiImplicitModesTests.logTarget(z.reshaped([rows, 2])) - logQ.reshaped([rows])
      tape.backward(bound.sum().affine(scale: -1 / Float(rows)))
      adam.update(store.flatValues, UnsafeBufferPointer(store.flatGrads))
    }
    let eval = Tape(recording: false)
    let draws = q(eval).sample(mixing: rng.normal([1, 4000, 2]), noise: rng.normal([1, 4000, 2]))
      .z.value.array
    let sivi = SemiImplicitModesTests.coverage(draws)
    let z1 = stride(from: 0, to: draws.count, by: 2).map { draws[$0] }
    print("semi-implicit modes: coverage \(sivi) (left \(z1.filter { $0 < 0 }.count) of 4000)")

    // Mean-field Gaussian q = N(m, diag e^v), started just right of the centre.
    let gStore = ParameterStore()
    let m = gStore.declare("m", [2], .constant(0.1)), v = gStore.declare("v", [2], .zeros)
    gStore.allocate(seed: 1)
    let gAdam = Adam(parameterCount: gStore.count, learningRate: 1e-2)
    for _ in 0..<400 {
      tape.reset()
      gStore.zeroGrad()
      let eta = tape.constant(rng.normal([rows, 2]))
      let mv = gStore.variable(m, on: tape).reshaped([1, 2])
      let vv = gStore.variable(v, on: tape).reshaped([1, 2])
      let z = mv + vv.affine(scale: 0.5).exp() * eta
      // −E log q = ½ Σ v + const: the entropy is analytic.
      let bound = SemiImplicitModesTests.logTarget(z).sum().affine(scale: 1 / Float(rows))
        + vv.sum().affine(scale: 0.5)
      tape.backward(bound.affine(scale: -1))
      gAdam.update(gStore.flatValues, UnsafeBufferPointer(gStore.flatGrads))
    }
    let mu = gStore.value(m).array, sdG = gStore.value(v).array.map { exp(0.5 * $0) }
    let eta = rng.normal([4000, 2]).array
    let gDraws = (0..<8000).map { mu[$0 % 2] + sdG[$0 % 2] * eta[$0] }
    let gaussian = SemiImplicitModesTests.coverage(gDraws)
    print("gaussian modes: coverage \(gaussian), mean \(mu), sd \(sdG)")

    XCTAssertGreaterThan(sivi, 0.25, "semi-implicit q covers both modes (smaller share \(sivi))")
    XCTAssertLessThan(gaussian, 0.2, "the Gaussian sits on one mode (smaller share \(gaussian), "
                        + "mean \(mu), sd \(sdG))")
  }
}
