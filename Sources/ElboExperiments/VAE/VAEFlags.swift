import ArgumentParser
import ElboCLI
import ElboModels

extension Activation: ExpressibleByArgument {}
extension VAE.Objective: ExpressibleByArgument {}
extension Binarization: ExpressibleByArgument {}
extension FlowKind: ExpressibleByArgument {}
extension FlowParameterSource: ExpressibleByArgument {}
extension VAE.PosteriorFamily: ExpressibleByArgument {}
extension VAE.PriorFamily: ExpressibleByArgument {}

extension VAEExperiment: CommandLineModel {
  /// The VAE's flags (`elbo train vae`, `elbo bench vae`).
  public struct Flags: ModelFlags {
    static let defaults = Config()
    @Option(help: withDefault("fashion-mnist, mnist-5k, or a directory of IDX files", defaults.data))
    var data: String?
    @Option(help: withDefault("Latent units", defaults.latent)) var latent: Int?
    @Option(help: withDefault("Hidden units per layer", defaults.hidden)) var hidden: Int?
    @Option(help: withDefault("Hidden layers in encoder and decoder", defaults.hiddenLayers))
    var hiddenLayers: Int?
    @Option(help: withDefault("relu, tanh, elu, softplus or sigmoid", defaults.activation.rawValue))
    var activation: Activation?
    @Option(help: withDefault("elbo or iwae", defaults.objective.rawValue)) var objective: VAE.Objective?
    @Option(help: withDefault("Samples per example (k of the IWAE bound)", defaults.samples)) var k: Int?
    @Option(help: withDefault("static (threshold 0.5) or dynamic (resampled each epoch)",
                              defaults.binarize.rawValue))
    var binarize: Binarization?
    @Option(help: withDefault("Flow posterior kind, used when --flow-length > 0",
                              defaults.flow.kind.rawValue))
    var flow: FlowKind?
    @Option(help: withDefault("K, flows after the Gaussian posterior (0: none)", defaults.flow.length))
    var flowLength: Int?
    @Option(help: withDefault("Flow parameters: amortised (from the encoder) or global",
                              defaults.flow.parameters.rawValue))
    var flowParameters: FlowParameterSource?
    @Option(help: withDefault("T of the KL warm-up β_t = min(1, 0.01 + t/T) (0: none)",
                              defaults.klWarmup))
    var klWarmup: Int?
    @Option(help: withDefault("q(z|x): gaussian, or semi-implicit (mixing noise ε into the encoder, "
                              + "trained with the SIVI bound), uivi (the same q, UIVI's entropy gradient by HMC), or hierarchical (the same q, an auxiliary "
                              + "upper bound on log q with a reverse model s(ε|z, x))", defaults.posterior.rawValue))
    var posterior: VAE.PosteriorFamily?
    @Option(help: withDefault("K, extra mixture components of the SIVI surrogate of log q(z|x)",
                              defaults.mixSamples))
    var mixSamples: Int?
    @Option(help: withDefault("E, dimension of the semi-implicit mixing noise ε (0: none)",
                              defaults.mixingNoise))
    var mixingNoise: Int?
    @Option(help: withDefault("M, draws of ε estimating log q(z|x) in `elbo eval` (semi-implicit)",
                              defaults.evalMixSamples))
    var evalMixSamples: Int?
    @Option(help: withDefault("UIVI: HMC burn-in iterations per step", defaults.hmcBurnIn))
    var hmcBurnIn: Int?
    @Option(help: withDefault("UIVI: HMC kept iterations per step", defaults.hmcSamples))
    var hmcSamples: Int?
    @Option(help: withDefault("UIVI: leapfrog steps per HMC iteration", defaults.hmcLeapfrogSteps))
    var hmcLeapfrogSteps: Int?
    @Option(help: withDefault("UIVI: HMC target acceptance", defaults.hmcTargetAcceptance))
    var hmcTargetAcceptance: Float?
    @Option(help: withDefault("p(z): standard, dsivi-agg (a mixture over learned pseudo-inputs "
                              + "through the encoder) or semi-implicit (∫ N(μ(ζ), σ²(ζ)) N(ζ; 0, I) dζ)",
                              defaults.prior.rawValue))
    var prior: VAE.PriorFamily?
    @Option(help: withDefault("K of the mixture prior (pseudo-inputs or draws of ζ)",
                              defaults.priorSamples))
    var priorSamples: Int?
    @Option(help: withDefault("Semi-implicit prior: dimension of ζ", defaults.priorNoise))
    var priorNoise: Int?
    @Option(help: withDefault("Semi-implicit prior: hidden units of T_θ(ζ)", defaults.priorHidden))
    var priorHidden: Int?

    public init() {}

    public func apply(to c: inout Config) {
      if let data { c.data = data }
      if let latent { c.latent = latent }
      if let hidden { c.hidden = hidden }
      if let hiddenLayers { c.hiddenLayers = hiddenLayers }
      if let activation { c.activation = activation }
      if let objective { c.objective = objective }
      if let k { c.samples = k }
      if let binarize { c.binarize = binarize }
      if let flow { c.flow.kind = flow }
      if let flowLength { c.flow.length = flowLength }
      if let flowParameters { c.flow.parameters = flowParameters }
      if let klWarmup { c.klWarmup = klWarmup }
      if let posterior { c.posterior = posterior }
      if let mixSamples { c.mixSamples = mixSamples }
      if let mixingNoise { c.mixingNoise = mixingNoise }
      if let evalMixSamples { c.evalMixSamples = evalMixSamples }
      if let hmcBurnIn { c.hmcBurnIn = hmcBurnIn }
      if let hmcSamples { c.hmcSamples = hmcSamples }
      if let hmcLeapfrogSteps { c.hmcLeapfrogSteps = hmcLeapfrogSteps }
      if let hmcTargetAcceptance { c.hmcTargetAcceptance = hmcTargetAcceptance }
      if let prior { c.prior = prior }
      if let priorSamples { c.priorSamples = priorSamples }
      if let priorNoise { c.priorNoise = priorNoise }
      if let priorHidden { c.priorHidden = priorHidden }
    }
  }
}
