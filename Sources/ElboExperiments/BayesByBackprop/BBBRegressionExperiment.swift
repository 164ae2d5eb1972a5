import ElboData
import ElboDistributed
import ElboModels
import ElboReport
import ElboTrain
import Foundation

/// Bayes by Backprop (or a baseline network) on the regression toy of seed 004 (§2, ex. 5):
/// batches, noise, the KL share of each step, held-out evaluation and the predictive plot data.
public final class BBBRegressionExperiment: Experiment {
  /// The regression toy's options (under "bbb-regression" in a config).
  public struct Config: ExperimentConfig {
    /// The network: variant (bbb | plain | dropout), sizes, prior, estimator, ρ₀, dropout rate.
    public var network = BBBNetworkConfig()
    /// How the KL is shared over minibatches and scaled (β, warm-up).
    public var kl = KLWeighting()
    /// Weight samples S averaged at prediction.
    public var predictSamples = 100
    /// σ_y fixed (nil: learned) and its starting value when learned (data units).
    public var noiseStd: Float? = nil
    public var noiseStdInit: Float = 0.5
    /// Training and held-out points.
    public var trainPoints = 1000
    public var heldOutPoints = 500
    /// The network sees inputs and targets standardised with the training set's mean and
    /// standard deviation; everything reported is in data units.
    public var standardize = true

    public init() {
      network.hidden = 50
      network.prior.kind = .gaussian
      kl.share = .uniform
    }

    public var options: BBBOptions {
      var o = BBBOptions()
      o.network = network; o.kl = kl; o.predictSamples = predictSamples
      o.noiseStd = noiseStd; o.noiseStdInit = noiseStdInit
      o.trainPoints = trainPoints; o.heldOutPoints = heldOutPoints; o.standardize = standardize
      return o
    }

    public func validate() throws { try options.validate() }
  }

  public static let name = "bbb-regression"
  public static let summary = "Bayes by Backprop on a 1-D regression toy (1-50-50-1)."
  public static let posterior = PosteriorKind.weights
  public static let discussion = """
    Data: y = x + 0.3 sin 2π(x+v) + 0.3 sin 4π(x+v) + v, v ~ N(0, 0.02) (variance), x ~ U(0, 0.5),
    generated from --seed (Blundell et al. 2015, §5.2). Likelihood N(y | f_w(x), σ_y²) with σ_y
    learned (or --noise-std). The network sees x and y standardised with the training set's
    mean and std (the prior is on weights in those units; --no-standardize for raw units); all
    figures are in data units. Logged per window: F = −ELBO, log p(y|x,w), the KL share and the
    surprise log p(w) − log q(w); per epoch: held-out log-likelihood, RMSE, ±2σ coverage and the
    predictive std inside vs outside the data range. --variant plain trains the baseline.
    """
  /// 1000 points make 10 steps per epoch: train longer and with a larger step than on images,
  /// evaluate every 10 epochs, redraw the plots every 1000 steps.
  public static var runDefaults: RunOptions {
    var o = RunOptions()
    o.epochs = 500
    o.learningRate = 1e-2
    o.evalEvery = 10
    o.imageEvery = 1000
    return o
  }

  /// Configs written before models had their own sections kept these options under "bbb".
  public static func upgradeLegacyConfig(_ object: [String: Any]) -> [String: Any] {
    guard let old = object["bbb"] as? [String: Any] else { return object }
    var out = object
    out["bbb"] = nil
    var section = old
    // Written before standardisation existed: those runs trained in raw units.
    if section["standardize"] == nil { section["standardize"] = false }
    out[name] = section
    return out
  }

  public var dataDescription: String { "the regression toy" }
  public let config: Config
  /// Predictions are drawn on this grid (1000 points): the seed's [0, 1] and Blundell et al.'s
  /// Fig. 5 range, both beyond the training range [0, 0.5] on either side.
  public static let gridRange: ClosedRange<Double> = -0.2...1.2
  public static let gridPoints = 1000

  public let model: BBBRegression
  public let options: BBBOptions
  public let seed: UInt64
  public let train: RegressionToy
  public let heldOut: RegressionToy
  /// Units of the network's input and target (`BBBOptions.standardize`; else the identity),
  /// fitted on the training set. σ_y, predictions and log-likelihoods are reported in data units.
  public let xUnits: Standardization, yUnits: Standardization
  private let noise: BBBNoise
  /// KL of the last training step (same on every rank), for `stepFields`.
  private var lastKL = Double.nan

  public var store: ParameterStore { model.store }
  public var itemCount: Int { train.count }
  public var dataDigest: UInt64? { train.contentDigest }
  public let terms = TermNames(bound: "elbo", components: ["log_likelihood", "kl", "surprise"])

