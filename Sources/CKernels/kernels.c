// Elbo's vectorised elementwise kernels (see include/elbo_kernels.h for the contracts).
//
// Why this file exists: Swift does not vectorise loops that call libm, so a scalar `exp` loop costs
// ~3.7 ns/element and softplus ~9.6 ns. Here every function is a branch-free Cephes-style
// polynomial written as a `static inline` float function, called from a plain `for` loop over
// `restrict` pointers, so that Clang/GCC auto-vectorise the loop (no libm calls in any hot loop).
// Accuracy is a few ulp against a double-precision libm reference; Tests/ElboTensorTests/
// KernelTests.swift checks every kernel, including the special values (±0, ±inf, NaN, huge, tiny).
//
// Build requirements: an optimised build (SwiftPM's release configuration) and FP contraction,
// which the pragma below turns on for this file (it was -ffp-contract=fast, an unsafe flag SwiftPM
// refuses in a versioned dependency). No libm call is left in a hot loop (the one square root uses
// a builtin that never sets errno), so -fno-math-errno is not needed either. Never -ffast-math:
// it lets the compiler assume there is no inf/NaN, and the special-value handling below relies on
// IEEE comparisons (NaN compares false, so every clamp written as a ternary lets NaN through).
//
// Portability: the public loops carry EK_CLONES (GCC/Clang `target_clones`): one binary holds an
// AVX-512, an x86-64-v3 (AVX2+FMA) and a baseline SSE2 version, and the dynamic loader picks one
// at start-up (ifunc). Because FMA contraction differs between clones, results may differ in the
// last bit between machines; accuracy bounds hold for every clone.
//
// Aliasing: forward kernels accept y == x (in place) or disjoint buffers, not partial overlap.
// Backward kernels require dx disjoint from their inputs.
#include "elbo_kernels.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

// a·b + c may be fused into one FMA (the clones for FMA machines use it); as -ffp-contract=fast.
#if defined(__clang__)
#pragma clang fp contract(fast)
#endif

// -DEK_NO_CLONES builds a single version for the -march given (used to test each clone's code).
#if defined(__x86_64__) && defined(__linux__) && (defined(__clang__) || defined(__GNUC__)) && \
    !defined(EK_NO_CLONES)
#define EK_CLONES __attribute__((target_clones("avx512f", "arch=x86-64-v3", "default")))
#else
#define EK_CLONES
#endif
#define EK_INLINE static inline __attribute__((always_inline))

// MARK: - Bit helpers

// √x without errno: sqrtf under -fmath-errno keeps a libm call for x < 0, which stops the
// vectoriser; the builtin is the IEEE square root instruction (NaN for x < 0).
#if defined(__clang__) && __has_builtin(__builtin_elementwise_sqrt)
EK_INLINE float ek_sqrt(float x) { return __builtin_elementwise_sqrt(x); }
#else
EK_INLINE float ek_sqrt(float x) { return sqrtf(x); }
#endif

EK_INLINE uint32_t as_u32(float x) { uint32_t u; memcpy(&u, &x, sizeof u); return u; }
EK_INLINE float as_f32(uint32_t u) { float x; memcpy(&x, &u, sizeof x); return x; }

// MARK: - exp
// e^x = 2^n · e^r with n = round(x·log2 e), r = x − n·ln2 (ln2 split in a 9-bit head and a tail,
// so n·C1 is exact even without FMA), |r| ≤ ln2/2; e^r = 1 + r + r²·P(r), Cephes degree-5 P.
// n is obtained without a float→int conversion (the 1.5·2²³ "magic number" trick), so NaN inputs
// never hit undefined behaviour. The result is scaled by 2^n in two exact steps
// 2^⌊n/2⌋·2^(n−⌊n/2⌋),
// so denormal results are correctly rounded from e^r (gradual underflow, no flush to zero) and
// large x overflows to +inf. Domain: x > 88.72 → +inf, x < −103.97 → 0 (x is clamped to
// [−104, 88.8]; both ends are beyond the float range), NaN → NaN. Max error ≈ 1 ulp.
// Cody–Waite reduction shared by exp_f and expm1_neg_f: x = n·ln2 + r with |r| ≤ ln2/2
// (ln2 split into a short head and a tail so n·head is exact); returns r and sets *n.
EK_INLINE float exp_reduce(float x, int32_t *n) {
  const float magic = 0x1.8p23f;   // adding it rounds x·log2e to an integer (|·| < 2²²)
  float t = x * 1.44269504088896341f + magic;
  float nf = t - magic;
  *n = (int32_t)(as_u32(t) - as_u32(magic));
  float r = x - nf * 0.693359375f;
  return r - nf * -2.12194440e-4f;
}

