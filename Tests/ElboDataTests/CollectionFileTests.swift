import ElboData
import ElboDistributed
import ElboTensor
import ElboTestSupport
import Foundation
import XCTest

/// Collections on disk: what is written is read back exactly, by subset; unequal sizes pad with
/// a mask; the bytes depend on the seed alone; bad files give one clear line; h5py reads them.
final class CollectionFileTests: XCTestCase {
  /// Three data sets of sizes 2, 0 and 3 in D = 2, points numbered so any mix-up shows.
  func smallCollection() -> GeneratedCollection {
    let sizes = [2, 0, 3]
    var points = [Float]()
    for (i, n) in sizes.enumerated() {
      for p in 0..<n { points += [Float(100 * i + p), Float(-(100 * i + p)) - 0.5] }
    }
    return GeneratedCollection(
      points: points, dimension: 2, offsets: [0, 2, 2, 5],
      metadata: ["family": CollectionMetadata(values: [0, 1, 0], codes: ["gauss", "laplace"]),
                 "params": CollectionMetadata(values: [1, 2, 3, 4, 5, 6], columns: 2)])
  }

  func write(_ c: GeneratedCollection, _ name: String) throws -> String {
    let path = scratchDirectory("collection") + "/\(name).h5"
    try CollectionFile.write(path: path, points: c.points, dimension: c.dimension,
                             offsets: c.offsets, metadata: c.metadata, kind: "test")
    return path
  }

  func testRoundTripReadsAnySubsetExactly() throws {
    let c = smallCollection()
    let file = try CollectionFile(path: try write(c, "round"), communicator: nil)
    XCTAssertEqual(file.kind, "test")
    XCTAssertEqual(file.offsets, c.offsets)
    XCTAssertEqual(file.dimension, 2)
    XCTAssertEqual(file.metadata["family"], c.metadata["family"])
    XCTAssertEqual(file.metadata["params"], c.metadata["params"])
    for subset in [[0], [2], [1], [2, 0], [0, 1, 2], [2, 2, 0], []] {
      let sets = try file.read(datasets: subset)
      XCTAssertEqual(sets.count, subset.count)
      for (i, t) in zip(subset, sets) {
        let lo = c.offsets[i] * 2, hi = c.offsets[i + 1] * 2
        XCTAssertEqual(t.shape, [file.size(of: i), 2])
        XCTAssertEqual(Array(t.buffer), Array(c.points[lo..<hi]), "data set \(i) of \(subset)")
      }
    }
    XCTAssertEqual(file.metadata("params", datasets: [2, 0]) ?? [], [[5, 6], [1, 2]])
  }

  /// A read touches the rows of its data sets only (the counter the rank tests check too).
  func testReadCountsOnlyItsRows() throws {
    let file = try CollectionFile(path: try write(smallCollection(), "rows"), communicator: nil)
    _ = try file.read(datasets: [2])
    XCTAssertEqual(file.rowsRead, 3)
    _ = try file.read(datasets: [0, 1])
    XCTAssertEqual(file.rowsRead, 5)
  }

  func testSetBatchPadsAndMasks() throws {
    let file = try CollectionFile(path: try write(smallCollection(), "pad"), communicator: nil)
    let b = SetBatch(try file.read(datasets: [0, 1, 2]), datasets: [0, 1, 2])
    XCTAssertEqual(b.points.shape, [3, 3, 2])
    XCTAssertEqual(b.counts, [2, 0, 3])
    XCTAssertEqual(Array(b.mask.buffer), [1, 1, 0, 0, 0, 0, 1, 1, 1])
    XCTAssertEqual(Array(b.points.buffer[0..<6]), [0, -0.5, 1, -1.5, 0, 0])
    XCTAssertEqual(Array(b.points.buffer[12..<18]), [200, -200.5, 201, -201.5, 202, -202.5])
  }

  func testHarmonicBytesDependOnlyOnTheSeed() throws {
    func bytes(_ seed: UInt64, _ name: String) throws -> Data {
      let made = try HarmonicTasks.make(seed: seed, options: CollectionOptions(datasets: 5,
                                                                                points: 4))
      let path = scratchDirectory("det") + "/\(name).h5"
      try CollectionFile.write(path: path, points: made.points, dimension: 2,
                               offsets: made.offsets, metadata: made.metadata, kind: "harmonic")
      return try Data(contentsOf: URL(fileURLWithPath: path))
    }
    let a = try bytes(3, "a")
    XCTAssertEqual(a, try bytes(3, "b"), "same seed, different bytes")
    XCTAssertNotEqual(a, try bytes(4, "c"), "another seed, same bytes")
  }

