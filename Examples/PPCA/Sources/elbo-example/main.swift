import ElboKit

// Elbo's command line with one more model: `elbo-example train ppca` gets every flag of
// `elbo train`, checkpoints, metrics, the report and `mpirun`; `eval`, `sample`, `inspect` and
// `report` find the model by the name stored in its checkpoint.
ElboCLI.main(models: Registry.builtIn + [PPCA.self])
