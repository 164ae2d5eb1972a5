import ArgumentParser
import ElboTrain

struct Impute: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Fill in missing pixels of test images with a trained VAE.",
    discussion: """
      Hides part of each of -n binary test images, spread evenly over the test set (--mask \
      left-half, top-half, or random-50: each pixel with probability ½), and fills it by \
      iterating the encoder and the decoder (Rezende et al. 2014, §6): the missing pixels start \
      at random, then T times z ~ q(z|x) and the missing pixels are resampled from p(x|z), the \
      observed ones kept. Prints, for T = 1, 2, 5, 10, … and --iterations, the imputation \
      log-likelihood of the true missing pixels, log p(x_missing | x_observed) ≈ \
      log (1/C) Σ_c p(x_missing | z_c) over the --chains chains of each image (nats per image), \
      beside a model-free baseline (each pixel at its training-set frequency). Writes a picture: \
      observed (missing pixels grey) / imputed / truth. Works with flow posteriors too.
      """)

  @Argument(help: "A VAE run directory (uses its latest checkpoint) or a checkpoint file.")
  var target: String
  @Option(help: "left-half, top-half or random-50: which pixels are missing.")
  var mask = "left-half"
  @Option(help: "T, iterations of the encoder–decoder chain.") var iterations = 50
  @Option(name: .shortAndLong, help: "Test images to impute (spread evenly over the test set).")
  var n = 100
  @Option(help: ArgumentHelp("C, independent chains per image.", discussion: """
    The log-likelihood averages p(x_missing | z) over them; with half an image missing, few \
    chains underestimate it a lot (the mean is dominated by the chains that found the truth).
    """))
  var chains = 64
  @Option(help: "Seed of the masks and the chains (default: the run's).") var seed: UInt64?
  @Option(help: "PNG file to write (default: RUN/images/impute-<mask>-step<step>.png).")
  var out: String?
  @Option(help: "OpenBLAS threads per rank.") var threads: Int?
  @Flag(help: "Print ONE JSON line instead of the table.") var json = false

  func run() throws {
    for (v, flag) in [(iterations, "--iterations"), (n, "-n"), (chains, "--chains")] where v <= 0 {
      throw ElboError("\(flag) must be a positive integer (got \(v))")
    }
    if chains > 4096 { throw ElboError("--chains must be at most 4096 (got \(chains))") }
    if let t = threads, t <= 0 {
      throw ElboError("--threads must be a positive integer (got \(t))")
    }
    var request = ImputationRequest()
    request.mask = mask
    request.iterations = iterations
    request.images = n
    request.chains = chains
    request.seed = seed
    try Session.impute(target: target, request: request, out: out, threads: threads, json: json,
                       experiments: ElboCLI.experimentTypes, communicator: ElboCLI.communicator)
  }
}
