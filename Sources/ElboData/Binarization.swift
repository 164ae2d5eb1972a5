/// Static binarisation: 1 where the intensity exceeds `threshold`, else 0.
///
/// Gives a fixed binary data set (as in many VAE papers' "statically binarised MNIST").
/// An intensity exactly equal to the threshold maps to 0.
public func binarizeStatic(_ pixels: [Float], threshold: Float = 0.5) -> [Float] {
  pixels.map { $0 > threshold ? 1 : 0 }
}

/// Dynamic binarisation: writes 1 where `uniforms[i] < pixels[i]`, else 0, into `into`.
///
/// Each pixel becomes a Bernoulli draw with its intensity as probability, fresh every time a
/// minibatch is drawn. The uniforms in `[0, 1)` come from the caller's counter-based RNG, so
/// this module stays deterministic and RNG-free and every rank can reproduce the same draw.
/// `into` may be the same memory as `pixels` (each element is read before it is written), so
/// a minibatch buffer can be binarised in place. All three buffers must have the same count;
/// a mismatch is a programming error and stops the process with a message (rather than
/// reading or writing out of bounds).
public func binarizeDynamic(
  _ pixels: UnsafeBufferPointer<Float>, uniforms: UnsafeBufferPointer<Float>,
  into: UnsafeMutableBufferPointer<Float>
) {
  // fatalError (not precondition): it stays in every configuration, -Ounchecked included (the
  // package no longer uses it), and an unchecked size mismatch would corrupt memory.
  guard pixels.count == uniforms.count, pixels.count == into.count else {
    fatalError(
      "binarizeDynamic: \(pixels.count) pixels, \(uniforms.count) uniforms, "
        + "\(into.count) outputs; counts must match")
  }
  guard let p = pixels.baseAddress, let u = uniforms.baseAddress, let o = into.baseAddress
  else { return }  // All empty.
  for i in 0..<pixels.count {
    o[i] = u[i] < p[i] ? 1 : 0
  }
}
