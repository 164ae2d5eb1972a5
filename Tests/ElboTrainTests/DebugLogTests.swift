import ElboTrain
import Foundation
import XCTest

/// `--debug-log DIR`: each rank writes its own account; the console stays rank 0's.
final class DebugLogTests: XCTestCase {
  func testTwoRanksWriteTwoLogsWithTheSameCollectives() throws {
    let dir = scratchDirectory("debuglog")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let steps = 6
    let r = try ElboProcess.run(
      ["train", "vae", "--data", "mnist-5k", "--hidden", "32", "--latent", "4", "--threads", "1",
       "--log-every", "3", "--max-steps", "\(steps)", "--out", dir + "/run",
       "--debug-log", dir + "/debug"], ranks: 2)
    XCTAssertEqual(r.status, 0, r.stderr)
    // Only rank 0 prints: the header and the checkpoint line appear once.
    XCTAssertEqual(r.stdout.components(separatedBy: "elbo: training vae").count - 1, 1, r.stdout)
    XCTAssertEqual(r.stdout.components(separatedBy: "checkpoint: ").count - 1, 1, r.stdout)

    let files = try FileManager.default.contentsOfDirectory(atPath: dir + "/debug").sorted()
    XCTAssertEqual(files, ["rank-0.log", "rank-1.log"])
    // The default method's gradient reduction, as the logs name it.
    let reduction = AllreduceMethod.trainerDefault == .sharded
      ? "gradient reduce-scatter" : "gradient all-reduce"
    var pids: [String] = []
    var collectives: [[String]] = []
    for (rank, name) in files.enumerated() {
      let lines = try String(contentsOfFile: dir + "/debug/" + name, encoding: .utf8)
        .split(separator: "\n").map { String($0.drop { $0 != "]" }.dropFirst(2)) }
      // Who: "rank R/2 host H pid P netns … ipv4 …".
      let header = lines.first ?? ""
      XCTAssertTrue(header.hasPrefix("rank \(rank)/2 host "), header)
      XCTAssertTrue(header.contains(" netns "), header)
      pids.append(header.components(separatedBy: " pid ").last?.split(separator: " ").first
                    .map(String.init) ?? "")
      // One timing line per step, in order, with this rank's share of the batch (100 / 2).
      let stepLines = lines.filter { $0.hasPrefix("step ") }
      XCTAssertEqual(stepLines.count, steps, name)
      for (i, line) in stepLines.enumerated() {
        XCTAssertTrue(line.hasPrefix("step \(i + 1) epoch 1 items 50: loss "), line)
        XCTAssertTrue(line.contains(reduction) && line.hasSuffix(" ms"), line)
      }
      // Every collective entered is left, and the gradient is reduced once per step.
      let entered = lines.filter { $0.hasPrefix("enter ") }.map { String($0.dropFirst(6)) }
      let left = lines.filter { $0.hasPrefix("leave ") }
        .map { $0.dropFirst(6).components(separatedBy: " ").dropLast(2).joined(separator: " ") }
      XCTAssertEqual(entered, left, name)
      XCTAssertEqual(entered.filter { $0 == reduction }.count, steps, name)
      XCTAssertTrue(entered.contains("checkpoint HDF5 write"), name)
      collectives.append(entered)
    }
    XCTAssertNotEqual(pids[0], pids[1])
    XCTAssertFalse(pids[0].isEmpty)
    // The rule every rank lives by: the same collectives in the same order.
    XCTAssertEqual(collectives[0], collectives[1])
  }
}
