import ArgumentParser
import ElboModels
import ElboReport
import ElboTrain
import Foundation

/// `elbo evidence`: seed 001's estimators of the log evidence log p(x) side by side — on the
/// linear-Gaussian model, where log p(x) is exact, or on a trained VAE's test images.
struct Evidence: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Estimate log p(x) by importance sampling, Laplace, the perturbative series, mean-field and amortised VI.",
    discussion: """
      Without RUN: the linear-Gaussian model z ~ N(0, I_d), x | z ~ N(θ₀ + θ₁z, diag exp θ₂)
      (θ drawn from --seed), whose evidence N(x; θ₀, θ₁θ₁ᵀ + diag exp θ₂) is exact. Each
      estimator runs at a ladder of budgets up to --budget; every row is the mean over --points
      observations drawn from the model, printed beside the exact mean log p(x):
        importance    K = 1, 4, 16, … samples, proposal the prior or the mean-field q (4096)
        laplace       Newton steps to the mode, then log p(x,ẑ) + d/2 log 2π − ½ log det(−H) (3)
        perturbative  orders 1…n of the series around the mean-field q; order 1 is its ELBO (8)
        mean-field    coordinate-ascent sweeps of the fixed-point equations; the ELBO (10)
        amortized     Adam steps of an encoder N(Ax + b, diag s²) trained on 2000 x; its ELBO (2000)
      (default budgets in brackets). Writes OUT/evidence.jsonl, OUT/plots/*.svg (each estimate
      against its budget, the exact value as a dashed line) and OUT/report.html.

      With RUN (a trained VAE): importance sampling with --k samples from q(z|x) and Laplace at
      the posterior mode (Newton from μ(x), Hessian by differences of the autodiff gradient), on
      the first --images test images.
      """)

  @Argument(help: "A trained VAE's run directory or checkpoint (omit for the linear-Gaussian model).")
  var target: String?
  @Option(help: "importance, laplace, perturbative, mean-field, amortized or all.")
  var estimator = "all"
  @Option(help: "The largest budget of the estimator (needs one --estimator).") var budget: Int?
  @Option(help: "Seed of the model's parameters, the observations and every estimator's draws.")
  var seed: UInt64 = 1
  @Option(help: "Latent and observed dimensions d,D of the linear-Gaussian model.")
  var dims = "3,10"
  @Option(help: "Observations the estimates are averaged over.") var points = 8
  @Option(help: "Directory for evidence.jsonl, plots/ and report.html.") var out = "runs/evidence"
  @Option(help: "VAE: test images (the first N).") var images = 100
  @Option(help: "VAE: importance samples per image.") var k = 1000
  @Flag(help: "Print one JSON line per estimate instead of the table.") var json = false

  /// The estimators asked for, or a one-line error.
  func chosenEstimators() throws -> [EvidenceEstimator] {
    if estimator == "all" { return EvidenceEstimator.allCases }
    guard let e = EvidenceEstimator(rawValue: estimator) else {
      throw ElboError("--estimator must be one of importance, laplace, perturbative, "
        + "mean-field, amortized, all (got '\(estimator)')")
    }
    return [e]
  }

  /// (d, D) from "d,D", or a one-line error.
  func dimensions() throws -> (Int, Int) {
    let parts = dims.split(separator: ",", omittingEmptySubsequences: false).map {
      Int($0.trimmingCharacters(in: .whitespaces))
    }
    guard parts.count == 2, let d = parts[0], let D = parts[1], (1...64).contains(d),
          (1...1024).contains(D) else {
      throw ElboError("--dims must be d,D with 1 ≤ d ≤ 64 and 1 ≤ D ≤ 1024 (got '\(dims)')")
    }
    return (d, D)
  }

  func run() throws {
    let estimators = try chosenEstimators()
    if let b = budget {
      guard estimators.count == 1 else {
        throw ElboError("--budget sets one estimator's ladder: give --estimator too (not 'all')")
      }
      let least = estimators[0] == .laplace || estimators[0] == .meanField ? 0 : 1
      guard b >= least, b <= 10_000_000 else {
        throw ElboError("--budget must be an integer in \(least)…10000000 (got \(b))")
      }
    }
    guard (1...100_000).contains(points) else {
      throw ElboError("--points must be in 1…100000 (got \(points))")
    }
    if let target {
      try runOnVAE(target, estimators: estimators)
      return
    }
    let (d, D) = try dimensions()
    let study = LinearGaussianStudy(latent: d, observed: D, points: points, seed: seed)
    var rows: [EvidenceEstimate] = []
    for e in estimators { rows += try study.estimates(e, budget: budget) }
    let title = "linear-Gaussian model, d = \(d), D = \(D), \(points) observations, seed \(seed)"
    try publish(rows, title: title, estimators: estimators)
  }

  // MARK: - Output

  /// Prints the table (or JSON lines) and, on rank 0, writes OUT's files.
  func publish(_ rows: [EvidenceEstimate], title: String, estimators: [EvidenceEstimator]) throws {
    guard ElboCLI.communicator.rank == 0 else { return }
    var lines: [String] = []
    for r in rows {
      var record: [String: Any] = ["estimator": r.estimator.rawValue, "variant": r.variant,
                                   "budget": r.budget, "budget_name": r.estimator.budgetName,
                                   "estimate": r.estimate]
      if let e = r.exact { record["exact"] = e; record["error"] = r.estimate - e }
      let data = try JSONSerialization.data(withJSONObject: sanitised(record), options: [.sortedKeys])
      lines.append(String(decoding: data, as: UTF8.self))
    }
    if json {
      for l in lines { print(l) }
    } else {
      print(title)
      print(Evidence.table(rows))
    }
    let fm = FileManager.default
    try fm.createDirectory(atPath: out + "/plots", withIntermediateDirectories: true)
    try (lines.joined(separator: "\n") + "\n").write(toFile: out + "/evidence.jsonl",
                                                     atomically: true, encoding: .utf8)
    var page = ReportPage(title: "Estimating the evidence")
    page.subtitle = title
    for e in estimators {
      let mine = rows.filter { $0.estimator == e }
      guard !mine.isEmpty else { continue }
      // The table: each variant at its largest budget.
      var variants: [String] = []
      for r in mine where !variants.contains(r.variant) { variants.append(r.variant) }
      var table = ReportPage.Table(title: e.rawValue, rows: [])
      if let exact = mine[0].exact { table.rows.append(("exact", String(format: "%.4f", exact))) }
      for v in variants {
        let last = mine.last { $0.variant == v }!
        table.rows.append(("\(v), \(e.budgetName) \(last.budget)", Evidence.format(last)))
      }
      page.summary.append(table)
      let svg = Evidence.plot(e, mine).svg()
      let file = "plots/evidence-\(e.rawValue).svg"
      try svg.write(toFile: out + "/" + file, atomically: true, encoding: .utf8)
      page.plots.append(.init(file: file, caption: "\(e.rawValue): estimate against \(e.budgetName)",
                              content: svg))
      if e == .importance, let p = Evidence.errorPlot(mine) {
        let svg = p.svg(), file = "plots/evidence-importance-error.svg"
        try svg.write(toFile: out + "/" + file, atomically: true, encoding: .utf8)
        page.plots.append(.init(file: file, caption: "importance sampling: |error| against K "
                                  + "(log scale), beside the 1/√K slope", content: svg))
      }
    }
    try page.html().write(toFile: out + "/report.html", atomically: true, encoding: .utf8)
    if !json { print("wrote \(out)/report.html, \(out)/evidence.jsonl, \(out)/plots/") }
  }

  /// NaN and ±∞ are not JSON: they are written as null.
  func sanitised(_ r: [String: Any]) -> [String: Any] {
    r.mapValues { v in
      if let d = v as? Double, !d.isFinite { return NSNull() }
      return v
    }
  }

  static func format(_ r: EvidenceEstimate) -> String {
    var s = String(format: "%.4f", r.estimate)
    if let e = r.error { s += String(format: " (error %+.4f)", e) }
    return s
  }

  /// One aligned table: estimator, variant, budget, estimate, exact, error.
  static func table(_ rows: [EvidenceEstimate]) -> String {
    var cells = [["estimator", "variant", "budget", "estimate", "exact", "error"]]
    for r in rows {
      cells.append([r.estimator.rawValue, r.variant, "\(r.estimator.budgetName) \(r.budget)",
                    String(format: "%.4f", r.estimate),
                    r.exact.map { String(format: "%.4f", $0) } ?? "—",
                    r.error.map { String(format: "%+.4f", $0) } ?? "—"])
    }
    var widths = [Int](repeating: 0, count: 6)
    for row in cells { for (i, c) in row.enumerated() { widths[i] = max(widths[i], c.count) } }
    return cells.map { row in
      row.enumerated().map { i, c in
        let pad = String(repeating: " ", count: widths[i] - c.count)
        return i >= 3 ? pad + c : c + pad  // numbers right-aligned
      }.joined(separator: "  ")
    }.joined(separator: "\n")
  }

  /// Each variant's estimate against the budget (log₁₀ K for importance sampling), with the exact
  /// value as a dashed line.
  static func plot(_ e: EvidenceEstimator, _ rows: [EvidenceEstimate]) -> Plot {
    let logX = e == .importance
    var p = Plot(title: "\(e.rawValue): mean log p(x) estimate",
                 xLabel: logX ? "log10 \(e.budgetName)" : e.budgetName, yLabel: "nats")
    var variants: [String] = []
    for r in rows where !variants.contains(r.variant) { variants.append(r.variant) }
    for v in variants {
      let mine = rows.filter { $0.variant == v }
      p.line(v, x: mine.map { logX ? log10(Double($0.budget)) : Double($0.budget) },
             y: mine.map(\.estimate))
      p.points(v, x: mine.map { logX ? log10(Double($0.budget)) : Double($0.budget) },
               y: mine.map(\.estimate))
    }
    if let exact = rows.first?.exact {
      let xs = rows.map { logX ? log10(Double($0.budget)) : Double($0.budget) }
      p.line("exact log p(x)", x: [xs.min()!, xs.max()!], y: [exact, exact], dashed: true)
    }
    return p
  }

  /// |estimate − exact| against log₁₀ K on a log axis, with a reference line of slope −½ through
  /// each variant's first point: the 1/√K law the estimator's spread follows.
  static func errorPlot(_ rows: [EvidenceEstimate]) -> Plot? {
    guard rows.first?.exact != nil else { return nil }
    var p = Plot(title: "importance sampling: |error| of the mean log p(x)",
                 xLabel: "log10 samples K", yLabel: "|estimate − exact| (nats)")
    p.logY = true
    var variants: [String] = []
    for r in rows where !variants.contains(r.variant) { variants.append(r.variant) }
    for v in variants {
      let mine = rows.filter { $0.variant == v }
      let xs = mine.map { log10(Double($0.budget)) }, ys = mine.map { abs($0.error!) }
      p.line(v, x: xs, y: ys)
      p.points(v, x: xs, y: ys)
      p.line("∝ 1/√K", x: xs, y: xs.map { ys[0] * pow(10, -0.5 * ($0 - xs[0])) }, dashed: true)
    }
    return p
  }

  // MARK: - A trained VAE

  func runOnVAE(_ target: String, estimators: [EvidenceEstimator]) throws {
    let applicable: [EvidenceEstimator] = [.importance, .laplace]
    let chosen = estimators.filter(applicable.contains)
    guard !chosen.isEmpty else {
      throw ElboError("--estimator \(estimator) needs a joint that is Gaussian in z (the "
        + "linear-Gaussian model, without RUN); on a trained run use importance or laplace")
    }
    guard (1...100_000).contains(images) else {
      throw ElboError("--images must be in 1…100000 (got \(images))")
    }
    guard (1...1_000_000).contains(k) else { throw ElboError("--k must be in 1…1000000 (got \(k))") }
    let (experiment, step) = try Session.restore(target: target, experiments: ElboCLI.experimentTypes,
                                                 communicator: ElboCLI.communicator)
    guard let model = experiment as? any EvidenceModel else {
      throw ElboError("\(target): a '\(type(of: experiment).name)' run has no latent variables "
        + "to integrate out; elbo evidence RUN takes a VAE run")
    }
    let problems = try model.evidenceProblems(first: images)
    let n = Double(problems.count)
    var rows: [EvidenceEstimate] = []
    for e in chosen {
      switch e {
      case .importance:
        let top = budget ?? k
        var ks: [Int] = []
        var kk = 1
        while kk < top { ks.append(kk); kk *= 10 }
        ks.append(top)
        for (rung, kk) in ks.enumerated() {
          var sum = 0.0
          for (i, p) in problems.enumerated() {
            var draws = NormalDraws(seed: seed, purpose: .evaluation, item: UInt32(i),
                                    time: UInt64(rung))
            sum += ImportanceSamplingEvidence(proposal: .gaussian(p.posterior))
              .estimate(p.joint, samples: kk, draws: &draws)
          }
          rows.append(EvidenceEstimate(.importance, "proposal q(z|x)", budget: kk,
                                       estimate: sum / n, exact: nil))
        }
      case .laplace:
        let top = budget ?? 20
        var traces: [[Double]] = [], failed = 0, converged = 0
        for p in problems {
          do {
            let r = try LaplaceEvidence(maxSteps: top, gradientTolerance: 1e-3)
              .estimate(p.joint, start: p.posterior.mean)
            traces.append(r.trace)
            if r.converged { converged += 1 }
          } catch { failed += 1 }
        }
        let variant = "Newton from μ(x); ‖∇‖∞ < 1e-3 on \(converged) of \(problems.count)"
          + (failed > 0 ? ", \(failed) without a Gaussian fit (left out)" : "")
        guard !traces.isEmpty else {
          throw ElboError("Laplace: no image's posterior has a Gaussian fit at its mode")
        }
        for s in 0...top {
          let v = traces.map { $0[min(s, $0.count - 1)] }.reduce(0, +) / Double(traces.count)
          rows.append(EvidenceEstimate(.laplace, variant, budget: s, estimate: v, exact: nil))
        }
      default: break
      }
    }
    let title = "\(type(of: experiment).name) at step \(step), first \(problems.count) test images"
    try publish(rows, title: title, estimators: chosen)
  }
}
