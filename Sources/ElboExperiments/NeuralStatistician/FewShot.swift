import ElboData
import ElboDistributed
import ElboModels
import ElboTrain

/// M-way K-shot classification by the Neural Statistician (Edwards & Storkey §5.3): an
/// episode draws M classes, K support images of each and one query image of one of them; the
/// query gets the class m minimising KL(q(c|query) ‖ q(c|support_m)). The baseline gives it the
/// class of its nearest support image in pixels (Euclidean, grey levels).
public struct FewShotTask: Sendable {
  /// Row name, e.g. "fashion-mnist 6–9".
  public let name: String
  public let key: String
  public let images: ImageDataset
  public let classes: [Int]
  public let ways: Int
  public let shots: Int

  public init(name: String, key: String, images: ImageDataset, classes: [Int], ways: Int,
              shots: Int) {
    self.name = name; self.key = key; self.images = images; self.classes = classes
    self.ways = ways; self.shots = shots
  }

  /// Correct answers (model, baseline) over episodes `episodes` (their draws are keyed by the
  /// episode index, so any split over ranks scores the same episodes).
  public func score(_ model: NeuralStatistician, episodes: Range<Int>, seed: UInt64) -> (Int, Int) {
    let d = images.dimension
    let byClass = Dictionary(grouping: images.labels.indices) { Int(images.labels[$0]) }
    var correct = 0, baseline = 0
    let tape = Tape(recording: false)
    for e in episodes {
      var rng = RandomStream(NoiseAddress(seed: seed, purpose: .evaluation, time: 1 << 41,
                                          item: UInt32(e)))
      var pool = classes
      var chosen: [Int] = []
      for _ in 0..<ways { chosen.append(pool.remove(at: rng.integer(below: pool.count))) }
      let answer = rng.integer(below: ways)
      var support: [[Int]] = [], query = 0
      for (m, k) in chosen.enumerated() {
        var members = byClass[k] ?? []
        var picked: [Int] = []
        for _ in 0..<(shots + (m == answer ? 1 : 0)) {
          picked.append(members.remove(at: rng.integer(below: members.count)))
        }
        if m == answer { query = picked.removeLast() }
        support.append(picked)
      }
      // q(c|·) of the M support sets and the query (a set of one), in one batch.
      tape.reset()
      let sets = support + [[query]]
      let n = shots
      let x = tape.tensor([sets.count, n, d], zeroed: true), mask = tape.tensor([sets.count, n], zeroed: true)
      for (b, members) in sets.enumerated() {
        for (j, i) in members.enumerated() {
          let bits = binarizeStatic(Array(images.pixels[(i * d)..<((i + 1) * d)]))
          (x.pointer + (b * n + j) * d).update(from: bits, count: d)
          mask[b * n + j] = 1
        }
      }
      let q = model.contextPosterior(points: x, mask: mask, on: tape)
      let mu = q.mean.value, lv = q.logVariance.value, c = mu.cols, qi = ways
      func kl(_ a: Int, _ b: Int) -> Double {  // KL(q_a ‖ q_b), diagonal Gaussians
        var s = 0.0
        for k in 0..<c {
          let la = Double(lv[a * c + k]), lb = Double(lv[b * c + k])
          let dm = Double(mu[a * c + k] - mu[b * c + k])
          s += 0.5 * (lb - la + (exp(la) + dm * dm) / exp(lb) - 1)
        }
        return s
      }
      let guess = (0..<ways).min { kl(qi, $0) < kl(qi, $1) }!
      if guess == answer { correct += 1 }
      // Pixel nearest neighbour over all support images.
      var best = Double.infinity, nearest = 0
      for (m, members) in support.enumerated() {
        for i in members {
          var s = 0.0
          for p in 0..<d {
            let t = Double(images.pixels[query * d + p] - images.pixels[i * d + p]); s += t * t
          }
          if s < best { best = s; nearest = m }
        }
      }
      if nearest == answer { baseline += 1 }
    }
    return (correct, baseline)
  }
}

#if canImport(Glibc)
import Glibc
#endif
