import ArgumentParser
import ElboTrain

struct Eval: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "A trained model's headline test metrics, on one line (or one JSON line).",
    discussion: """
      The VAE: the importance-sampled test log-likelihood with --k samples per image (nats;
      Burda et al. 2016), test ELBO and active units, the compression rate KL/(784 ln 2) in
      bits per pixel; k = 5000 on 10,000 Fashion-MNIST test images takes minutes (k = 1000
      about a fifth of that). Bayes by Backprop: test error, log-likelihood, entropies
      (classifier) or held-out coverage (regression), and the weight posterior's KL in bits per
      weight. NADE and MADE: the exact test log-likelihood. The record is also appended to the
      run's metrics.jsonl.
      """)

  @Argument(help: "A run directory (uses its latest checkpoint) or a checkpoint file.")
  var target: String
  @Option(help: "Importance samples per test example (latent-variable models).") var k = 5000
  @Option(help: "Weight samples S averaged per prediction (BBB runs; default: the run's).")
  var predictSamples: Int?
  @Option(help: "OpenBLAS threads per rank.") var threads: Int?
  @Flag(help: "Print ONE JSON line (model, step, metric names in snake_case) instead.")
  var json = false

  func run() throws {
    guard k > 0 else { throw ElboError("--k must be a positive integer (got \(k))") }
    if let t = threads, t <= 0 { throw ElboError("--threads must be a positive integer (got \(t))") }
    if let s = predictSamples, s <= 0 {
      throw ElboError("--predict-samples must be a positive integer (got \(s))")
    }
    var options = EvaluationOptions()
    options.importanceSamples = k
    options.predictSamples = predictSamples
    try Session.evaluate(target: target, options: options, threads: threads, json: json,
                         experiments: ElboCLI.experimentTypes, communicator: ElboCLI.communicator)
  }
}

struct Sample: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Draw samples from a trained generative model into a PNG grid.")

  @Argument(help: "A run directory (uses its latest checkpoint) or a checkpoint file.")
  var target: String
  @Option(name: .shortAndLong, help: "Samples to draw.") var n = 64
  @Option(help: "PNG file to write (default: RUN/images/samples-step<step>.png).") var out: String?
  @Option(help: "Seed of the draws (default: the run's seed).") var seed: UInt64?

  func run() throws {
    guard n > 0 && n <= 4096 else { throw ElboError("-n must be in 1…4096 (got \(n))") }
    try Session.sample(target: target, count: n, out: out, seed: seed,
                       experiments: ElboCLI.experimentTypes, communicator: ElboCLI.communicator)
  }
}

struct Report: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Rebuild a run directory's plots and report.html from its files.",
    discussion: """
      Reads metrics.jsonl, config.json, artifacts.json, images/*.png and plots/*.svg; writes
      the training curves into plots/ and one self-contained report.html (inline SVG, PNGs as
      data: URLs, nothing fetched). Training writes both as it goes; this redraws them after
      the fact, e.g. after `elbo eval` or for a run copied from a cluster.
      """)

  @Argument(help: "A run directory (the --out of `elbo train`).")
  var runDirectory: String

  func run() throws {
    try Session.report(runDirectory, communicator: ElboCLI.communicator)
  }
}

struct Inspect: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Print what a checkpoint holds: model, counters, config, tensors.")

  @Argument(help: "A checkpoint file, a run directory, or its checkpoints/latest.")
  var checkpoint: String

  func run() throws {
    try Session.inspect(checkpoint, communicator: ElboCLI.communicator)
  }
}

struct BenchCheckpoint: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "checkpoint",
    abstract: "Collective checkpoint write speed (fsync included) vs. dd conv=fsync on the same disk.",
    discussion: """
      Writes a state of --size-mib MiB through the real checkpoint path (collective parallel
      HDF5, flushed to disk, atomic commit) and times `dd if=/dev/zero bs=1M conv=fsync` into the
      same directory; best of --repeats each. Prints one JSON line: both MB/s and their ratio.
      Run it under mpirun with the ranks a job would use, e.g. mpirun -np 2 elbo bench checkpoint.
      """)

  @Option(help: "Checkpoint size in MiB.") var sizeMib = 1024
  @Option(help: "Directory to write into (a temporary subdirectory is made and removed).")
  var dir = "runs"
  @Option(help: "Repetitions of each measurement (the best is kept).") var repeats = 2

  func run() throws {
    for (v, flag) in [(sizeMib, "--size-mib"), (repeats, "--repeats")] where v <= 0 {
      throw ElboError("\(flag) must be a positive integer (got \(v))")
    }
    try Session.checkpointBenchmark(sizeMiB: sizeMib, directory: dir, repeats: repeats,
                                    communicator: ElboCLI.communicator)
  }
}
