import ArgumentParser

/// `elbo` — train, evaluate, benchmark and inspect variational models, on one rank or under
/// `mpirun`.
struct Elbo: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "elbo",
    abstract: "Distributed data-parallel training of variational models (VAE/IWAE, Bayes by "
      + "Backprop, …).",
    discussion: """
      Every command runs the same way on one process or under `mpirun -np N`: ranks split each
      global batch, all-reduce gradients, and write one collective HDF5 checkpoint.

      Start here:
        elbo train vae --epochs 10 --out runs/vae        # Fashion-MNIST, VAE 784-200-200-50
        elbo eval runs/vae --k 5000                     # test log-likelihood in nats
        elbo bench vae --threads 1                      # one JSON line of speed figures
        elbo inspect runs/vae/checkpoints/latest        # what a checkpoint holds
        elbo report runs/vae                            # redraw plots/ and report.html
        elbo train bbb-regression --out runs/bbb-toy    # Bayes by Backprop, seed 004 toy
        elbo train bbb-classifier --hidden 400          # BBB MLP on Fashion-MNIST
        elbo eval runs/bbb-toy                          # held-out coverage / test error
      """,
    subcommands: [Train.self, Eval.self, Report.self, Bench.self, Inspect.self])
}
