import Foundation
import XCTest

/// A full disk during a checkpoint: one line saying "no space left" with the path, no temporary
/// left behind, the last good checkpoint and `latest` intact and loadable. The disk is a small
/// tmpfs mounted for the test (root, as launch/test runs).
final class FullDiskTests: XCTestCase {
  func testFullDiskKeepsTheLastCheckpointAndSaysSo() throws {
    let mountPoint = scratchDirectory("fulldisk")
    // Room for two checkpoints of this model (~0.65 MB each) and the run's small files, not three.
    let mount = try ElboProcess.runTool("/bin/mount", ["-t", "tmpfs", "-o", "size=1400k", "tmpfs",
                                                       mountPoint])
    guard mount.status == 0 else { throw XCTSkip("cannot mount a tmpfs here: \(mount.stderr)") }
    defer { _ = try? ElboProcess.runTool("/bin/umount", [mountPoint]) }
    let out = mountPoint + "/run"
    let r = try ElboProcess.run(["train", "vae", "--data", "mnist-5k", "--hidden", "32",
                                 "--latent", "4", "--threads", "1", "--max-steps", "35",
                                 "--checkpoint-every", "10", "--keep", "5", "--out", out])
    XCTAssertNotEqual(r.status, 0, "the run should stop when the disk is full")
    let lines = r.stderr.split(separator: "\n").filter { $0.hasPrefix("elbo:") }
    XCTAssertEqual(lines.count, 1, r.stderr)
    XCTAssertTrue(r.stderr.contains(out + "/checkpoints") && r.stderr.contains("no space left"),
                  r.stderr)
    XCTAssertFalse(r.stderr.contains("Fatal error"), r.stderr)
    let files = try FileManager.default.contentsOfDirectory(atPath: out + "/checkpoints")
    XCTAssertFalse(files.contains { $0.contains(".tmp") }, "a temporary was left: \(files)")
    let latest = try String(contentsOfFile: out + "/checkpoints/latest", encoding: .utf8)
      .trimmingCharacters(in: .whitespacesAndNewlines)
    XCTAssertEqual(latest, "ckpt-00000020.h5")
    XCTAssertTrue(r.stderr.contains("latest still names ckpt-00000020.h5"), r.stderr)
    let inspect = try elbo(["inspect", out])
    XCTAssertTrue(inspect.stdout.contains("step 20,"), inspect.stdout)
  }
}
