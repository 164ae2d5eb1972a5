import ElboDistributed
import ElboExperiments
import ElboModels
import ElboTrain
import Foundation
import XCTest

/// `elbo train vae --flow …`: configs without a flow still read (as no flow), K = 0 is the plain
/// VAE bit for bit, and a flow run with a KL warm-up resumes bitwise and evaluates through q_K.
final class FlowVAERunTests: XCTestCase {
  /// A config written before flows existed (no "flow", no "klWarmup") reads as the plain VAE;
  /// a user's partial "flow" section keeps the other fields' defaults.
  func testConfigsWithoutAFlowReadAsNoFlow() throws {
    let old = """
      {"model": "vae", "epochs": 3, "batchSize": 100, "seed": 2,
       "vae": {"activation": "relu", "binarize": "static", "data": "mnist-5k", "hidden": 64,
               "hiddenLayers": 2, "inputs": 784, "latent": 5, "objective": "elbo", "samples": 1}}
      """
    let c = try Session.storedConfig(VAEExperiment.self, json: old, source: "old.json")
    XCTAssertEqual(c.config.flow, FlowChainSpec())
    XCTAssertEqual(c.config.flow.length, 0)
    XCTAssertEqual(c.config.klWarmup, 0)
    XCTAssertEqual(c.config.hidden, 64)
    XCTAssertEqual(c.config.network.flow.length, 0)

    var user = Session.defaultConfig(VAEExperiment.self)
    try user.apply(text: "vae:\n  flow:\n    kind: radial\n    length: 3\n  klWarmup: 50\n",
                   source: "user.yaml")
    XCTAssertEqual(user.config.flow.kind, .radial)
    XCTAssertEqual(user.config.flow.length, 3)
    XCTAssertEqual(user.config.flow.parameters, .amortised)
    XCTAssertEqual(user.config.flow.iafHidden, FlowChainSpec().iafHidden)
    XCTAssertEqual(user.config.klWarmup, 50)
    XCTAssertThrowsError(try user.apply(text: "vae:\n  flow:\n    lenght: 3\n", source: "typo.yaml"))
    // A Bool false (YAML and JSON) overrides a true default.
    XCTAssertTrue(user.config.flow.iafContextWeight)
    for text in ["vae:\n  flow:\n    iafContextWeight: false\n",
                 #"{"vae": {"flow": {"iafContextWeight": false}}}"#] {
      var c = Session.defaultConfig(VAEExperiment.self)
      try c.apply(text: text, source: "bool")
      XCTAssertFalse(c.config.flow.iafContextWeight, text)
    }
  }

  /// A flow spec of length 0 (whatever its kind and parameter source) builds the plain VAE:
  /// the same parameter names and shapes, the same initial values, and after a few Adam steps
  /// through the trainer the same parameters, bit for bit.
  func testLengthZeroIsThePlainVAEBitwise() throws {
    let communicator = try Communicator.initialize()
    func run(_ flow: FlowChainSpec?) throws -> (names: [String], shapes: [[Int]], values: [UInt32]) {
      var c = VAEExperiment.Config()
      c.data = "mnist-5k"; c.hidden = 16; c.latent = 3
      if let flow { c.flow = flow }
      let e = try VAEExperiment(config: c, seed: 5)
      let trainer = try Trainer(experiment: e, globalBatch: 50,
                                optimizer: Adam(parameterCount: e.store.count), seed: 5,
                                communicator: communicator)
      for step in 0..<4 { XCTAssertNil(try trainer.step(step).nonFinite) }
      if (flow?.length ?? 0) == 0 {
        XCTAssertEqual(e.terms.components, ["log_px_given_z", "kl", "surprise"])
      }
      return (e.store.specs.map(\.name), e.store.specs.map(\.shape),
              Array(e.store.flatValues).map(\.bitPattern))
    }
    let plain = try run(nil)
    for flow in [FlowChainSpec(kind: .radial, length: 0, parameters: .global),
                 FlowChainSpec(kind: .planar, length: 0, parameters: .amortised)] {
      let other = try run(flow)
      XCTAssertEqual(other.names, plain.names)
      XCTAssertEqual(other.shapes, plain.shapes)
      XCTAssertTrue(other.values == plain.values, "K = 0 (\(flow.kind)) is not the plain VAE")
    }
    // And the comparison can fail: K = 1 changes the encoder's width and the training.
    let flowed = try run(FlowChainSpec(kind: .planar, length: 1))
    XCTAssertNotEqual(flowed.shapes, plain.shapes)
  }