  /// The points are the generating function plus noise of the stated size.
  func testHarmonicPointsFollowTheirTask() throws {
    let made = try HarmonicTasks.make(seed: 1, options: CollectionOptions(
      datasets: 50, points: 20, extra: ["noise": "0.1"]))
    var residual = 0.0
    for i in 0..<50 {
      let task = HarmonicTasks.Task(params: made.metadata["params"]!.row(i))
      XCTAssert((5...7).contains(task.omega) && (-4...4).contains(task.muX))
      for p in 0..<20 {
        let x = Double(made.points[(i * 20 + p) * 2]), y = Double(made.points[(i * 20 + p) * 2 + 1])
        residual += (y - task(x)) * (y - task(x))
      }
    }
    let sd = (residual / 1000).squareRoot()
    XCTAssertEqual(sd, 0.1, accuracy: 0.01, "noise std of y − f(x)")
    XCTAssertThrowsError(try HarmonicTasks.make(seed: 1, options: CollectionOptions(
      datasets: 1, points: 1, extra: ["noise": "-1"])))
  }

  func testBadFilesGiveOneClearLine() throws {
    let dir = scratchDirectory("bad")
    func message(_ path: String) -> String {
      do {
        _ = try CollectionFile(path: path, communicator: nil)
        return "no error"
      } catch { return "\(error)" }
    }
    let missing = message(dir + "/missing.h5")
    XCTAssert(missing.contains("no such collection file"), missing)
    try Data("not hdf5 at all".utf8).write(to: URL(fileURLWithPath: dir + "/text.h5"))
    XCTAssert(message(dir + "/text.h5").contains("not an HDF5 file"))
    // An HDF5 file of another layout (h5py): no offsets.
    _ = try python("import h5py,sys; f=h5py.File(sys.argv[1],'w'); f.attrs['kind']='x'; "
      + "f['points']=[[1.0,2.0]]", args: [dir + "/other.h5"])
    let other = message(dir + "/other.h5")
    XCTAssert(other.contains("no dataset /offsets"), other)
    _ = try python("import h5py,sys; f=h5py.File(sys.argv[1],'w'); f.attrs['kind']='x'; "
      + "f['points']=[[1.0,2.0]]; f['offsets']=[0,2]", args: [dir + "/short.h5"])
    let short = message(dir + "/short.h5")
    XCTAssert(short.contains("/offsets must rise"), short)
    for m in [missing, other, short] { XCTAssertFalse(m.contains("\n")) }
    let file = try CollectionFile(path: try write(smallCollection(), "ok"), communicator: nil)
    XCTAssertThrowsError(try file.read(datasets: [3]))
  }

  func testH5pyReadsTheLayout() throws {
    let c = smallCollection()
    let path = try write(c, "h5py")
    let out = try python("""
      import h5py, sys
      s = lambda v: v.decode() if isinstance(v, bytes) else v  # fixed-length strings: bytes
      f = h5py.File(sys.argv[1], 'r')
      o = f['offsets'][:]
      print(s(f.attrs['kind']), s(f.attrs['format']), list(o), f['points'][o[2]:o[3]].tolist(), \
      s(f['meta/family'].attrs['codes']), f['meta/params'][2].tolist())
      """, args: [path])
    XCTAssertEqual(out, "test elbo-collection 1 [0, 2, 2, 5] [[200.0, -200.5], [201.0, -201.5], "
      + "[202.0, -202.5]] gauss,laplace [5.0, 6.0]")
  }
}

/// Several ranks read one collection: each only its own data sets (its rows counter and its
/// debug log say so), a rank with none still takes part, and the values are exact.
final class CollectionRankTests: XCTestCase {
  let world: Communicator = {
    do { return try Communicator.initialize() } catch { fatalError("MPI: \(error)") }
  }()

  func testEachRankReadsOnlyItsDataSets() throws {
    TestRanks.assertWorldSize(world.size)
    let path = NSTemporaryDirectory() + "/elbo-collection-ranks-\(world.size).h5"
    let made = try HarmonicTasks.make(seed: 2, options: CollectionOptions(datasets: 7, points: 3))
    if world.isRoot {
      try CollectionFile.write(path: path, points: made.points, dimension: 2,
                               offsets: made.offsets, metadata: made.metadata, kind: "harmonic")
    }
    try world.barrier(name: "collection written")
    let logDir = NSTemporaryDirectory() + "/elbo-collection-ranks-log-\(world.size)"
    let hadLog = world.debugLog != nil
    if !hadLog { try world.openDebugLog(directory: logDir) }
    let file = try CollectionFile(path: path, communicator: world)
    // Contiguous shares of 7 data sets, then a round where only rank 0 reads (others: none).
    let base = 7 / world.size, extra = 7 % world.size
    let lo = world.rank * base + min(world.rank, extra)
    let mine = Array(lo..<(lo + base + (world.rank < extra ? 1 : 0)))
    let sets = try file.read(datasets: mine)
    for (i, t) in zip(mine, sets) {
      XCTAssertEqual(Array(t.buffer), Array(made.points[(i * 6)..<((i + 1) * 6)]))
    }
    XCTAssertEqual(file.rowsRead, 3 * mine.count)
    _ = try file.read(datasets: world.isRoot ? [6] : [])
    XCTAssertEqual(file.rowsRead, 3 * mine.count + (world.isRoot ? 3 : 0))
    if !hadLog, let log = world.debugLog {
      let text = try String(contentsOfFile: log.path)
      XCTAssert(text.contains("read data sets \(mine) (\(3 * mine.count) rows)"), text)
    }
    try world.barrier(name: "collection read")
  }
}
