// NADE (Larochelle & Murray, AISTATS 2011, Algorithm 1): fused forward and backward.
//
// Shape legend (input-major, like the rest of Elbo):
//   R examples, D inputs (pixels, in their fixed order), H hidden units
//   x [R, D] ∈ {0,1}   W [D, H] (row d = the tied weights of input d)   c [H]   V [D, H]   b [D]
//   logits [R, D]: l_{r,d} = b_d + V_d · h_d,  p(x_d = 1 | x_<d) = σ(l_{r,d})
//   a_1 = c,  a_{d+1} = a_d + x_d W_d,  h_d = σ(a_d)   (the running sum: O(H) per pixel)
//   logp [R] = Σ_d log Bernoulli(x_d; σ(l_d))
//
// Layout of the work. Lanes run across H (rows of W, V, dW, dV are contiguous), and a tile of
// NADE_TILE examples walks the pixels together (pixel outer, example inner), so that the four
// parameter rows of pixel d are read from memory once per tile and stay in L1 for the others,
// together with the tile's running sums (NADE_TILE·H floats). The only horizontal reduction is
// the output dot product V_d · h_d, once per (example, pixel), amortised over H/16 vectors. Pixels
// with x_d = 0 skip the running-sum update (and, backward, the dW update): branching once per
// (example, pixel) on x, not per element.
//
// How the backward gets h_d: by running subtraction. It rebuilds a_{D+1} = c + Σ_{d: x_d=1} W_d
// with the same additions, in the same order, as the forward (so bitwise the forward's value),
// then walks the pixels backwards with a ← a − W_d where x_d = 1 and recomputes h_d = σ(a_d).
// Measured (H = 500, D = 784, 30% ones, 20 examples): the recomputed a_d differ from the
// forward's by at most 3.6e-7 with W ~ U(±1/√D) (the initialisation) and 1.4e-5 with
// W ~ U(±1), moving h by at most 9e-8 and 3.5e-6 — below a float gradient's own error
// (NADETests checks the full length D = 784 against a Double reference). The alternatives cost more: storing h_d per example is
// 784·500·4 B = 1.5 MB per example (150 MB per batch of 100 — a trip to DRAM and back, and the
// forward runs long before the backward on a tape, so it cannot stay in L2); checkpointing a every
// K pixels and recomputing the segment forward costs the same sigmoids plus a scratch round trip.
// The second σ per (example, pixel, unit) is the price; σ is the main cost of the whole op.
//
// The forward writes the logits (the caller keeps them for the backward: dL/dl = g·(x − σ(l)) is
// then known before the backward's sweep, so the sweep needs no dot product).
#include "elbo_kernels.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

// a·b + c as one FMA, as in kernels.c: the build sets no -ffp-contract (an unsafe flag SwiftPM
// refuses in a dependency), so the file says it. The kernel's flop count assumes FMAs.
#pragma clang fp contract(fast)

#if defined(__x86_64__) && defined(__linux__) && (defined(__clang__) || defined(__GNUC__)) && \
    !defined(EK_NO_CLONES)
#define EK_CLONES __attribute__((target_clones("avx512f", "arch=x86-64-v3", "default")))
#else
#define EK_CLONES
#endif
#define EK_INLINE static inline __attribute__((always_inline))

// Examples per tile: 4, 8 and 16 measured within noise of each other (17–18 ms per step); 8 keeps
// the running sums and accumulators (2·8·H floats = 32 KB at H = 500) inside the 48 KB L1.
enum { NADE_TILE = 8 };

// MARK: - σ for the hidden units
// σ(a) = 1/(1 + e^{−a}) with e^{−a} from the Cephes polynomial of kernels.c's exp_f, but with
// −a clamped to [−80, 80] so that 2^n (|n| ≤ 116) is one normal power of two: a single scaling,
// no gradual-underflow steps. The clamp changes nothing visible: σ(a) for a > 80 rounds to 1, and
// for a < −80 we return σ(−80) ≈ 1.8e-35 instead of < 1e-35 (an absolute error below 2e-35).
// Max relative error ≈ 2 ulp elsewhere; NaN → NaN.
EK_INLINE float nade_as_f32(uint32_t u) { float x; memcpy(&x, &u, sizeof x); return x; }
EK_INLINE uint32_t nade_as_u32(float x) { uint32_t u; memcpy(&u, &x, sizeof u); return u; }

