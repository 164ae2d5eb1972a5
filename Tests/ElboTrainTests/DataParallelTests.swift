import Foundation
import XCTest

/// End-to-end runs of `elbo train vae` on MNIST-5k (shipped in data/), on 1, 2 and 3 ranks.
final class DataParallelTests: XCTestCase {
  /// Small and quick, but every piece of the step is exercised (two epochs of 40 steps would be
  /// 80; 24 steps with batch 100 stays inside the first epoch and crosses a checkpoint).
  let common = ["train", "vae", "--data", "mnist-5k", "--batch-size", "100", "--hidden", "64",
                "--latent", "8", "--seed", "3", "--log-every", "8", "--threads", "1"]

  func train(_ out: String, ranks: Int, extra: [String]) throws -> ElboProcess.Result {
    let r = try ElboProcess.run(common + ["--out", out] + extra, ranks: ranks)
    XCTAssertEqual(r.status, 0, "elbo failed on \(ranks) rank(s):\n\(r.stdout)\n\(r.stderr)")
    return r
  }

  /// N = 1, 2, 3 from the same seed give the same parameters after K steps, up to the order
  /// of float summation. Why the tolerance holds: every example's noise is keyed by its global
  /// index and each rank's loss is divided by the global batch, so the ranks compute the same
  /// sum in a different grouping (relative difference ~1e-7 per gradient); Adam's update is
  /// lr·m̂/(√v̂+ε) ≤ ~lr per step, so 24 steps move parameters apart by far less than
  /// 24·lr·1e-3 ≈ 2.4e-5 unless the computation differs. A dropped or doubled example moves
  /// them by ~lr per step: 1e-3 and more. A wrong normaliser (a gradient summed where it should
  /// be averaged, ×N for every element) does NOT show here: Adam's step is invariant to a
  /// uniform gradient scale. GradientOracleTests catches that (gradient per element, and SGD
  /// without momentum across N).
  func testOneTwoThreeRanksAgree() throws {
    let dir = scratchDirectory("equiv")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    var params: [[String: [Float]]] = []
    for n in 1...3 {
      _ = try train("\(dir)/n\(n)", ranks: n, extra: ["--max-steps", "24"])
      params.append(try checkpointParameters("\(dir)/n\(n)"))
    }
    let d12 = maxDifference(params[0], params[1]), d13 = maxDifference(params[0], params[2])
    print("max |θ(N=1) − θ(N=2)| = \(d12), max |θ(N=1) − θ(N=3)| = \(d13)")
    XCTAssertLessThan(d12, 2e-5)
    XCTAssertLessThan(d13, 2e-5)
    // And training moved them (the test would be empty otherwise).
    let dir0 = "\(dir)/n0"
    _ = try train(dir0, ranks: 1, extra: ["--max-steps", "1"])
    XCTAssertGreaterThan(maxDifference(params[0], try checkpointParameters(dir0)), 1e-3)
  }

  /// The bucketed all-reduce, overlapped with backward, trains to the same parameters as the
  /// fused one on 1 rank (same tolerance and reasoning as above), and really overlaps: the
  /// bucket holding the decoder's last layer is sent before backward has finished.
  func testBucketedAllReduceAgreesAndOverlaps() throws {
    let dir = scratchDirectory("bucketed")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let steps = ["--max-steps", "24"]
    _ = try train("\(dir)/n1", ranks: 1, extra: steps)
    let reference = try checkpointParameters("\(dir)/n1")
    for n in [2, 3] {
      let r = try train("\(dir)/b\(n)", ranks: n,
                        extra: steps + ["--allreduce", "bucketed", "--debug-log", "\(dir)/log\(n)"])
      XCTAssertTrue(r.stdout.contains("bucketed gradient all-reduce"), r.stdout)
      let d = maxDifference(reference, try checkpointParameters("\(dir)/b\(n)"))
      print("max |θ(N=1, fused) − θ(N=\(n), bucketed)| = \(d)")
      XCTAssertLessThan(d, 2e-5)
      // 111,136 parameters in buckets of 65,536 floats: the second bucket lies inside
      // decoder.fc3, whose gradient is final first.
      let log = try String(contentsOfFile: "\(dir)/log\(n)/rank-\(n - 1).log", encoding: .utf8)
      let overlapped = log.components(separatedBy: "buckets started during backward: 1/2").count - 1
      XCTAssertEqual(overlapped, 24, log)
    }
  }

