import ElboCheckpoint
import ElboDistributed
import Foundation
import XCTest

final class CheckpointTests: XCTestCase {
  private var dir = ""

  override func setUpWithError() throws {
    dir = try sharedTempDirectory("ckpt")
  }

  override func tearDownWithError() throws {
    try removeSharedTempDirectory(dir)
  }

  /// A state with awkward shapes: 3-D, scalar, empty, fewer rows than ranks, odd lengths.
  private func makeState(step: Int64, model: String = "vae", marker: Float = 0) -> CheckpointState {
    func values(_ n: Int, _ k: Float) -> [Float] { (0..<n).map { Float($0) * 0.37 - k + marker } }
    var w = values(3 * 5 * 7, 1)
    w[4] = -0.0
    w[5] = Float(bitPattern: 0x7fc0_1234)  // a NaN with a payload must survive bit for bit
    w[6] = .infinity
    return CheckpointState(
      model: model,
      configJSON: #"{"model":"vae","lr":0.001,"note":"ünïcode ✓"}"#,
      step: step, epoch: 3, positionInEpoch: 12_345, seed: UInt64.max - 7,
      tensors: [
        CheckpointTensor(name: "params/encoder.fc1.weight", shape: [3, 5, 7], data: w),
        CheckpointTensor(name: "params/encoder.fc1.bias", shape: [13], data: values(13, 2)),
        CheckpointTensor(name: "params/temperature", shape: [], data: [marker + 0.5]),
        CheckpointTensor(name: "params/row", shape: [1, 9], data: values(9, 3)),
        // At 3 ranks the middle third (5..<10) is the tail of row 0 and the head of row 1.
        CheckpointTensor(name: "params/straddle", shape: [2, 8], data: values(16, 6)),
        CheckpointTensor(name: "params/empty", shape: [0, 4], data: []),
        CheckpointTensor(name: "optimizer/adam.m/encoder.fc1.bias", shape: [13],
                         data: values(13, 4)),
        CheckpointTensor(name: "optimizer/adam.v/encoder.fc1.bias", shape: [13],
                         data: values(13, 5)),
      ],
      scalars: ["optimizer/adam.t": Double(step), "optimizer/lr": 1e-3, "loss_scale": -2.5],
      rngState: (0..<world.size).map { r in [UInt64(r), UInt64(step), UInt64.max - UInt64(r)] })
  }