  public convenience init(config: Config, seed: UInt64) throws {
    self.init(config: config, options: config.options, seed: seed)
  }

  init(config: Config, options: BBBOptions, seed: UInt64) {
    self.config = config
    train = RegressionToy(count: options.trainPoints, seed: seed, split: .train)
    heldOut = RegressionToy(count: options.heldOutPoints, seed: seed, split: .heldOut)
    xUnits = options.standardize ? Standardization(fitting: train.x) : .identity
    yUnits = options.standardize ? Standardization(fitting: train.y) : .identity
    var network = BBBRegression.Config()
    network.network = options.network
    // σ_y flags are in data units; the model's σ_y is in target units.
    let ys = yUnits.std
    network.noiseStd = options.noiseStd.map { Float(Double($0) / ys) }
    network.noiseStdInit = Float(Double(options.noiseStdInit) / ys)
    model = BBBRegression(network, seed: seed)
    self.options = options
    self.seed = seed
    noise = BBBNoise(seed: seed)
  }

  /// σ_y in data units.
  public var noiseStd: Double { Double(model.noiseStd) * yUnits.std }

  public func objectiveDescription(globalBatch: Int) -> [String] {
    let noiseText = options.noiseStd.map { "fixed σ_y = \($0)" }
      ?? "σ_y learned (point estimate, start \(options.noiseStdInit))"
    return ["data: y = x + 0.3 sin 2π(x+v) + 0.3 sin 4π(x+v) + v, v ~ N(0, 0.02) (variance), "
      + "x ~ U(0, 0.5); \(train.count) training and \(heldOut.count) held-out points; network "
      + "\(model.config.sizes.map(String.init).joined(separator: "-")) "
      + "(\(options.network.activation.rawValue)); likelihood N(y | f(x), σ_y²), \(noiseText)",
      options.standardize
        ? String(format: "units: the network sees x' = (x − %.4f)/%.4f and y' = (y − %.4f)/%.4f "
          + "(training-set mean and std), so the prior is on weights in those units; σ_y, "
          + "predictions and log-likelihoods are reported in data units (log p(y) = "
          + "log p(y') − log %.4f)", xUnits.mean, xUnits.std, yUnits.mean, yUnits.std, yUnits.std)
        : "units: raw x and y (--no-standardize)"]
      + options.describe(examples: itemCount, globalBatch: globalBatch,
                         likelihood: "log N(y | f_w(x), σ_y²)")
  }

  public func stepFields(step: Int, globalBatch: Int) -> [String: Double] {
    var fields = bbbStepFields(options, bayesian: model.network.bayesian != nil, step: step,
                               examples: itemCount, globalBatch: globalBatch, lastKL: lastKL)
    fields["noise_std"] = noiseStd
    return fields
  }

  // MARK: - Training

  public func loss(items: ArraySlice<Int>, step: Int, epoch: Int, globalBatch: Int, tape: Tape)
    -> StepLoss {
    guard !items.isEmpty else { return StepLoss(loss: nil, sums: .zero(terms)) }
    let r = items.count
    let x = tape.tensor([r, 1]), y = tape.tensor([r, 1])
    for (row, g) in items.enumerated() {
      x[row] = Float(xUnits.forward(Double(train.x[g])))
      y[row] = Float(yUnits.forward(Double(train.y[g])))
    }
    let m = max(itemCount / globalBatch, 1)
    let share = options.kl.share(minibatch: step % m, of: m)          // π_i
    let rowShare = Double(r) / Double(globalBatch)                    // this rank's R/B
    let klScale = Float(options.kl.weight(step: step, stepsPerEpoch: m) * rowShare)
    let t = model.terms(x: x, y: y, noise: noise.training(model.network, items: items,
                                                           step: step, tape: tape),
                        klScale: klScale, normalizer: Float(globalBatch), on: tape)
    lastKL = t.kl ?? .nan
    // The change of units is a constant in the log-likelihood (the Jacobian −log s_y per
    // example): added to the logged terms so they are in data units, absent from the gradient.
    var sums = bbbTermSums(t, share: share, rowShare: rowShare)
    let jacobian = -Double(r) * log(yUnits.std)
    sums.bound += jacobian
    sums.components[0] += jacobian
    return StepLoss(loss: t.loss, sums: sums)
  }

  // MARK: - Evaluation

  /// Predictive moments at inputs `xs` from S weight samples: per point the mean of f, the
  /// epistemic variance Var_s f (law of total variance: Var[y|x] = σ_y² + Var_s f), and, if
  /// `targets` are given, log (1/S) Σ_s N(y | f_s, σ_y²).
  struct Predictive {
    var mean: [Double]
    var epistemicVariance: [Double]
    var logLikelihood: [Double]
  }

