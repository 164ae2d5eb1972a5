import ArgumentParser
import ElboCLI

extension NeuralStatisticianExperiment: CommandLineModel {
  /// neural-statistician's flags (`elbo train neural-statistician`, `elbo bench …`).
  public struct Flags: ModelFlags {
    static let defaults = Config()
    @Option(help: withDefault("The training collection: ns-synthetic (generated in memory from "
                                + "the run's seed), fashion-sets (same-class Fashion-MNIST "
                                + "images of classes 0–5, few-shot evaluation on 6–9 and "
                                + "MNIST-5k) or a collection file (elbo data make)",
                              defaults.data))
    var data: String?
    @Option(help: "The held-out collection file (with a file --data).")
    var testData: String?
    @Option(help: withDefault("Training data sets", defaults.datasets))
    var datasets: Int?
    @Option(help: withDefault("Points per data set", defaults.points))
    var points: Int?
    @Option(help: "Smallest set: sizes drawn uniformly from this…--points (default: all --points).")
    var minPoints: Int?
    @Option(help: withDefault("Held-out data sets (silhouette, test ELBO)", defaults.testDatasets))
    var testDatasets: Int?
    @Option(help: withDefault("Hidden units per layer", defaults.hidden))
    var hidden: Int?
    @Option(help: withDefault("Hidden layers of each network", defaults.hiddenLayers))
    var hiddenLayers: Int?
    @Option(help: withDefault("Dimension of the context c", defaults.context))
    var context: Int?
    @Option(help: withDefault("Dimension of each latent layer z_l", defaults.latent))
    var latent: Int?
    @Option(help: withDefault("L, stochastic layers z_1..z_L", defaults.stochasticLayers))
    var stochasticLayers: Int?
    @Option(help: withDefault("Episodes per few-shot row (fashion-sets)", defaults.fewShotEpisodes))
    var fewShotEpisodes: Int?
    @Option(help: withDefault("α₀ of the weighting −[(1+α)R − (C+L)/(1+α)], halved every epoch; "
                                + "0 for the plain ELBO", defaults.alpha))
    var alpha: Float?

    public init() {}

    public func apply(to c: inout Config) {
      if let data { c.data = data }
      if let testData { c.testData = testData }
      if let datasets { c.datasets = datasets }
      if let points { c.points = points }
      if let minPoints { c.minPoints = minPoints }
      if let testDatasets { c.testDatasets = testDatasets }
      if let hidden { c.hidden = hidden }
      if let hiddenLayers { c.hiddenLayers = hiddenLayers }
      if let context { c.context = context }
      if let latent { c.latent = latent }
      if let stochasticLayers { c.stochasticLayers = stochasticLayers }
      if let alpha { c.alpha = alpha }
      if let fewShotEpisodes { c.fewShotEpisodes = fewShotEpisodes }
    }
  }
}
