import Foundation

/// The seed's "plot during training" figures (seed 004, 2.f and 3.f), drawn from metrics records:
///   i.   the free energy F = −ELBO,
///   ii.  the log-likelihood term (log p(x|z) for a latent-variable model, log p(y|x,θ) for a Bayesian network),
///   iii. the surprise log p(z) − log q(z|x) (or log p(θ) − log q(θ)), beside −KL where it is
///        logged (E_q[surprise] = −KL, so the two curves should agree up to Monte Carlo noise).
/// Training values are per logging window (`kind: train`), test values per epoch (`kind: epoch`,
/// keys `test_…`). Which key is which follows the loop's naming: `neg_elbo`, the keys that begin
/// with `log_` (a workload's log-likelihood term), `surprise`, `kl`.
public enum TrainingCurves {
  /// What the surprise is about: a per-example latent z (log p(z) − log q(z|x), KL often in
  /// closed form) or the network's weights (log p(w) − log q(w), whose KL is
  /// closed-form for a Gaussian prior and the Monte Carlo log q(w) − log p(w) at the step's
  /// weight sample otherwise, where it is exactly −surprise).
  public enum Posterior: String, Sendable {
    case latent, weights
    /// An exact-likelihood model (no posterior): no surprise figure.
    case none
  }

  /// A figure for `plots/`: file name (no directory), the chart, and the report caption.
  public struct Figure {
    public let fileName: String
    public let caption: String
    public let plot: Plot
  }

  /// The figures that `records` have data for (none before the first logged window).
  public static func figures(_ records: [MetricsRecord], posterior: Posterior = .latent)
    -> [Figure] {
    let train = latestAttempt(records.filter { $0.kind == "train" })
    let epochs = latestAttempt(records.filter { $0.kind == "epoch" })
    var figures: [Figure] = []

    func series(_ rs: [MetricsRecord], _ value: (MetricsRecord) -> Double?) -> (x: [Double], y: [Double]) {
      var x: [Double] = [], y: [Double] = []
      for r in rs {
        guard let s = r.number("step"), let v = value(r) else { continue }
        x.append(s); y.append(v)
      }
      return (x, y)
    }
    /// Adds the train curve and, if logged, the per-epoch test curve (a line through dots).
    func add(_ p: inout Plot, train name: String, trainKey: (MetricsRecord) -> Double?,
             test testName: String, testKey: (MetricsRecord) -> Double?, dashed: Bool = false) -> Bool {
      let t = series(train, trainKey), e = series(epochs, testKey)
      if !t.x.isEmpty { p.line(name, x: t.x, y: t.y, dashed: dashed) }
      if !e.x.isEmpty {
        p.line(testName, x: e.x, y: e.y, dashed: dashed)
        p.points(testName, x: e.x, y: e.y)
      }
      return !t.x.isEmpty || !e.x.isEmpty
    }

    // i. F = −ELBO.
    // An exact-likelihood model (no posterior) has no bound: its loss is −log p(x) itself.
    let exact = posterior == .none
    var f = Plot(title: exact ? "Negative log-likelihood F = −log p(x) (exact)" : "Free energy F = −ELBO",
                 xLabel: "optimizer step", yLabel: "F (nats per item)")
    if add(&f, train: "train (per window)", trainKey: { $0.number("neg_elbo") },
           test: "test (per epoch)", testKey: { r in
             r.number("test_neg_elbo") ?? r.number("test_elbo").map { -$0 }
               ?? (exact ? r.number("test_log_likelihood").map { -$0 } : nil) }) {
      figures.append(Figure(fileName: "free_energy.svg",
                            caption: (exact ? "The loss F = −log p(x), exact" : "The loss F = −ELBO")
                              + " (lower is better): training batches averaged over each logging window, and the test set at the end of each epoch.",
                            plot: f))
    }

    // ii. The log-likelihood term(s).
    let llKeys = keys(train, epochs).filter { $0.hasPrefix("log_") }
    if !llKeys.isEmpty {
      let named = llKeys.map(pretty).filter { $0 != "log-likelihood" }
      var p = Plot(title: "Log-likelihood" + (named.isEmpty ? "" : " " + named.joined(separator: ", ")),
                   xLabel: "optimizer step", yLabel: "nats per item")
      var any = false
      for k in llKeys {
        let suffix = llKeys.count > 1 ? " " + pretty(k) : ""
        any = add(&p, train: "train" + suffix, trainKey: { $0.number(k) },
                  test: "test" + suffix, testKey: { $0.number("test_" + k) }) || any
      }
      if any {
        figures.append(Figure(fileName: "log_likelihood.svg",
                              caption: "The expected log-likelihood term of the bound (higher is better), train per window and test per epoch.",
                              plot: p))
      }
    }

    // iii. Surprise and −KL.
    if posterior == .none { return figures }
    let (title, klName, caption): (String, String, String)
    switch posterior {
    case .none:
      return figures
    case .latent:
      title = "Surprise log p(z) − log q(z|x)"
      klName = "−KL (analytic)"
      caption = "The surprise, a Monte Carlo estimate of −KL(q ‖ p), beside the analytic −KL: the price in nats of moving the posterior away from the prior."
    case .weights:
      title = "Surprise log p(w) − log q(w), this example's share"
      klName = "−KL"
      caption = "The surprise log p(w) − log q(w) at the step's weight sample, beside −KL(q ‖ p) (closed form for a Gaussian prior; for the scale mixture the Monte Carlo estimate at the same sample, so the curves coincide), both per example: π_i·(…)/B. The price in nats of moving the weights' posterior away from the prior."
    }
    var s = Plot(title: title, xLabel: "optimizer step", yLabel: "nats per item")
    var any = add(&s, train: "surprise, train", trainKey: { $0.number("surprise") },
                  test: "surprise, test", testKey: { $0.number("test_surprise") })
    any = add(&s, train: klName + ", train", trainKey: { $0.number("kl").map { -$0 } },
              test: klName + ", test", testKey: { $0.number("test_kl").map { -$0 } },
              dashed: true) || any
    if any {
      figures.append(Figure(fileName: "surprise.svg", caption: caption, plot: s))
    }
    return figures
  }

  /// Records of one kind with those a resumed run logged again removed: when a step is at or
  /// before the last one kept, the run was resumed from an earlier checkpoint, and the records
  /// it logged after that checkpoint (now re-logged) are dropped, so curves never double back.
  public static func latestAttempt(_ records: [MetricsRecord]) -> [MetricsRecord] {
    var kept: [MetricsRecord] = []
    for r in records {
      if let s = r.number("step") {
        while let last = kept.last?.number("step"), last >= s { kept.removeLast() }
      }
      kept.append(r)
    }
    return kept
  }

  /// Keys present in the train records or, without "test_", in the epoch records; sorted.
  static func keys(_ train: [MetricsRecord], _ epochs: [MetricsRecord]) -> [String] {
    var set = Set<String>()
    for r in train { set.formUnion(r.keys) }
    for r in epochs { for k in r.keys where k.hasPrefix("test_") { set.insert(String(k.dropFirst(5))) } }
    return set.sorted()
  }

  /// "log_px_given_z" → "log p(x|z)", "log_likelihood" → "log-likelihood"; otherwise the key.
  static func pretty(_ key: String) -> String {
    let parts = key.split(separator: "_").map(String.init)
    if parts.count == 4, parts[0] == "log", parts[1].hasPrefix("p"), parts[2] == "given" {
      return "log p(\(parts[1].dropFirst())|\(parts[3]))"
    }
    return key == "log_likelihood" ? "log-likelihood" : key.replacingOccurrences(of: "_", with: " ")
  }
}