// e^r − 1 = r + r²·P(r) on the reduced range (Cephes expf polynomial).
EK_INLINE float expm1_reduced(float r) {
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  return p * (r * r) + r;
}

EK_INLINE float exp_f(float x) {
  x = x > 88.8f ? 88.8f : x;       // ternaries, not fminf/fmaxf: NaN must propagate
  x = x < -104.0f ? -104.0f : x;
  int32_t ni;
  float p = expm1_reduced(exp_reduce(x, &ni)) + 1.0f;
  int32_t n1 = ni >> 1, n2 = ni - n1;  // both in [−75, 65]: normal powers of two
  float s1 = as_f32((uint32_t)(n1 + 127) << 23);
  float s2 = as_f32((uint32_t)(n2 + 127) << 23);
  return (p * s1) * s2;
}

// e^x − 1 for x ≤ 0 (only the ELU uses it; inputs > 0 give garbage the caller discards).
// Same reduction as exp_f with x clamped to [−30, 0] (so n ∈ [−44, 0]):
// e^x − 1 = (2^n − 1) + 2^n·(e^r − 1), where 2^n − 1 is exact and 2^n·(e^r − 1) is an exact
// scaling, so there is no cancellation near 0 (n = 0 gives e^r − 1 = r + r²·P(r) directly).
// Max error ≈ 1–2 ulp; NaN → NaN.
EK_INLINE float expm1_neg_f(float x) {
  x = x > 0.0f ? 0.0f : x;
  x = x < -30.0f ? -30.0f : x;
  int32_t ni;
  float p = expm1_reduced(exp_reduce(x, &ni));  // e^r − 1
  float s = as_f32((uint32_t)(ni + 127) << 23);
  return (s - 1.0f) + s * p;
}

// MARK: - log and log1p
// log x = e·ln2 + log m with x = m·2^e, m ∈ [√½, √2); f = m − 1 (exact);
// log m = f − f²/2 + f³·P(f), Cephes degree-8 P; e·ln2 added as a 9-bit head plus a tail.
// Denormal x are pre-scaled by 2²³. Specials by selects: log(±0) = −inf, log(x<0) = NaN,
// log(+inf) = +inf, NaN → NaN. Max error ≈ 1 ulp.
EK_INLINE float log_f(float x) {
  int sub = x < 0x1p-126f;
  float xs = sub ? x * 0x1p23f : x;
  uint32_t u = as_u32(xs);
  int32_t e = (int32_t)((u >> 23) & 0xffu) - 126 - (sub ? 23 : 0);
  float m = as_f32((u & 0x007fffffu) | 0x3f000000u);  // m ∈ [½, 1)
  int lo = m < 0.707106781186547524f;
  e = lo ? e - 1 : e;
  float f = lo ? (m + m) - 1.0f : m - 1.0f;
  float fe = (float)e;
  float z = f * f;
  float p = 7.0376836292e-2f;
  p = p * f - 1.1514610310e-1f;
  p = p * f + 1.1676998740e-1f;
  p = p * f - 1.2420140846e-1f;
  p = p * f + 1.4249322787e-1f;
  p = p * f - 1.6668057665e-1f;
  p = p * f + 2.0000714765e-1f;
  p = p * f - 2.4999993993e-1f;
  p = p * f + 3.3333331174e-1f;
  float y = p * f * z;
  y = y + fe * -2.12194440e-4f;
  y = y - 0.5f * z;
  float r = f + y;
  r = r + fe * 0.693359375f;
  r = x == INFINITY ? x : r;
  r = x == 0.0f ? -INFINITY : r;
  r = x < 0.0f ? NAN : r;
  r = x != x ? x : r;
  return r;
}

