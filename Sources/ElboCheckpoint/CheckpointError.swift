/// A checkpoint could not be written, found or read; one line naming the file and the problem.
public struct CheckpointError: Error, CustomStringConvertible, Sendable {
  /// The checkpoint file (or directory) concerned.
  public var path: String
  /// What is wrong with it.
  public var message: String

  public init(path: String, message: String) {
    self.path = path
    self.message = message
  }

  public var description: String { "\(path): \(message)" }
}
