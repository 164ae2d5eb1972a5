import ArgumentParser
import ElboDistributed
import ElboTrain
import Foundation

/// The `elbo` command line, generated from a list of models: `elbo train <model>`,
/// `elbo bench <model>`, and `eval`, `sample`, `inspect`, `report` for any of their runs.
///
/// Error policy: any error becomes ONE line on stderr naming the rank, the flag or file, and
/// the problem; with several ranks the whole job is aborted (MPI_Abort) so that no rank is left
/// waiting in a collective.
public enum ElboCLI {
  /// The models the command line offers (set by ``main(models:)`` before parsing).
  nonisolated(unsafe) public private(set) static var models: [any CommandLineModel.Type] = []
  /// The name the help shows ("elbo", or a package's own executable's).
  nonisolated(unsafe) public private(set) static var commandName = "elbo"
  /// This process's communicator (MPI is initialised by ``main(models:)``).
  nonisolated(unsafe) public private(set) static var communicator: Communicator!

  /// The registered models' names, in order.
  static var modelNames: [String] {
    var names: [String] = []
    for model in models { names.append(model.name) }
    return names
  }

  /// Parses the command line and runs it with `models`; exits the process.
  /// - Parameter commandName: the executable's name, for the help (default: the process's).
  public static func main(models: [any CommandLineModel.Type], commandName: String? = nil) -> Never {
    setvbuf(stdout, nil, _IOLBF, 0)
    self.models = models
    self.commandName = commandName
      ?? CommandLine.arguments.first.map { ($0 as NSString).lastPathComponent } ?? "elbo"
    let names = modelNames
    if let dup = names.first(where: { n in names.filter { $0 == n }.count > 1 }) {
      FileHandle.standardError.write(Data("elbo: two models are registered as '\(dup)'\n".utf8))
      exit(1)
    }
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
      var command = try ElboCommand.parseAsRoot()
      try command.run()
    } catch let stop as StopRequested {
      // Every rank took this decision together (see StopSignals) and the checkpoint is written:
      // a clean exit with the "requeue me" status, not an abort.
      if communicator.rank == 0 {
        FileHandle.standardError.write(Data("elbo: \(stop)\n".utf8))
      }
      exit(StopRequested.exitStatus)
    } catch {
      if ElboCommand.exitCode(for: error) == .success {  // --help, --version
        ElboCommand.exit(withError: error)
      }
      // ArgumentParser's own errors (unknown flag, bad value) are described by it; Elbo's typed
      // errors (ElboError, DataError, CheckpointError, DistributedError) describe themselves.
      let message = ElboCommand.message(for: error)
      communicator.abort(message.replacingOccurrences(of: "\n", with: "; "), code: 2)
    }
    exit(0)
  }
}

/// `elbo` — train, evaluate, sample, benchmark and inspect variational models, on one rank or
/// under `mpirun`.
struct ElboCommand: ParsableCommand {
  static var configuration: CommandConfiguration {
    CommandConfiguration(
      commandName: ElboCLI.commandName,
      abstract: "Distributed data-parallel training of variational models.",
      discussion: """
        Every command runs the same way on one process or under `mpirun -np N`:
        ranks split each global batch, exchange gradients, and write one
        collective HDF5 checkpoint.

        Models: \(ElboCLI.modelNames.joined(separator: ", ")).

        Start here:
          elbo train vae --out runs/vae          # VAE on Fashion-MNIST, 10 epochs
          elbo eval runs/vae --k 1000            # test log-likelihood, nats
          elbo sample runs/vae -n 64             # a grid of samples
          elbo train vae --help                  # the model's options and defaults
          elbo bench vae --threads 1             # one JSON line of speed figures
          elbo inspect runs/vae                  # what its checkpoint holds
          elbo report runs/vae                   # redraw plots/ and report.html
        """,
      subcommands: [Train.self, Eval.self, Sample.self, Bench.self, Inspect.self, Report.self,
                    DataCommand.self])
  }
}
