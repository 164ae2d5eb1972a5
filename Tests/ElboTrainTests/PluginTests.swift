import ElboExperiments
import ElboTrain
import Foundation
import XCTest

/// Models as plug-ins: each run's config holds the run options and only its own model's
/// options; config files (YAML or JSON) apply under flags and reject unknown keys; a config
/// written before models had their own sections still reads; the help of a model names only
/// its own defaults; a run stopped mid-epoch ends with the evaluation of its final parameters.
final class PluginTests: XCTestCase {
  func config(_ dir: String) throws -> [String: Any] {
    let data = try Data(contentsOf: URL(fileURLWithPath: dir + "/config.json"))
    return try JSONSerialization.jsonObject(with: data) as? [String: Any] ?? [:]
  }

  func testEachRunsConfigHoldsOnlyItsOwnModelsOptions() throws {
    let dir = scratchDirectory("plugin-config")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let runKeys = RunOptions.keys.union(["model"])
    for (model, extra) in [("vae", ["--data", "mnist-5k", "--hidden", "8", "--latent", "2"]),
                           ("bbb-classifier", ["--data", "mnist-5k", "--hidden", "8"]),
                           ("bbb-regression", ["--hidden", "8"])] {
      let r = try ElboProcess.run(["train", model, "--max-steps", "2", "--threads", "1",
                                   "--out", "\(dir)/\(model)"] + extra)
      XCTAssertEqual(r.status, 0, r.stderr)
      let c = try config("\(dir)/\(model)")
      XCTAssertEqual(c["model"] as? String, model)
      XCTAssertEqual(Set(c.keys).subtracting(runKeys), [model], "\(model): \(c.keys.sorted())")
      let section = try XCTUnwrap(c[model] as? [String: Any])
      let text = String(describing: section)
      switch model {
      case "vae":
        XCTAssertEqual(section["hidden"] as? Int, 8)
        XCTAssertEqual(section["data"] as? String, "mnist-5k")
      case "bbb-classifier":
        for key in ["noiseStd", "trainPoints", "heldOutPoints", "standardize"] {
          XCTAssertNil(section[key], "regression option \(key) in the classifier's config")
        }
      default:
        XCTAssertNil(section["data"], text)
        XCTAssertEqual(section["trainPoints"] as? Int, 1000)
      }
      // The run header prints the resolved config.
      XCTAssertTrue(r.stdout.contains("elbo: config {"), r.stdout)
    }
  }

  func testConfigFileAppliesUnderFlagsAndRejectsUnknownKeys() throws {
    let dir = scratchDirectory("plugin-file")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let yaml = dir + "/run.yaml"
    try """
      # a recipe
      model: vae
      epochs: 3
      learningRate: 2e-3
      batchSize: 50
      vae:
        data: mnist-5k
        hidden: 16
        latent: 3
      """.write(toFile: yaml, atomically: true, encoding: .utf8)
    let r = try ElboProcess.run(["train", "vae", "--config", yaml, "--hidden", "12",
                                 "--max-steps", "1", "--threads", "1", "--out", dir + "/a"])
    XCTAssertEqual(r.status, 0, r.stderr)
    let c = try config(dir + "/a")
    let vae = try XCTUnwrap(c["vae"] as? [String: Any])
    XCTAssertEqual(c["epochs"] as? Int, 3)
    XCTAssertEqual(c["batchSize"] as? Int, 50)
    XCTAssertEqual(try XCTUnwrap(c["learningRate"] as? Double), 2e-3, accuracy: 1e-9)
    XCTAssertEqual(vae["hidden"] as? Int, 12, "the flag overrides the file")
    XCTAssertEqual(vae["latent"] as? Int, 3)
    XCTAssertEqual(vae["data"] as? String, "mnist-5k")

    // The saved config.json is itself a config file: it reproduces the run's options.
    let again = try ElboProcess.run(["train", "vae", "--config", dir + "/a/config.json",
                                     "--out", dir + "/b", "--max-steps", "1"])
    XCTAssertEqual(again.status, 0, again.stderr)
    var b = try config(dir + "/b"), a = c
    b["out"] = nil; a["out"] = nil; b["maxSteps"] = nil; a["maxSteps"] = nil
    XCTAssertEqual(NSDictionary(dictionary: a), NSDictionary(dictionary: b))

    func expectError(_ text: String, _ mentions: [String]) throws {
      let file = dir + "/bad.yaml"
      try text.write(toFile: file, atomically: true, encoding: .utf8)
      let r = try ElboProcess.run(["train", "vae", "--config", file, "--out", dir + "/bad"])
      XCTAssertNotEqual(r.status, 0)
      let lines = r.stderr.split(separator: "\n").filter { $0.hasPrefix("elbo:") }
      XCTAssertEqual(lines.count, 1, r.stderr)
      for m in mentions + [file] {
        XCTAssertTrue(lines.first?.contains(m) ?? false, "'\(m)' not in: \(r.stderr)")
      }
      XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/bad"), "nothing written")
    }
    try expectError("epochs: 2\nepohcs: 3\n", ["epohcs"])
    try expectError("vae:\n  latnet: 3\n", ["vae.latnet"])
    try expectError("vae:\n  latent: many\n", ["vae.latent", "integer"])
    try expectError("model: nade\n", ["nade"])
    try expectError("bbb-regression:\n  points: 3\n", ["bbb-regression"])
    try expectError("[1, 2]\n", ["mapping"])
  }

