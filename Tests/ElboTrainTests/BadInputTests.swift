import Foundation
import XCTest

/// Bad input gets one line naming the flag or file and the problem, a non-zero exit, no trap,
/// and nothing earlier overwritten.
final class BadInputTests: XCTestCase {
  func expectOneLineError(_ args: [String], mentions: [String], ranks: Int = 1,
                          file: StaticString = #filePath, line: UInt = #line) throws {
    let r = try ElboProcess.run(args, ranks: ranks, timeout: 60)
    XCTAssertNotEqual(r.status, 0, "expected failure for \(args)", file: file, line: line)
    let errLines = r.stderr.split(separator: "\n").filter { $0.hasPrefix("elbo:") }
    XCTAssertGreaterThanOrEqual(errLines.count, 1, "no 'elbo:' line in:\n\(r.stderr)",
                                file: file, line: line)
    for m in mentions {
      XCTAssertTrue(errLines.contains { $0.contains(m) }, "'\(m)' missing from:\n\(r.stderr)",
                    file: file, line: line)
    }
    for trap in ["Fatal error", "Stack dump", "Illegal instruction", "Segmentation"] {
      XCTAssertFalse(r.stderr.contains(trap), "trap in:\n\(r.stderr)", file: file, line: line)
    }
  }

  /// Every input launch/fuzz has found (Tests/FuzzCorpus/regressions): one line, never a trap.
  func testInputsTheFuzzersFound() throws {
    var dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    for _ in 0..<2 { dir.deleteLastPathComponent() }
    let regressions = dir.path + "/Tests/FuzzCorpus/regressions"
    let files = try FileManager.default.contentsOfDirectory(atPath: regressions).sorted()
    XCTAssertFalse(files.isEmpty)
    let out = scratchDirectory("fuzzfound")
    for name in files {
      let path = regressions + "/" + name
      switch (name as NSString).pathExtension {
      case "yaml", "json":
        try expectOneLineError(["train", "vae", "--config", path, "--out", out + "/" + name],
                               mentions: [path])
      case "h5":
        try expectOneLineError(["inspect", path], mentions: [path])
        try expectOneLineError(["eval", path], mentions: [path])
      default:
        XCTFail("\(name): no reader for this kind of file in the regression test")
      }
    }
  }

  func testNonPositiveNumbers() throws {
    let out = scratchDirectory("flags")
    try expectOneLineError(["train", "vae", "--batch-size", "0", "--out", out + "/a"],
                           mentions: ["--batch-size"])
    try expectOneLineError(["train", "vae", "--k", "-1", "--out", out + "/b"], mentions: ["--k"])
    try expectOneLineError(["train", "vae", "--image-every", "-1", "--out", out + "/c"],
                           mentions: ["--image-every"])
    try expectOneLineError(["eval", out, "--k", "0"], mentions: ["--k"])
    try expectOneLineError(["train", "vae", "--epochs", "abc"], mentions: ["--epochs"])
  }

  func testUnknownDataSet() throws {
    try expectOneLineError(["train", "vae", "--data", "cifar-99",
                            "--out", scratchDirectory("unknown") + "/r"],
                           mentions: ["cifar-99"])
  }

  func testTruncatedAndMalformedIDX() throws {
    let dir = scratchDirectory("idx")
    let src = "/usr/share/datasets/fashion-mnist"
    guard FileManager.default.fileExists(atPath: src) else { throw XCTSkip("no Fashion-MNIST") }
    for f in ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
              "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"] {
      try FileManager.default.copyItem(atPath: "\(src)/\(f)", toPath: "\(dir)/\(f)")
    }
    // Truncate the training images to half.
    let path = "\(dir)/train-images-idx3-ubyte.gz"
    let data = try Data(contentsOf: URL(fileURLWithPath: path))
    try data.prefix(data.count / 2).write(to: URL(fileURLWithPath: path))
    try expectOneLineError(["train", "vae", "--data", dir, "--out", dir + "/run"],
                           mentions: ["train-images-idx3-ubyte.gz"])
    // Same error on two ranks: the job ends, no rank hangs.
    try expectOneLineError(["train", "vae", "--data", dir, "--out", dir + "/run2"],
                           mentions: ["train-images-idx3-ubyte.gz"], ranks: 2)
  }

  func testUnwritableRunDirectory() throws {
    try expectOneLineError(["train", "vae", "--data", "mnist-5k", "--out", "/proc/elbo-run"],
                           mentions: ["--out", "/proc/elbo-run"])
  }

  func testAnEarlierRunIsNeverOverwritten() throws {
    let dir = scratchDirectory("keep") + "/run"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    let marker = dir + "/metrics.jsonl"
    try Data("earlier run\n".utf8).write(to: URL(fileURLWithPath: marker))
    try expectOneLineError(["train", "vae", "--data", "mnist-5k", "--out", dir],
                           mentions: ["--out", "not empty"])
    XCTAssertEqual(try String(contentsOfFile: marker, encoding: .utf8), "earlier run\n")
  }

  func testCheckpointOfAnotherKindIsRefused() throws {
    let dir = scratchDirectory("notckpt")
    let fake = dir + "/ckpt-00000001.h5"
    try Data("this is not HDF5".utf8).write(to: URL(fileURLWithPath: fake))
    try expectOneLineError(["eval", fake, "--k", "1"], mentions: ["ckpt-00000001.h5"])
  }
}
