import ArgumentParser
import ElboCLI

extension DeepPriorExperiment.Encoder: ExpressibleByArgument {}

extension DeepPriorExperiment: CommandLineModel {
  /// deep-prior's flags (`elbo train deep-prior`, `elbo bench deep-prior`).
  public struct Flags: ModelFlags {
    static let defaults = Config()
    @Option(help: "The training collection (`elbo data make harmonic --out FILE.h5`).")
    var collection: String?
    @Option(help: "The test collection (e.g. `elbo data make harmonic --seed 1 --out TEST.h5`).")
    var testCollection: String?
    @Option(help: withDefault("Task encoder: standard, planar or iaf", defaults.encoder.rawValue))
    var encoder: DeepPriorExperiment.Encoder?
    @Option(help: withDefault("K, flows after q₀ (planar, iaf)", defaults.flowLength))
    var flowLength: Int?
    @Option(help: withDefault("Latent dimension L of z", defaults.latent)) var latent: Int?
    @Option(help: withDefault("Hidden units of every MLP", defaults.hidden)) var hidden: Int?
    @Option(help: withDefault("Context points of an evaluated task (the rest are predicted)",
                              defaults.contextPoints))
    var contextPoints: Int?
    @Option(help: withDefault("Samples of z averaged per prediction", defaults.predictSamples))
    var predictSamples: Int?
    @Option(help: withDefault("Training tasks evaluated for the train MSE",
                              defaults.trainEvalTasks))
    var trainEvalTasks: Int?

    public init() {}

    public func apply(to c: inout Config) {
      if let collection { c.collection = collection }
      if let testCollection { c.testCollection = testCollection }
      if let encoder { c.encoder = encoder }
      if let flowLength { c.flowLength = flowLength }
      if let latent { c.latent = latent }
      if let hidden { c.hidden = hidden }
      if let contextPoints { c.contextPoints = contextPoints }
      if let predictSamples { c.predictSamples = predictSamples }
      if let trainEvalTasks { c.trainEvalTasks = trainEvalTasks }
    }
  }
}
