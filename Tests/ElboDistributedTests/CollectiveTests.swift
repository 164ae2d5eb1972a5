import ElboDistributed
import XCTest

final class CollectiveTests: XCTestCase {
  func testRankAndSize() throws {
    XCTAssertGreaterThanOrEqual(world.size, 1)
    XCTAssert((0..<world.size).contains(world.rank))
    XCTAssert((0..<world.localSize).contains(world.localRank))
    XCTAssertLessThanOrEqual(world.localSize, world.size)
    XCTAssertEqual(world.isRoot, world.rank == 0)
    XCTAssertFalse(world.hostname.isEmpty)
    XCTAssert(try Communicator.initialize() === world, "initialize() must be idempotent")
    XCTAssertGreaterThanOrEqual(world.defaultThreadsPerRank(), 1)
  }

  func testAllreduceSumMaxMin() throws {
    let n = world.size
    let r = world.rank
    var f: [Float] = [Float(r + 1), Float(2 * (r + 1)), -Float(r)]
    try world.allreduceSum(&f, name: "test sum float")
    XCTAssertEqual(f, [Float(n * (n + 1) / 2), Float(n * (n + 1)), -Float(n * (n - 1) / 2)])

    var d: [Double] = [Double(r + 1), 0.5]
    try world.allreduceSum(&d, name: "test sum double")
    XCTAssertEqual(d, [Double(n * (n + 1) / 2), 0.5 * Double(n)])

    var i: [Int64] = [Int64(r + 1), Int64(1) << 40]
    try world.allreduceSum(&i, name: "test sum int64")
    XCTAssertEqual(i, [Int64(n * (n + 1) / 2), Int64(n) << 40])

    XCTAssertEqual(try world.allreduceMax(Double(r) * 1.5, name: "test max"), Double(n - 1) * 1.5)
    XCTAssertEqual(try world.allreduceMin(Int64(10 - r), name: "test min"), Int64(10 - (n - 1)))
    var mx: [Float] = [Float(r), -Float(r)]
    try world.allreduceMax(&mx, name: "test max array")
    XCTAssertEqual(mx, [Float(n - 1), 0])
    var mn: [Float] = [Float(r), -Float(r)]
    try world.allreduceMin(&mn, name: "test min array")
    XCTAssertEqual(mn, [0, -Float(n - 1)])

    // A large buffer through the in-place buffer API.
    var big = [Float](repeating: Float(r + 1), count: 1 << 18)
    try big.withUnsafeMutableBufferPointer { try world.allreduceSum($0, name: "test big sum") }
    XCTAssert(big.allSatisfy { $0 == Float(n * (n + 1) / 2) })
  }

  func testLogicalOr() throws {
    XCTAssertFalse(try world.allreduceLogicalOr(false, name: "test or none"))
    XCTAssertTrue(try world.allreduceLogicalOr(true, name: "test or all"))
    XCTAssertTrue(try world.allreduceLogicalOr(world.rank == world.size - 1, name: "test or last"))
  }

  func testBroadcast() throws {
    let root = world.size - 1
    var f: [Float] = world.rank == root ? [1.5, -2, 3] : [0, 0, 0]
    try f.withUnsafeMutableBufferPointer { try world.broadcast($0, root: root, name: "test bcast") }
    XCTAssertEqual(f, [1.5, -2, 3])
    var d: [Double] = world.rank == 0 ? [Double.pi, 2] : []
    try world.broadcast(&d, root: 0, name: "test bcast double")
    XCTAssertEqual(d, [Double.pi, 2])
    var b: [UInt8] = world.rank == root ? [1, 2, 255] : [9]
    try world.broadcast(&b, root: root, name: "test bcast bytes")
    XCTAssertEqual(b, [1, 2, 255])
    var i: [Int64] = world.rank == 0 ? [Int64.min, 7] : [0, 0]
    try world.broadcast(&i, name: "test bcast int64")
    XCTAssertEqual(i, [Int64.min, 7])
    let s = try world.broadcast(string: world.rank == root ? "héllo, wörld" : "x", root: root,
                                name: "test bcast string")
    XCTAssertEqual(s, "héllo, wörld")
    XCTAssertThrowsError(try world.broadcast(string: "", root: world.size, name: "bad root")) {
      XCTAssert("\($0)".contains("bad root"))
    }
  }

  func testAllgather() throws {
    let n = world.size
    XCTAssertEqual(try world.allgather(Int64(world.rank * 10), name: "test gather"),
                   (0..<n).map { Int64($0 * 10) })
    XCTAssertEqual(try world.allgather(Double(world.rank) + 0.25, name: "test gather d"),
                   (0..<n).map { Double($0) + 0.25 })
    let mine: [Float] = [Float(world.rank), Float(-world.rank)]
    XCTAssertEqual(try world.allgather(mine, name: "test gather buf"),
                   (0..<n).flatMap { [Float($0), Float(-$0)] })
  }

  /// Uneven blocks (the first ranks one element longer, as `Sharder.share` cuts them, plus an
  /// empty block when there are more ranks than elements): the reduce-scatter leaves each rank
  /// the sum of its own block in place, and the all-gather then gives every rank every block —
  /// together an all-reduce.
  func testReduceScatterAndAllgatherBlocks() throws {
    let n = world.size, r = world.rank
    for total in [10_007, 1, 0] {
      let counts = (0..<n).map { total / n + ($0 < total % n ? 1 : 0) }
      let start = counts[..<r].reduce(0, +)
      let mine = start..<(start + counts[r])
      // Rank-dependent values whose sums are exact in Float.
      var v = (0..<total).map { Float($0 % 101) * 0.25 + Float(r) }
      try v.withUnsafeMutableBufferPointer {
        try world.reduceScatterSum($0, counts: counts, name: "test reduce-scatter")
      }
      let rankSum = Float(n * (n - 1) / 2)
      let sum = { (i: Int) in Float(i % 101) * 0.25 * Float(n) + rankSum }
      XCTAssertEqual(Array(v[mine]), mine.map(sum), "block \(mine) of \(total)")
      // Each rank now changes its own block; the all-gather spreads every rank's change.
      for i in mine { v[i] = -Float(i) - Float(r) / 8 }
      try v.withUnsafeMutableBufferPointer {
        try world.allgatherBlocks($0, counts: counts, name: "test all-gather blocks")
      }
      let owner = { (i: Int) in (0..<n).first { i < counts[...$0].reduce(0, +) }! }
      XCTAssertEqual(v, (0..<total).map { -Float($0) - Float(owner($0)) / 8 })
    }
    // Counts that do not split the buffer are refused by name, before any MPI call.
    var w: [Float] = [1, 2, 3]
    XCTAssertThrowsError(try w.withUnsafeMutableBufferPointer {
      try world.reduceScatterSum($0, counts: [Int](repeating: 2, count: n), name: "bad counts")
    }) { XCTAssert("\($0)".contains("bad counts") && "\($0)".contains("do not split"), "\($0)") }
  }

  func testBarrierAndNonBlocking() throws {
    try world.barrier(name: "test barrier")
    var v = [Double](repeating: Double(world.rank + 1), count: 1000)
    try v.withUnsafeMutableBufferPointer { buf in
      let req = try world.iallreduceSum(buf, name: "test iallreduce")
      try req.wait()
      XCTAssertTrue(req.isComplete)
    }
    XCTAssert(v.allSatisfy { $0 == Double(world.size * (world.size + 1) / 2) })
  }
}
