import ElboDistributed
import Foundation
import XCTest

/// The process's communicator (MPI is initialised once, finalised at exit).
let world: Communicator = {
  do { return try Communicator.initialize() } catch {
    fatalError("MPI initialisation failed: \(error)")
  }
}()

/// A fresh directory with the same path on every rank: rank 0 creates it, broadcasts the path.
func sharedTempDirectory(_ label: String) throws -> String {
  var path = ""
  if world.isRoot {
    var template = Array("/tmp/elbo-\(label)-XXXXXX".utf8CString)
    template.withUnsafeMutableBufferPointer { buf in
      if let base = buf.baseAddress, let p = mkdtemp(base) { path = String(cString: p) }
    }
  }
  path = try world.broadcast(string: path, name: "test temp dir")
  XCTAssertFalse(path.isEmpty)
  return path
}

/// Removes a shared temp directory after every rank is done with it.
func removeSharedTempDirectory(_ path: String) throws {
  try world.barrier(name: "test temp dir cleanup")
  if world.isRoot { try? FileManager.default.removeItem(atPath: path) }
  try world.barrier(name: "test temp dir cleanup")
}