  /// The sharded optimizer step (reduce-scatter, each rank's Adam on its shard, all-gather):
  /// on 1 rank it is the plain step, bit for bit, without a single sharding collective; on 2
  /// and 3 ranks (through shared memory) it trains to the 1-rank parameters (same tolerance
  /// and reasoning as above). The MPI-collective transport is checked against the others in
  /// GradientSyncTests, and end to end across two hosts by cluster/test-two-hosts.
  func testShardedOptimizerStepAgreesWithOneRank() throws {
    let dir = scratchDirectory("sharded")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let steps = ["--max-steps", "24"]
    _ = try train("\(dir)/n1", ranks: 1, extra: steps)
    let reference = try checkpointParameters("\(dir)/n1")
    for n in 1...3 {
      let r = try train("\(dir)/s\(n)", ranks: n,
                        extra: steps + ["--allreduce", "sharded", "--debug-log", "\(dir)/log\(n)"])
      XCTAssertTrue(r.stdout.contains("sharded optimizer step"), r.stdout)
      // One node: from 2 ranks on, the shards move through the shared-memory window.
      XCTAssertEqual(r.stdout.contains("through shared memory"), n > 1, r.stdout)
      let d = maxDifference(reference, try checkpointParameters("\(dir)/s\(n)"))
      print("max |θ(N=1, fused) − θ(N=\(n), sharded)| = \(d)")
      let log = try String(contentsOfFile: "\(dir)/log\(n)/rank-\(n - 1).log", encoding: .utf8)
      let gathers = log.components(separatedBy: "enter parameter all-gather").count - 1
      if n == 1 {
        XCTAssertEqual(d, 0, "sharded on 1 rank is not the plain step")
        XCTAssertFalse(log.contains("reduce-scatter") || log.contains("all-gather"), log)
        XCTAssertTrue(log.contains("step 24 epoch 1 items 100"), log)
      } else {
        XCTAssertLessThan(d, 2e-5)
        XCTAssertEqual(gathers, 24, log)
        XCTAssertTrue(log.contains("enter optimizer state all-gather (adam.m)"), log)
      }
    }
  }

  /// Sharded: stopped at step T and resumed to 2T, on 2 and on 3 ranks, is bitwise equal to an
  /// uninterrupted run (the checkpoint holds the all-gathered optimizer state); and a sharded
  /// run resumed on another number of ranks re-splits the shards and lands where one rank does.
  func testShardedResumeIsBitwiseAndReshards() throws {
    let dir = scratchDirectory("sharded-resume")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let sharded = ["--allreduce", "sharded"]
    for n in [2, 3] {
      _ = try train("\(dir)/straight\(n)", ranks: n, extra: sharded + ["--max-steps", "20"])
      _ = try train("\(dir)/split\(n)", ranks: n, extra: sharded + ["--max-steps", "10"])
      let r = try train("\(dir)/split\(n)", ranks: n,
                        extra: sharded + ["--max-steps", "20", "--resume", "latest"])
      XCTAssertTrue(r.stdout.contains("resumed from step 10"), r.stdout)
      let a = try checkpointParameters("\(dir)/straight\(n)")
      let b = try checkpointParameters("\(dir)/split\(n)")
      XCTAssertEqual(maxDifference(a, b), 0, "sharded resume on \(n) ranks is not bitwise")
    }
    _ = try train("\(dir)/one", ranks: 1, extra: ["--max-steps", "20"])
    _ = try train("\(dir)/reshard", ranks: 2, extra: sharded + ["--max-steps", "10"])
    _ = try train("\(dir)/reshard", ranks: 3,
                  extra: sharded + ["--max-steps", "20", "--resume", "latest"])
    let d = maxDifference(try checkpointParameters("\(dir)/one"),
                          try checkpointParameters("\(dir)/reshard"))
    print("max |θ(straight, N=1) − θ(sharded N=2 then N=3)| = \(d)")
    XCTAssertLessThan(d, 2e-5)
  }