  private func assertBitwiseEqual(_ a: CheckpointState, _ b: CheckpointState,
                                  file: StaticString = #filePath, line: UInt = #line)
  {
    XCTAssertEqual(a.formatVersion, b.formatVersion, file: file, line: line)
    XCTAssertEqual(a.model, b.model, file: file, line: line)
    XCTAssertEqual(a.configJSON, b.configJSON, file: file, line: line)
    XCTAssertEqual([a.step, a.epoch, a.positionInEpoch], [b.step, b.epoch, b.positionInEpoch],
                   file: file, line: line)
    XCTAssertEqual(a.seed, b.seed, file: file, line: line)
    XCTAssertEqual(a.tensors.map(\.name), b.tensors.map(\.name), file: file, line: line)
    for (x, y) in zip(a.tensors, b.tensors) {
      XCTAssertEqual(x.shape, y.shape, x.name, file: file, line: line)
      XCTAssertEqual(x.data.map(\.bitPattern), y.data.map(\.bitPattern), x.name, file: file,
                     line: line)
    }
    XCTAssertEqual(a.scalars, b.scalars, file: file, line: line)
    XCTAssertEqual(a.rngState, b.rngState, file: file, line: line)
  }

  func testRoundTripIsBitwise() throws {
    let store = CheckpointStore(directory: dir + "/run", communicator: world)
    let state = makeState(step: 123)
    let path = try store.save(state)
    XCTAssertEqual(path, dir + "/run/ckpt-00000123.h5")
    XCTAssertEqual(store.latestPath(), path)
    let latest = try String(contentsOfFile: dir + "/run/latest", encoding: .utf8)
    XCTAssertEqual(latest, "ckpt-00000123.h5\n")

    let loaded = try store.load("latest", expectModel: "vae")
    assertBitwiseEqual(loaded, state)
    XCTAssertNil(store.fallbackNote)
    assertBitwiseEqual(try store.load(path, expectModel: nil), state)
    assertBitwiseEqual(try store.load("ckpt-00000123.h5", expectModel: "vae"), state)
    assertBitwiseEqual(try CheckpointStore.read(path: path), state)

    if world.isRoot {
      let h5dump = "/usr/bin/h5dump"
      if FileManager.default.isExecutableFile(atPath: h5dump) {
        let out = try run(h5dump, ["-H", path])
        for name in ["format_version", "model", "step", "epoch", "position_in_epoch", "seed",
                     "num_ranks", "created_utc", "DATASET \"config\"", "GROUP \"params\"",
                     "DATASET \"encoder.fc1.weight\"", "( 3, 5, 7 )", "H5T_IEEE_F32LE",
                     "GROUP \"optimizer\"", "GROUP \"adam.m\"", "GROUP \"scalars\"",
                     "DATASET \"adam.t\"", "DATASET \"loss_scale\"", "GROUP \"rng\"",
                     "DATASET \"state\"", "( \(world.size), 3 )", "H5T_STD_U64LE",
                     "ATTRIBUTE \"order\""]
        {
          XCTAssert(out.contains(name), "h5dump -H lacks \(name)")
        }
        let values = try run(h5dump, ["-a", "/model", "-a", "/num_ranks", path])
        XCTAssert(values.contains("\"vae\""), values)
        XCTAssert(values.contains("(0): \(world.size)"), values)
      } else {
        print("h5dump not installed; skipping the h5dump check")
      }
    }
  }

  func testEachRankCanPassItsOwnRngRow() throws {
    let store = CheckpointStore(directory: dir, communicator: world)
    var state = makeState(step: 1)
    state.rngState = [[UInt64(world.rank) * 100, 42]]
    try store.save(state)
    let loaded = try store.load("latest", expectModel: "vae")
    XCTAssertEqual(loaded.rngState, (0..<world.size).map { [UInt64($0) * 100, 42] })
  }

  func testRetentionLatestAndNoOverwrite() throws {
    let store = CheckpointStore(directory: dir, communicator: world, keep: 2)
    for step in 1...4 { try store.save(makeState(step: Int64(step))) }
    let files = try FileManager.default.contentsOfDirectory(atPath: dir).sorted()
    XCTAssertEqual(files, ["ckpt-00000003.h5", "ckpt-00000004.h5", "latest"])
    XCTAssertEqual(store.latestPath(), dir + "/ckpt-00000004.h5")

    // Saving step 4 again never replaces the first file: it gets the next generation.
    let first = try Data(contentsOf: URL(fileURLWithPath: dir + "/ckpt-00000004.h5"))
    let again = try store.save(makeState(step: 4, marker: 100))
    XCTAssertEqual(again, dir + "/ckpt-00000004-2.h5")
    XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: dir + "/ckpt-00000004.h5")), first)
    XCTAssertEqual(store.latestPath(), again)
    let loaded = try store.load("latest", expectModel: "vae")
    XCTAssertEqual(loaded.tensors[2].data, [100.5])
    let files2 = try FileManager.default.contentsOfDirectory(atPath: dir).sorted()
    XCTAssertEqual(files2, ["ckpt-00000004-2.h5", "ckpt-00000004.h5", "latest"])
  }

  func testStaleTemporaryIsIgnored() throws {
    let store = CheckpointStore(directory: dir, communicator: world)
    try store.save(makeState(step: 1))
    try store.save(makeState(step: 2))
    if world.isRoot {
      // A "crashed" write of step 3: half an HDF5 file under a temporary name.
      let good = try Data(contentsOf: URL(fileURLWithPath: dir + "/ckpt-00000002.h5"))
      try good.prefix(good.count / 2).write(
        to: URL(fileURLWithPath: dir + "/ckpt-00000003.h5.tmp-999-deadbeef"))
    }
    try world.barrier(name: "test stale tmp")
    let result = try store.loadResult("latest", expectModel: "vae")
    XCTAssertEqual(result.state.step, 2)
    XCTAssertNil(result.fallbackNote)
    // The next successful save clears the stale temporary.
    try store.save(makeState(step: 3))
    XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/ckpt-00000003.h5.tmp-999-deadbeef"))
  }

  func testTruncatedCheckpoint() throws {
    let store = CheckpointStore(directory: dir, communicator: world)
    try store.save(makeState(step: 1))
    let bad = try store.save(makeState(step: 2))
    if world.isRoot {
      let size = (try FileManager.default.attributesOfItem(atPath: bad)[.size] as? Int) ?? 0
      XCTAssertEqual(truncate(bad, off_t(size / 2)), 0)
    }
    try world.barrier(name: "test truncate")
    XCTAssertThrowsError(try store.load(bad, expectModel: "vae")) { error in
      XCTAssert(error is CheckpointError)
      let text = "\(error)"
      XCTAssert(text.hasPrefix(bad + ": damaged: ") && text.contains("truncated"), text)
      XCTAssertFalse(text.contains("\n"))
    }
    let result = try store.loadResult("latest", expectModel: "vae")
    XCTAssertEqual(result.state.step, 1)
    XCTAssertEqual(result.path, dir + "/ckpt-00000001.h5")
    let note = try XCTUnwrap(result.fallbackNote)
    XCTAssert(note.contains("ckpt-00000002.h5") && note.contains("ckpt-00000001.h5"), note)
    XCTAssertEqual(store.fallbackNote, note)
    XCTAssertThrowsError(try CheckpointStore.read(path: bad))
  }

  /// The seal: a flipped byte or a changed length is refused in one line before HDF5 parses
  /// the file (and `latest` falls back); a file without the user block — the unsealed layout
  /// of checkpoints written before sealing — is refused, and loads with ELBO_ACCEPT_UNSEALED=1.
  func testSealRefusesDamagedFilesAndOlderFilesStillLoad() throws {
    let store = CheckpointStore(directory: dir, communicator: world)
    let good = try store.save(makeState(step: 1))
    let path = try store.save(makeState(step: 2))
    let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
    XCTAssertEqual(Array(bytes.prefix(8)), Array("ELBOSEAL".utf8))
    let flipped = dir + "/flipped.h5", appended = dir + "/appended.h5", older = dir + "/older.h5"
    if world.isRoot {
      var f = bytes
      f[bytes.count / 2] ^= 0x01
      try f.write(to: URL(fileURLWithPath: flipped))
      try (bytes + Data([0])).write(to: URL(fileURLWithPath: appended))
      // HDF5 addresses are relative to the superblock, so dropping the user block leaves a
      // valid HDF5 file, laid out as before sealing.
      try bytes.dropFirst(CheckpointSeal.userBlockBytes).write(to: URL(fileURLWithPath: older))
    }
    try world.barrier(name: "test seal files")
    for (file, expected) in [(flipped, "do not match the digest"), (appended, "truncated or appended")] {
      XCTAssertThrowsError(try store.load(file, expectModel: "vae")) { error in
        let text = "\(error)"
        XCTAssert(text.hasPrefix(file + ": damaged: ") && text.contains(expected), text)
        XCTAssertFalse(text.contains("\n"))
      }
      XCTAssertThrowsError(try CheckpointStore.read(path: file))
    }
    XCTAssertThrowsError(try store.load(older, expectModel: "vae")) { error in
      XCTAssert("\(error)".contains("has no integrity seal"), "\(error)")
    }
    setenv("ELBO_ACCEPT_UNSEALED", "1", 1)
    defer { unsetenv("ELBO_ACCEPT_UNSEALED") }
    assertBitwiseEqual(try store.load(older, expectModel: "vae"), makeState(step: 2))
    unsetenv("ELBO_ACCEPT_UNSEALED")
    // A damaged latest falls back to the one before it.
    if world.isRoot { try Data(contentsOf: URL(fileURLWithPath: flipped)).write(to: URL(fileURLWithPath: path)) }
    try world.barrier(name: "test seal latest")
    let result = try store.loadResult("latest", expectModel: "vae")
    XCTAssertEqual(result.path, good)
    XCTAssert(result.fallbackNote?.contains("damaged") == true, result.fallbackNote ?? "")
  }

  func testStreamingDigestEqualsOneShot() {
    var rng = SystemRandomNumberGenerator()
    let bytes = (0..<1000).map { _ in UInt8.random(in: 0...255, using: &rng) }
    let whole = bytes.withUnsafeBytes { ContentDigest.of($0) }
    for _ in 0..<50 {
      var cuts = (0..<4).map { _ in Int.random(in: 0...bytes.count, using: &rng) }.sorted()
      cuts = [0] + cuts + [bytes.count]
      var s = ContentDigest.Streaming()
      for i in 0..<(cuts.count - 1) {
        bytes[cuts[i]..<cuts[i + 1]].withUnsafeBytes { s.update($0) }
      }
      XCTAssertEqual(s.finish(), whole, "cuts \(cuts)")
    }
  }

  func testNotHDF5AndMissing() throws {
    let store = CheckpointStore(directory: dir, communicator: world)
    XCTAssertThrowsError(try store.load("latest", expectModel: nil)) { error in
      XCTAssert("\(error)".contains("no readable checkpoint"), "\(error)")
    }
    let junk = dir + "/ckpt-00000009.h5"
    if world.isRoot { try Data("hello, not HDF5".utf8).write(to: URL(fileURLWithPath: junk)) }
    try world.barrier(name: "test junk")
    XCTAssertThrowsError(try store.load(junk, expectModel: nil)) { error in
      XCTAssert("\(error)".hasPrefix(junk + ": not a readable Elbo checkpoint"), "\(error)")
    }
    XCTAssertThrowsError(try store.load(dir + "/nope.h5", expectModel: nil)) { error in
      XCTAssert("\(error)".contains("nope.h5"), "\(error)")
    }
  }

  func testModelMismatch() throws {
    let store = CheckpointStore(directory: dir, communicator: world)
    let path = try store.save(makeState(step: 5, model: "nade"))
    XCTAssertThrowsError(try store.load("latest", expectModel: "vae")) { error in
      XCTAssertEqual("\(error)", "\(path): holds a 'nade' checkpoint, not 'vae'")
    }
  }

  func testInvalidStatesAreRejectedOnEveryRank() throws {
    let store = CheckpointStore(directory: dir, communicator: world)
    var s = makeState(step: 1)
    s.tensors[1].shape = [14]
    XCTAssertThrowsError(try store.save(s)) { XCTAssert("\($0)".contains("shape [14]")) }
    s = makeState(step: 1)
    s.tensors.append(CheckpointTensor(name: "scalars/x", shape: [1], data: [1]))
    XCTAssertThrowsError(try store.save(s)) { XCTAssert("\($0)".contains("reserved")) }
    s = makeState(step: 1)
    s.tensors[0].name = "params//w"
    XCTAssertThrowsError(try store.save(s))
    XCTAssertNil(store.latestPath())
  }

  /// Measures collective write and read throughput, and checks that the big state read back is
  /// the one written (every element: each position holds a distinct value, so a hyperslab at a
  /// wrong offset or of a wrong length shows).
  /// ELBO_CKPT_BENCH_MIB sets the state size (default 16 MiB; 256 for the report).
  func testWriteThroughput() throws {
    let env = ProcessInfo.processInfo.environment
    let mib = Int(env["ELBO_CKPT_BENCH_MIB"] ?? "") ?? 16
    let floats = mib * (1 << 20) / 4
    let chunk = floats / 4
    var state = makeState(step: 1)
    state.tensors = (0..<4).map { i in
      CheckpointTensor(name: "params/big\(i)", shape: [chunk / 256, 256],
                       data: (0..<chunk).map { Float($0 % 65_521) + Float(i) * 0.25 })
    }
    let store = CheckpointStore(directory: dir, communicator: world)
    try world.barrier(name: "bench")
    let t0 = Date()
    try store.save(state)
    let t1 = Date()
    let loaded = try store.load("latest", expectModel: nil)
    let t2 = Date()
    XCTAssertEqual(loaded.tensors.map(\.name), state.tensors.map(\.name))
    for (got, want) in zip(loaded.tensors, state.tensors) {
      XCTAssertEqual(got.shape, want.shape, got.name)
      XCTAssert(got.data == want.data, "\(got.name): the values read back differ from those written")
    }
    XCTAssertEqual([loaded.step, loaded.epoch, loaded.positionInEpoch],
                   [state.step, state.epoch, state.positionInEpoch])
    XCTAssertEqual(loaded.rngState, state.rngState)
    if world.isRoot {
      let w = Double(mib) / t1.timeIntervalSince(t0)
      let r = Double(mib) / t2.timeIntervalSince(t1)
      print(String(format: "elbo-ckpt-bench: ranks=%d io=%@ size=%d MiB write=%.0f MiB/s "
        + "(incl. fsync+commit) read=%.0f MiB/s", world.size, env["OMPI_MCA_io"] ?? "default",
        mib, w, r))
    }
  }

  private func run(_ exe: String, _ args: [String]) throws -> String {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: exe)
    p.arguments = args
    let pipe = Pipe()
    p.standardOutput = pipe
    try p.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return String(decoding: data, as: UTF8.self)
  }
}
