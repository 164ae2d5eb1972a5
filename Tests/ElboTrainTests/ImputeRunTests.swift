import ElboDistributed
import ElboExperiments
import ElboModels
import ElboNN
import ElboTrain
import Foundation
import XCTest

/// `elbo impute` and the compression rate end to end: a briefly trained VAE imputes better than
/// the per-pixel marginal while an untrained one does not (so the comparison can fail); the
/// command prints one JSON line and a picture for a flow-posterior run, `elbo eval --json`
/// carries the compression rate, and bad input ends with one line and exit status 2.
final class ImputeRunTests: XCTestCase {
  /// MNIST-5k, a 784-64-64-8 VAE: at step 0 the chain's log-likelihood is below the marginal
  /// baseline, after 300 Adam steps above it (left-half and random-50, T = 10).
  func testImputationBeatsTheMarginalOnlyAfterTraining() throws {
    let communicator = try Communicator.initialize()
    var c = VAEExperiment.Config()
    c.data = "mnist-5k"; c.hidden = 64; c.latent = 8
    let e = try VAEExperiment(config: c, seed: 4)
    var request = ImputationRequest()
    request.images = 100; request.chains = 8; request.iterations = 10
    func imputed(_ mask: String) throws -> ImputationOutcome {
      request.mask = mask
      return try e.impute(request, seed: 4, communicator: communicator)
    }
    let untrained = try imputed("left-half")
    XCTAssertEqual(untrained.iterations, [1, 2, 5, 10])
    XCTAssertEqual(untrained.missingPerImage, 392)
    XCTAssertLessThan(untrained.logLikelihood.last!, untrained.baseline,
                      "an untrained decoder should not beat the marginal")

    let trainer = try Trainer(experiment: e, globalBatch: 100,
                              optimizer: Adam(parameterCount: e.store.count), seed: 4,
                              communicator: communicator)
    for step in 0..<300 { XCTAssertNil(try trainer.step(step).nonFinite) }
    for mask in ["left-half", "random-50"] {
      let o = try imputed(mask)
      XCTAssertGreaterThan(o.logLikelihood.last!, o.baseline, "\(mask): \(o.logLikelihood)")
      XCTAssertTrue(o.logLikelihood.allSatisfy { $0 < 0 && $0.isFinite })
      XCTAssertNotNil(o.picture)
    }
  }

  /// A flow-posterior run: `elbo impute --json` gives the iterations, log-likelihoods and
  /// baseline, writes a 3-row picture, and gives the same figures on 2 ranks; `elbo eval --json`
  /// has the compression rate equal to test_kl / (784 ln 2). Then the bad inputs, each one line
  /// and exit status 2.
  func testImputeCommandAndEvalCompressionOnAFlowRun() throws {
    let dir = scratchDirectory("impute")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let run = dir + "/vae"
    try elbo(["train", "vae", "--data", "mnist-5k", "--hidden", "32", "--latent", "4",
              "--flow", "planar", "--flow-length", "2", "--batch-size", "100",
              "--max-steps", "20", "--threads", "1", "--out", run])

    let png = dir + "/left.png"
    let out = try elbo(["impute", run, "--mask", "top-half", "--iterations", "3", "-n", "10",
                        "--chains", "2", "--json", "--out", png, "--threads", "1"]).stdout
    let line = try XCTUnwrap(out.split(separator: "\n").last { $0.hasPrefix("{") })
    let m = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
    XCTAssertEqual(m["kind"] as? String, "impute")
    XCTAssertEqual(m["iterations"] as? [Int], [1, 2, 3])
    XCTAssertEqual((m["log_likelihood"] as? [Double])?.count, 3)
    XCTAssertNotNil(m["baseline_log_likelihood"] as? Double)
    XCTAssertEqual(m["missing_pixels_per_image"] as? Double, 392)
    let image = try XCTUnwrap(DecodedPNG(try Data(contentsOf: URL(fileURLWithPath: png))))
    XCTAssertEqual(image.height, 3 * 28 + 2, "observed / imputed / truth rows")
    XCTAssertEqual(image.width, 8 * 29 - 1)
    // Two ranks split the images: the same figures, up to rounding.
    let two = try elbo(["impute", run, "--mask", "top-half", "--iterations", "3", "-n", "10",
                        "--chains", "2", "--json", "--out", dir + "/two.png", "--threads", "1"],
                       ranks: 2).stdout
    let twoLine = try XCTUnwrap(two.split(separator: "\n").last { $0.hasPrefix("{") })
    let m2 = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(twoLine.utf8))
                             as? [String: Any])
    assertClose(try XCTUnwrap(m2["log_likelihood"] as? [Double]),
                try XCTUnwrap(m["log_likelihood"] as? [Double]), atol: 1e-6, rtol: 1e-6)
    XCTAssertEqual(try XCTUnwrap(m2["baseline_log_likelihood"] as? Double),
                   try XCTUnwrap(m["baseline_log_likelihood"] as? Double), accuracy: 1e-9)
    let table = try elbo(["impute", run, "--mask", "random-50", "--iterations", "2", "-n", "4",
                          "--chains", "2", "--out", dir + "/r.png"]).stdout
    XCTAssertTrue(table.contains("marginal baseline"), table)
    XCTAssertTrue(table.contains("through the flow"), table)

    let ev = try elbo(["eval", run, "--k", "5", "--json", "--threads", "1"]).stdout
    let evLine = try XCTUnwrap(ev.split(separator: "\n").last { $0.hasPrefix("{") })
    let e = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(evLine.utf8))
                            as? [String: Any])
    let kl = try XCTUnwrap(e["test_kl"] as? Double)
    let r = try XCTUnwrap(e["compression_bits_per_dim"] as? Double)
    XCTAssertEqual(r, kl / (784 * log(2.0)), accuracy: 1e-9)
    XCTAssertEqual(e["compression_kl_nats"] as? Double, kl)
    XCTAssertGreaterThan(r, 0)

    // Bad input: one line, exit 2, no trap.
    let made = dir + "/made"
    try elbo(["train", "made", "--data", "mnist-5k", "--max-steps", "1", "--threads", "1",
              "--out", made])
    for (args, mention) in [([made], "vae run"), ([run, "--mask", "right-half"], "--mask"),
                            ([run, "-n", "0"], "-n"), ([run, "--iterations", "0"], "--iterations"),
                            ([dir + "/nothing"], "no such run"),
                            ([run, "-n", "100000"], "test set")] {
      let r = try ElboProcess.run(["impute"] + args, timeout: 60)
      XCTAssertEqual(r.status, 2, "\(args): \(r.stderr)")
      let lines = r.stderr.split(separator: "\n").filter { $0.hasPrefix("elbo:") }
      XCTAssertEqual(lines.count, 1, r.stderr)
      XCTAssertTrue(lines.first?.contains(mention) ?? false, "\(args): \(r.stderr)")
      XCTAssertFalse(r.stderr.contains("Fatal error"), r.stderr)
    }
  }
}
