import ElboReport
import Foundation

/// Rank 0's pictures of a run: the experiment's artifacts into `images/` and `plots/` (captions
/// in `artifacts.json`), the training curves from `metrics.jsonl` into `plots/`, and
/// `report.html` — all rebuilt from the directory's files, the way `elbo report` does it.
///
/// Failing to draw is not a reason to stop a long training run: errors become one warning line.
final class RunOutputs {
  let run: RunDirectory
  let experiment: any Experiment
  let posterior: PosteriorKind
  let say: (String) -> Void

  init(run: RunDirectory, experiment: any Experiment, posterior: PosteriorKind,
       say: @escaping (String) -> Void) {
    self.run = run
    self.experiment = experiment
    self.posterior = posterior
    self.say = say
  }

  /// Draws everything for `step`; returns the report's path, or nil after a warning.
  @discardableResult
  func refresh(step: Int, final: Bool) -> String? {
    do {
      try writeArtifacts(step: step, final: final)
      // Lines that do not parse (a log cut short by a crash, then resumed) are left out here;
      // `elbo report` names them instead.
      let text = (try? String(contentsOfFile: run.metricsFile, encoding: .utf8)) ?? ""
      let records = try MetricsFile.parse(text, file: run.metricsFile, lenient: true)
      try RunReport.writeCurves(records, runDirectory: run.path)
      return try RunReport.writeReport(records, runDirectory: run.path)
    } catch {
      say("warning: images, plots or report not written at step \(step): \(error)")
      return nil
    }
  }

  func writeArtifacts(step: Int, final: Bool) throws {
    let artifacts = try experiment.artifacts(step: step, final: final)
    var index = try ArtifactIndex.read(runDirectory: run.path)
    index.surprise = posterior.rawValue
    for a in artifacts {
      let name = a.fileName
      guard !name.isEmpty, !name.contains("/"), !name.hasPrefix(".") else {
        throw ElboError("artifact file name '\(name)' must be a plain file name")
      }
      let (folder, data): (String, Data)
      switch a.content {
      case .png(let png):
        guard name.hasSuffix(".png") else { throw ElboError("PNG artifact '\(name)' must end in .png") }
        (folder, data) = ("images", png)
      case .svg(let svg):
        guard name.hasSuffix(".svg") else { throw ElboError("SVG artifact '\(name)' must end in .svg") }
        (folder, data) = ("plots", Data(svg.utf8))
      }
      try FileManager.default.createDirectory(atPath: run.path + "/" + folder,
                                              withIntermediateDirectories: true)
      try RunReport.write(data, to: run.path + "/" + folder + "/" + name)
      index.record(file: folder + "/" + name, caption: a.caption, step: step)
    }
    try index.write(runDirectory: run.path)
  }
}
