import ElboData
import ElboModels
import ElboTrain

/// Sets of same-class images, for the Neural Statistician's few-shot experiment (Edwards &
/// Storkey §5.3: sets of one character's images; here one Fashion-MNIST class's images).
extension SetCollection {
  /// The images of `classes`, binarised at 0.5, each class's images shuffled by (seed, class)
  /// and cut into sets of `setSize` (a class's remainder is dropped). Metadata `class`.
  public static func imageSets(_ images: ImageDataset, classes: [Int], setSize: Int,
                               seed: UInt64, name: String) throws -> SetCollection {
    let d = images.dimension
    var points: [Float] = [], offsets = [0], labels: [Double] = []
    for k in classes {
      var members = images.labels.indices.filter { Int(images.labels[$0]) == k }
      shuffle(&members, seed: seed, stream: UInt32(k))
      for start in stride(from: 0, to: members.count - setSize + 1, by: setSize) {
        for i in members[start..<(start + setSize)] {
          points += binarizeStatic(Array(images.pixels[(i * d)..<((i + 1) * d)]))
        }
        offsets.append(points.count / d)
        labels.append(Double(k))
      }
    }
    guard labels.count >= 2 else {
      throw ElboError("\(name): too few images for sets of \(setSize) (--points)")
    }
    let g = GeneratedCollection(points: points, dimension: d, offsets: offsets, metadata: [
      "class": CollectionMetadata(values: labels, codes: (0...(classes.max() ?? 0)).map { "class \($0)" }),
    ])
    return try SetCollection(source: InMemoryCollection(g), name: name, metadata: g.metadata,
                             communicator: nil)
  }
}

/// A Fisher–Yates shuffle driven by (seed, shuffle, item: stream).
func shuffle(_ a: inout [Int], seed: UInt64, stream: UInt32) {
  var rng = RandomStream(NoiseAddress(seed: seed, purpose: .shuffle, time: 1 << 40, item: stream))
  for i in stride(from: a.count - 1, to: 0, by: -1) { a.swapAt(i, rng.integer(below: i + 1)) }
}
