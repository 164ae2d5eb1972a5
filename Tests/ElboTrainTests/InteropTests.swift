import Foundation
import XCTest

/// Checkpoints are plain HDF5: h5py (Debian python3-h5py) reads the parameters the README's
/// five lines promise, and `elbo inspect` describes the file.
final class InteropTests: XCTestCase {
  func trainTiny(_ out: String) throws {
    let r = try ElboProcess.run(["train", "vae", "--data", "mnist-5k", "--hidden", "32",
                                 "--latent", "4", "--max-steps", "3", "--threads", "1",
                                 "--out", out])
    XCTAssertEqual(r.status, 0, r.stderr)
  }

  func testH5pyReadsParameters() throws {
    let python = "/usr/bin/python3"
    let probe = Process()
    probe.executableURL = URL(fileURLWithPath: python)
    probe.arguments = ["-c", "import h5py"]
    guard (try? probe.run()) != nil else { throw XCTSkip("no \(python)") }
    probe.waitUntilExit()
    guard probe.terminationStatus == 0 else { throw XCTSkip("python3-h5py not installed") }

    let out = scratchDirectory("h5py") + "/run"
    try trainTiny(out)
    let latest = try String(contentsOfFile: out + "/checkpoints/latest", encoding: .utf8)
      .trimmingCharacters(in: .whitespacesAndNewlines)
    let script = """
      import h5py, sys
      f = h5py.File(sys.argv[1], "r")
      params = {}
      f["params"].visititems(lambda name, d: params.update({name: d[()]}) if isinstance(d, h5py.Dataset) else None)
      print(f.attrs["model"].decode(), int(f.attrs["step"]), params["encoder.fc1.weight"].shape, len(params))
      """
    let p = Process()
    p.executableURL = URL(fileURLWithPath: python)
    p.arguments = ["-c", script, out + "/checkpoints/" + latest]
    let pipe = Pipe()
    p.standardOutput = pipe
    try p.run()
    p.waitUntilExit()
    let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    XCTAssertEqual(p.terminationStatus, 0)
    XCTAssertEqual(text.trimmingCharacters(in: .whitespacesAndNewlines), "vae 3 (784, 32) 12")
  }

  func testInspectDescribesTheCheckpoint() throws {
    let out = scratchDirectory("inspect") + "/run"
    try trainTiny(out)
    let r = try ElboProcess.run(["inspect", out])
    XCTAssertEqual(r.status, 0, r.stderr)
    XCTAssertTrue(r.stdout.contains("model 'vae', step 3"), r.stdout)
    XCTAssertTrue(r.stdout.contains("params/encoder.fc1.weight  [784, 32]"), r.stdout)
    XCTAssertTrue(r.stdout.contains("optimizer/adam.m/decoder.fc2.bias"), r.stdout)
    XCTAssertTrue(r.stdout.contains("optimizer/adam.t = 3.0"), r.stdout)
  }
}
