/// An affine change of units, z = (u − mean) / std, fitted on training data.
///
/// Regression networks see standardised inputs and targets (as in the BNN regression
/// literature, e.g. Hernández-Lobato & Adams 2015): a weight prior such as N(0, 1) only means
/// something relative to the scale of the data. In raw units the toy's x spans [0, 0.5], so
/// N(0, 1) first-layer weights move a unit's pre-activation by ~0.5 over the whole data range and
/// the prior says "functions barely vary over the data"; after standardising, the prior speaks of
/// functions that vary on the scale of the data, and the region beyond it is as far as it looks.
public struct Standardization: Codable, Equatable, Sendable {
  public var mean: Double
  public var std: Double

  /// The identity (no change of units).
  public static let identity = Standardization(mean: 0, std: 1)

  public init(mean: Double, std: Double) {
    precondition(std > 0 && std.isFinite, "Standardization: std must be positive and finite")
    self.mean = mean
    self.std = std
  }

  /// Mean and (population) standard deviation of `values`; the identity for fewer than two
  /// values or zero spread, where the units cannot be estimated.
  public init(fitting values: [Float]) {
    guard values.count > 1 else { self = .identity; return }
    var sum = 0.0
    for v in values { sum += Double(v) }
    let m = sum / Double(values.count)
    var ss = 0.0
    for v in values { ss += (Double(v) - m) * (Double(v) - m) }
    let s = (ss / Double(values.count)).squareRoot()
    self = s > 0 && s.isFinite ? Standardization(mean: m, std: s) : .identity
  }

  /// Data units → model units.
  @inlinable public func forward(_ u: Double) -> Double { (u - mean) / std }
  /// Model units → data units.
  @inlinable public func inverse(_ z: Double) -> Double { mean + std * z }
}