// log(1 + x) = log(u) + log(1 + e/u) ≈ log(u) + e/u, where u = fl(1 + x) and e = (1 + x) − u is
// the rounding error of that addition, exact by Fast2Sum (Dekker 1971): e = x − (u − 1) when
// |x| ≤ 1, else 1 − (u − x). The correction e/u is below ulp(log u) so its own error is
// negligible; |x| < 2⁻²⁴ gives u = 1 and log1p x = e = x exactly. Specials: log1p(−1) = −inf,
// x < −1 → NaN, +inf → +inf, ±0 → ±0, NaN → NaN. Max error ≈ 1.3 ulp.
EK_INLINE float log1p_f(float x) {
  float u = 1.0f + x;
  float e = fabsf(x) <= 1.0f ? x - (u - 1.0f) : 1.0f - (u - x);
  float r = log_f(u) + e / u;
  r = u == 1.0f ? e : r;           // keeps log1p(±0) = ±0 and tiny x exact
  r = x == -1.0f ? -INFINITY : r;  // log(0) + 0/0
  r = x == INFINITY ? x : r;       // inf − inf in e
  return r;
}

// MARK: - tanh, sigmoid, softplus, log-sigmoid
// tanh: |x| < 0.625: x + x³·P(x²) (Cephes degree-4 P); otherwise sign(x)·(1 − 2/(e^{2|x|} + 1)),
// which saturates to ±1 for |x| ≳ 9 (and e^{2|x|} = inf gives exactly ±1). ±0 → ±0, NaN → NaN.
// Max error ≈ 2 ulp.
EK_INLINE float tanh_f(float x) {
  float a = fabsf(x);
  float z = x * x;
  float p = -5.70498872745e-3f;
  p = p * z + 2.06390887954e-2f;
  p = p * z - 5.37397155531e-2f;
  p = p * z + 1.33314422036e-1f;
  p = p * z - 3.33332819422e-1f;
  float small = p * z * x + x;
  float big = 1.0f - 2.0f / (exp_f(a + a) + 1.0f);
  return copysignf(a < 0.625f ? small : big, x);  // also makes tanh(−0) = −0
}

// σ(x) = 1/(1 + e^{−x}) evaluated with e = e^{−|x|} ∈ (0, 1] so nothing overflows:
// x ≥ 0: 1/(1 + e); x < 0: e/(1 + e). Stable for any |x| (e^{−1e30} = 0). Max error ≈ 2 ulp.
EK_INLINE float sigmoid_f(float x) {
  float e = exp_f(-fabsf(x));
  float num = x >= 0.0f ? 1.0f : e;   // NaN takes the e branch and stays NaN
  return num / (1.0f + e);
}

// softplus(x) = log(1 + e^x) = max(x, 0) + log1p(e^{−|x|}); both terms ≥ 0, no cancellation.
// For x ≥ 17 the log1p term is < ulp(x)/2 and for x ≥ 104 it is exactly 0, so softplus(x) = x
// exactly for large x; softplus(−large) = e^x (denormal, then 0). NaN → NaN. Max error ≈ 2 ulp.
EK_INLINE float softplus_f(float x) {
  float l = log1p_f(exp_f(-fabsf(x)));
  float m = x > 0.0f ? x : 0.0f;      // NaN: m = 0, l = NaN
  return m + l;
}

// log σ(x) = −softplus(−x) = min(x, 0) − log1p(e^{−|x|}); both terms ≤ 0. Max error ≈ 2 ulp.
EK_INLINE float log_sigmoid_f(float x) {
  float l = log1p_f(exp_f(-fabsf(x)));
  float m = x < 0.0f ? x : 0.0f;
  return m - l;
}

