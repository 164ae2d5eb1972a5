// The `elbo` command. Parsing and dispatch are here; the work is in ElboTrain.
//
// Error policy (DESIGN.md, "Failure story"): any error becomes ONE line on stderr naming the
// rank, the flag or file, and the problem; with several ranks the whole job is aborted
// (MPI_Abort) so that no rank is left waiting in a collective.
import ArgumentParser
import ElboDistributed
import Foundation

setvbuf(stdout, nil, _IOLBF, 0)
let communicator: Communicator
do {
  communicator = try Communicator.initialize()
} catch {
  FileHandle.standardError.write(Data("elbo: \(error)\n".utf8))
  exit(1)
}

do {
  // Per-rank debug logs for any command (train's --debug-log opens its own instead).
  if let dir = ProcessInfo.processInfo.environment["ELBO_DEBUG_LOG"], !dir.isEmpty {
    try communicator.openDebugLog(directory: dir)
  }
  var command = try Elbo.parseAsRoot()
  try command.run()
} catch {
  if Elbo.exitCode(for: error) == .success {  // --help, --version
    Elbo.exit(withError: error)
  }
  // ArgumentParser's own errors (unknown flag, bad value) are described by it; Elbo's typed
  // errors (ElboError, DataError, CheckpointError, DistributedError) describe themselves.
  let message = Elbo.message(for: error)
  communicator.abort(message.replacingOccurrences(of: "\n", with: "; "), code: 2)
}
