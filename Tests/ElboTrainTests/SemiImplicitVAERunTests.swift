import ElboDistributed
import ElboExperiments
import ElboModels
import ElboTrain
import Foundation
import XCTest

/// `elbo train vae --posterior semi-implicit`: the run header states K, every term is logged,
/// a stopped run resumes bitwise, `elbo eval` gives the mixture-estimated log-likelihood, and
/// bad options end in one line.
final class SemiImplicitVAERunTests: XCTestCase {
  let common = ["train", "vae", "--data", "mnist-5k", "--batch-size", "100", "--hidden", "32",
                "--latent", "4", "--seed", "3", "--log-every", "5", "--threads", "1",
                "--posterior", "semi-implicit", "--mix-samples", "7", "--mixing-noise", "3",
                "--kl-warmup", "30", "--eval-mix-samples", "50"]

  /// Stopped at step 10 and resumed to 20: bitwise the uninterrupted run (ε and the mixture
  /// are keyed by (seed, step, example)); records carry log_prior and log_q_surrogate.
  func testSemiImplicitRunResumesBitwiseAndEvaluates() throws {
    let dir = scratchDirectory("sivi-vae")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let straight = try elbo(common + ["--out", "\(dir)/straight", "--max-steps", "20"])
    XCTAssertTrue(straight.stdout.contains("K = 7 mixture samples"), straight.stdout)
    XCTAssertTrue(straight.stdout.contains("N(ε; 0, I_3)"), straight.stdout)
    try elbo(common + ["--out", "\(dir)/split", "--max-steps", "10"])
    let r = try elbo(common + ["--out", "\(dir)/split", "--max-steps", "20", "--resume", "latest"])
    XCTAssertTrue(r.stdout.contains("resumed from step 10"), r.stdout)
    XCTAssertEqual(maxDifference(try checkpointParameters("\(dir)/straight"),
                                 try checkpointParameters("\(dir)/split")), 0,
                   "a semi-implicit run does not resume bitwise")
    let train = try records("\(dir)/split", kind: "train")
    let last = try XCTUnwrap(train.last)
    let ll = try XCTUnwrap(last["log_px_given_z"] as? Double)
    let prior = try XCTUnwrap(last["log_prior"] as? Double)
    let surrogate = try XCTUnwrap(last["log_q_surrogate"] as? Double)
    let bound = try XCTUnwrap(last["elbo"] as? Double)
    XCTAssertEqual(bound, ll + prior - surrogate, accuracy: 1e-3, "elbo = the logged terms")

    let out = try elbo(["eval", "\(dir)/split", "--k", "20", "--json", "--threads", "1"]).stdout
    let line = try XCTUnwrap(out.split(separator: "\n").last { $0.hasPrefix("{") })
    let m = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
    let testLL = try XCTUnwrap(m["test_log_likelihood"] as? Double)
    let testELBO = try XCTUnwrap(m["test_elbo"] as? Double)
    XCTAssertNotNil(m["test_log_q_surrogate"])
    XCTAssertEqual(m["eval_mix_samples"] as? Double, 50)
    XCTAssertGreaterThan(testLL, testELBO, "IS estimate (S = 20, M = 50) above the SIVI bound")
  }

  /// UIVI stopped at step 10 and resumed to 20: bitwise the uninterrupted run, the HMC step
  /// size included (it is the store's log h, adapted by the optimizer); records carry the
  /// acceptance and the step size, which moved from its initial 0.5/L.
  func testUIVIRunResumesBitwiseWithItsStepSize() throws {
    let dir = scratchDirectory("uivi-vae")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let uivi = ["train", "vae", "--data", "mnist-5k", "--batch-size", "100", "--hidden", "32",
                "--latent", "4", "--seed", "3", "--log-every", "5", "--threads", "1",
                "--posterior", "uivi", "--mix-samples", "3", "--mixing-noise", "3",
                "--hmc-burn-in", "2", "--hmc-samples", "2", "--hmc-leapfrog-steps", "3"]
    let straight = try elbo(uivi + ["--out", "\(dir)/straight", "--max-steps", "20"])
    XCTAssertTrue(straight.stdout.contains("objective UIVI"), straight.stdout)
    try elbo(uivi + ["--out", "\(dir)/split", "--max-steps", "10"])
    let r = try elbo(uivi + ["--out", "\(dir)/split", "--max-steps", "20", "--resume", "latest"])
    XCTAssertTrue(r.stdout.contains("resumed from step 10"), r.stdout)
    let a = try checkpointParameters("\(dir)/straight"), b = try checkpointParameters("\(dir)/split")
    XCTAssertNotNil(a["params/" + VAE.hmcStepSizeName], "log h is checkpointed: \(a.keys.sorted())")
    XCTAssertEqual(maxDifference(a, b), 0, "a UIVI run does not resume bitwise")
    let train = try records("\(dir)/split", kind: "train")
    let last = try XCTUnwrap(train.last)
    let acceptance = try XCTUnwrap(last["hmc_acceptance"] as? Double)
    XCTAssertTrue(acceptance > 0 && acceptance <= 1, "acceptance \(acceptance)")
    let h = try XCTUnwrap(last["hmc_step_size"] as? Double)
    XCTAssertNotEqual(h, 0.5 / 4, accuracy: 1e-4, "the step size adapts")
  }

  /// Bad semi-implicit options end with one line naming the flag, never a trap.
  func testBadSemiImplicitOptionsGiveOneLine() throws {
    let base = ["train", "vae", "--data", "mnist-5k", "--max-steps", "1",
                "--posterior", "semi-implicit"]
    for (extra, flag) in [(["--mix-samples=-1"], "--mix-samples"),
                          (["--mixing-noise=-2"], "--mixing-noise"),
                          (["--objective", "iwae"], "--objective"),
                          (["--flow-length", "2"], "--flow-length"),
                          (["--posterior", "uivi", "--mixing-noise", "0"], "--mixing-noise"),
                          (["--posterior", "uivi", "--hmc-samples", "0"], "--hmc-samples")] {
      let r = try ElboProcess.run(base + extra + ["--out", scratchDirectory("sivi-bad") + "/r"],
                                  timeout: 60)
      XCTAssertNotEqual(r.status, 0, "\(extra)")
      let lines = r.stderr.split(separator: "\n").filter { $0.hasPrefix("elbo:") }
      XCTAssertEqual(lines.count, 1, r.stderr)
      XCTAssertTrue(lines.first?.contains(flag) ?? false, r.stderr)
      XCTAssertFalse(r.stderr.contains("Fatal error"), r.stderr)
    }
  }
}