EK_INLINE float nade_sigmoid(float a) {
  // Written in a rather than t = −a, so that the negation folds into the FMAs (one op fewer).
  a = a > 80.0f ? 80.0f : a;
  a = a < -80.0f ? -80.0f : a;
  const float magic = 0x1.8p23f;
  float k = a * -1.44269504088896341f + magic;     // n = round(−a·log2 e)
  float nf = k - magic;
  int32_t n = (int32_t)(nade_as_u32(k) - nade_as_u32(magic));
  float r = -a - nf * 0.693359375f;                // −a − n·ln2 (Cody–Waite head)
  r = r - nf * -2.12194440e-4f;                    // … and tail
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * (r * r) + r + 1.0f;                       // e^r
  float e = p * nade_as_f32((uint32_t)(n + 127) << 23);  // e^{−a}
  return 1.0f / (1.0f + e);
}

// MARK: - Forward

EK_INLINE void nade_add_rows(float *restrict y, const float *restrict x, long n) {
  for (long i = 0; i < n; i++) y[i] += x[i];
}

// Tails. The vectoriser unrolls these loops 4 × 16 wide and leaves the rest to a scalar loop:
// at H = 500 that is 52 scalar σ per (example, pixel) (measured: the forward took 7.0 ms at
// H = 500 and 5.7 ms at H = 512; with the chunks below, 6.7 ms at H = 500). So each loop runs on [0, H − H mod 64) as the vectoriser
// likes, then on whole 16-lane chunks, then on ONE overlapping chunk [H − 16, H) whose lanes
// already done are switched off by multiplying v, w (and the dW, dV updates) by a 0/1 mask:
// exact, since a ± 0·w = a and 0-weighted terms add +0. H < 16 runs the plain loop.
// Rejected by measurement: fully predicated loops (vectorize_predicate), 35% slower overall;
// copying the tail into zero-padded buffers, slower than the scalar loop (memcpy calls); a
// Newton reciprocal instead of σ's division, 25% slower (the division is cheap on this core).
static const float nade_keep[2 * 16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                        1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};

// Σ_j m_j v_j σ(a_j) over n lanes (m = keep, or 1 if keep is NULL); with w (x_d = 1) also
// a ← a + m ⊙ w.
EK_INLINE float nade_dot_n(float *restrict a, const float *restrict v, const float *restrict w,
                           const float *restrict keep, long n) {
#pragma clang fp reassociate(on)
  float s = 0.0f;
  if (w) {
    for (long j = 0; j < n; j++) {
      float m = keep ? keep[j] : 1.0f, aj = a[j];
      a[j] = aj + m * w[j];
      s += (m * v[j]) * nade_sigmoid(aj);
    }
  } else {
    for (long j = 0; j < n; j++) {
      float m = keep ? keep[j] : 1.0f;
      s += (m * v[j]) * nade_sigmoid(a[j]);
    }
  }
  return s;
}

// The same over exactly 16 lanes, into per-lane partial sums s (one horizontal sum per pixel,
// not one per chunk).
EK_INLINE void nade_dot_16(float *restrict a, const float *restrict v, const float *restrict w,
                           const float *restrict keep, float *restrict s) {
  if (w) {
    for (int k = 0; k < 16; k++) {
      float ak = a[k];
      a[k] = ak + keep[k] * w[k];
      s[k] += (keep[k] * v[k]) * nade_sigmoid(ak);
    }
  } else {
    for (int k = 0; k < 16; k++) s[k] += (keep[k] * v[k]) * nade_sigmoid(a[k]);
  }
}

// V_d · σ(a) for one example; if w is not NULL (x_d = 1), also a ← a + w.
EK_INLINE float nade_dot(float *restrict a, const float *restrict v, const float *restrict w,
                         long H) {
  if (H < 16) return nade_dot_n(a, v, w, NULL, H);
  long h64 = H - H % 64, h16 = H - H % 16;
  float s = nade_dot_n(a, v, w, NULL, h64);
  float s16[16] = {0};
  for (long j = h64; j < h16; j += 16) nade_dot_16(a + j, v + j, w ? w + j : NULL, nade_keep + 16, s16);
  if (h16 < H) {
    long t = H - 16;
    nade_dot_16(a + t, v + t, w ? w + t : NULL, nade_keep + (H - h16), s16);
  }
  for (int k = 0; k < 16; k++) s += s16[k];
  return s;
}

EK_INLINE void nade_forward_tile(const float *restrict x, const float *restrict W,
                                 const float *restrict c, const float *restrict V,
                                 const float *restrict b, float *restrict logits,
                                 float *restrict a, long E, long D, long H) {
  for (long e = 0; e < E; e++) memcpy(a + e * H, c, (size_t)H * sizeof(float));
  for (long d = 0; d < D; d++) {
    const float *w = W + d * H, *v = V + d * H;
    for (long e = 0; e < E; e++) {
      float *ae = a + e * H;
      float s = nade_dot(ae, v, x[e * D + d] != 0.0f ? w : NULL, H);
      logits[e * D + d] = b[d] + s;
    }
  }
}

