import ElboProbability
import Foundation

/// Every evidence estimator of seed 001 run on the linear-Gaussian model at a ladder of budgets,
/// each estimate the mean over the same N observations beside the mean exact log p(x) — what
/// `elbo evidence` prints and plots.
///
/// Noise: the model is drawn from (seed, initialization), the observations from (seed,
/// dataGeneration, item 1), the amortised encoder's training set from item 2, and each estimator's
/// draws from its own address, so that adding one estimator changes no other's numbers.
public struct LinearGaussianStudy {
  public let model: LinearGaussianModel
  public let observations: [[Double]]
  public let seed: UInt64
  /// Draws of q per observation for the perturbative moments.
  public var perturbativeSamples = 100_000
  /// Observations the amortised encoder is trained on.
  public var trainingObservations = 2000

  public init(latent d: Int, observed D: Int, points: Int, seed: UInt64) {
    model = .random(latent: d, observed: D, seed: seed)
    observations = model.sample(points, seed: seed, item: 1)
    self.seed = seed
  }

  /// The default largest budget of each estimator.
  public static func defaultBudget(_ e: EvidenceEstimator) -> Int {
    switch e {
    case .importance: return 4096
    case .laplace: return 3
    case .perturbative: return 8
    case .meanField: return 10
    case .amortized: return 2000
    }
  }

  /// The mean exact log p(x) over the observations.
  public var exact: Double {
    observations.map(model.exactLogEvidence).reduce(0, +) / Double(observations.count)
  }

  func mean(_ f: (Int, [Double]) -> Double) -> Double {
    var s = 0.0
    for (i, x) in observations.enumerated() { s += f(i, x) }
    return s / Double(observations.count)
  }

  /// The estimates of `estimator` at every rung of its budget ladder up to `budget`.
  public func estimates(_ estimator: EvidenceEstimator, budget: Int? = nil) throws
    -> [EvidenceEstimate]
  {
    let top = budget ?? LinearGaussianStudy.defaultBudget(estimator)
    let exact = self.exact
    func row(_ variant: String, _ b: Int, _ v: Double) -> EvidenceEstimate {
      EvidenceEstimate(estimator, variant, budget: b, estimate: v, exact: exact)
    }
    switch estimator {
    case .importance:
      // K = 1, 4, 16, … and the budget itself; the prior and the mean-field q as proposals.
      var ks: [Int] = []
      var k = 1
      while k < top { ks.append(k); k *= 4 }
      ks.append(top)
      var out: [EvidenceEstimate] = []
      for (variant, proposal) in [("prior", 0), ("mean-field q", 1)] {
        for (rung, k) in ks.enumerated() {
          out.append(row(variant, k, mean { i, x in
            let j = model.joint(x)
            let q: ImportanceSamplingEvidence.Proposal =
              proposal == 0 ? .prior : .gaussian(MeanFieldEvidence().run(j).posterior)
            var draws = NormalDraws(seed: seed, purpose: .evaluation, item: UInt32(i),
                                    time: UInt64(100 * proposal + rung))
            return ImportanceSamplingEvidence(proposal: q).estimate(j, samples: k, draws: &draws)
          }))
        }
      }
      return out
    case .laplace:
      var traces: [[Double]] = []
      for x in observations {
        let r = try LaplaceEvidence(maxSteps: top, gradientTolerance: 0)
          .estimate(model.joint(x), start: [Double](repeating: 0, count: model.latent))
        traces.append(r.trace)
      }
      return (0...top).map { step in
        row("Newton from z = 0", step,
            traces.map { $0[min(step, $0.count - 1)] }.reduce(0, +) / Double(traces.count))
      }
    case .perturbative:
      // Around the mean-field fixed point; order 1 is its ELBO.
      var moments = [Double](repeating: 0, count: top), cumulants = moments, closed = moments
      for (i, x) in observations.enumerated() {
        let j = model.joint(x)
        let q = MeanFieldEvidence().run(j).posterior
        var draws = NormalDraws(seed: seed, purpose: .evaluation, item: UInt32(i), time: 1000)
        let y = q.logWeights(j, samples: perturbativeSamples, draws: &draws)
        let m = PerturbativeEvidence.orders(logWeights: y, maxOrder: top, series: .moments)
        let c = PerturbativeEvidence.orders(logWeights: y, maxOrder: top, series: .cumulants)
        let e = PerturbativeEvidence.exactCumulantOrders(j, around: q, maxOrder: top)
        for n in 0..<top {
          moments[n] += m[n] / Double(observations.count)
          cumulants[n] += c[n] / Double(observations.count)
          closed[n] += e[n] / Double(observations.count)
        }
      }
      var out: [EvidenceEstimate] = []
      for (variant, values) in [("moments (seed's series), MC", moments),
                                ("cumulants, MC", cumulants), ("cumulants, closed form", closed)] {
        for n in 0..<top { out.append(row(variant, n + 1, values[n])) }
      }
      return out
    case .meanField:
      var sums = [Double](repeating: 0, count: top + 1)
      for x in observations {
        let trace = MeanFieldEvidence(sweeps: top).run(model.joint(x)).trace
        for s in 0...top { sums[s] += trace[s] / Double(observations.count) }
      }
      return (0...top).map { row("ELBO, CAVI from μ = 0", $0, sums[$0]) }
    case .amortized:
      let train = model.sample(trainingObservations, seed: seed, item: 2)
      var encoder = AmortizedGaussianEncoder(inputs: model.observed, latent: model.latent)
      var out: [EvidenceEstimate] = []
      let every = max(top / 20, 1)
      AmortizedEvidence(steps: top).train(
        &encoder, observations: train, joint: { self.model.joint($0) }, seed: seed, every: every
      ) { step, enc in
        out.append(row("ELBO of q(z|x) = N(Ax + b, diag s²)", step,
                       mean { _, x in model.joint(x).elbo(enc.posterior(x)) }))
      }
      return out
    }
  }
}
