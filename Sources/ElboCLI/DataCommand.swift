import ArgumentParser
import ElboData
import ElboTrain
import Foundation

/// `elbo data`: collections of small data sets on disk (one HDF5 file each).
struct DataCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "data",
    abstract: "Make and inspect collections of data sets (one HDF5 file per collection).",
    discussion: """
      A collection file holds every data set's points back to back in /points [N_total, D]
      (float32), a table /offsets [n + 1] (int64: data set i is rows offsets[i] ..<
      offsets[i+1]) and per-data-set metadata /meta/<name> [n] or [n, k]; its root attribute
      `kind` names the generator. Training reads it sharded by data set: each rank reads only
      the rows of its own data sets (parallel HDF5, one hyperslab per rank).
      """,
    subcommands: [DataMake.self, DataInspect.self])
}

/// `elbo data make <generator> --out FILE.h5`.
struct DataMake: ParsableCommand {
  static var configuration: CommandConfiguration {
    var list = ""
    for g in CollectionGenerators.all { list += "\n  " + g.help }
    return CommandConfiguration(
      commandName: "make",
      abstract: "Generate a collection deterministically from a seed.",
      discussion: "Generators:" + list + "\nThe same seed and options give the same bytes.")
  }

  @Argument(help: "The generator (see below).") var generator: String
  @Option(help: "The HDF5 file to write (replaced if it exists).") var out: String
  @Option(help: "Seed of the draws.") var seed: UInt64 = 0
  @Option(help: "Data sets to generate (default: the generator's).") var datasets: Int?
  @Option(help: "Points per data set (default: the generator's).") var points: Int?
  @Option(name: .customLong("set"), help: "A generator option KEY=VALUE (repeatable).")
  var settings: [String] = []

  func run() throws {
    guard let g = CollectionGenerators.named(generator) else {
      var names: [String] = []
      for g in CollectionGenerators.all { names.append(g.name) }
      throw ElboError("unknown generator '\(generator)' (choose from: "
        + names.joined(separator: ", ") + ")")
    }
    for (v, flag) in [(datasets, "--datasets"), (points, "--points")] {
      if let v, v <= 0 { throw ElboError("\(flag) must be a positive integer (got \(v))") }
    }
    var extra: [String: String] = [:]
    for s in settings {
      let parts = s.split(separator: "=", maxSplits: 1).map(String.init)
      guard parts.count == 2, !parts[0].isEmpty else {
        throw ElboError("--set \(s): expected KEY=VALUE")
      }
      extra[parts[0]] = parts[1]
    }
    let options = CollectionOptions(datasets: datasets ?? g.defaultDatasets,
                                    points: points ?? g.defaultPoints, extra: extra)
    let made = try g.make(seed: seed, options: options)
    // One process writes (other ranks of an mpirun job have nothing to do).
    if ElboCLI.communicator.isRoot {
      try CollectionFile.write(path: out, points: made.points, dimension: made.dimension,
                               offsets: made.offsets, metadata: made.metadata, kind: g.name)
      let n = made.offsets.count - 1
      print("\(out): \(g.name), \(n) data sets, \(made.points.count / made.dimension) points "
        + "of dimension \(made.dimension), seed \(seed)")
    }
  }
}

/// `elbo data inspect FILE.h5`.
struct DataInspect: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "inspect", abstract: "Print what a collection file holds.")

  @Argument(help: "A collection file.") var file: String

  func run() throws {
    let c = try CollectionFile(path: file, communicator: nil)
    let sizes = (0..<c.count).map { c.size(of: $0) }
    print("\(file): kind \(c.kind), \(c.count) data sets of dimension \(c.dimension), "
      + "\(c.offsets.last ?? 0) points (\(sizes.min() ?? 0)…\(sizes.max() ?? 0) per data set)")
    for name in c.metadata.keys.sorted() {
      let m = c.metadata[name]!
      let codes = m.codes.map { " codes \($0.joined(separator: ","))" } ?? ""
      print("  /meta/\(name) [\(c.count)\(m.matrix ? ", \(m.columns)" : "")]\(codes)")
    }
  }
}