/* `floats` floats, 64-byte aligned for the vector loads. C11's aligned_alloc wants the size to be
 * a multiple of the alignment (glibc does not check, AddressSanitizer does), so round it up. */
static float *nade_alloc(size_t floats) {
  size_t bytes = (floats * sizeof(float) + 63) / 64 * 64;
  return aligned_alloc(64, bytes);
}

EK_CLONES void ek_nade_forward(const float *restrict x, const float *restrict W,
                               const float *restrict c, const float *restrict V,
                               const float *restrict b, float *restrict logp,
                               float *restrict logits, long R, long D, long H) {
  float *a = nade_alloc((size_t)(NADE_TILE * H + 16));
  float *own = logits ? NULL : malloc((size_t)(NADE_TILE * D) * sizeof(float));
  for (long r0 = 0; r0 < R; r0 += NADE_TILE) {
    long E = R - r0 < NADE_TILE ? R - r0 : NADE_TILE;
    float *l = logits ? logits + r0 * D : own;
    nade_forward_tile(x + r0 * D, W, c, V, b, l, a, E, D, H);
    // log p = Σ_d [x_d l_d − softplus(l_d)], vectorised and accumulated in double.
    ek_bernoulli_logits_rowsum(l, x + r0 * D, logp + r0, E, D);
  }
  free(own);
  free(a);
}

// Ancestral sampling: the forward tile with x_d drawn as 1[u_d < σ(l_d)] once l_d is known.
EK_CLONES void ek_nade_sample(const float *restrict W, const float *restrict c,
                              const float *restrict V, const float *restrict b,
                              const float *restrict u, float *restrict x, float *restrict logits,
                              long R, long D, long H) {
  float *a = nade_alloc((size_t)(NADE_TILE * H + 16));
  for (long r0 = 0; r0 < R; r0 += NADE_TILE) {
    long E = R - r0 < NADE_TILE ? R - r0 : NADE_TILE;
    for (long e = 0; e < E; e++) memcpy(a + e * H, c, (size_t)H * sizeof(float));
    for (long d = 0; d < D; d++) {
      for (long e = 0; e < E; e++) {
        long i = (r0 + e) * D + d;
        float l = b[d] + nade_dot(a + e * H, V + d * H, NULL, H);
        logits[i] = l;
        // u < σ(l) ⇔ u (1 + e^{−l}) < 1, without σ's rounding near 1: compare in log-odds.
        float xi = logf(u[i]) - log1pf(-u[i]) < l ? 1.0f : 0.0f;
        x[i] = xi;
        if (xi != 0.0f) nade_add_rows(a + e * H, W + d * H, H);
      }
    }
  }
  free(a);
}

// MARK: - Backward
// With g_r = dL/dlogp_r and dl_{r,d} = g_r (x_{r,d} − σ(l_{r,d})), in reverse pixel order:
//   db_d += dl_d;  dV_d += dl_d h_d;  da_d = dl_d (V_d ⊙ h_d ⊙ (1 − h_d));
//   dW_d += x_d · acc  with acc = Σ_{d'>d} da_{d'} (before adding da_d);  acc += da_d;
// and at the end dc += acc = Σ_d da_d.

// One pixel of one example over n lanes, masked like nade_dot_n. x_d = 1 (w, dw given): undo
// the running sum and dW_d += acc first; then h = σ(a), dV_d += dl h, acc += dl V_d ⊙ h(1 − h).
EK_INLINE void nade_back_n(float *restrict a, float *restrict acc, const float *restrict w,
                           const float *restrict v, float dl, float *restrict dw,
                           float *restrict dv, const float *restrict keep, long n) {
  if (w) {
    for (long j = 0; j < n; j++) {
      float m = keep ? keep[j] : 1.0f;
      float aj = a[j] - m * w[j];
      a[j] = aj;
      float h = nade_sigmoid(aj);
      float q = acc[j];
      dw[j] += m * q;
      dv[j] += (m * dl) * h;
      acc[j] = q + (m * dl * v[j]) * (h - h * h);
    }
  } else {
    for (long j = 0; j < n; j++) {
      float m = keep ? keep[j] : 1.0f;
      float h = nade_sigmoid(a[j]);
      dv[j] += (m * dl) * h;
      acc[j] += (m * dl * v[j]) * (h - h * h);
    }
  }
}

