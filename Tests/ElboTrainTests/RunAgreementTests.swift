import ElboData
import ElboDistributed
import ElboTrain
import Foundation
import XCTest

/// Ranks must agree on what they run: build, configuration, model layout, data. Each kind of
/// disagreement is started for real (mpirun's MPMD form gives each rank its own command line,
/// executable or environment) and must end the job within 10 s with one line naming the rank and
/// the first differing item, writing nothing.
final class RunAgreementTests: XCTestCase {
  let tiny = ["train", "vae", "--data", "mnist-5k", "--hidden", "32", "--latent", "4",
              "--threads", "1", "--max-steps", "5"]

  /// `mpirun -np 1 A… : -np 1 B…` (each side a full command: executable and arguments).
  func mpmd(_ a: [String], _ b: [String]) throws -> ElboProcess.Result {
    try ElboProcess.runTool("/usr/bin/env", ["mpirun", "--oversubscribe", "--bind-to", "none",
                                             "-np", "1"] + a + [":", "-np", "1"] + b,
                            timeout: 60)
  }

  func assertRefused(_ r: ElboProcess.Result, _ expected: String, out: String,
                     file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertNotEqual(r.status, 0, "the job ran", file: file, line: line)
    XCTAssertLessThan(r.seconds, 10, "took \(r.seconds) s", file: file, line: line)
    let lines = r.stderr.split(separator: "\n").filter { $0.contains("differs from rank 0") }
    XCTAssertFalse(lines.isEmpty, "no verdict in: \(r.stderr)", file: file, line: line)
    XCTAssertTrue(r.stderr.contains(expected), "expected “\(expected)” in: \(r.stderr)",
                  file: file, line: line)
    XCTAssertFalse(r.stderr.contains("Fatal error"), r.stderr, file: file, line: line)
    XCTAssertFalse(FileManager.default.fileExists(atPath: out), "\(out) was written",
                   file: file, line: line)
  }

  func testAnotherConfigurationIsNamedByItsKey() throws {
    let out = scratchDirectory("agree-config") + "/run"
    let elbo = ElboProcess.binary
    let r = try mpmd([elbo] + tiny + ["--out", out], [elbo] + tiny + ["--out", out, "--hidden", "48"])
    assertRefused(r, "rank 1 differs from rank 0 in its configuration: vae.hidden: 48 on rank 1, "
                    + "32 on rank 0", out: out)
  }

  func testAnotherBuildIsRefused() throws {
    let dir = scratchDirectory("agree-build")
    let out = dir + "/run", copy = dir + "/elbo-other"
    // The same program with one byte appended: it runs the same, but it is another build.
    var bytes = try Data(contentsOf: URL(fileURLWithPath: ElboProcess.binary))
    bytes.append(0)
    try bytes.write(to: URL(fileURLWithPath: copy))
    chmod(copy, 0o755)
    let r = try mpmd([ElboProcess.binary] + tiny + ["--out", out], [copy] + tiny + ["--out", out])
    assertRefused(r, "rank 1 differs from rank 0 in its build", out: out)
  }

  func testAnotherCopyOfTheDataIsRefused() throws {
    let dir = scratchDirectory("agree-data")
    let out = dir + "/run"
    // MNIST-5k with one pixel changed, found by rank 1 through ELBO_DATA_DIR.
    let original = try locateMNIST5k()
    let shell = "gzip -dc '\(original)' | sed '2s/,0,/,7,/' | gzip > '\(dir)/mnist_5k.csv.gz'"
    let made = try ElboProcess.runTool("/bin/sh", ["-c", shell])
    XCTAssertEqual(made.status, 0, made.stderr)
    let r = try mpmd([ElboProcess.binary] + tiny + ["--out", out],
                     ["/usr/bin/env", "ELBO_DATA_DIR=\(dir)", ElboProcess.binary] + tiny + ["--out", out])
    assertRefused(r, "rank 1 differs from rank 0 in its data: mnist-5k", out: out)
  }

  func testAgreeingRanksTrain() throws {
    let out = scratchDirectory("agree-same") + "/run"
    let elbo = ElboProcess.binary
    let r = try mpmd([elbo] + tiny + ["--out", out], [elbo] + tiny + ["--out", out])
    XCTAssertEqual(r.status, 0, r.stderr)
  }

  // MARK: - The verdict's wording (pure functions)

  func testFirstDifferenceNamesTheKeyPathOrLine() {
    let a = #"{"lr":0.001,"vae":{"hidden":200,"layers":[1,2]}}"#
    XCTAssertEqual(RunIdentity.firstDifference(
      "configuration", reference: a, mine: #"{"lr":0.001,"vae":{"hidden":200,"layers":[1,3]}}"#,
      rank: 2), "vae.layers[1]: 3 on rank 2, 2 on rank 0")
    XCTAssertEqual(RunIdentity.firstDifference(
      "configuration", reference: a, mine: #"{"lr":0.001,"vae":{"layers":[1,2]}}"#, rank: 1),
      "vae.hidden is absent on rank 1, set on rank 0")
    XCTAssertEqual(RunIdentity.firstDifference(
      "model layout", reference: "w [2, 3]\nb [3]", mine: "w [2, 3]\nb [4]", rank: 1),
      "b [4] on rank 1, b [3] on rank 0")
    XCTAssertEqual(RunIdentity.firstDifference(
      "model layout", reference: "w [2, 3]", mine: "w [2, 3]\nextra [1]", rank: 3),
      "extra [1] on rank 3, (nothing) on rank 0")
  }

  func testDigestSeesEveryByte() {
    var bytes = [UInt8](repeating: 0, count: 37)
    let base = bytes.withUnsafeBytes { ContentDigest.of($0) }
    for i in bytes.indices {
      bytes[i] = 1
      XCTAssertNotEqual(bytes.withUnsafeBytes { ContentDigest.of($0) }, base, "byte \(i)")
      bytes[i] = 0
    }
    // Length matters too (trailing zeros).
    XCTAssertNotEqual([UInt8](repeating: 0, count: 38).withUnsafeBytes { ContentDigest.of($0) },
                      base)
  }
}
