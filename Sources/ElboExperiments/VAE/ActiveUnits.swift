import ElboModels

/// Active units (Burda et al. 2016, §5.2): A_u = Var_x E_q[z_u | x] > 0.01. A test-set pass adds
/// Σ_x μ_u and Σ_x μ_u² into 2L slots of the buffer it all-reduces (from `offset` on), so the
/// count is over the whole test set whatever the ranks.
enum ActiveUnits {
  /// Adds the rows of μ [rows, L] to sums[offset ..< offset + L] and their squares to the next L.
  static func accumulate(_ mu: Tensor, rows: Int, latent l: Int, into sums: inout [Double],
                         at offset: Int) {
    let p = mu.pointer
    for row in 0..<rows {
      for u in 0..<l {
        let v = Double(p[row * l + u])
        sums[offset + u] += v
        sums[offset + l + u] += v * v
      }
    }
  }

  /// The units whose mean over `examples` has variance > 0.01, from the reduced sums.
  static func count(_ total: [Double], at offset: Int, latent l: Int, examples n: Double) -> Int {
    var active = 0
    for u in 0..<l {
      let mean = total[offset + u] / n
      if total[offset + l + u] / n - mean * mean > 0.01 { active += 1 }
    }
    return active
  }
}
