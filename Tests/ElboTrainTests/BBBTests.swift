import Foundation
import XCTest

/// End-to-end runs of `elbo train bbb-regression` / `bbb-classifier` (the binary, on 1–3 ranks):
/// the issue's measured bars on the regression toy, the objective on N ranks equal to 1 rank,
/// bitwise resume, `elbo eval` reproducing the last epoch, and one-line errors for bad flags.
final class BBBTests: XCTestCase {
  // MARK: - Helpers

  func number(_ r: [String: Any], _ key: String, file: StaticString = #filePath,
              line: UInt = #line) -> Double {
    guard let v = r[key] as? Double else {
      XCTFail("record lacks '\(key)': \(r)", file: file, line: line)
      return .nan
    }
    return v
  }

  // MARK: - The regression bars (seed 004, Blundell et al. Fig. 5)

  /// The default run (500 epochs, 5000 steps, ≈ 5 s): on held-out points inside the data range
  /// the ±2σ band of the total predictive covers ≥ 90%; outside the data range the total
  /// predictive std √(σ_y² + Var_w f) grows ≥ 3× over its in-range mean (measured 3.9–5.3× over
  /// seeds 0–4), its epistemic part far more. The plain network, trained the same way, has no
  /// epistemic part: its band is as wide outside as inside.
  func testRegressionCoverageAndUncertaintyGrowthOutsideTheData() throws {
    let dir = scratchDirectory("bbb-bars")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let common = ["train", "bbb-regression", "--threads", "1", "--log-every", "1000"]
    try elbo(common + ["--out", dir + "/bbb"])
    let bbb = try records(dir + "/bbb", kind: "epoch").last!
    XCTAssertEqual(bbb["epoch"] as? Int, 500)
    XCTAssertGreaterThanOrEqual(number(bbb, "test_coverage_2sd"), 0.9)
    XCTAssertGreaterThanOrEqual(number(bbb, "epistemic_std_ratio_out_in"), 3)
    XCTAssertGreaterThanOrEqual(number(bbb, "std_ratio_out_in"), 3)
    XCTAssertEqual(number(bbb, "noise_std"), 0.3, accuracy: 0.05, "σ_y ≈ the data's residual std")
    for plot in ["predictive.svg", "predictive_std.svg"] {
      XCTAssertTrue(FileManager.default.fileExists(atPath: "\(dir)/bbb/plots/\(plot)"), plot)
    }

    try elbo(common + ["--variant", "plain", "--out", dir + "/plain"])
    let plain = try records(dir + "/plain", kind: "epoch").last!
    XCTAssertEqual(number(plain, "std_ratio_out_in"), 1, accuracy: 1e-6)
    XCTAssertEqual(number(plain, "epistemic_std_out_of_range"), 0)
    XCTAssertNil(plain["epistemic_std_ratio_out_in"])
  }

  // MARK: - Data parallelism

  /// The same run on 1, 2 and 3 ranks logs the same objective — F, log-likelihood, the KL
  /// share, the surprise, the effective KL weight and the full KL — and ends at the same
  /// parameters: the KL counts once per global step and every rank uses the same weight sample.
  /// Were each rank to add the whole KL, the logged kl would double on 2 ranks.
  func checkRanksAgree(_ args: [String], name: String) throws {
    let dir = scratchDirectory(name)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    var logs: [[[String: Any]]] = [], params: [[String: [Float]]] = []
    for n in 1...3 {
      try elbo(args + ["--out", "\(dir)/n\(n)"], ranks: n)
      logs.append(try records("\(dir)/n\(n)", kind: "train"))
      params.append(try checkpointParameters("\(dir)/n\(n)"))
    }
    XCTAssertFalse(logs[0].isEmpty)
    for n in 1..<3 {
      XCTAssertEqual(logs[n].count, logs[0].count)
      for (a, b) in zip(logs[0], logs[n]) {
        for key in ["elbo", "log_likelihood", "kl", "surprise", "kl_weight", "kl_total"] {
          let x = number(a, key), y = number(b, key)
          XCTAssertEqual(y, x, accuracy: 1e-5 * max(1, abs(x)), "\(name) \(key) at step \(a["step"]!) on \(n + 1) ranks")
        }
      }
      let d = maxDifference(params[0], params[n])
      XCTAssertLessThan(d, 2e-5, "\(name): parameters on \(n + 1) ranks differ by \(d)")
    }
  }

