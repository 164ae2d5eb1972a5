import ElboTrain
import Foundation
import XCTest

/// The benchmarks print one JSON line with the figures launch/bench reports (small sizes here:
/// this checks what they report and that they clean up, not how fast this machine is).
final class BenchmarkTests: XCTestCase {
  func json(_ r: ElboProcess.Result) throws -> [String: Any] {
    XCTAssertEqual(r.status, 0, r.stderr)
    let line = r.stdout.split(separator: "\n").last.map(String.init) ?? ""
    return try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                         r.stdout)
  }

  func testVAEBenchOnTwoRanksTimesEveryAllReduceMethod() throws {
    let d = try json(try ElboProcess.run(["bench", "vae", "--threads", "1", "--hidden", "32",
                                          "--latent", "4", "--steps", "20", "--warmup", "2",
                                          "--bucket-floats", "8192"], ranks: 2))
    XCTAssertEqual(d["ranks"] as? Int, 2)
    XCTAssertEqual(d["allreduce"] as? String, AllreduceMethod.trainerDefault.rawValue)
    // 784·32+32 + 32·32+32 + 32·8+8 + 4·32+32 + 32·32+32 + 32·784+784 = 53,528 floats:
    // 7 buckets of 8,192.
    XCTAssertEqual(d["buckets"] as? Int, 7)
    for key in ["fused_step_ms", "bucketed_step_ms", "sharded_step_ms",
                "fused_median_block_step_ms", "bucketed_median_block_step_ms",
                "sharded_median_block_step_ms", "bucketed_vs_fused", "sharded_vs_fused",
                "raw_allreduce_ms", "sharded_reduce_scatter_ms", "sharded_allgather_ms",
                "sharded_comm_vs_raw", "allreduce_vs_raw"] {
      let v = try XCTUnwrap(d[key] as? Double, key)
      XCTAssertGreaterThan(v, 0, key)
    }
  }

  func testCheckpointBenchReportsBothSpeedsAndCleansUp() throws {
    let dir = scratchDirectory("benchckpt")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let d = try json(try ElboProcess.run(["bench", "checkpoint", "--size-mib", "16", "--dir", dir,
                                          "--repeats", "1"], ranks: 2))
    XCTAssertEqual(d["ranks"] as? Int, 2)
    XCTAssertEqual(d["tensors"] as? Int, 1)
    // 16 MiB of floats plus HDF5's metadata.
    let bytes = try XCTUnwrap(d["file_bytes"] as? Int)
    XCTAssertGreaterThanOrEqual(bytes, 16 << 20)
    XCTAssertLessThan(bytes, (16 << 20) + (1 << 20))
    let ckpt = try XCTUnwrap(d["checkpoint_mb_per_s"] as? Double)
    let dd = try XCTUnwrap(d["dd_mb_per_s"] as? Double)
    let ratio = try XCTUnwrap(d["checkpoint_vs_dd"] as? Double)
    XCTAssertGreaterThan(ckpt, 0)
    XCTAssertGreaterThan(dd, 0)
    XCTAssertEqual(ratio, ckpt / dd, accuracy: 0.01 * ratio + 0.002)
    XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), [],
                   "the benchmark left files behind")
  }
}