  /// Configs written before models had their own sections (data and binarisation at the top,
  /// the Bayes-by-Backprop options under "bbb") read into today's layout.
  /// Every recipe in configs/ is accepted by its model as written (one step each): its keys,
  /// types and model name hold, so the README's `elbo train <model> --config configs/…` runs.
  func testEveryRecipeInConfigsIsAccepted() throws {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
      .deletingLastPathComponent().deletingLastPathComponent().path
    let files = try FileManager.default.contentsOfDirectory(atPath: root + "/configs")
      .filter { $0.hasSuffix(".yaml") }.sorted()
    XCTAssertGreaterThanOrEqual(files.count, 9)
    let dir = scratchDirectory("recipes")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    for file in files {
      let text = try String(contentsOfFile: root + "/configs/" + file, encoding: .utf8)
      let model = try XCTUnwrap(text.split(separator: "\n").first { $0.hasPrefix("model: ") }?
        .dropFirst("model: ".count), file)
      try elbo(["train", String(model), "--config", root + "/configs/" + file, "--max-steps", "1",
                "--threads", "1", "--out", dir + "/" + file])
    }
  }

  func testLegacyConfigsStillRead() throws {
    let legacy = """
      {"adamEpsilon": 1e-08, "allreduce": "sharded", "batchSize": 100,
       "bbb": {"kl": {"beta": 1, "share": "uniform", "warmupSteps": 0},
               "network": {"hidden": 400, "variant": "bbb"}, "predictSamples": 10,
               "trainPoints": 1000, "heldOutPoints": 500, "noiseStdInit": 0.5},
       "binarize": "dynamic", "checkpointEvery": 0, "checksumEvery": 500, "data": "mnist-5k",
       "epochs": 7, "evalEvery": 1, "imageEvery": 0, "keep": 3, "learningRate": 0.001,
       "logEvery": 100, "model": "vae", "nonFiniteSkips": 0, "out": "runs/old", "seed": 4,
       "vae": {"activation": "tanh", "hidden": 64, "hiddenLayers": 2, "inputs": 784,
               "latent": 5, "objective": "iwae", "samples": 3}}
      """
    let vae = try Session.storedConfig(VAEExperiment.self, json: legacy, source: "old.json")
    XCTAssertEqual(vae.options.epochs, 7)
    XCTAssertEqual(vae.options.seed, 4)
    XCTAssertEqual(vae.config.data, "mnist-5k")
    XCTAssertEqual(vae.config.binarize, .dynamic)
    XCTAssertEqual(vae.config.hidden, 64)
    XCTAssertEqual(vae.config.objective, .iwae)
    XCTAssertEqual(vae.config.samples, 3)
    XCTAssertEqual(vae.config.activation, .tanh)

    let regression = try Session.storedConfig(
      BBBRegressionExperiment.self,
      json: legacy.replacingOccurrences(of: "\"model\": \"vae\"", with: "\"model\": \"bbb-regression\""),
      source: "old.json")
    XCTAssertEqual(regression.config.network.hidden, 400)
    XCTAssertEqual(regression.config.trainPoints, 1000)
    XCTAssertFalse(regression.config.standardize, "runs from before standardisation were raw")
    let classifier = try Session.storedConfig(
      BBBClassifierExperiment.self,
      json: legacy.replacingOccurrences(of: "\"model\": \"vae\"", with: "\"model\": \"bbb-classifier\""),
      source: "old.json")
    XCTAssertEqual(classifier.config.data, "mnist-5k")
    XCTAssertEqual(classifier.config.network.hidden, 400)
  }

