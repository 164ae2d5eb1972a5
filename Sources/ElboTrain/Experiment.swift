import ElboDistributed
import ElboModels
import Foundation

/// A model on its data, as the trainer sees it: the plug-in interface every model implements.
///
/// An experiment owns everything that is particular to its model — its `Config`, its data, the
/// loss terms of a batch, its held-out evaluation, its pictures and samples, its benchmark
/// extras. Everything else — sharding, the gradient exchange, the non-finite guard, the
/// optimizer, checkpoints, metrics, the report, the command line — is the trainer's, so a new
/// model gets all of it by implementing this protocol and adding one line to a registry.
///
/// Every method documented as collective is called by every rank, in the same order.
public protocol Experiment: AnyObject {
  /// The model's own options, stored under the model's name in `config.json` and checkpoints.
  associatedtype Config: ExperimentConfig

  /// The name on the command line (`elbo train <name>`), in checkpoints and in `config.json`.
  static var name: String { get }
  /// One line for `elbo train --help`.
  static var summary: String { get }
  /// What the model is, what it logs and draws (for `elbo train <name> --help`).
  static var discussion: String { get }
  /// The run options this model starts from when neither a config file nor a flag sets them
  /// (default: ``RunOptions/init()``).
  static var runDefaults: RunOptions { get }
  /// What the surprise term of the training curves is about (default: a per-item latent).
  static var posterior: PosteriorKind { get }

  /// A config written by an older Elbo (before models had their own sections), rewritten into
  /// today's layout; default: unchanged. Keys that are still unknown afterwards are dropped.
  static func upgradeLegacyConfig(_ object: [String: Any]) -> [String: Any]

  /// Builds the model from `config`, loading or generating its data. Initialisation and all
  /// noise derive from `seed`; building is not collective.
  init(config: Config, seed: UInt64) throws

  var config: Config { get }
  /// The parameters, in one flat buffer (checkpoints, the gradient exchange and the optimizer
  /// see only this).
  var store: ParameterStore { get }
  /// Training items per epoch: the sharder's unit (examples, data sets of a collection, …).
  var itemCount: Int { get }
  /// The names of the terms `loss` reports (the bound and its components).
  var terms: TermNames { get }
  /// The data the run trains on, for the run header ("fashion-mnist", "regression toy", …).
  var dataDescription: String { get }
  /// A digest of the training data's content (``ContentDigest``), which every rank must agree
  /// on before a run (``RunIdentity``); default nil: only ``itemCount`` is compared.
  var dataDigest: UInt64? { get }

  /// The loss on this rank's items of one global batch.
  /// - Parameters:
  ///   - items: global indices of this rank's items (may be empty).
  ///   - step: global optimizer step (keys the noise); epoch: the epoch (keys data noise).
  ///   - globalBatch: items in the global batch (the loss normaliser).
  /// - Returns: the scalar to differentiate (nil when `items` is empty) and, per term, the SUM
  ///   over this rank's items (the trainer all-reduces them).
  func loss(items: ArraySlice<Int>, step: Int, epoch: Int, globalBatch: Int, tape: Tape)
    -> StepLoss

  /// Held-out evaluation at an epoch end (collective). Keys are snake_case metric names.
  func evaluate(epoch: Int, communicator: Communicator) throws -> [String: Double]

  /// `elbo eval`'s headline metrics of the trained model (collective); default: ``evaluate``.
  /// - Parameter options: `--k`, `--predict-samples`, … as the model reads them.
  func headlineMetrics(_ options: EvaluationOptions, communicator: Communicator,
                       progress: ProgressHandler?) throws -> [String: Double]

  /// Lines printed at the start of a run that state the objective exactly: the bound, how the
  /// loss is normalised and how any KL term is weighted (users ask to see this, not guess it).
  func objectiveDescription(globalBatch: Int) -> [String]

  /// Pictures of the model now (rank 0 only: no collective calls).
  func artifacts(step: Int, final: Bool) throws -> [Artifact]

  /// `elbo sample`: `count` draws from the model as a picture, or nil if it draws none
  /// (rank 0 only: no collective calls).
  func samples(count: Int, seed: UInt64) throws -> Artifact?

  /// Extra fields for the `train` record whose last step is `step` (0-based), e.g. a KL weight.
  /// Called on every rank when a record is due: no collective calls.
  func stepFields(step: Int, globalBatch: Int) -> [String: Double]

  /// Model-specific figures for `elbo bench <name>` (collective): e.g. the BLAS-bound limit of
  /// the step's matrix products, a PyTorch anchor's ratio, other exchange methods timed beside
  /// the default. `stepMs` is the measured default step. Default: none.
  func benchmarkFields(trainer: Trainer, stepMs: Double, steps: Int, warmup: Int,
                       communicator: Communicator) throws -> [String: Any]
}

