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
