// ElboKit: Elbo as a library. One import gives a model's building blocks (tensors, the tape,
// layers, optimizers, distributions, objectives), the trainer (the Experiment protocol, the
// step, the loop, checkpoints, run outputs), the command line generated from a list of models
// (ElboCLI), and the built-in models (Registry.builtIn), so that a package of one's own can
// define a model and train it with `mpirun` exactly as `elbo` trains its own. ArgumentParser
// comes with it (a model's `Flags` are `ParsableArguments`), and ElboReport (PNG grids, plots)
// for its pictures; see Examples/.
@_exported import ArgumentParser
@_exported import ElboCLI
@_exported import ElboData
@_exported import ElboDistributed
@_exported import ElboExperiments
@_exported import ElboModels
@_exported import ElboReport
@_exported import ElboTrain
