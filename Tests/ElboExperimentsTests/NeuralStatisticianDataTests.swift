import ElboData
import ElboExperiments
import ElboModels
import XCTest

/// Spatial MNIST's point sets and the few-shot episodes: points inside the image and drawn
/// where the ink is, deterministic generation, the pixel baseline on separable classes, and
/// episodes that do not depend on how they are split (over ranks).
final class NeuralStatisticianDataTests: XCTestCase {
  /// 4 × 4 images: class k lights pixel row k only (intensity 1), 3 images per class.
  func blockImages() throws -> ImageDataset {
    var pixels: [Float] = [], labels: [Int32] = []
    for k in 0..<4 {
      for copy in 0..<3 {
        var img = [Float](repeating: 0, count: 16)
        for c in 0..<4 { img[k * 4 + c] = 1 - 0.1 * Float(copy) }
        pixels += img
        labels.append(Int32(k))
      }
    }
    return try ImageDataset(name: "blocks", rows: 4, cols: 4, pixels: pixels, labels: labels)
  }

  func testSpatialPointsFallOnTheInk() throws {
    let images = try blockImages()
    let a = SpatialMNIST.sets(images, count: 12, points: 30, seed: 3)
    let b = SpatialMNIST.sets(images, count: 12, points: 30, seed: 3)
    XCTAssertEqual(a.points, b.points)
    XCTAssertEqual(a.metadata["class"]?.values, images.labels.map(Double.init))
    for i in 0..<12 {
      let k = Int(images.labels[i])
      for j in 0..<30 {
        let x = a.points[(i * 30 + j) * 2], y = a.points[(i * 30 + j) * 2 + 1]
        XCTAssert((0..<4).contains(x), "x in the image")
        // Row k (from the top) is y ∈ [3 − k, 4 − k).
        XCTAssertEqual(Int(y), 3 - k, "digit \(i): point \(j) off the ink (y = \(y))")
      }
    }
  }

  func testPixelBaselineIsPerfectOnSeparableClassesAndEpisodesSplitAnyhow() throws {
    let images = try blockImages()
    var c = NeuralStatistician.Config()
    c.dimension = 16; c.hidden = 4; c.hiddenLayers = 1; c.context = 2; c.latent = 2
    c.stochasticLayers = 1; c.observation = .bernoulli
    let model = NeuralStatistician(c, seed: 1)
    let task = FewShotTask(name: "blocks", key: "blocks", images: images, classes: [0, 1, 2, 3],
                           ways: 3, shots: 2)
    let whole = task.score(model, episodes: 0..<40, seed: 5)
    XCTAssertEqual(whole.1, 40, "the pixel nearest neighbour separates the blocks")
    let a = task.score(model, episodes: 0..<13, seed: 5), b = task.score(model, episodes: 13..<40, seed: 5)
    XCTAssertEqual(a.0 + b.0, whole.0)
    XCTAssertEqual(a.1 + b.1, whole.1)
  }
}
