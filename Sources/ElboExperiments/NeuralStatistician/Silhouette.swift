/// The silhouette score of a clustering (Rousseeuw 1987): the mean over points i of
///   s(i) = (b(i) − a(i)) / max(a(i), b(i)),
/// a(i) = mean Euclidean distance from i to the other members of its cluster, b(i) = the smallest
/// mean distance from i to the members of another cluster; s(i) = 0 when i is alone in its
/// cluster (scikit-learn's convention). In [−1, 1]; near 1 when clusters are tight and apart.
/// - Parameters: points n × d (rows); labels n cluster labels (at least two distinct).
/// - Returns: the mean of s(i), or nil with fewer than two clusters.
public func silhouetteScore(_ points: [[Double]], labels: [Int]) -> Double? {
  precondition(points.count == labels.count, "silhouette: \(points.count) points, \(labels.count) labels")
  let clusters = Array(Set(labels)).sorted()
  guard clusters.count >= 2 else { return nil }
  let index = Dictionary(uniqueKeysWithValues: clusters.enumerated().map { ($1, $0) })
  var sizes = [Int](repeating: 0, count: clusters.count)
  for l in labels { sizes[index[l]!] += 1 }
  var total = 0.0
  for i in points.indices {
    // Σ distance from i to each cluster (i itself adds 0 to its own).
    var sums = [Double](repeating: 0, count: clusters.count)
    for j in points.indices where j != i {
      var d2 = 0.0
      for k in points[i].indices { let t = points[i][k] - points[j][k]; d2 += t * t }
      sums[index[labels[j]]!] += d2.squareRoot()
    }
    let own = index[labels[i]]!
    guard sizes[own] > 1 else { continue }
    let a = sums[own] / Double(sizes[own] - 1)
    var b = Double.infinity
    for c in clusters.indices where c != own { b = min(b, sums[c] / Double(sizes[c])) }
    let m = max(a, b)
    total += m > 0 ? (b - a) / m : 0
  }
  return total / Double(points.count)
}
