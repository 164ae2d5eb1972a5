/// Where Debian's `dataset-fashion-mnist` package installs the four gzip IDX files.
public let defaultFashionMNISTDirectory = "/usr/share/datasets/fashion-mnist"

/// Loads Fashion-MNIST (60,000 training and 10,000 test images of 28×28, 10 classes).
///
/// The data comes from the Debian package rather than the network so that runs are
/// reproducible offline; a missing package is reported with the command that installs it.
public func loadFashionMNIST(directory: String = defaultFashionMNISTDirectory) throws
  -> ImageSplit
{
  let split = try loadIDXDirectory(
    directory, name: "fashion-mnist",
    missingHint: " (Fashion-MNIST: apt-get install dataset-fashion-mnist)")
  // Models are built for 28×28×10; catch a directory of some other IDX data early.
  for set in [split.train, split.test] {
    guard set.rows == 28, set.cols == 28 else {
      throw DataError(
        directory, "\(set.name) images are \(set.rows)×\(set.cols), Fashion-MNIST is 28×28")
    }
    if let bad = set.labels.first(where: { $0 > 9 }) {
      throw DataError(directory, "\(set.name) has label \(bad), Fashion-MNIST labels are 0–9")
    }
  }
  return split
}
