import ArgumentParser
import ElboModels
import ElboTrain

extension NetworkVariant: ExpressibleByArgument {}
extension BayesianMLP.Estimator: ExpressibleByArgument {}
extension WeightPriorConfig.Kind: ExpressibleByArgument {}
extension KLWeighting.Share: ExpressibleByArgument {}

/// Flags of the Bayes-by-Backprop networks, shared by `train bbb-regression`,
/// `train bbb-classifier` and `bench bbb-regression`. Optional ones default per command.
struct BBBFlags: ParsableArguments {
  @Option(help: "bbb (Bayes by Backprop), plain (maximum likelihood) or dropout.")
  var variant: NetworkVariant = .bbb
  @Option(help: "Hidden units per layer (default: regression 50, classifier 400).")
  var hidden: Int?
  @Option(help: "Hidden layers.") var hiddenLayers = 2
  @Option(help: "relu, tanh, elu, softplus or sigmoid.") var activation: Activation = .relu
  @Option(help: ArgumentHelp("Weight prior: gaussian (closed-form KL) or scale-mixture (Monte "
    + "Carlo KL) (default: regression gaussian, classifier scale-mixture)."))
  var prior: WeightPriorConfig.Kind?
  @Option(help: "σ of the Gaussian prior N(0, σ²).") var priorStd: Float = 1
  @Option(help: "Scale mixture: weight π of the wide component.") var priorPi: Float = 0.5
  @Option(help: "Scale mixture: −log σ1 (wide component).") var priorNegLogSigma1: Float = 0
  @Option(help: "Scale mixture: −log σ2 (narrow component).") var priorNegLogSigma2: Float = 6
  @Option(help: ArgumentHelp("Gradient estimator: weight (one weight sample per "
    + "minibatch, Blundell et al.) or local (local reparameterisation, Kingma et al. 2015)."))
  var estimator: BayesianMLP.Estimator = .weight
  @Option(help: "ρ₀ of the posterior scales σ = softplus(ρ).") var rhoInit: Float = -5
  @Option(help: "Dropout rate of hidden units (--variant dropout).") var dropout: Float = 0.5
  @Option(help: ArgumentHelp("Weight samples S averaged per prediction (default: "
    + "regression 100, classifier 10)."))
  var predictSamples: Int?
  @Option(help: ArgumentHelp("KL share per minibatch: uniform (1/M, KL/N per example) "
    + "or blundell (2^(M−i)/(2^M − 1)) (default: regression uniform, classifier blundell)."))
  var klShare: KLWeighting.Share?
  @Option(help: "β: weight of the KL term (1 = the ELBO).") var beta: Float = 1
  @Option(help: "Linear KL warm-up over this many optimizer steps (0: none).") var klWarmup = 0

  /// The options these flags give, with the command's defaults where a flag was not given.
  func options(hidden defaultHidden: Int, prior defaultPrior: WeightPriorConfig.Kind,
               predictSamples defaultS: Int, klShare defaultShare: KLWeighting.Share)
    -> BBBOptions {
    var o = BBBOptions()
    o.network.variant = variant
    o.network.hidden = hidden ?? defaultHidden
    o.network.hiddenLayers = hiddenLayers
    o.network.activation = activation
    o.network.prior.kind = prior ?? defaultPrior
    o.network.prior.gaussianStd = priorStd
    o.network.prior.pi = priorPi
    o.network.prior.negLogSigma1 = priorNegLogSigma1
    o.network.prior.negLogSigma2 = priorNegLogSigma2
    o.network.estimator = estimator
    o.network.rhoInit = rhoInit
    o.network.dropout = dropout
    o.predictSamples = predictSamples ?? defaultS
    o.kl = KLWeighting(share: klShare ?? defaultShare, beta: beta, warmupSteps: klWarmup)
    return o
  }
}

