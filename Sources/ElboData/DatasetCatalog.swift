import Foundation

/// Resolves the data-set names accepted on the command line (`--data`).
public enum DatasetCatalog {
  /// The built-in names, in the order they are suggested to users.
  public static let names = ["fashion-mnist", "mnist-5k"]

  /// Loads a data set by name: `"fashion-mnist"`, `"mnist-5k"`, or a directory of IDX files.
  ///
  /// Built-in names win over a directory of the same name in the working directory, so a
  /// stray folder cannot silently change what `--data mnist-5k` means.
  public static func load(_ name: String) throws -> ImageSplit {
    switch name {
    case "fashion-mnist":
      return try loadFashionMNIST()
    case "mnist-5k":
      return try loadMNIST5k()
    default:
      var isDirectory: ObjCBool = false
      if FileManager.default.fileExists(atPath: name, isDirectory: &isDirectory),
        isDirectory.boolValue
      {
        return try loadIDXDirectory(name)
      }
      throw DataError(
        nil, "unknown data set '\(name)': use fashion-mnist, mnist-5k or a directory of IDX files")
    }
  }
}
