import ElboData
import ElboModels
import ElboReport
import ElboTrain
import Foundation

extension DeepPriorExperiment {
  /// Context sizes of the picture (seed 000's Figure 1: tasks with increasing samples).
  static let figureContexts = [1, 2, 4, 8, 16]
  /// Posterior samples drawn per panel.
  static let figureSamples = 4

  /// `tasks_with_increasing_samples.svg`: for two test tasks (rows) and 1, 2, 4, 8, 16 context
  /// points (columns): the true function, the context points, and posterior predictive samples
  /// μ(x, z_s) with ±2σ(x, z_s) bands, z_s ~ q(z|context).
  public func artifacts(step: Int, final: Bool) throws -> [Artifact] {
    guard !figureTasks.isEmpty else { return [] }
    let panelW = 300, panelH = 220
    var body = ""
    for (row, set) in figureTasks.enumerated() {
      for (col, c) in Self.figureContexts.enumerated() {
        let plot = panel(set, task: row, context: min(c, set.shape[0]))
        let svg = plot.svg(width: panelW, height: panelH)
          .replacingOccurrences(of: "<svg ", with: "<svg x=\"\(col * panelW)\" "
            + "y=\"\(row * panelH)\" ", options: [], range: nil)
        body += svg + "\n"
      }
    }
    let w = panelW * Self.figureContexts.count, h = panelH * figureTasks.count
    let svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(w)\" height=\"\(h)\" "
      + "viewBox=\"0 0 \(w) \(h)\">\n" + body + "</svg>\n"
    return [Artifact(
      fileName: "tasks_with_increasing_samples.svg",
      caption: "Test tasks (rows) with 1, 2, 4, 8, 16 context points (columns): the true "
        + "function (dashed), the context points, and \(Self.figureSamples) posterior predictive "
        + "samples μ(x, z_s) ± 2σ(x, z_s), z_s ~ q(z|context), at step \(step).",
      content: .svg(svg))]
  }

  /// One panel: task `set`'s first `context` points as the context.
  func panel(_ set: Tensor, task: Int, context: Int) -> Plot {
    var plot = Plot(title: "\(context) point\(context == 1 ? "" : "s")", xLabel: "x",
                    yLabel: "y")
    let xs = (0..<set.shape[0]).map { Double(set[2 * $0]) }
    let lo = (xs.min() ?? -1) - 1, hi = (xs.max() ?? 1) + 1
    let grid = (0..<120).map { lo + (hi - lo) * Double($0) / 119 }
    if let params = testParams {
      let f = HarmonicTasks.Task(params: params.row(task))
      plot.line("true f", x: grid, y: grid.map { f($0) }, dashed: true)
    }
    let tape = Tape(recording: false)
    let ctx = SetBatch([rows(set, 0..<context)], datasets: [task])
    let out = model.encode(points: ctx.points, mask: ctx.mask, on: tape)
    let x = tape.tensor([1, grid.count])
    for (i, g) in grid.enumerated() { x[i] = Float(g) }
    for s in 0..<Self.figureSamples {
      let e = noise(tasks: [task], purpose: .sampling, time: UInt64(s), tape: tape)
      let p = model.predictive(x: x, z: model.posteriorSample(out, noise: e).z)
      let mu = (0..<grid.count).map { Double(p.mean.value[$0]) }
      let sd = (0..<grid.count).map { exp(0.5 * Double(p.logVariance.value[$0])) }
      plot.band("sample \(s + 1) ± 2σ", x: grid, lower: zip(mu, sd).map { $0 - 2 * $1 },
                upper: zip(mu, sd).map { $0 + 2 * $1 })
      plot.line("sample \(s + 1)", x: grid, y: mu)
    }
    plot.points("context", x: Array(xs.prefix(context)),
                y: (0..<context).map { Double(set[2 * $0 + 1]) })
    return plot
  }
}
