import ElboDistributed
import ElboExperiments
import ElboModels
import ElboProbability
import ElboTrain
import Foundation
import XCTest

/// The compression rate r = (1/d) E_x[KL(q(z|x) ‖ π(z))] / ln 2 (seed 001): the record's
/// arithmetic, and the VAE's logged value against a KL computed independently (the encoder
/// written out in Double from the stored parameters, the Gaussian KL in closed form).
final class CompressionRateTests: XCTestCase {
  /// One layer: r = KL/(d ln 2); several: cumulative r_k per layer, r the last.
  func testRecordArithmetic() {
    let one = CompressionRate(dimension: 784, klNats: 20)
    XCTAssertEqual(one.bitsPerDimension, 20 / (784 * log(2.0)), accuracy: 1e-15)
    XCTAssertEqual(one.metrics["compression_kl_nats"], 20)
    XCTAssertNil(one.metrics["compression_bits_per_dim_z"], "one layer has no per-layer keys")
    let two = CompressionRate(dimension: 10, layers: [.init(name: "z1", klNats: 3),
                                                     .init(name: "z2", klNats: 1)])
    let ln2 = log(2.0)
    XCTAssertEqual(two.cumulativeBitsPerDimension, [3 / (10 * ln2), 4 / (10 * ln2)])
    XCTAssertEqual(two.metrics["compression_bits_per_dim"]!, 4 / (10 * ln2), accuracy: 1e-15)
    XCTAssertEqual(two.metrics["compression_bits_per_dim_z1"]!, 3 / (10 * ln2), accuracy: 1e-15)
    XCTAssertEqual(two.metrics["compression_kl_nats_z2"], 1)
  }

  /// A tiny VAE (784-3-4 encoder, L = 2) on MNIST-5k's test set: the logged
  /// compression_bits_per_dim equals (1/N) Σ_x ½ Σ_u (μ² + σ² − log σ² − 1) / (784 ln 2) with
  /// μ, log σ² from the encoder computed here in Double.
  func testVAECompressionRateMatchesAHandComputedKL() throws {
    let communicator = try Communicator.initialize()
    var c = VAEExperiment.Config()
    c.data = "mnist-5k"; c.hidden = 3; c.hiddenLayers = 1; c.latent = 2
    let e = try VAEExperiment(config: c, seed: 11)
    // Larger encoder output weights than the initialiser's, so that the KL is far from 0.
    let store = e.model.store
    func values(_ name: String) -> UnsafeMutableBufferPointer<Float> {
      store.value(store.index(of: name)!).buffer
    }
    let w2 = values("encoder.fc2.weight")
    for i in w2.indices { w2[i] *= 8 }
    let w1 = values("encoder.fc1.weight"), b1 = values("encoder.fc1.bias")
    let b2 = values("encoder.fc2.bias")

    let d = 784, n = e.test.count
    var kl = 0.0
    for i in 0..<n {
      var h = [Double](repeating: 0, count: 3)
      for k in 0..<3 {
        var s = Double(b1[k])
        for j in 0..<d { s += Double(e.images.testBinary[i * d + j]) * Double(w1[j * 3 + k]) }
        h[k] = max(s, 0)                                          // ReLU
      }
      var out = [Double](repeating: 0, count: 4)                  // μ₁ μ₂ log σ²₁ log σ²₂
      for k in 0..<4 {
        out[k] = Double(b2[k]) + (0..<3).reduce(0) { $0 + h[$1] * Double(w2[$1 * 4 + k]) }
      }
      for u in 0..<2 {
        let mu = out[u], lv = out[2 + u]
        kl += 0.5 * (mu * mu + exp(lv) - lv - 1)
      }
    }
    kl /= Double(n)
    XCTAssertGreaterThan(kl, 0.1, "the test case should have a sizeable KL")

    let m = try e.evaluate(epoch: 0, communicator: communicator)
    let r = try XCTUnwrap(m["compression_bits_per_dim"])
    XCTAssertEqual(r, kl / (Double(d) * log(2.0)), accuracy: 1e-4 * r)
    XCTAssertEqual(try XCTUnwrap(m["compression_kl_nats"]), kl, accuracy: 1e-4 * kl)
    XCTAssertEqual(m["compression_dimension"], 784)
  }
}
