import ElboData
import ElboDistributed
import Foundation

/// Do all ranks run the same thing? Checked before a run's first collective of training.
///
/// Nodes of a cluster can hold different builds, a config file edited on one of them, or another
/// copy of a data set. Each rank describes what it runs as four items — the build (a digest of
/// its executable), the resolved configuration, the model layout (every parameter's name and
/// shape) and the data (item count and a content digest) — and the ranks compare their digests in
/// one all-gather. On a difference every rank learns the same verdict (the branch is taken on
/// gathered values, identical everywhere), rank 0's text of the item is broadcast to the first
/// differing rank, which names the first differing detail, and every rank throws the same one
/// line: no crash, no hang, no silently wrong run.
public struct RunIdentity: Sendable, Equatable {
  public struct Item: Sendable, Equatable {
    public let name: String
    /// The full text compared (a JSON document, one parameter per line, …).
    public let text: String
    public init(name: String, text: String) {
      self.name = name
      self.text = text
    }
  }

  public let items: [Item]

  public init(items: [Item]) { self.items = items }

  /// The four items for a run of `experiment` with the resolved `configJSON`.
  public init(experiment: any Experiment, configJSON: String,
              build: String = RunIdentity.buildDigest()) {
    let layout = experiment.store.specs.map { "\($0.name) \($0.shape)" }.joined(separator: "\n")
    var data = "\(experiment.dataDescription): \(experiment.itemCount) items"
    if let digest = experiment.dataDigest { data += ", content digest \(hex(digest))" }
    items = [Item(name: "build", text: build), Item(name: "configuration", text: configJSON),
             Item(name: "model layout", text: layout), Item(name: "data", text: data)]
  }

  /// The executable's content digest (what "the same build" means), or why there is none.
  public static func buildDigest() -> String {
    let path = "/proc/self/exe"
    let resolved = (try? FileManager.default.destinationOfSymbolicLink(atPath: path)) ?? path
    guard let handle = FileHandle(forReadingAtPath: path),
          let (length, digest) = try? ContentDigest.of(handle) else {
      return "\(resolved) (unreadable)"
    }
    try? handle.close()
    return "\(hex(digest)) (\(length) bytes, \(resolved))"
  }

  /// Collective: throws the same ``ElboError`` on every rank unless every rank's items equal
  /// rank 0's.
  public func checkAgreement(_ communicator: Communicator) throws {
    let digests = items.map { ContentDigest.of(Data($0.text.utf8)) }
    let all = try communicator.allgather(digests, name: "run identity")
    let n = items.count
    // The first (item, rank) that differs from rank 0: the same answer on every rank.
    var first: (item: Int, rank: Int)?
    search: for i in 0..<n {
      for r in 1..<communicator.size where all[r * n + i] != all[i] {
        first = (i, r)
        break search
      }
    }
    guard let (item, rank) = first else { return }
    let reference = try communicator.broadcast(
      string: communicator.rank == 0 ? items[item].text : "", root: 0, name: "run identity text")
    let detail = communicator.rank == rank
      ? RunIdentity.firstDifference(items[item].name, reference: reference,
                                    mine: items[item].text, rank: rank)
      : ""
    let said = try communicator.broadcast(string: detail, root: rank, name: "run identity detail")
    let others = (1..<communicator.size).filter { r in (0..<n).contains { all[r * n + $0] != all[$0] } }
    let also = others.count > 1 ? " (ranks differing from rank 0: "
      + others.prefix(8).map(String.init).joined(separator: ", ") + ")" : ""
    throw ElboError("rank \(rank) differs from rank 0 in its \(items[item].name): \(said)\(also); "
      + "every rank must run the same build, configuration, model and data")
  }

  /// The first difference between rank 0's text of an item and rank `rank`'s, in one phrase.
  public static func firstDifference(_ item: String, reference: String, mine: String,
                                     rank: Int) -> String {
    if item == "configuration",
       let a = try? JSONSerialization.jsonObject(with: Data(reference.utf8)),
       let b = try? JSONSerialization.jsonObject(with: Data(mine.utf8)),
       let d = jsonDifference(a, b, path: "", rank: rank) {
      return d
    }
    let left = reference.split(separator: "\n", omittingEmptySubsequences: false)
    let right = mine.split(separator: "\n", omittingEmptySubsequences: false)
    for i in 0..<max(left.count, right.count) {
      let l = i < left.count ? String(left[i]) : "(nothing)"
      let r = i < right.count ? String(right[i]) : "(nothing)"
      if l != r { return "\(r) on rank \(rank), \(l) on rank 0" }
    }
    return "the texts differ only in their encoding"
  }

  /// The first key path where two JSON values differ ("vae.hidden: 64 on rank 1, 200 on rank
  /// 0"), or nil if they are equal.
  static func jsonDifference(_ a: Any, _ b: Any, path: String, rank: Int) -> String? {
    let label = path.isEmpty ? "the document" : path
    if let x = a as? [String: Any], let y = b as? [String: Any] {
      for key in Set(x.keys).union(y.keys).sorted() {
        let sub = path.isEmpty ? key : "\(path).\(key)"
        guard let xv = x[key] else { return "\(sub) is set on rank \(rank), absent on rank 0" }
        guard let yv = y[key] else { return "\(sub) is absent on rank \(rank), set on rank 0" }
        if let d = jsonDifference(xv, yv, path: sub, rank: rank) { return d }
      }
      return nil
    }
    if let x = a as? [Any], let y = b as? [Any] {
      if x.count != y.count {
        return "\(label) has \(y.count) entries on rank \(rank), \(x.count) on rank 0"
      }
      for (i, (xv, yv)) in zip(x, y).enumerated() {
        if let d = jsonDifference(xv, yv, path: "\(path)[\(i)]", rank: rank) { return d }
      }
      return nil
    }
    let xs = "\(a)", ys = "\(b)"
    return xs == ys ? nil : "\(label): \(ys) on rank \(rank), \(xs) on rank 0"
  }
}

private func hex(_ v: UInt64) -> String {
  let s = String(v, radix: 16)
  return String(repeating: "0", count: max(0, 16 - s.count)) + s
}

extension ImageDataset {
  /// Digest of the pixels, labels and shape.
  public var contentDigest: UInt64 {
    ContentDigest.combine([ContentDigest.of(pixels), labels.withUnsafeBytes { ContentDigest.of($0) },
                           UInt64(rows), UInt64(cols)])
  }
}

extension RegressionToy {
  /// Digest of the points.
  public var contentDigest: UInt64 {
    ContentDigest.combine([ContentDigest.of(x), ContentDigest.of(y)])
  }
}
