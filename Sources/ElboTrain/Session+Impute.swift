import ElboCheckpoint
import ElboDistributed
import Foundation

/// What `elbo impute` asks of a model (the flags, checked by the command).
public struct ImputationRequest: Sendable {
  /// The mask's name (a model lists the ones it knows in ``ImputingExperiment/imputationMasks``).
  public var mask = "left-half"
  /// T, iterations of the chain (≥ 1).
  public var iterations = 50
  /// N, test images (spread evenly over the test set; ≥ 1).
  public var images = 100
  /// C, independent chains per image (≥ 1).
  public var chains = 64
  /// The noise seed (nil: the run's).
  public var seed: UInt64?
  public init() {}
}

/// What an imputation found, summed over every rank's images.
public struct ImputationOutcome {
  /// The iterations t whose log-likelihood was kept, ascending (the last is T).
  public var iterations: [Int]
  /// Mean over the N images of log p̂(x_m^true | x_o) at each of `iterations`, nats per image.
  public var logLikelihood: [Double]
  /// Mean over the images of the model-free baseline's log p(x_m^true), nats per image.
  public var baseline: Double
  /// Mean number of missing pixels per image.
  public var missingPerImage: Double
  /// How the numbers were obtained (printed above the table).
  public var description: [String]
  /// The picture (rank 0 only; nil on the others).
  public var picture: Artifact?

  public init(iterations: [Int], logLikelihood: [Double], baseline: Double,
              missingPerImage: Double, description: [String], picture: Artifact?) {
    self.iterations = iterations
    self.logLikelihood = logLikelihood
    self.baseline = baseline
    self.missingPerImage = missingPerImage
    self.description = description
    self.picture = picture
  }
}

/// A model that can fill in missing parts of its data (`elbo impute`).
public protocol ImputingExperiment: Experiment {
  /// The masks it knows, e.g. ["left-half", "random-50", "top-half"].
  static var imputationMasks: [String] { get }
  /// Imputes `request.images` test items (collective: every rank takes a share).
  func impute(_ request: ImputationRequest, seed: UInt64,
              communicator: Communicator) throws -> ImputationOutcome
}

extension Session {
  /// `elbo impute`: the imputation log-likelihood per iteration count beside the baseline, and
  /// a picture at `out` (default RUN/images/impute-<mask>-step<step>.png). Rank 0 prints and
  /// writes; with `json`, ONE JSON line instead of the table.
  public static func impute(target: String, request: ImputationRequest, out: String?,
                            threads: Int?, json: Bool, experiments: [any Experiment.Type],
                            communicator: Communicator) throws {
    configureThreads(threads, communicator)
    let path = try checkpointPath(target, communicator)
    let state = try CheckpointStore.read(path: path)
    let type = try experimentType(of: state, path: path, among: experiments)
    guard let imputing = type as? any ImputingExperiment.Type else {
      throw ElboError("\(target): a '\(state.model)' run; elbo impute needs a model with an "
        + "encoder and a decoder over images (a vae run)")
    }
    try impute(imputing, state: state, path: path, target: target, request: request, out: out,
               json: json, communicator: communicator)
  }

  static func impute<E: ImputingExperiment>(_ type: E.Type, state: CheckpointState, path: String,
                                            target: String, request: ImputationRequest,
                                            out: String?, json: Bool,
                                            communicator: Communicator) throws {
    guard E.imputationMasks.contains(request.mask) else {
      throw ElboError("--mask \(request.mask): unknown; choose "
        + E.imputationMasks.joined(separator: ", "))
    }
    let say = printer(communicator)
    let (experiment, config) = try restoredExperiment(E.self, state: state, path: path)
    let t0 = Date()
    let outcome = try experiment.impute(request, seed: request.seed ?? config.options.seed,
                                        communicator: communicator)
    let seconds = Date().timeIntervalSince(t0)

    var problem = "", written = ""
    if communicator.rank == 0, let picture = outcome.picture, case .png(let png) = picture.content {
      do {
        var isDir: ObjCBool = false
        let runDir = FileManager.default.fileExists(atPath: target, isDirectory: &isDir)
          && isDir.boolValue ? target : nil
        let name = "impute-\(request.mask)-step\(state.step).png"
        let file = out ?? (runDir.map { "\($0)/images/\(name)" } ?? name)
        let dir = (file as NSString).deletingLastPathComponent
        if !dir.isEmpty {
          try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        }
        try png.write(to: URL(fileURLWithPath: file))
        written = file
      } catch {
        problem = "--out: \(error)"
      }
    }
    let verdict = try communicator.broadcast(string: problem, root: 0, name: "impute")
    if !verdict.isEmpty { throw ElboError(verdict) }

    if json {
      let record: [String: Any] = [
        "kind": "impute", "model": E.name, "step": Int(state.step), "checkpoint": path,
        "mask": request.mask, "images": request.images, "chains": request.chains,
        "iterations": outcome.iterations, "log_likelihood": outcome.logLikelihood,
        "baseline_log_likelihood": outcome.baseline,
        "missing_pixels_per_image": outcome.missingPerImage, "picture": written,
        "seconds": seconds]
      let data = try JSONSerialization.data(withJSONObject: record, options: [.sortedKeys])
      say(String(decoding: data, as: UTF8.self))
      return
    }
    say("impute \(E.name) at step \(state.step): mask \(request.mask), \(request.images) test "
      + "images, \(request.chains) chains each, "
      + String(format: "%.1f missing pixels per image (%.1f s)", outcome.missingPerImage, seconds))
    for line in outcome.description { say("  " + line) }
    say("  iterations T   log p(x_missing | x_observed)   per missing pixel")
    for (t, ll) in zip(outcome.iterations, outcome.logLikelihood) {
      say(String(format: "  %12d   %26.3f   %17.4f", t, ll, ll / outcome.missingPerImage))
    }
    say("  marginal baseline" + String(format: "   %21.3f   %17.4f", outcome.baseline,
                                          outcome.baseline / outcome.missingPerImage))
    if !written.isEmpty { say("wrote \(written): \(outcome.picture!.caption)") }
  }
}