EK_INLINE void nade_back_pixel(float *restrict a, float *restrict acc, const float *restrict w,
                               const float *restrict v, float dl, float *restrict dw,
                               float *restrict dv, long H) {
  if (H < 16) { nade_back_n(a, acc, w, v, dl, dw, dv, NULL, H); return; }
  long h64 = H - H % 64, h16 = H - H % 16;
  nade_back_n(a, acc, w, v, dl, dw, dv, NULL, h64);
  for (long j = h64; j < h16; j += 16) {
    nade_back_n(a + j, acc + j, w ? w + j : NULL, v + j, dl, dw ? dw + j : NULL, dv + j, NULL, 16);
  }
  if (h16 < H) {
    long t = H - 16;
    nade_back_n(a + t, acc + t, w ? w + t : NULL, v + t, dl, dw ? dw + t : NULL, dv + t,
                nade_keep + (H - h16), 16);
  }
}

EK_INLINE void nade_backward_tile(const float *restrict x, const float *restrict W,
                                  const float *restrict c, const float *restrict V,
                                  const float *restrict dl, float *restrict dW,
                                  float *restrict dc, float *restrict dV, float *restrict db,
                                  float *restrict a, float *restrict acc, long E, long D,
                                  long H) {
  // a_{D+1} = c + Σ_{d: x_d = 1} W_d, the forward's additions in the forward's order.
  for (long e = 0; e < E; e++) memcpy(a + e * H, c, (size_t)H * sizeof(float));
  for (long d = 0; d < D; d++) {
    for (long e = 0; e < E; e++) {
      if (x[e * D + d] != 0.0f) nade_add_rows(a + e * H, W + d * H, H);
    }
  }
  memset(acc, 0, (size_t)(E * H) * sizeof(float));
  for (long d = D - 1; d >= 0; d--) {
    const float *w = W + d * H, *v = V + d * H;
    float *dw = dW + d * H, *dv = dV + d * H;
    float sdb = 0.0f;
    for (long e = 0; e < E; e++) {
      float g = dl[e * D + d];
      sdb += g;
      int one = x[e * D + d] != 0.0f;
      nade_back_pixel(a + e * H, acc + e * H, one ? w : NULL, v, g, one ? dw : NULL, dv, H);
    }
    db[d] += sdb;
  }
  for (long e = 0; e < E; e++) nade_add_rows(dc, acc + e * H, H);
}

EK_CLONES void ek_nade_backward(const float *restrict x, const float *restrict W,
                                const float *restrict c, const float *restrict V,
                                const float *restrict logits, const float *restrict dlogp,
                                float *restrict dW, float *restrict dc, float *restrict dV,
                                float *restrict db, long R, long D, long H) {
  float *a = nade_alloc((size_t)(2 * NADE_TILE * H + 16));
  float *acc = a + NADE_TILE * H;
  float *dl = malloc((size_t)(NADE_TILE * D) * sizeof(float));  // [E, D]
  for (long r0 = 0; r0 < R; r0 += NADE_TILE) {
    long E = R - r0 < NADE_TILE ? R - r0 : NADE_TILE;
    // dl = g·(x − σ(l)), vectorised by the Bernoulli backward kernel (it accumulates: zero first).
    memset(dl, 0, (size_t)(E * D) * sizeof(float));
    ek_bernoulli_logits_backward(logits + r0 * D, x + r0 * D, dlogp + r0, dl, E, D);
    nade_backward_tile(x + r0 * D, W, c, V, dl, dW, dc, dV, db, a, acc, E, D, H);
  }
  free(dl);
  free(a);
}

// MARK: - The core's vector FMA throughput
// 12 independent 16-float accumulators, acc ← acc·m + k (one FMA per lane each), so that the FMA
// latency (4 cycles) times the FMA ports (2) is covered; 2 flops per lane per FMA. The values
// converge to k/(1 − m) and never overflow. Runs for at least `seconds` of this
// thread's CPU time, so that other jobs on a shared core do not lower the figure.
typedef float nade_v16 __attribute__((vector_size(64)));

EK_CLONES double ek_measure_fma_gflops(double seconds) {
  enum { A = 12, INNER = 1 << 14 };
  nade_v16 acc[A];
  for (int i = 0; i < A; i++) acc[i] = (nade_v16){0} + (float)i;
  const nade_v16 m = (nade_v16){0} + 0.999999f, k = (nade_v16){0} + 1e-7f;
  struct timespec t0, t1;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
  double elapsed = 0.0;
  long rounds = 0;
  do {
    for (int it = 0; it < INNER; it++) {
      for (int i = 0; i < A; i++) acc[i] = acc[i] * m + k;
    }
    rounds++;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t1);
    elapsed = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
  } while (elapsed < seconds);
  float sink = 0.0f;
  for (int i = 0; i < A; i++) sink += acc[i][0] + acc[i][15];
  volatile float keep = sink;
  (void)keep;
  return 2.0 * 16.0 * A * (double)INNER * (double)rounds / elapsed * 1e-9;
}