// MARK: - ReLU, ELU
// relu(x) = x < 0 ? 0 : x, so relu(NaN) = NaN (a NaN must not be hidden by the activation).
EK_INLINE float relu_f(float x) { return x < 0.0f ? 0.0f : x; }

// elu(x) = x > 0 ? x : e^x − 1 (alpha = 1), with expm1 so that small negative x keep full
// relative accuracy; elu(±0) = ±0, elu(−inf) = −1, NaN → NaN. Max error ≈ 2 ulp.
EK_INLINE float elu_f(float x) {
  float em1 = expm1_neg_f(x);
  return x >= 0.0f ? x : em1;
}

// MARK: - Forward loops
// Each public forward kernel dispatches on y == x to one of two restrict loops, so that the
// in-place case vectorises too (without restrict, the vectoriser's runtime overlap check would
// send x == y to the scalar loop).
#define EK_FORWARD(name, f)                                                   \
  EK_INLINE void name##_map(const float *restrict x, float *restrict y, long n) { \
    for (long i = 0; i < n; i++) y[i] = f(x[i]);                              \
  }                                                                           \
  EK_INLINE void name##_map1(float *restrict y, long n) {                     \
    for (long i = 0; i < n; i++) y[i] = f(y[i]);                              \
  }                                                                           \
  EK_CLONES void name(const float *x, float *y, long n) {                     \
    if (x == y) name##_map1(y, n); else name##_map(x, y, n);                  \
  }

EK_FORWARD(ek_exp, exp_f)
EK_FORWARD(ek_log, log_f)
EK_FORWARD(ek_log1p, log1p_f)
EK_FORWARD(ek_tanh, tanh_f)
EK_FORWARD(ek_sigmoid, sigmoid_f)
EK_FORWARD(ek_softplus, softplus_f)
EK_FORWARD(ek_log_sigmoid, log_sigmoid_f)
EK_FORWARD(ek_relu, relu_f)
EK_FORWARD(ek_elu, elu_f)

// MARK: - Backward loops (dx += dy · f'(·); dx must not overlap the inputs)

EK_CLONES void ek_exp_backward(const float *restrict y, const float *restrict dy,
                               float *restrict dx, long n) {
  for (long i = 0; i < n; i++) dx[i] += dy[i] * y[i];
}

EK_CLONES void ek_log_backward(const float *restrict x, const float *restrict dy,
                               float *restrict dx, long n) {
  for (long i = 0; i < n; i++) dx[i] += dy[i] / x[i];
}

EK_CLONES void ek_log1p_backward(const float *restrict x, const float *restrict dy,
                                 float *restrict dx, long n) {
  for (long i = 0; i < n; i++) dx[i] += dy[i] / (1.0f + x[i]);
}

// 1 − y² written as (1 − y)(1 + y): accurate when |y| is close to 1.
EK_CLONES void ek_tanh_backward(const float *restrict y, const float *restrict dy,
                                float *restrict dx, long n) {
  for (long i = 0; i < n; i++) dx[i] += dy[i] * ((1.0f - y[i]) * (1.0f + y[i]));
}

EK_CLONES void ek_sigmoid_backward(const float *restrict y, const float *restrict dy,
                                   float *restrict dx, long n) {
  for (long i = 0; i < n; i++) dx[i] += dy[i] * (y[i] * (1.0f - y[i]));
}

EK_CLONES void ek_softplus_backward(const float *restrict x, const float *restrict dy,
                                    float *restrict dx, long n) {
  for (long i = 0; i < n; i++) dx[i] += dy[i] * sigmoid_f(x[i]);
}

EK_CLONES void ek_log_sigmoid_backward(const float *restrict x, const float *restrict dy,
                                       float *restrict dx, long n) {
  for (long i = 0; i < n; i++) dx[i] += dy[i] * sigmoid_f(-x[i]);
}

EK_CLONES void ek_relu_backward(const float *restrict y, const float *restrict dy,
                                float *restrict dx, long n) {
  for (long i = 0; i < n; i++) dx[i] += y[i] > 0.0f ? dy[i] : 0.0f;
}

