// The `elbo` command: the command line of ElboCLI over the built-in models.
import ElboExperiments
import ElboCLI

ElboCLI.main(models: Registry.builtIn)