struct TrainBBBRegression: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "bbb-regression",
    abstract: "Bayes by Backprop on the 1-D regression toy of seed 004 (1-50-50-1).",
    discussion: """
      Data: y = x + 0.3 sin 2π(x+v) + 0.3 sin 4π(x+v) + v, v ~ N(0, 0.02) (variance), x ~ U(0, 0.5),
      generated from --seed. Likelihood N(y | f_w(x), σ_y²) with σ_y learned (or --noise-std).
      The network sees x and y standardised with the training set's mean and std (the prior is
      on weights in those units; --no-standardize for raw units); all figures are in data units.
      Logged per window: F = −ELBO, log p(y|x,w), the KL share and the surprise
      log p(w) − log q(w); per epoch: held-out log-likelihood, RMSE, ±2σ coverage and the
      predictive std inside vs outside the data range. --variant plain trains the baseline.
      """)

  @OptionGroup var bbb: BBBFlags
  @Option(help: "Fix σ_y of the Gaussian likelihood (default: learned).") var noiseStd: Float?
  @Option(help: "Starting σ_y when it is learned.") var noiseStdInit: Float = 0.5
  @Option(help: "Training points.") var points = 1000
  @Option(help: "Held-out points (inside the data range).") var heldoutPoints = 500
  @Flag(inversion: .prefixedNo, help: ArgumentHelp("Standardise x and y with the training "
    + "set's mean and std before the network (the prior is on weights in those units); "
    + "results are reported in data units."))
  var standardize = true
  @OptionGroup var flags: RunFlags

  func run() throws {
    var o = TrainingOptions()
    o.model = BBBRegressionWorkload.name
    // 1000 points make 10 steps per epoch: train longer and with a larger step than on images,
    // evaluate every 10 epochs, redraw the plots every 1000 steps.
    o.epochs = 500
    o.learningRate = 1e-2
    o.evalEvery = 10
    o.imageEvery = 1000
    flags.apply(to: &o)
    o.data = "regression-toy"
    o.bbb = bbb.options(hidden: 50, prior: .gaussian, predictSamples: 100, klShare: .uniform)
    o.bbb.noiseStd = noiseStd
    o.bbb.noiseStdInit = noiseStdInit
    o.bbb.trainPoints = points
    o.bbb.heldOutPoints = heldoutPoints
    o.bbb.standardize = standardize
    try flags.train(o)
  }
}

struct TrainBBBClassifier: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "bbb-classifier",
    abstract: "Bayes by Backprop MLP 784-H-H-10 on images (Blundell et al. 2015, §5.1).",
    discussion: """
      Inputs are pixel intensities in [0, 1]; labels come from the data set. Scale-mixture prior
      by default. --variant plain / dropout train the baselines of the same size. Per epoch:
      test error, test log-likelihood (class probabilities averaged over S weight samples),
      the mean predictive entropy on correct vs misclassified test images, and the expected
      calibration error (test_ece). Pictures: plots/entropy.svg (entropy histograms),
      plots/reliability.svg (reliability diagram), images/uncertain.png (the most uncertain
      test images).
      """)

  @Option(help: "fashion-mnist, mnist-5k, or a directory of IDX files.") var data = "fashion-mnist"
  @OptionGroup var bbb: BBBFlags
  @OptionGroup var flags: RunFlags

  func run() throws {
    var o = TrainingOptions()
    o.model = BBBClassifierWorkload.name
    flags.apply(to: &o)
    o.data = data
    o.bbb = bbb.options(hidden: 400, prior: .scaleMixture, predictSamples: 10,
                        klShare: .blundell)
    try flags.train(o)
  }
}

struct BenchBBBRegression: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "bbb-regression",
    abstract: "Training-step speed of Bayes by Backprop on the regression toy vs the PyTorch "
      + "anchor (1-50-50-1, 1000 points).")

  @OptionGroup var bbb: BBBFlags
  @Option(help: "Global batch size.") var batchSize = 100
  @Option(help: "OpenBLAS threads per rank.") var threads: Int?
  @Option(help: "Timed steps.") var steps = 2000
  @Option(help: "Warm-up steps.") var warmup = 200

  func run() throws {
    for (v, flag) in [(batchSize, "--batch-size"), (steps, "--steps")] where v <= 0 {
      throw ElboError("\(flag) must be a positive integer (got \(v))")
    }
    if let t = threads, t <= 0 { throw ElboError("--threads must be a positive integer (got \(t))") }
    let o = bbb.options(hidden: 50, prior: .gaussian, predictSamples: 100, klShare: .uniform)
    try o.validate()
    try Session.benchmarkBBBRegression(options: o, batchSize: batchSize, threads: threads,
                                       steps: steps, warmup: max(0, warmup),
                                       communicator: communicator)
  }
}
