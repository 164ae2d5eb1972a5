import ElboModels
import Foundation
import ElboDistributed

/// What the training loop needs from a model + its data: the parameters, how many items an epoch
/// has, and the loss on this rank's share of a global batch. Everything else — sharding, the
/// all-reduce, the non-finite guard, the optimizer, checkpoints, logging — is the loop's, so every
/// model gets it for free.
public protocol Workload: AnyObject {
  /// Name stored in checkpoints ("vae", …); a checkpoint of another model is refused.
  var modelName: String { get }
  var store: ParameterStore { get }
  /// Training items per epoch (examples, or data sets of a collection).
  var itemCount: Int { get }
  /// Names of the per-example terms `loss` returns, in order. The first is the bound that is
  /// maximised (its negative is the seed's F).
  var termNames: [String] { get }

  /// Loss on this rank's items of one global batch.
  /// - Parameters:
  ///   - items: global indices of this rank's items (may be empty).
  ///   - step: global optimizer step (keys the noise), epoch: current epoch (keys data noise).
  ///   - globalBatch: items in the global batch (the loss normaliser).
  /// - Returns: the scalar loss to differentiate (nil when `items` is empty) and, per term, the
  ///   SUM over this rank's items (reduced across ranks by the loop).
  func loss(items: ArraySlice<Int>, step: Int, epoch: Int, globalBatch: Int, tape: Tape)
    -> (loss: Variable?, termSums: [Double])

  /// Epoch-end evaluation on held-out data (collective: every rank calls it).
  func evaluate(epoch: Int, communicator: Communicator) throws -> [String: Double]

  /// Lines printed at the start of a run that state the objective exactly: the bound, how the
  /// loss is normalised, and how the KL term is weighted (users ask to see this, not guess it).
  func objectiveDescription(globalBatch: Int) -> [String]

  /// Pictures of the model now (see `Artifact`). Called on rank 0 only: no collective calls.
  func artifacts(step: Int, final: Bool) throws -> [Artifact]

  /// Extra fields for the `train` metrics record whose last step is `step` (0-based): values
  /// that change from step to step, such as a KL weight. Called on every rank when a record
  /// is due (rank 0 writes it): no collective calls.
  func stepFields(step: Int, globalBatch: Int) -> [String: Double]
}

/// A picture a workload draws of itself — image grids (PNG) and model-specific plots (SVG) — for
/// the run directory's `images/` and `plots/` and for `report.html`.
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

extension Workload {
  /// Default: no pictures.
  public func artifacts(step: Int, final: Bool) throws -> [Artifact] { [] }
  /// Default: no extra fields.
  public func stepFields(step: Int, globalBatch: Int) -> [String: Double] { [:] }
}
