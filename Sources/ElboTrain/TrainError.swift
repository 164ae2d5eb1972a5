/// An error a user can act on: one line that names the flag, file or term and the problem.
public struct ElboError: Error, CustomStringConvertible, Sendable {
  public let description: String
  public init(_ description: String) { self.description = description }
}
