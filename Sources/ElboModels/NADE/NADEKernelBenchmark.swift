import CKernels
#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

/// Times one NADE training step's forward + backward (the fused op, through the tape) on
/// synthetic binary data, and compares the floating-point rate with the core's FMA peak.
///
/// Flops per (example, pixel, hidden unit), as the kernels execute them (an FMA counts 2, like
/// the peak; compares, selects and integer exponent arithmetic count 0), with ρ the fraction of
/// ones (running-sum and dW updates are skipped where x_d = 0):
///   σ (nade.c `nade_sigmoid`): range reduction 2 + 1 + 2 + 2, polynomial 5 FMAs = 10,
///     e^r = p·r² + r + 1: 3 + 1, scaling 1, 1 + e 1, division 1                   = 24
///   forward:  σ 24 + output dot product (FMA) 2 + running sum ρ                   = 26 + ρ
///   backward: σ 24 + dV (FMA) 2 + da = (dl·v)·(h − h²) + acc: 1 + 1 + 1 + 2 = 5,
///             running subtraction ρ + dW update ρ                                 = 31 + 2ρ
///   total 57 + 3ρ (57.9 at ρ = 0.3).
/// The per-(example, pixel) scalar work (softplus, σ of the logit, db) and the final dc are
/// O(1/H) of this and not counted.
///
/// Times are the calling thread's CPU time (CLOCK_THREAD_CPUTIME_ID), so that a machine shared
/// with other jobs does not count their time slices; the wall-clock median is reported beside
/// it. Run with OPENBLAS_NUM_THREADS=1 (the op itself is single-threaded).
public enum NADEKernelBenchmark {
  /// Flops per (example, pixel, hidden unit) for a fraction `ones` of ones (see above).
  public static func flopsPerUnit(ones: Double) -> Double { 57 + 3 * ones }

  /// - Parameters: hidden H, inputs D, batch R, timed `steps` (after one warm-up step).
  /// - Returns: "msPerStep" (median thread-CPU ms), "wallMsPerStep", "examplesPerSecond",
  ///   "flopsPerUnit", "gflops" (reached), "fmaGflops" (measured peak), "fractionOfPeak".
  public static func run(hidden: Int = 500, inputs: Int = 784, batch: Int = 100,
                         steps: Int = 20, ones: Double = 0.3) -> [String: Double] {
    precondition(steps > 0 && batch > 0, "NADEKernelBenchmark needs steps > 0 and batch > 0")
    let model = NADE(NADE.Config(inputs: inputs, hidden: hidden), seed: 1)
    let x = Tensor(zeros: [batch, inputs])
    var rng = RandomStream(NoiseAddress(seed: 1, purpose: .benchmark))
    for i in 0..<x.count { x[i] = rng.uniform() < Float(ones) ? 1 : 0 }
    let measuredOnes = Double(x.array.reduce(0, +)) / Double(x.count)

    let tape = Tape()
    func step() {
      tape.reset()
      model.store.zeroGrad()
      let terms = model.terms(x: x, normalizer: Float(batch), on: tape)
      tape.backward(terms.loss)
    }
    step()
    var cpu: [Double] = [], wall: [Double] = []
    for _ in 0..<steps {
      let c0 = clock(CLOCK_THREAD_CPUTIME_ID), w0 = clock(CLOCK_MONOTONIC)
      step()
      cpu.append(clock(CLOCK_THREAD_CPUTIME_ID) - c0)
      wall.append(clock(CLOCK_MONOTONIC) - w0)
    }
    let seconds = median(cpu)
    let flops = flopsPerUnit(ones: measuredOnes)
    let gflops = flops * Double(batch * inputs * hidden) / seconds * 1e-9
    let peak = ek_measure_fma_gflops(0.5)
    return ["msPerStep": seconds * 1e3, "wallMsPerStep": median(wall) * 1e3,
            "examplesPerSecond": Double(batch) / seconds, "flopsPerUnit": flops,
            "gflops": gflops, "fmaGflops": peak, "fractionOfPeak": gflops / peak]
  }

  private static func clock(_ id: clockid_t) -> Double {
    var t = timespec()
    clock_gettime(id, &t)
    return Double(t.tv_sec) + 1e-9 * Double(t.tv_nsec)
  }

  private static func median(_ v: [Double]) -> Double { v.sorted()[v.count / 2] }
}