EK_CLONES void ek_elu_backward(const float *restrict x, const float *restrict y,
                               const float *restrict dy, float *restrict dx, long n) {
  for (long i = 0; i < n; i++) dx[i] += x[i] > 0.0f ? dy[i] : dy[i] * (y[i] + 1.0f);
}

// MARK: - Fused Bernoulli log-likelihood from logits
// term(l, t) = t·l − softplus(l) = log Bernoulli(t | σ(l)), finite for every finite l.
// Each row is accumulated in double, so the row sum (e.g. 784 terms of ≈ −0.7) carries only the
// per-term float error (≈ 1e-7 relative) whatever the row length. The terms are first computed
// into a 256-float stack block by a full-width float loop, then the block is added in double:
// a single loop mixing both would run the (costly) softplus at the double vector width, i.e.
// half speed. `#pragma clang fp reassociate(on)` lets the vectoriser split the double sum into
// per-lane partial sums; it changes nothing else (inf/NaN semantics are kept).

EK_INLINE float bernoulli_term(float l, float t) { return t * l - softplus_f(l); }

EK_INLINE void bernoulli_terms(const float *restrict l, const float *restrict t,
                               float *restrict out, long n) {
  for (long i = 0; i < n; i++) out[i] = bernoulli_term(l[i], t[i]);
}

EK_INLINE double sum_double(const float *restrict x, long n) {
#pragma clang fp reassociate(on)
  double s = 0.0;
  for (long i = 0; i < n; i++) s += (double)x[i];
  return s;
}

EK_INLINE float bernoulli_row(const float *restrict l, const float *restrict t, long n) {
  enum { B = 256 };
  float buf[B];
  double s = 0.0;
  for (long i = 0; i < n; i += B) {
    long k = n - i < B ? n - i : B;
    bernoulli_terms(l + i, t + i, buf, k);
    s += sum_double(buf, k);
  }
  return (float)s;
}

EK_CLONES void ek_bernoulli_logits_rowsum(const float *restrict logits, const float *restrict t,
                                          float *restrict rowsum, long rows, long cols) {
  for (long r = 0; r < rows; r++) rowsum[r] = bernoulli_row(logits + r * cols, t + r * cols, cols);
}

// d term / d l = t − σ(l).
EK_INLINE void bernoulli_row_backward(const float *restrict l, const float *restrict t, float d,
                                      float *restrict dl, long n) {
  for (long i = 0; i < n; i++) dl[i] += d * (t[i] - sigmoid_f(l[i]));
}

EK_CLONES void ek_bernoulli_logits_backward(const float *restrict logits, const float *restrict t,
                                            const float *restrict drow, float *restrict dlogits,
                                            long rows, long cols) {
  for (long r = 0; r < rows; r++) {
    bernoulli_row_backward(logits + r * cols, t + r * cols, drow[r], dlogits + r * cols, cols);
  }
}

// MARK: - Reductions
// Sums accumulate in double (float products are exact in double), so the error is that of the
// final rounding to float for any realistic n. Reassociation is enabled only for these sums.

EK_CLONES float ek_sum(const float *restrict x, long n) { return (float)sum_double(x, n); }

EK_CLONES float ek_dot(const float *restrict x, const float *restrict y, long n) {
#pragma clang fp reassociate(on)
  double s = 0.0;
  for (long i = 0; i < n; i++) s += (double)x[i] * (double)y[i];
  return (float)s;
}

// A float is NaN or ±inf iff its exponent bits are all ones, i.e. (bits & 0x7fffffff) ≥ 0x7f800000.
// An unsigned max-reduction over the magnitudes vectorises (vpmaxud) and needs no FP flags.
EK_CLONES int ek_all_finite(const float *restrict x, long n) {
  uint32_t mx = 0;
  for (long i = 0; i < n; i++) {
    uint32_t a = as_u32(x[i]) & 0x7fffffffu;
    mx = a > mx ? a : mx;
  }
  return mx < 0x7f800000u;
}

