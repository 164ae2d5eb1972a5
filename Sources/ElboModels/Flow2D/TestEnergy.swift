import Foundation

// MARK: - Rezende & Mohamed's 2-D test energies (ICML 2015, §6.1, Table 1, Fig. 3)
//
// Unnormalised targets p(z) = e^{−U(z)}/Z on z = (z₁, z₂) ∈ ℝ², with
//
//   w₁(z) = sin(2πz₁/4),   w₂(z) = 3 exp(−½((z₁ − 1)/0.6)²),   w₃(z) = 3 σ((z₁ − 1)/0.3),
//
//   U₁(z) = ½((‖z‖ − 2)/0.4)² − ln(e^{−½((z₁−2)/0.6)²} + e^{−½((z₁+2)/0.6)²})       (the ring)
//   U₂(z) = ½((z₂ − w₁(z))/0.4)²
//   U₃(z) = −ln(e^{−½((z₂ − w₁)/0.35)²} + e^{−½((z₂ − w₁ + w₂)/0.35)²})
//   U₄(z) = −ln(e^{−½((z₂ − w₁)/0.4)²} + e^{−½((z₂ − w₁ + w₃)/0.35)²})
//
// as in the paper's Table 1 (the same formulas as the public reproductions discussed in
// casperkaae/parmesan issue #22). The paper draws them on the square [−4, 4]².
//
// U₂–U₄ do not grow along z₁ (they are periodic or constant there), so ∫ e^{−U} over ℝ² diverges
// and KL(q‖p) is not defined: q could spread along z₁ forever. Elbo's targets add a wall outside
// the plotted square, ½((|z₁| − 4)₊/0.2)², to U₂–U₄; inside [−4, 4]² they are exactly Table 1.
// U₁ decays in every direction and is used as it is. `gaussian` (U = ½‖z‖², Z = 2π) is a
// target with a known normaliser, for checks. `two-modes` is an equal mixture of N(−m, I) and
// N(m, I), m = (2, 2),
//   U(z) = −ln(e^{−½‖z + m‖²} + e^{−½‖z − m‖²}),  Z = 4π,
// Titsias & Ruiz's (2019) bimodal toy with its modes moved from (±2, 0) onto the diagonal: there
// a mean-field Gaussian that spreads over both modes is a local minimum of KL(q‖p) (0.23 nats,
// below the log 2 of sitting on one mode), so it "covers" both as one blur; on the diagonal it
// cannot stretch between them (spreading costs 1.6 nats at the centre, and KL falls all the
// way to a mode), so it settles on one mode, while a semi-implicit q can cover both.
//
// Everything is computed in Double; the tape op below stores U in Float and its gradient for the
// backward pass.

/// One of the 2-D test energies (the values of `--target`).
public enum TestEnergy: String, Codable, CaseIterable, Sendable {
  case u1, u2, u3, u4, gaussian
  case twoModes = "two-modes"

  /// The modes of `two-modes`, ±(twoModesOffset, twoModesOffset).
  public static let twoModesOffset = 2.0

  /// Half-width of the square the paper draws, beyond which U₂–U₄ get the wall.
  public static let plottedHalfWidth = 4.0
  /// Width of the wall ½((|z₁| − 4)₊/s)² (see the file comment).
  public static let wallScale = 0.2

  /// two-modes' coverage: −1 if z is within ``nearModeRadius`` of the mode −(2, 2), +1 if
  /// within it of (2, 2), else 0. (p has 0.5·(1 − e^{−2}) = 0.43 of its mass near each.)
  public static func nearMode(_ z1: Double, _ z2: Double) -> Int {
    let m = twoModesOffset, r2 = nearModeRadius * nearModeRadius
    if sq(z1 + m) + sq(z2 + m) < r2 { return -1 }
    if sq(z1 - m) + sq(z2 - m) < r2 { return 1 }
    return 0
  }
  public static let nearModeRadius = 2.0