  func testRegressionObjectiveIsTheSameOnOneTwoAndThreeRanks() throws {
    // lr 1e-3 (not the regression's default 1e-2), as in DataParallelTests: Adam turns a
    // rounding-level difference in a gradient that nearly cancels across steps into a step of
    // up to lr, and a ReLU network passes it on; at 1e-3 the bound below still holds.
    try checkRanksAgree(["train", "bbb-regression", "--threads", "1", "--max-steps", "30",
                         "--log-every", "5", "--prior", "scale-mixture", "--lr", "0.001"],
                        name: "bbb-ranks-reg")
  }

  func testClassifierObjectiveIsTheSameOnOneTwoAndThreeRanks() throws {
    // Local reparameterisation: per-example noise keyed by the example, a separate weight sample
    // for the Monte Carlo KL keyed by the step; batch 100 on 3 ranks is split 34/33/33.
    try checkRanksAgree(["train", "bbb-classifier", "--data", "mnist-5k", "--hidden", "32",
                         "--estimator", "local", "--threads", "1", "--max-steps", "12",
                         "--log-every", "4", "--kl-share", "blundell", "--kl-warmup", "6"],
                        name: "bbb-ranks-cls")
  }

  // MARK: - Resume, eval, inspect

  /// Stopped and resumed: bitwise the uninterrupted run, on 1 and 2 ranks.
  func testResumeIsBitwise() throws {
    let dir = scratchDirectory("bbb-resume")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let runs: [(String, [String])] = [
      ("reg", ["train", "bbb-regression", "--threads", "1", "--eval-every", "1"]),
      ("cls", ["train", "bbb-classifier", "--data", "mnist-5k", "--hidden", "16", "--threads", "1",
               "--variant", "dropout"]),
    ]
    for (name, args) in runs {
      for n in [1, 2] {
        try elbo(args + ["--out", "\(dir)/\(name)\(n)a", "--max-steps", "24"], ranks: n)
        try elbo(args + ["--out", "\(dir)/\(name)\(n)b", "--max-steps", "12"], ranks: n)
        let r = try elbo(args + ["--out", "\(dir)/\(name)\(n)b", "--max-steps", "24",
                                 "--resume", "latest"], ranks: n)
        XCTAssertTrue(r.stdout.contains("resumed from step 12"), r.stdout)
        XCTAssertEqual(maxDifference(try checkpointParameters("\(dir)/\(name)\(n)a"),
                                     try checkpointParameters("\(dir)/\(name)\(n)b")), 0,
                       "\(name) resume on \(n) rank(s) is not bitwise")
      }
    }
  }

  /// `elbo eval RUN` recomputes the last epoch's test metrics from the checkpoint, exactly (the
  /// prediction samples are keyed by the seed, not by the run), on 1 and on 2 ranks; `inspect`
  /// lists the posterior's tensors.
  func testEvalReproducesTheLastEpochAndInspectListsThePosterior() throws {
    let dir = scratchDirectory("bbb-eval")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    try elbo(["train", "bbb-classifier", "--data", "mnist-5k", "--hidden", "32", "--epochs", "1",
              "--threads", "1", "--out", dir + "/cls"])
    try elbo(["train", "bbb-regression", "--epochs", "20", "--threads", "1",
              "--out", dir + "/reg"])
    for (run, keys) in [("cls", ["test_error", "test_log_likelihood", "entropy_correct",
                                 "entropy_misclassified", "test_ece"]),
                        ("reg", ["test_coverage_2sd", "test_log_likelihood", "std_ratio_out_in",
                                 "epistemic_std_ratio_out_in"])] {
      let trained = try records("\(dir)/\(run)", kind: "epoch").last!
      for n in [1, 2] {
        let r = try elbo(["eval", "\(dir)/\(run)", "--threads", "1", "--json"], ranks: n)
        guard let line = r.stdout.split(separator: "\n").last(where: { $0.hasPrefix("{") }),
              let eval = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
        else { XCTFail("no JSON record in:\n\(r.stdout)"); continue }
        for key in keys {
          XCTAssertEqual(number(eval, key), number(trained, key),
                         accuracy: 1e-9 * max(1, abs(number(trained, key))), "\(run) \(key), \(n) rank(s)")
        }
      }
    }
    let inspect = try elbo(["inspect", dir + "/cls"])
    for name in ["params/net.fc1.weight.mu", "params/net.fc1.weight.rho", "params/net.fc3.bias.rho",
                 "optimizer/adam.m/net.fc2.weight.rho"] {
      XCTAssertTrue(inspect.stdout.contains(name), "\(name) missing from:\n\(inspect.stdout)")
    }
    XCTAssertTrue(inspect.stdout.contains("model 'bbb-classifier'"), inspect.stdout)
  }