// MARK: - Adam
// m = b1·m + (1 − b1)·g;  v = b2·v + (1 − b2)·g²;  p −= lr_t · m / (√v + eps_t), bias correction
// folded into lr_t and eps_t by the caller (see the header). The square root is an elementwise
// builtin (an instruction, never errno), so the loop vectorises without -fno-math-errno.
EK_CLONES void ek_adam(float *restrict p, const float *restrict g, float *restrict m,
                       float *restrict v, long n, float lr_t, float b1, float b2, float eps_t) {
  float c1 = 1.0f - b1, c2 = 1.0f - b2;
  for (long i = 0; i < n; i++) {
    float gi = g[i];
    float mi = b1 * m[i] + c1 * gi;
    float vi = b2 * v[i] + c2 * (gi * gi);
    m[i] = mi;
    v[i] = vi;
    p[i] -= lr_t * mi / (ek_sqrt(vi) + eps_t);
  }
}

// MARK: - Scale-mixture prior
// See the header for the formula. Blocked like the Bernoulli row so that the per-element terms
// (exp/log1p polynomials) vectorise into a float buffer and only the sum runs in double.

EK_INLINE float mixture_term(float x, float c1, float h1, float c2, float h2) {
  float q = x * x;
  float a = c1 - q * h1, b = c2 - q * h2;
  float hi = a > b ? a : b, d = a > b ? b - a : a - b;  // d = −|a − b| ≤ 0
  return hi + log1p_f(exp_f(d));
}

EK_CLONES double ek_scale_mixture_logpdf_sum(const float *restrict x, long n, float c1, float h1,
                                             float c2, float h2) {
  enum { B = 256 };
  float buf[B];
  double s = 0.0;
  for (long i = 0; i < n; i += B) {
    long k = n - i < B ? n - i : B;
    for (long j = 0; j < k; j++) buf[j] = mixture_term(x[i + j], c1, h1, c2, h2);
    s += sum_double(buf, k);
  }
  return s;
}

EK_CLONES void ek_scale_mixture_logpdf_backward(const float *restrict x, float g,
                                                float *restrict dx, long n, float c1, float h1,
                                                float c2, float h2) {
  for (long i = 0; i < n; i++) {
    float xi = x[i], q = xi * xi;
    float r = sigmoid_f((c1 - q * h1) - (c2 - q * h2));
    dx[i] -= g * 2.0f * xi * (r * h1 + (1.0f - r) * h2);
  }
}

// MARK: - Philox normals
// Philox4x32-10 exactly as ElboTensor/Philox.swift: per round (c0, c1, c2, c3) ←
// (hi(m1·c2) ^ c1 ^ k0, lo(m1·c2), hi(m0·c0) ^ c3 ^ k1, lo(m0·c0)), then the key is bumped by the
// Weyl constants. Box–Muller in float: θ = 2πt is reduced on t itself (t − q/4 is exact), so
// sin/cos only ever see |a| ≤ π/4, where the Cephes sinf/cosf polynomials are good to ~1 ulp.