  /// A run written before models had their own sections (its config.json in the old layout)
  /// resumes from its options alone — no flags repeated — and lands bitwise where an
  /// uninterrupted run does.
  func testARunWithALegacyConfigResumesBitwise() throws {
    let dir = scratchDirectory("plugin-legacy")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let common = ["--data", "mnist-5k", "--hidden", "16", "--latent", "3", "--seed", "7",
                  "--threads", "1", "--binarize", "dynamic"]
    for (out, steps) in [("straight", "20"), ("split", "10")] {
      let r = try ElboProcess.run(["train", "vae", "--max-steps", steps, "--out", "\(dir)/\(out)"]
                                    + common)
      XCTAssertEqual(r.status, 0, r.stderr)
    }
    // Rewrite the split run's config.json as the previous layout wrote it.
    var c = try config(dir + "/split")
    var vae = try XCTUnwrap(c["vae"] as? [String: Any])
    c["data"] = vae.removeValue(forKey: "data")
    c["binarize"] = vae.removeValue(forKey: "binarize")
    c["vae"] = vae
    c["bbb"] = ["predictSamples": 10, "trainPoints": 1000]
    try JSONSerialization.data(withJSONObject: c).write(to: URL(fileURLWithPath: dir + "/split/config.json"))
    let r = try ElboProcess.run(["train", "vae", "--out", dir + "/split", "--resume", "latest",
                                 "--max-steps", "20"])
    XCTAssertEqual(r.status, 0, r.stderr)
    XCTAssertTrue(r.stdout.contains("resumed from step 10"), r.stdout)
    let resumed = try config(dir + "/split")
    XCTAssertEqual((resumed["vae"] as? [String: Any])?["binarize"] as? String, "dynamic")
    XCTAssertNil(resumed["bbb"], "the old layout is not written back")
    XCTAssertEqual(maxDifference(try checkpointParameters(dir + "/straight"),
                                 try checkpointParameters(dir + "/split")), 0)
  }

  func testEachModelsHelpNamesOnlyItsOwnDefaults() throws {
    let vae = try ElboProcess.run(["train", "vae", "--help"])
    XCTAssertEqual(vae.status, 0, vae.stderr)
    XCTAssertTrue(vae.stdout.contains("--latent"), vae.stdout)
    // (The VAE has a --prior of its own, over z: BBB's weight-prior flags must not appear.)
    for other in ["bbb", "regression", "--variant", "--prior-std", "scale-mixture"] {
      XCTAssertFalse(vae.stdout.contains(other), "'\(other)' in the VAE's help:\n\(vae.stdout)")
    }
    let regression = try ElboProcess.run(["train", "bbb-regression", "--help"])
    XCTAssertTrue(regression.stdout.contains("(default 500)"), regression.stdout)
    XCTAssertFalse(regression.stdout.contains("--latent"), regression.stdout)
    let root = try ElboProcess.run(["--help"])
    for line in root.stdout.split(separator: "\n") {
      XCTAssertLessThanOrEqual(line.count, 80, "longer than 80 columns: \(line)")
    }
  }

  /// `--max-steps` inside an epoch: the last record is an evaluation of the final parameters,
  /// and the `done:` line reports it.
  func testMaxStepsMidEpochEndsWithTheFinalEvaluation() throws {
    let dir = scratchDirectory("plugin-maxsteps")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    // mnist-5k: 4000 training images, 40 steps per epoch at batch 100; stop at step 50.
    let r = try ElboProcess.run(["train", "vae", "--data", "mnist-5k", "--hidden", "16",
                                 "--latent", "2", "--max-steps", "50", "--threads", "1",
                                 "--out", dir + "/run"])
    XCTAssertEqual(r.status, 0, r.stderr)
    let lines = try String(contentsOfFile: dir + "/run/metrics.jsonl", encoding: .utf8)
      .split(separator: "\n")
      .compactMap { try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
    let epochs = lines.filter { $0["kind"] as? String == "epoch" }
    XCTAssertEqual(epochs.map { $0["step"] as? Int }, [40, 50])
    XCTAssertEqual(epochs.last?["partial_epoch"] as? Int, 1)
    let final = try XCTUnwrap(epochs.last?["test_elbo"] as? Double)
    let done = try XCTUnwrap(r.stdout.split(separator: "\n").last { $0.hasPrefix("done:") })
    XCTAssertTrue(done.contains(String(format: "test_elbo %.4g", final)), String(done))
  }
}
