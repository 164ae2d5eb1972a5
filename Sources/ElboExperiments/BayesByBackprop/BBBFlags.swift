import ArgumentParser
import ElboCLI
import ElboModels
import ElboTrain

extension NetworkVariant: ExpressibleByArgument {}
extension BayesianMLP.Estimator: ExpressibleByArgument {}
extension WeightPriorConfig.Kind: ExpressibleByArgument {}
extension KLWeighting.Share: ExpressibleByArgument {}

/// Flags of the Bayes-by-Backprop networks, shared by the regression toy and the classifier;
/// every one optional (a flag left out keeps the config's value).
struct BBBNetworkFlags: ParsableArguments {
  @Option(help: "bbb (Bayes by Backprop), plain (maximum likelihood) or dropout (default bbb).")
  var variant: NetworkVariant?
  @Option(help: "Hidden units per layer (default: regression 50, classifier 400).")
  var hidden: Int?
  @Option(help: "Hidden layers (default 2).") var hiddenLayers: Int?
  @Option(help: "relu, tanh, elu, softplus or sigmoid (default relu).") var activation: Activation?
  @Option(help: ArgumentHelp("Weight prior: gaussian (closed-form KL) or scale-mixture (Monte "
    + "Carlo KL) (default: regression gaussian, classifier scale-mixture)."))
  var prior: WeightPriorConfig.Kind?
  @Option(help: "σ of the Gaussian prior N(0, σ²) (default 1).") var priorStd: Float?
  @Option(help: "Scale mixture: weight π of the wide component (default 0.5).") var priorPi: Float?
  @Option(help: "Scale mixture: −log σ1, wide component (default 0).") var priorNegLogSigma1: Float?
  @Option(help: "Scale mixture: −log σ2, narrow component (default 6).") var priorNegLogSigma2: Float?
  @Option(help: ArgumentHelp("Gradient estimator: weight (one weight sample per "
    + "minibatch, Blundell et al.) or local (local reparameterisation, Kingma et al. 2015) "
    + "(default weight)."))
  var estimator: BayesianMLP.Estimator?
  @Option(help: "ρ₀ of the posterior scales σ = softplus(ρ) (default -5).") var rhoInit: Float?
  @Option(help: "Dropout rate of hidden units, --variant dropout (default 0.5).") var dropout: Float?
  @Option(help: ArgumentHelp("Weight samples S averaged per prediction (default: "
    + "regression 100, classifier 10)."))
  var predictSamples: Int?
  @Option(help: ArgumentHelp("KL share per minibatch: uniform (1/M, KL/N per example) "
    + "or blundell (2^(M−i)/(2^M − 1)) (default: regression uniform, classifier blundell)."))
  var klShare: KLWeighting.Share?
  @Option(help: "β: weight of the KL term, 1 = the ELBO (default 1).") var beta: Float?
  @Option(help: "Linear KL warm-up over this many optimizer steps (0: none; default 0).")
  var klWarmup: Int?

  func apply(network n: inout BBBNetworkConfig, kl: inout KLWeighting, predictSamples s: inout Int) {
    if let variant { n.variant = variant }
    if let hidden { n.hidden = hidden }
    if let hiddenLayers { n.hiddenLayers = hiddenLayers }
    if let activation { n.activation = activation }
    if let prior { n.prior.kind = prior }
    if let priorStd { n.prior.gaussianStd = priorStd }
    if let priorPi { n.prior.pi = priorPi }
    if let priorNegLogSigma1 { n.prior.negLogSigma1 = priorNegLogSigma1 }
    if let priorNegLogSigma2 { n.prior.negLogSigma2 = priorNegLogSigma2 }
    if let estimator { n.estimator = estimator }
    if let rhoInit { n.rhoInit = rhoInit }
    if let dropout { n.dropout = dropout }
    if let predictSamples { s = predictSamples }
    if let klShare { kl.share = klShare }
    if let beta { kl.beta = beta }
    if let klWarmup { kl.warmupSteps = klWarmup }
  }
}

extension BBBRegressionExperiment: CommandLineModel {
  public struct Flags: ModelFlags {
    @OptionGroup var network: BBBNetworkFlags
    @Option(help: "Fix σ_y of the Gaussian likelihood (default: learned).") var noiseStd: Float?
    @Option(help: "Starting σ_y when it is learned (default 0.5).") var noiseStdInit: Float?
    @Option(help: "Training points (default 1000).") var points: Int?
    @Option(help: "Held-out points, inside the data range (default 500).") var heldoutPoints: Int?
    @Flag(inversion: .prefixedNo, help: ArgumentHelp("Standardise x and y with the training "
      + "set's mean and std before the network (the prior is on weights in those units); "
      + "results are reported in data units (default: on)."))
    var standardize: Bool?

    public init() {}

    public func apply(to c: inout Config) {
      network.apply(network: &c.network, kl: &c.kl, predictSamples: &c.predictSamples)
      if let noiseStd { c.noiseStd = noiseStd }
      if let noiseStdInit { c.noiseStdInit = noiseStdInit }
      if let points { c.trainPoints = points }
      if let heldoutPoints { c.heldOutPoints = heldoutPoints }
      if let standardize { c.standardize = standardize }
    }
  }
}

extension BBBClassifierExperiment: CommandLineModel {
  public struct Flags: ModelFlags {
    @Option(help: "fashion-mnist, mnist-5k, or a directory of IDX files (default fashion-mnist).")
    var data: String?
    @OptionGroup var network: BBBNetworkFlags

    public init() {}

    public func apply(to c: inout Config) {
      if let data { c.data = data }
      network.apply(network: &c.network, kl: &c.kl, predictSamples: &c.predictSamples)
    }
  }
}