EK_INLINE void philox_block(uint32_t k0, uint32_t k1, uint32_t x0, uint32_t x1, uint32_t x2,
                            uint32_t x3, uint32_t out[4]) {
  for (int round = 0; round < 10; round++) {
    uint64_t p0 = (uint64_t)0xD2511F53u * x0, p1 = (uint64_t)0xCD9E8D57u * x2;
    uint32_t n0 = (uint32_t)(p1 >> 32) ^ x1 ^ k0, n1 = (uint32_t)p1;
    uint32_t n2 = (uint32_t)(p0 >> 32) ^ x3 ^ k1, n3 = (uint32_t)p0;
    x0 = n0; x1 = n1; x2 = n2; x3 = n3;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  out[0] = x0; out[1] = x1; out[2] = x2; out[3] = x3;
}

// (r cos 2πt, r sin 2πt) for the words (a, b).
EK_INLINE void box_muller_f(uint32_t a, uint32_t b, float *z0, float *z1) {
  float u1 = (float)((a >> 8) + 1u) * 0x1p-24f;   // (0, 1], exact
  float t = (float)(b >> 8) * 0x1p-24f;           // [0, 1), exact
  float r = ek_sqrt(-2.0f * log_f(u1));
  float q = nearbyintf(4.0f * t);                  // quadrant 0…4
  float x = (t - 0.25f * q) * 6.28318530717958648f; // |x| ≤ π/4
  float z = x * x;
  float s = ((-1.9515295891e-4f * z + 8.3321608736e-3f) * z - 1.6666654611e-1f) * z * x + x;
  float c = ((2.443315711809948e-5f * z - 1.388731625493765e-3f) * z + 4.166664568298827e-2f)
              * z * z - 0.5f * z + 1.0f;
  int k = (int)q & 3;
  // Rotate (cos x, sin x) by k quarter turns.
  float cs = k == 0 ? c : (k == 1 ? -s : (k == 2 ? -c : s));
  float sn = k == 0 ? s : (k == 1 ? c : (k == 2 ? -s : -c));
  *z0 = r * cs;
  *z1 = r * sn;
}

EK_CLONES void ek_philox_normal(uint32_t k0, uint32_t k1, uint32_t first_block, uint32_t c1,
                                uint32_t c2, uint32_t c3, float *restrict out, long n) {
  long full = n / 4;
  for (long b = 0; b < full; b++) {
    uint32_t w[4];
    philox_block(k0, k1, first_block + (uint32_t)b, c1, c2, c3, w);
    box_muller_f(w[0], w[1], &out[4 * b], &out[4 * b + 1]);
    box_muller_f(w[2], w[3], &out[4 * b + 2], &out[4 * b + 3]);
  }
  long rest = n - 4 * full;
  if (rest > 0) {
    uint32_t w[4];
    float z[4];
    philox_block(k0, k1, first_block + (uint32_t)full, c1, c2, c3, w);
    box_muller_f(w[0], w[1], &z[0], &z[1]);
    box_muller_f(w[2], w[3], &z[2], &z[3]);
    for (long i = 0; i < rest; i++) out[4 * full + i] = z[i];
  }
}

// MARK: - Bernoulli log-likelihood rows, one log per lane (importance-sampled evaluation)
// Σ_c t·l − softplus(l) = Σ_c (t·l − max(l, 0)) − log Π_c (1 + e^{−|l|}):
// each factor lies in (1, 2], so a float lane can multiply 64 of them (≤ 2⁶⁴) before one log_f;
// the per-element work drops to one exp_f and a multiply (no log1p). The linear part is summed
// in double. Error: ≤ 64 roundings per lane product, ≤ 4e-6 per lane log, ~1e-6 typical per row
// of 784 (the exact kernel above: ~1e-6 too, from its float terms).

EK_INLINE double linear_part(const float *restrict l, const float *restrict t, long n) {
#pragma clang fp reassociate(on)
  double s = 0.0;
  for (long i = 0; i < n; i++) s += (double)(t[i] * l[i] - (l[i] > 0.0f ? l[i] : 0.0f));
  return s;
}

EK_CLONES void ek_bernoulli_logits_rowsum_fast(const float *restrict logits,
                                               const float *restrict t, float *restrict rowsum,
                                               long rows, long cols) {
  enum { V = 16, F = 64 };  // lanes; factors per lane between logs
  for (long r = 0; r < rows; r++) {
    const float *restrict l = logits + r * cols;
    double logs = 0.0;
    for (long i = 0; i < cols; i += V * F) {
      long seg = cols - i < V * F ? cols - i : V * F;
      float prod[V];
      for (int v = 0; v < V; v++) prod[v] = 1.0f;
      long full = seg / V;
      for (long j = 0; j < full; j++) {
        const float *restrict x = l + i + j * V;
        for (int v = 0; v < V; v++) prod[v] *= 1.0f + exp_f(-fabsf(x[v]));
      }
      for (long j = full * V; j < seg; j++) prod[j - full * V] *= 1.0f + exp_f(-fabsf(l[i + j]));
      for (int v = 0; v < V; v++) logs += (double)log_f(prod[v]);
    }
    rowsum[r] = (float)(linear_part(l, t + r * cols, cols) - logs);
  }
}