/// The options of one model: Codable (config files, `config.json`, checkpoints), with defaults
/// from `init()`, checked by `validate()`.
public protocol ExperimentConfig: Codable, Equatable, Sendable {
  init()
  /// Checks what a flag parser cannot; each message names the flag.
  func validate() throws
}

/// What the surprise log p(·) − log q(·) of a model is about, for its plot's labels.
public enum PosteriorKind: String, Codable, Sendable {
  /// A per-item latent z: log p(z) − log q(z|x).
  case latent
  /// The network's weights: log p(w) − log q(w).
  case weights
  /// No posterior (an exact-likelihood model, e.g. an autoregressive one): no surprise plot.
  case none
}

/// The names of the terms a model's loss reports: the bound that is maximised and its parts.
public struct TermNames: Sendable, Equatable {
  /// The bound (its negative is the loss F), e.g. "elbo" or "log_likelihood".
  public let bound: String
  /// Its components, e.g. ["log_px_given_z", "kl", "surprise"].
  public let components: [String]

  public init(bound: String, components: [String]) {
    self.bound = bound
    self.components = components
  }

  /// Bound first, then the components: the order of the all-reduced sums.
  public var all: [String] { [bound] + components }
}

/// Per-term sums over this rank's items (before the all-reduce), or over the global batch
/// (after it), named by the model's ``TermNames``.
public struct TermSums: Sendable, Equatable {
  public var bound: Double
  public var components: [Double]

  public init(bound: Double, components: [Double]) {
    self.bound = bound
    self.components = components
  }

  public static func zero(_ names: TermNames) -> TermSums {
    TermSums(bound: 0, components: [Double](repeating: 0, count: names.components.count))
  }

  /// Bound first, then the components (the layout of ``TermNames/all``).
  public var flat: [Double] { [bound] + components }

  public init(flat: ArraySlice<Double>) {
    bound = flat.first ?? 0
    components = Array(flat.dropFirst())
  }
}

/// What a model's loss returns for this rank's share of a batch.
public struct StepLoss {
  /// The scalar to differentiate: −(1/B)·Σ bound over this rank's items (nil: no items).
  public let loss: Variable?
  public let sums: TermSums

  public init(loss: Variable?, sums: TermSums) {
    self.loss = loss
    self.sums = sums
  }
}

/// The options of `elbo eval` a model may read.
public struct EvaluationOptions: Sendable {
  /// Importance samples per test example (`--k`), for models with a latent posterior.
  public var importanceSamples = 5000
  /// Weight samples averaged per prediction (`--predict-samples`); nil: the run's own.
  public var predictSamples: Int?
  public init() {}
}

/// Reports the progress of a long evaluation: `(done, total)` in the model's own units.
public typealias ProgressHandler = (_ done: Int, _ total: Int) -> Void

/// A picture an experiment draws of itself — image grids (PNG) and model-specific plots (SVG) —
/// for the run directory's `images/` and `plots/` and for `report.html`.
public struct Artifact {
  public enum Content {
    case png(Data)
    case svg(String)
  }
  /// File name without directory, e.g. "reconstructions.png" or "predictive.svg"; PNGs go to
  /// `images/`, SVGs to `plots/`.
  public let fileName: String
  /// One sentence shown under it in the report.
  public let caption: String
  public let content: Content

  public init(fileName: String, caption: String, content: Content) {
    self.fileName = fileName
    self.caption = caption
    self.content = content
  }
}

extension Experiment {
  public static var runDefaults: RunOptions { RunOptions() }
  public static var posterior: PosteriorKind { .latent }
  public static var discussion: String { "" }
  public static func upgradeLegacyConfig(_ object: [String: Any]) -> [String: Any] { object }
  public var dataDigest: UInt64? { nil }
  public func headlineMetrics(_ options: EvaluationOptions, communicator: Communicator,
                              progress: ProgressHandler?) throws -> [String: Double] {
    try evaluate(epoch: 0, communicator: communicator)
  }
  public func artifacts(step: Int, final: Bool) throws -> [Artifact] { [] }
  public func samples(count: Int, seed: UInt64) throws -> Artifact? { nil }
  public func stepFields(step: Int, globalBatch: Int) -> [String: Double] { [:] }
  public func benchmarkFields(trainer: Trainer, stepMs: Double, steps: Int, warmup: Int,
                              communicator: Communicator) throws -> [String: Any] { [:] }
}

/// Σ of a tensor's elements in Double.
public func sumDouble(_ t: Tensor) -> Double {
  var s = 0.0
  for i in 0..<t.count { s += Double(t[i]) }
  return s
}