  // MARK: - The start of a run states the objective with its numbers

  func testHeaderStatesTheKLWeighting() throws {
    let dir = scratchDirectory("bbb-header")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let r = try elbo(["train", "bbb-regression", "--max-steps", "1", "--kl-share", "blundell",
                      "--beta", "0.5", "--kl-warmup", "100", "--batch-size", "50",
                      "--out", dir + "/r"])
    for text in ["N = 1000 examples", "B = 50", "M = 20 minibatches/epoch", "blundell",
                 "β = 0.5", "min(1, (t+1)/100)", "Gaussian prior", "estimator weight"] {
      XCTAssertTrue(r.stdout.contains(text), "'\(text)' missing from:\n\(r.stdout)")
    }
    // The step's effective weight β·λ_t·π_i is logged: step 0 of 20, λ = 1/100.
    let first = try records(dir + "/r", kind: "train").first!
    let share = 0.5 / (1 - pow(2, -20.0))
    XCTAssertEqual(number(first, "kl_weight"), 0.5 * 0.01 * share, accuracy: 1e-12)
  }

  // MARK: - Bad flags

  func expectOneLineError(_ args: [String], mentions flag: String,
                          file: StaticString = #filePath, line: UInt = #line) throws {
    let r = try ElboProcess.run(args + ["--out", scratchDirectory("bbb-bad") + "/r"], timeout: 60)
    XCTAssertNotEqual(r.status, 0, "expected failure for \(args)", file: file, line: line)
    let lines = r.stderr.split(separator: "\n").filter { $0.hasPrefix("elbo:") }
    XCTAssertTrue(lines.contains { $0.contains(flag) }, "'\(flag)' missing from:\n\(r.stderr)",
                  file: file, line: line)
    for trap in ["Fatal error", "Stack dump", "Illegal instruction", "Segmentation"] {
      XCTAssertFalse(r.stderr.contains(trap), "trap in:\n\(r.stderr)", file: file, line: line)
    }
  }

  func testBadFlagsGiveOneLineNamingTheFlag() throws {
    let reg = ["train", "bbb-regression"], cls = ["train", "bbb-classifier", "--data", "mnist-5k"]
    try expectOneLineError(reg + ["--prior-pi", "1.5"], mentions: "--prior-pi")
    try expectOneLineError(reg + ["--prior-std", "0"], mentions: "--prior-std")
    try expectOneLineError(reg + ["--noise-std", "-1"], mentions: "--noise-std")
    try expectOneLineError(reg + ["--points", "0"], mentions: "--points")
    try expectOneLineError(reg + ["--kl-warmup", "-3"], mentions: "--kl-warmup")
    try expectOneLineError(reg + ["--beta", "-1"], mentions: "--beta")
    try expectOneLineError(reg + ["--eval-every", "0"], mentions: "--eval-every")
    try expectOneLineError(cls + ["--dropout", "1"], mentions: "--dropout")
    try expectOneLineError(cls + ["--predict-samples", "0"], mentions: "--predict-samples")
    try expectOneLineError(cls + ["--hidden", "0"], mentions: "--hidden")
    try expectOneLineError(cls + ["--estimator", "exact"], mentions: "--estimator")
    try expectOneLineError(cls + ["--kl-share", "half"], mentions: "--kl-share")
  }
}