  /// Whether the target has the wall along z₁ (U₂–U₄).
  public var hasWall: Bool { self == .u2 || self == .u3 || self == .u4 }

  /// U(z) and ∂U/∂z₁, ∂U/∂z₂.
  public func energy(_ z1: Double, _ z2: Double) -> (u: Double, d1: Double, d2: Double) {
    var (u, d1, d2) = tableEnergy(z1, z2)
    if hasWall {
      let excess = abs(z1) - Self.plottedHalfWidth
      if excess > 0 {
        let s2 = Self.wallScale * Self.wallScale
        u += 0.5 * excess * excess / s2
        d1 += (z1 > 0 ? 1 : -1) * excess / s2
      }
    }
    return (u, d1, d2)
  }

  /// Table 1's U and its gradient (no wall).
  private func tableEnergy(_ z1: Double, _ z2: Double) -> (u: Double, d1: Double, d2: Double) {
    // w₁ and its derivative, shared by U₂–U₄.
    let w1 = sin(Double.pi * z1 / 2), w1p = Double.pi / 2 * cos(Double.pi * z1 / 2)
    switch self {
    case .gaussian:
      return (0.5 * (z1 * z1 + z2 * z2), z1, z2)
    case .twoModes:
      let m = Self.twoModesOffset
      return Self.negLogSumExp(-0.5 * (sq(z1 + m) + sq(z2 + m)), -(z1 + m), -(z2 + m),
                               -0.5 * (sq(z1 - m) + sq(z2 - m)), -(z1 - m), -(z2 - m))
    case .u1:
      let r = (z1 * z1 + z2 * z2).squareRoot()
      let ring = (r - 2) / 0.4
      // ∂/∂z of ½((r − 2)/0.4)² = (r − 2)/0.16 · z/r (z/r taken as 0 at the origin).
      let radial = r > 0 ? (r - 2) / 0.16 / r : 0
      let m = Self.negLogSumExp(-0.5 * sq((z1 - 2) / 0.6), -(z1 - 2) / 0.36, 0,
                                -0.5 * sq((z1 + 2) / 0.6), -(z1 + 2) / 0.36, 0)
      return (0.5 * ring * ring + m.u, radial * z1 + m.d1, radial * z2 + m.d2)
    case .u2:
      let d = z2 - w1
      return (0.5 * sq(d / 0.4), -d / 0.16 * w1p, d / 0.16)
    case .u3:
      let w2 = 3 * exp(-0.5 * sq((z1 - 1) / 0.6)), w2p = -w2 * (z1 - 1) / 0.36
      let a = z2 - w1, b = z2 - w1 + w2, s2 = 0.35 * 0.35
      // e₁ = −½(a/0.35)², e₂ = −½(b/0.35)², with their gradients in (z₁, z₂).
      return Self.negLogSumExp(-0.5 * a * a / s2, a / s2 * w1p, -a / s2,
                               -0.5 * b * b / s2, -b / s2 * (w2p - w1p), -b / s2)
    case .u4:
      let s3 = 1 / (1 + exp(-(z1 - 1) / 0.3))
      let w3 = 3 * s3, w3p = 3 * s3 * (1 - s3) / 0.3
      let a = z2 - w1, b = z2 - w1 + w3, sa = 0.4 * 0.4, sb = 0.35 * 0.35
      return Self.negLogSumExp(-0.5 * a * a / sa, a / sa * w1p, -a / sa,
                               -0.5 * b * b / sb, -b / sb * (w3p - w1p), -b / sb)
    }
  }

  /// −log(e^{e₁} + e^{e₂}) and its gradient from those of e₁, e₂ (computed stably):
  /// ∂ = −(π₁ ∂e₁ + π₂ ∂e₂), π = softmax(e₁, e₂).
  private static func negLogSumExp(_ e1: Double, _ g11: Double, _ g12: Double,
                                   _ e2: Double, _ g21: Double, _ g22: Double)
    -> (u: Double, d1: Double, d2: Double) {
    let m = max(e1, e2)
    let x1 = exp(e1 - m), x2 = exp(e2 - m), s = x1 + x2
    let p1 = x1 / s, p2 = x2 / s
    return (-(m + log(s)), -(p1 * g11 + p2 * g21), -(p1 * g12 + p2 * g22))
  }

