import ElboTestSupport
import Foundation
import XCTest

/// `elbo data make` and `elbo train deep-prior` as a user runs them: the same seed gives the same
/// file, bad input gives one line and a non-zero exit, and a 3-rank run's debug logs show each
/// rank reading only its own tasks (disjoint at every step, together the global batch). With
/// hidden 8 the checkpoint holds [2, 8] tensors whose middle rank's third straddles two rows
/// (HDF5File.selectFlatRange once mis-selected that and the job hung at its checkpoint).
final class DeepPriorRunTests: XCTestCase {
  func make(_ dir: String, _ name: String, seed: Int, tasks: Int) throws -> String {
    let path = dir + "/\(name).h5"
    let r = try ElboProcess.run(["data", "make", "harmonic", "--out", path, "--seed", "\(seed)",
                                 "--datasets", "\(tasks)", "--points", "6"])
    XCTAssertEqual(r.status, 0, r.stderr)
    return path
  }

  func testSameSeedSameFileAndBadInputIsOneLine() throws {
    let dir = scratchDirectory("deep-prior-cli")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let a = try make(dir, "a", seed: 3, tasks: 20), b = try make(dir, "b", seed: 3, tasks: 20)
    XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: a)),
                   try Data(contentsOf: URL(fileURLWithPath: b)))
    let text = dir + "/text.h5"
    try Data("not a collection".utf8).write(to: URL(fileURLWithPath: text))
    for (args, expected) in [
      ([String](), "--collection FILE.h5 is required"),
      (["--collection", dir + "/missing.h5", "--test-collection", a], "no such collection file"),
      (["--collection", text, "--test-collection", a], "not an HDF5 file"),
      (["--collection", a, "--test-collection", a, "--encoder", "iaf", "--latent", "1"],
       "iaf needs a latent dimension"),
    ] {
      let r = try ElboProcess.run(["train", "deep-prior", "--out", dir + "/run"] + args)
      XCTAssertNotEqual(r.status, 0)
      let lines = r.stderr.split(separator: "\n")
      XCTAssertEqual(lines.count, 1, r.stderr)
      XCTAssert(r.stderr.contains(expected), r.stderr)
    }
    let bad = try ElboProcess.run(["data", "make", "harmonic", "--out", dir + "/x.h5",
                                   "--set", "omega=7:5"])
    XCTAssertNotEqual(bad.status, 0)
    XCTAssert(bad.stderr.contains("omega=7:5"), bad.stderr)
  }

  func testThreeRanksEachReadOnlyTheirTasks() throws {
    let dir = scratchDirectory("deep-prior-ranks")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let train = try make(dir, "train", seed: 0, tasks: 60)
    let test = try make(dir, "test", seed: 1, tasks: 9)
    let r = try ElboProcess.run(["train", "deep-prior", "--collection", train,
                                 "--test-collection", test, "--encoder", "planar",
                                 "--hidden", "8", "--batch-size", "12", "--max-steps", "4",
                                 "--threads", "1", "--out", dir + "/run",
                                 "--debug-log", dir + "/logs"], ranks: 3, timeout: 120)
    XCTAssertEqual(r.status, 0, r.stderr)
    // Per rank, the training reads in order: one line per step.
    var perRank: [[Set<Int>]] = []
    for rank in 0..<3 {
      let log = try String(contentsOfFile: dir + "/logs/rank-\(rank).log")
      let reads = log.split(separator: "\n").filter { $0.contains("collection \(train): read") }
      perRank.append(reads.prefix(4).map { Self.indices(String($0)) })
      XCTAssertEqual(reads.count, 5, "4 steps and the final evaluation:\n\(log)")
    }
    for step in 0..<4 {
      let shares = perRank.map { $0[step] }
      XCTAssertEqual(shares.map(\.count), [4, 4, 4], "step \(step): 12 tasks over 3 ranks")
      XCTAssertEqual(shares.reduce(Set<Int>()) { $0.union($1) }.count, 12,
                     "step \(step): the shares are disjoint")
    }
  }

  /// The indices of a "read data sets [0-2, 7] (…)" line.
  static func indices(_ line: String) -> Set<Int> {
    guard let at = line.range(of: "read data sets [")?.upperBound,
      let close = line[at...].firstIndex(of: "]")
    else { return [] }
    var out = Set<Int>()
    for part in line[at..<close].split(separator: ",") {
      let ends = part.trimmingCharacters(in: .whitespaces).split(separator: "-").compactMap {
        Int($0)
      }
      if ends.count == 2 { out.formUnion(ends[0]...ends[1]) } else if let v = ends.first {
        out.insert(v)
      }
    }
    return out
  }
}
