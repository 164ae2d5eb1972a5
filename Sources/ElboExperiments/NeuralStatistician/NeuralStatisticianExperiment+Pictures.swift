import ElboReport
import ElboTrain

/// Scatter plots of E[c|D] on the held-out sets (the paper's Figure 3, as 2-D projections):
/// coloured by family, by mean and by variance (each in four equal-width bins).
extension NeuralStatisticianExperiment {
  public func artifacts(step: Int, final: Bool) throws -> [Artifact] {
    let c = lastContexts
    guard config.context >= 2, c.count == test.count else { return spatialArtifacts() }
    func scatter(_ title: String, groups: [String], of set: (Int) -> Int) -> String {
      var plot = Plot(title: title, xLabel: "E[c₁|D]", yLabel: "E[c₂|D]")
      for (g, name) in groups.enumerated() {
        let members = c.indices.filter { set($0) == g }
        plot.points(name, x: members.map { c[$0][0] }, y: members.map { c[$0][1] })
      }
      return plot.svg()
    }
    var out = [Artifact(fileName: "contexts-by-label.svg",
                        caption: "E[c|D] of the held-out sets (first two coordinates) by label "
                          + "(family or class).",
                        content: .svg(scatter("Contexts by label", groups: test.labelNames) {
                          test.labels[$0] }))]
    for (key, lo, hi) in [("mean", -1.0, 1.0), ("variance", 0.5, 2.0)] {
      guard let v = test.values[key] else { continue }
      let edges = (0...4).map { lo + (hi - lo) * Double($0) / 4 }
      let names = (0..<4).map { String(format: "%@ %.2f–%.2f", key, edges[$0], edges[$0 + 1]) }
      let svg = scatter("Contexts by \(key)", groups: names) {
        min(3, max(0, Int((v[$0] - lo) / (hi - lo) * 4)))
      }
      out.append(Artifact(fileName: "contexts-by-\(key).svg",
                          caption: "E[c|D] of the held-out sets coloured by the generating \(key).",
                          content: .svg(svg)))
    }
    return out + spatialArtifacts()
  }
}