  // MARK: - The normaliser on a grid

  /// Half-width of the square on which log Z is integrated: the targets are below e^{−16} of
  /// their peak outside it (U₁'s ring at r = 6 is 50 nats down, the wall at |z₁| = 6 is 50 nats,
  /// U₃'s and U₄'s lower modes sit at z₂ ≥ −4 with width 0.35). The exception is two-modes,
  /// whose unit-variance modes at ±(2, 2) put 2·Φ(−4)/2 ≈ 3·10⁻⁵ of Z outside the square: log Z
  /// is low by that much.
  public static let gridHalfWidth = 6.0

  /// log Z = log ∫ e^{−U(z)} dz by the midpoint rule on an n × n grid over
  /// [−gridHalfWidth, gridHalfWidth]², summed as a log-sum-exp in Double.
  public func gridLogNormalizer(cells n: Int) -> Double {
    let a = Self.gridHalfWidth, h = 2 * a / Double(n)
    // Streaming log-sum-exp of −U: the sum s is kept relative to the lowest energy seen.
    var lowest = Double.infinity, s = 0.0
    for i in 0..<n {
      let z1 = -a + (Double(i) + 0.5) * h
      for j in 0..<n {
        let u = energy(z1, -a + (Double(j) + 0.5) * h).u
        if u < lowest {
          s = s * exp(u - lowest) + 1
          lowest = u
        } else {
          s += exp(lowest - u)
        }
      }
    }
    return -lowest + log(s) + 2 * log(h)
  }

  /// The normaliser used for the KL: log Z on a 2000 × 2000 grid (h = 0.006), and its error,
  /// estimated as the change from the 1000 × 1000 grid (h = 0.012). Computed once per target
  /// and process.
  public func logNormalizer() -> (value: Double, error: Double) {
    Self.cacheLock.lock()
    defer { Self.cacheLock.unlock() }
    if let known = Self.cache[self] { return known }
    let fine = gridLogNormalizer(cells: Self.gridCells)
    let result = (fine, abs(fine - gridLogNormalizer(cells: Self.gridCells / 2)))
    Self.cache[self] = result
    return result
  }

  /// Cells per side of the grid behind ``logNormalizer()``.
  public static let gridCells = 2000
  private static let cacheLock = NSLock()
  nonisolated(unsafe) private static var cache: [TestEnergy: (value: Double, error: Double)] = [:]
}

@inline(__always) private func sq(_ x: Double) -> Double { x * x }

// MARK: - U(z) on the tape

extension Variable {
  /// U(z) per row for z [R, 2] → [R] (forward in Double, gradient stored for the backward:
  /// dz += dU · ∂U/∂z).
  public func energy(_ target: TestEnergy) -> Variable {
    precondition(value.rank == 2 && value.cols == 2, "energy: z must be [R, 2], got \(shape)")
    let r = value.rows
    let y = tape.output([r], self)
    let dudz = tape.tensor([r, 2])                                   // ∂U/∂z [R, 2]
    let z = value.pointer, u = y.value.pointer, g = dudz.pointer
    for i in 0..<r {
      let e = target.energy(Double(z[2 * i]), Double(z[2 * i + 1]))
      u[i] = Float(e.u)
      g[2 * i] = Float(e.d1)
      g[2 * i + 1] = Float(e.d2)
    }
    guard y.requiresGrad else { return y }
    tape.record(y) {
      let dy = y.grad.pointer, dz = self.grad.pointer, g = dudz.pointer
      for i in 0..<r {
        dz[2 * i] += dy[i] * g[2 * i]
        dz[2 * i + 1] += dy[i] * g[2 * i + 1]
      }
    }
    return y
  }
}