  let common = ["train", "vae", "--data", "mnist-5k", "--batch-size", "100", "--hidden", "32",
                "--latent", "4", "--seed", "3", "--log-every", "5", "--threads", "1",
                "--flow", "planar", "--flow-length", "3", "--kl-warmup", "30",
                "--objective", "iwae", "--k", "2"]

  /// Stopped at step 10 and resumed to 20: bitwise the uninterrupted run (the warm-up β is a
  /// function of the step, so it continues exactly); the records carry log_det and kl_weight;
  /// `elbo eval` of the flow run gives an importance-sampled log-likelihood above its test ELBO.
  func testFlowRunResumesBitwiseAndEvaluatesThroughTheFlow() throws {
    let dir = scratchDirectory("flow-vae")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let straight = try elbo(common + ["--out", "\(dir)/straight", "--max-steps", "20"])
    XCTAssertTrue(straight.stdout.contains("3 amortised planar flow(s)"), straight.stdout)
    XCTAssertTrue(straight.stdout.contains("β_t = min(1, 0.01 + t/30)"), straight.stdout)
    try elbo(common + ["--out", "\(dir)/split", "--max-steps", "10"])
    let r = try elbo(common + ["--out", "\(dir)/split", "--max-steps", "20", "--resume", "latest"])
    XCTAssertTrue(r.stdout.contains("resumed from step 10"), r.stdout)
    XCTAssertEqual(maxDifference(try checkpointParameters("\(dir)/straight"),
                                 try checkpointParameters("\(dir)/split")), 0,
                   "a flow run with a warm-up does not resume bitwise")
    let train = try records("\(dir)/split", kind: "train")
    XCTAssertEqual(train.count, 4)
    let last = try XCTUnwrap(train.last)
    XCTAssertNotNil(last["log_det"])
    XCTAssertEqual(try XCTUnwrap(last["kl_weight"] as? Double), 0.01 + 19.0 / 30, accuracy: 1e-6)

    let out = try elbo(["eval", "\(dir)/split", "--k", "20", "--json", "--threads", "1"]).stdout
    let line = try XCTUnwrap(out.split(separator: "\n").last { $0.hasPrefix("{") })
    let m = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
    let ll = try XCTUnwrap(m["test_log_likelihood"] as? Double)
    let testELBO = try XCTUnwrap(m["test_elbo"] as? Double)
    XCTAssertNotNil(m["test_log_det"])
    XCTAssertGreaterThan(ll, testELBO, "IS estimate (k = 20) should exceed the one-sample ELBO")
  }

  /// Bad flow options end with one line naming the flag, never a trap.
  func testBadFlowOptionsGiveOneLine() throws {
    let base = ["train", "vae", "--data", "mnist-5k", "--max-steps", "1"]
    for (extra, flag) in [(["--flow", "iaf", "--flow-length", "2", "--latent", "1"], "--flow"),
                          (["--flow-length=-2"], "--flow"), (["--kl-warmup=-3"], "--kl-warmup")] {
      let r = try ElboProcess.run(base + extra + ["--out", scratchDirectory("flow-bad") + "/r"],
                                  timeout: 60)
      XCTAssertNotEqual(r.status, 0, "\(extra)")
      let lines = r.stderr.split(separator: "\n").filter { $0.hasPrefix("elbo:") }
      XCTAssertEqual(lines.count, 1, r.stderr)
      XCTAssertTrue(lines.first?.contains(flag) ?? false, r.stderr)
      XCTAssertFalse(r.stderr.contains("Fatal error"), r.stderr)
    }
  }
}