  func predictive(_ xs: ArraySlice<Float>, targets: ArraySlice<Float>? = nil) -> Predictive {
    let n = xs.count
    let s = model.network.predictionSamples(options.predictSamples)
    let tape = Tape(recording: false)
    var sum = [Double](repeating: 0, count: n), sumSq = sum
    var logLik = targets.map { _ in ImportanceSampledLogLikelihood(examples: n) }
    let sigma = noiseStd  // data units, as everything below
    let logNorm = -0.5 * log(2 * Double.pi) - log(sigma)
    for k in 0..<s {
      tape.reset()
      let x = tape.tensor([n, 1])
      for (i, v) in xs.enumerated() { x[i] = Float(xUnits.forward(Double(v))) }
      let f = model.predictMean(x: x, weightNoise: noise.prediction(model.network, sample: k,
                                                                    tape: tape), on: tape)
      for i in 0..<n {
        let v = yUnits.inverse(Double(f[i]))
        sum[i] += v
        sumSq[i] += v * v
      }
      if let targets {
        let lw = tape.tensor([1, n])
        for (i, y) in targets.enumerated() {
          let z = (Double(y) - yUnits.inverse(Double(f[i]))) / sigma
          lw[i] = Float(logNorm - 0.5 * z * z)
        }
        logLik?.add(logWeights: lw)
      }
    }
    let mean = sum.map { $0 / Double(s) }
    let variance = zip(sumSq, mean).map { max($0 / Double(s) - $1 * $1, 0) }
    return Predictive(mean: mean, epistemicVariance: variance,
                      logLikelihood: logLik?.estimates ?? [])
  }

  /// The prediction grid.
  static var grid: [Float] {
    let r = gridRange
    return (0..<gridPoints).map {
      Float(r.lowerBound + (r.upperBound - r.lowerBound) * Double($0) / Double(gridPoints - 1))
    }
  }

  /// Held-out log-likelihood, RMSE and ±2σ coverage (points inside the data range), and the
  /// predictive standard deviation on the grid inside vs outside the data range. Sharded over
  /// ranks (held-out points and grid points each counted once) and all-reduced.
  public func evaluate(epoch: Int, communicator: Communicator) throws -> [String: Double] {
    let rank = communicator.rank, size = communicator.size
    let mine = Sharder.share(of: heldOut.count, rank: rank, size: size)
    let aleatoric = noiseStd * noiseStd
    // [Σ log p, Σ err², covered, Σ total std in, Σ total std out, Σ epi std in, Σ epi std out,
    //  points in, points out]
    var sums = [Double](repeating: 0, count: 9)
    if !mine.isEmpty {
      let p = predictive(heldOut.x[mine], targets: heldOut.y[mine])
      for (i, g) in mine.enumerated() {
        let err = Double(heldOut.y[g]) - p.mean[i]
        sums[0] += p.logLikelihood[i]
        sums[1] += err * err
        if abs(err) <= 2 * (aleatoric + p.epistemicVariance[i]).squareRoot() { sums[2] += 1 }
      }
    }
    let grid = Self.grid
    let gridShare = Sharder.share(of: grid.count, rank: rank, size: size)
    if !gridShare.isEmpty {
      let p = predictive(grid[gridShare])
      for (i, g) in gridShare.enumerated() {
        let inside = RegressionToy.range.contains(Double(grid[g]))
        let total = (aleatoric + p.epistemicVariance[i]).squareRoot()
        let epistemic = p.epistemicVariance[i].squareRoot()
        sums[inside ? 3 : 4] += total
        sums[inside ? 5 : 6] += epistemic
        sums[inside ? 7 : 8] += 1
      }
    }
    try communicator.allreduceSum(&sums, name: "held-out evaluation")
    let n = Double(heldOut.count)
    let inStd = sums[3] / sums[7], outStd = sums[4] / sums[8]
    let inEpi = sums[5] / sums[7], outEpi = sums[6] / sums[8]
    var metrics = ["test_log_likelihood": sums[0] / n, "test_rmse": (sums[1] / n).squareRoot(),
                   "test_coverage_2sd": sums[2] / n,
                   "std_in_range": inStd, "std_out_of_range": outStd,
                   "std_ratio_out_in": outStd / inStd,
                   "epistemic_std_in_range": inEpi, "epistemic_std_out_of_range": outEpi,
                   "noise_std": noiseStd]
    // A point network has no epistemic part (0/0): its ratio is left out, not NaN.
    if inEpi > 0 { metrics["epistemic_std_ratio_out_in"] = outEpi / inEpi }
    metrics.merge(weightCompressionMetrics(model.network, store: store, seed: seed)) { a, _ in a }
    return metrics
  }