  /// Gradient clipping acts on the summed gradient (the norm's square travels in the loss-terms
  /// all-reduce), so 1 and 2 ranks clip alike and agree up to summation order.
  func testClippingAgreesAcrossRanks() throws {
    let dir = scratchDirectory("clip")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let clip = ["--max-steps", "24", "--clip-norm", "20", "--clip-value", "2"]
    _ = try train("\(dir)/one", ranks: 1, extra: clip)
    _ = try train("\(dir)/two", ranks: 2, extra: clip)
    let d = maxDifference(try checkpointParameters("\(dir)/one"),
                          try checkpointParameters("\(dir)/two"))
    print("clipped: max |θ(N=1) − θ(N=2)| = \(d)")
    XCTAssertLessThan(d, 2e-5)
    let windows = try records("\(dir)/two", kind: "train")
    XCTAssertGreaterThan(windows.compactMap { $0["clipped_steps"] as? Double }.reduce(0, +), 0,
                         "the norm bound must bite in this test")
  }

  /// Stopped at step T and resumed to 2T on the same number of ranks: bitwise equal to an
  /// uninterrupted run (optimizer moments, step counter, data position and noise all restored).
  func testResumeIsBitwiseOnSameRankCount() throws {
    let dir = scratchDirectory("resume")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    for n in [1, 2] {
      _ = try train("\(dir)/straight\(n)", ranks: n, extra: ["--max-steps", "20"])
      _ = try train("\(dir)/split\(n)", ranks: n, extra: ["--max-steps", "10"])
      let r = try train("\(dir)/split\(n)", ranks: n,
                        extra: ["--max-steps", "20", "--resume", "latest"])
      XCTAssertTrue(r.stdout.contains("resumed from step 10"), r.stdout)
      let a = try checkpointParameters("\(dir)/straight\(n)")
      let b = try checkpointParameters("\(dir)/split\(n)")
      XCTAssertEqual(maxDifference(a, b), 0, "resume on \(n) rank(s) is not bitwise")
    }
  }

  /// Resumed on another number of ranks: the batch is re-split and training continues to the
  /// same place up to summation order.
  func testResumeOnAnotherRankCount() throws {
    let dir = scratchDirectory("reshard")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    _ = try train("\(dir)/straight", ranks: 1, extra: ["--max-steps", "20"])
    _ = try train("\(dir)/split", ranks: 2, extra: ["--max-steps", "10"])
    _ = try train("\(dir)/split", ranks: 3, extra: ["--max-steps", "20", "--resume", "latest"])
    let d = maxDifference(try checkpointParameters("\(dir)/straight"),
                          try checkpointParameters("\(dir)/split"))
    print("max |θ(straight, N=1) − θ(N=2 then N=3)| = \(d)")
    XCTAssertLessThan(d, 2e-5)
  }

  /// The metrics log holds the seed's three curves and the epoch evaluation.
  func testMetricsLogHasTheTermsAndEpochEvaluation() throws {
    let dir = scratchDirectory("metrics")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    _ = try train("\(dir)/run", ranks: 1, extra: ["--epochs", "1"])
    let lines = try String(contentsOfFile: "\(dir)/run/metrics.jsonl", encoding: .utf8)
      .split(separator: "\n")
    let records = try lines.map {
      try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any]
    }
    let train = records.filter { $0["kind"] as? String == "train" }
    XCTAssertEqual(train.count, 5)  // 40 steps, a record every 8
    for key in ["neg_elbo", "log_px_given_z", "kl", "surprise", "examples_per_second"] {
      XCTAssertNotNil(train.last?[key], key)
    }
    let first = train.first!["neg_elbo"] as! Double, last = train.last!["neg_elbo"] as! Double
    XCTAssertLessThan(last, first - 20, "−ELBO should fall during the first epoch")
    let epoch = records.first { $0["kind"] as? String == "epoch" }
    XCTAssertNotNil(epoch?["test_elbo"])
    XCTAssertNotNil(epoch?["active_units"])
    for key in ["train_elbo", "train_log_px_given_z", "train_kl", "train_surprise",
                "train_examples_per_second"] {
      XCTAssertNotNil(epoch?[key], key)
    }
  }
}
