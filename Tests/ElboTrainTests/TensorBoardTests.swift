import ElboReport
import Foundation
import XCTest

/// Every run writes its metrics as TensorBoard scalars; TensorBoard's own reader (the
/// `tensorboard` PyPI package, installed by launch/test into .build/tb-venv) loads them back,
/// checks every record's CRC, and they must equal metrics.jsonl number for number.
final class TensorBoardTests: XCTestCase {
  /// The venv's python, from launch/test (ELBO_TENSORBOARD_PYTHON) or the repository's .build.
  func tensorboardPython() throws -> String {
    var candidates: [String] = []
    if let p = ProcessInfo.processInfo.environment["ELBO_TENSORBOARD_PYTHON"] { candidates.append(p) }
    var dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    for _ in 0..<2 { dir.deleteLastPathComponent() }
    candidates.append(dir.path + "/.build/tb-venv/bin/python")
    for p in candidates where FileManager.default.isExecutableFile(atPath: p) {
      let probe = try ElboProcess.runTool(p, ["-c", "import tensorboard"])
      if probe.status == 0 { return p }
    }
    throw XCTSkip("the tensorboard package is not installed (launch/test installs it into "
                  + ".build/tb-venv)")
  }

  let reader = #"""
    import glob, json, math, struct, sys
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboard.util import tensor_util
    run = sys.argv[1]
    tb = {}
    files = sorted(glob.glob(run + "/events.out.tfevents.*"))
    versions = 0
    for f in files:
        for ev in EventFileLoader(f).Load():
            if ev.file_version: versions += 1
            for v in ev.summary.value:
                # The loader migrates simple_value scalars to tensors, as TensorBoard shows them.
                x = v.simple_value if v.HasField("simple_value") else float(tensor_util.make_ndarray(v.tensor))
                tb.setdefault((v.tag, ev.step), []).append(x)
    f32 = lambda x: struct.unpack("f", struct.pack("f", x))[0]
    jsonl = {}
    for line in open(run + "/metrics.jsonl"):
        r = json.loads(line)
        for k, v in r.items():
            if k in ("step", "kind") or isinstance(v, bool) or not isinstance(v, (int, float)):
                continue
            jsonl.setdefault((r["kind"] + "/" + k, r.get("step", 0)), []).append(f32(v))
    same = lambda a, b: a == b or (math.isnan(a) and math.isnan(b))
    bad = [k for k in set(tb) | set(jsonl)
           if len(tb.get(k, [])) != len(jsonl.get(k, []))
           or not all(same(a, b) for a, b in zip(tb.get(k, []), jsonl.get(k, [])))]
    print(json.dumps({"files": len(files), "versions": versions, "scalars": sum(map(len, tb.values())),
                      "tags": len({t for t, _ in tb}), "mismatches": sorted(map(str, bad))[:5]}))
    """#

  /// A run, resumed once (a second event file): TensorBoard reads every scalar of both files,
  /// equal to metrics.jsonl.
  func testTensorBoardReadsEveryScalarOfARun() throws {
    let python = try tensorboardPython()
    let run = scratchDirectory("tensorboard") + "/run"
    let tiny = ["train", "vae", "--data", "mnist-5k", "--hidden", "32", "--latent", "4",
                "--threads", "1", "--log-every", "5", "--out", run]
    try elbo(tiny + ["--max-steps", "20"])
    try elbo(tiny + ["--max-steps", "45", "--resume", "latest"], ranks: 2)
    let r = try ElboProcess.runTool(python, ["-c", reader, run])
    XCTAssertEqual(r.status, 0, r.stderr)
    let report = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
    print("TensorBoard read: \(r.stdout)")
    XCTAssertEqual(report["files"] as? Int, 2, "one event file per process that trained")
    XCTAssertEqual(report["versions"] as? Int, 2, "each file starts with its version record")
    XCTAssertGreaterThan(report["scalars"] as? Int ?? 0, 50)
    XCTAssertGreaterThanOrEqual(report["tags"] as? Int ?? 0, 10)
    XCTAssertEqual((report["mismatches"] as? [String])?.count, 0, "\(report)")
  }

  /// CRC-32C against its published check value and TFRecord's masking of it.
  func testCRC32CKnownValues() {
    XCTAssertEqual(CRC32C.checksum(Array("123456789".utf8)), 0xE306_9283)  // the standard check
    XCTAssertEqual(CRC32C.checksum([]), 0)
    // 32 zero bytes: 0x8A9136AA (RFC 3720, B.4).
    XCTAssertEqual(CRC32C.checksum([UInt8](repeating: 0, count: 32)), 0x8A91_36AA)
    let c = CRC32C.checksum(Array("a".utf8))
    XCTAssertEqual(CRC32C.masked(Array("a".utf8)), ((c >> 15) | (c << 17)) &+ 0xA282_EAD8)
  }
}