  // MARK: - Pictures

  /// `predictive.svg`: the predictive mean with ±2σ bands of the total and the epistemic
  /// standard deviation, beside the noise-free curve, E[y|x] and the training points;
  /// `predictive_std.svg`: the standard deviation and its two components against x.
  public func artifacts(step: Int, final: Bool) throws -> [Artifact] {
    let c = predictiveCurve()
    let total = zip(c.aleatoricStd, c.epistemicStd).map { ($0 * $0 + $1 * $1).squareRoot() }
    let s = model.network.predictionSamples(options.predictSamples)
    var p = Plot(title: "Predictive at step \(step): mean ± 2σ, S = \(s) weight samples",
                 xLabel: "x (training data in [0, 0.5])", yLabel: "y")
    p.band("±2σ total = ±2√(σ_y² + Var_w f)", x: c.x,
           lower: zip(c.mean, total).map { $0 - 2 * $1 }, upper: zip(c.mean, total).map { $0 + 2 * $1 })
    p.band("±2σ epistemic = ±2√Var_w f", x: c.x,
           lower: zip(c.mean, c.epistemicStd).map { $0 - 2 * $1 },
           upper: zip(c.mean, c.epistemicStd).map { $0 + 2 * $1 })
    p.points("training data", x: train.x.map(Double.init), y: train.y.map(Double.init))
    p.line("predictive mean", x: c.x, y: c.mean)
    p.line("E[y | x]", x: c.x, y: c.x.map(RegressionToy.conditionalMean), dashed: true)
    p.line("noise-free curve (v = 0)", x: c.x, y: c.x.map { RegressionToy.curve($0, v: 0) },
           dashed: true)
    var q = Plot(title: "Predictive standard deviation at step \(step) (law of total variance)",
                 xLabel: "x (training data in [0, 0.5])", yLabel: "standard deviation")
    q.line("total √(σ_y² + Var_w f)", x: c.x, y: total)
    q.line("aleatoric σ_y", x: c.x, y: c.aleatoricStd, dashed: true)
    q.line("epistemic √Var_w f", x: c.x, y: c.epistemicStd)
    return [
      Artifact(fileName: "predictive.svg",
               caption: "Predictions on 1000 points over and beyond the data range: mean and "
                 + "±2 standard deviations of the total predictive (aleatoric σ_y² plus the "
                 + "epistemic variance of f over weight samples) and of the epistemic part alone",
               content: .svg(p.svg())),
      Artifact(fileName: "predictive_std.svg",
               caption: "Total predictive standard deviation and its aleatoric and epistemic "
                 + "components against x",
               content: .svg(q.svg())),
    ]
  }

  /// The predictive on the whole grid (rank 0, no collectives): x, mean, aleatoric and
  /// epistemic standard deviations.
  public func predictiveCurve() -> (x: [Double], mean: [Double], aleatoricStd: [Double],
                                    epistemicStd: [Double]) {
    let grid = Self.grid
    let p = predictive(grid[...])
    let sigma = noiseStd
    return (grid.map(Double.init), p.mean, Array(repeating: sigma, count: grid.count),
            p.epistemicVariance.map { $0.squareRoot() })
  }
}

/// Per-rank term sums (elbo, log-likelihood, kl, surprise) of a BBB minibatch, each per example
/// summed over the rank's rows: an example's share of the KL is π_i·KL/B, so the rank's rows
/// carry π_i·KL·R/B (β and warm-up are weights of the loss, not of the bound that is logged).
/// The per-step fields of a BBB train record: the effective KL weight β·λ_t·π_i, the share π_i
/// and the full KL (nats) of the step.
func bbbStepFields(_ o: BBBOptions, bayesian: Bool, step: Int, examples: Int, globalBatch: Int,
                   lastKL: Double) -> [String: Double] {
  guard bayesian else { return [:] }
  let m = max(examples / max(globalBatch, 1), 1)
  return ["kl_weight": o.kl.weight(step: step, stepsPerEpoch: m),
          "kl_share": o.kl.share(minibatch: step % m, of: m), "kl_total": lastKL]
}

func bbbTermSums(_ t: BBBTerms, share: Double, rowShare: Double) -> TermSums {
  let ll = sumDouble(t.logLikelihood)
  let kl = (t.kl ?? 0) * share * rowShare
  let surprise = (t.surprise ?? 0) * share * rowShare
  return TermSums(bound: ll - kl, components: [ll, kl, surprise])
}
