import ElboCLI

/// The models of `elbo`, in the order `elbo train --help` lists them. Adding a model is one
/// folder beside these and one line here.
public enum Registry {
  public static let builtIn: [any CommandLineModel.Type] = [
    VAEExperiment.self,
    BBBRegressionExperiment.self,
    BBBClassifierExperiment.self,
    NADEExperiment.self,
    MADEExperiment.self,
    Flow2DExperiment.self,
    RealNVPExperiment.self,
    NeuralStatisticianExperiment.self,
    DeepPriorExperiment.self,
  ]
}
