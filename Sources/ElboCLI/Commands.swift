import ArgumentParser
import ElboTrain

struct Eval: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Test metrics of a trained run: the VAE's importance-sampled log-likelihood (nats); "
      + "a BBB network's test error/log-likelihood/entropies or held-out coverage.")

  @Argument(help: "A run directory (uses its latest checkpoint) or a checkpoint file.")
  var target: String
  @Option(help: "Importance samples per test example (VAE).") var k = 5000
  @Option(help: "Weight samples S averaged per prediction (BBB runs; default: the run's).")
  var predictSamples: Int?
  @Option(help: "OpenBLAS threads per rank.") var threads: Int?

  func run() throws {
    guard k > 0 else { throw ElboError("--k must be a positive integer (got \(k))") }
    if let t = threads, t <= 0 { throw ElboError("--threads must be a positive integer (got \(t))") }
    if let s = predictSamples, s <= 0 {
      throw ElboError("--predict-samples must be a positive integer (got \(s))")
    }
    try Session.evaluate(target: target, samples: k, predictSamples: predictSamples,
                         threads: threads,
                         communicator: communicator)
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
    try Session.report(runDirectory, communicator: communicator)
  }
}

struct Inspect: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Print what a checkpoint holds: model, counters, config, tensors.")

  @Argument(help: "A checkpoint file, a run directory, or its checkpoints/latest.")
  var checkpoint: String

  func run() throws {
    try Session.inspect(checkpoint, communicator: communicator)
  }
}

struct Bench: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Benchmarks; each prints ONE JSON line.",
    subcommands: [BenchVAE.self, BenchBBBRegression.self, BenchCheckpoint.self])
}

struct BenchVAE: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "vae",
    abstract: "Training-step speed of the VAE vs. the BLAS-bound limit and the PyTorch anchor.")

  @Option(help: "Global batch size.") var batchSize = 100
  @Option(help: "Latent units.") var latent = 50
  @Option(help: "Hidden units.") var hidden = 200
  @Option(help: "OpenBLAS threads per rank.") var threads: Int?
  @Option(help: "Timed steps.") var steps = 500
  @Option(help: "Warm-up steps.") var warmup = 50
  @Option(help: "Floats per bucket of the bucketed all-reduce (timed beside the fused one on several ranks).")
  var bucketFloats = AllreduceMethod.defaultBucketFloats

  func run() throws {
    for (v, flag) in [(batchSize, "--batch-size"), (latent, "--latent"), (hidden, "--hidden"),
                      (steps, "--steps"), (bucketFloats, "--bucket-floats")] where v <= 0 {
      throw ElboError("\(flag) must be a positive integer (got \(v))")
    }
    try Session.benchmark(batchSize: batchSize, latent: latent, hidden: hidden,
                          threads: threads, steps: steps, warmup: max(0, warmup),
                          bucketFloats: bucketFloats, communicator: communicator)
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
                                    communicator: communicator)
  }
}
