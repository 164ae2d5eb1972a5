// Elbo's vectorised elementwise kernels.
//
// Why C: Swift does not auto-vectorise calls to libm, and a scalar `exp` loop costs ~3.7 ns/element
// (DESIGN.md, "Measured here"); these loops, with Cephes-style polynomials, compile to AVX2/AVX-512
// code through GCC/Clang auto-vectorisation at ~0.3 ns/element. Every kernel is checked against
// libm in Tests/ElboTensorTests/KernelTests.swift (max error a few ulp).
//
// Conventions: `n` is the element count; forward kernels write y (y may alias x);
// backward kernels ACCUMULATE into dx (dx += dy * f'(…)), as llm.c's do, so that a value used
// twice gets the sum of both gradients.
#ifndef ELBO_KERNELS_H
#define ELBO_KERNELS_H
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// MARK: - Forward
void ek_exp(const float *x, float *y, long n);
void ek_log(const float *x, float *y, long n);        // x > 0; log(0) = -inf, x < 0 → NaN
void ek_log1p(const float *x, float *y, long n);
void ek_tanh(const float *x, float *y, long n);
void ek_sigmoid(const float *x, float *y, long n);
void ek_softplus(const float *x, float *y, long n);   // log(1 + e^x), stable: max(x,0)+log1p(e^-|x|)
void ek_log_sigmoid(const float *x, float *y, long n); // log σ(x) = -softplus(-x)
void ek_relu(const float *x, float *y, long n);
void ek_elu(const float *x, float *y, long n);        // x > 0 ? x : e^x - 1   (alpha = 1)

// MARK: - Backward (accumulating)
void ek_exp_backward(const float *y, const float *dy, float *dx, long n);      // dx += dy*y
void ek_log_backward(const float *x, const float *dy, float *dx, long n);      // dx += dy/x
void ek_log1p_backward(const float *x, const float *dy, float *dx, long n);    // dx += dy/(1+x)
void ek_tanh_backward(const float *y, const float *dy, float *dx, long n);     // dx += dy*(1-y²)
void ek_sigmoid_backward(const float *y, const float *dy, float *dx, long n);  // dx += dy*y(1-y)
void ek_softplus_backward(const float *x, const float *dy, float *dx, long n); // dx += dy*σ(x)
void ek_log_sigmoid_backward(const float *x, const float *dy, float *dx, long n); // dx += dy*σ(-x)
void ek_relu_backward(const float *y, const float *dy, float *dx, long n);     // dx += y>0 ? dy : 0
void ek_elu_backward(const float *x, const float *y, const float *dy, float *dx, long n); // x>0 ? dy : dy*(y+1)

// MARK: - Fused Bernoulli log-likelihood from logits
// For a [rows × cols] matrix of logits l and targets t ∈ [0,1]:
//   rowsum[r] = Σ_c ( t·l − softplus(l) )          (= Σ log Bernoulli(t | σ(l)), stable for any l)
// Each row is accumulated in double.
void ek_bernoulli_logits_rowsum(const float *logits, const float *t, float *rowsum,
                                long rows, long cols);
// The same row sums as Σ (t·l − max(l,0)) − log Π (1 + e^{−|l|}), one log per 64 elements of a
// lane instead of a log1p per element: ~2× faster, within ~1e-5 of the kernel above for rows
// of 784 (for evaluation, where there is no backward).
void ek_bernoulli_logits_rowsum_fast(const float *logits, const float *t, float *rowsum,
                                     long rows, long cols);
// dlogits[r,c] += drow[r] · (t − σ(l))
void ek_bernoulli_logits_backward(const float *logits, const float *t, const float *drow,
                                  float *dlogits, long rows, long cols);

// MARK: - Small helpers the optimisers and reductions use
float ek_sum(const float *x, long n);          // accumulates in double for accuracy
float ek_dot(const float *x, const float *y, long n); // accumulates in double
int ek_all_finite(const float *x, long n);     // 1 if no NaN/Inf in x
// Adam (Kingma & Ba 2015, Algorithm 1) over flat buffers:
//   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g²;  p -= lr_t · m / (sqrt(v) + eps_t)
// where the caller folds bias correction into lr_t = lr·sqrt(1-b2^t)/(1-b1^t), eps_t = eps·sqrt(1-b2^t)
// (algebraically identical to the textbook update with m̂, v̂ and eps).
void ek_adam(float *p, const float *g, float *m, float *v, long n,
             float lr_t, float b1, float b2, float eps_t);

// MARK: - Scale-mixture prior (Blundell et al. 2015, eq. 7)
// log p(x) = log[π N(x | 0, σ1²) + (1 − π) N(x | 0, σ2²)], per element:
//   a = c1 − x²·h1, b = c2 − x²·h2,  log p = max(a, b) + log1p(e^−|a−b|)
// with c_k = log w_k − log σ_k − ½ log 2π (w1 = π, w2 = 1 − π) and h_k = 1/(2σ_k²), so that a
// component far below the other (σ2 = e⁻⁶ against σ1 = 1) neither underflows nor loses the sum.
// Returns Σ log p(x) over n elements, accumulated in double.
double ek_scale_mixture_logpdf_sum(const float *x, long n, float c1, float h1, float c2, float h2);
// dx += g · ∂ log p/∂x = −g · 2x·(r·h1 + (1 − r)·h2), r = σ(a − b) the first component's
// responsibility.
void ek_scale_mixture_logpdf_backward(const float *x, float g, float *dx, long n,
                                      float c1, float h1, float c2, float h2);

// MARK: - Standard normals from Philox4x32-10 (Salmon et al. 2011), vectorised
// The same Philox words as ElboTensor's RandomStream.fillNormal — key (k0, k1), counter
// (first_block + b, c1, c2, c3) for block b — and the same Box–Muller map of each block's words
// (a, b, c, d) to (r cos θ, r sin θ) pairs, r = √(−2 log u1), u1 = ((a>>8)+1)·2⁻²⁴, θ = 2π·(b>>8)·2⁻²⁴;
// but computed in float with polynomials instead of double libm: each value is within
// 1e-6·max(1, |z|) of fillNormal's, and ~10× cheaper. Fills n values from ⌈n/4⌉ blocks.
void ek_philox_normal(uint32_t k0, uint32_t k1, uint32_t first_block, uint32_t c1, uint32_t c2,
                      uint32_t c3, float *out, long n);

// MARK: - NADE (Larochelle & Murray 2011, Algorithm 1), fused; see nade.c for the layout
// x [R, D] ∈ {0,1}, W [D, H], c [H], V [D, H], b [D] (row d of W, V belongs to input d).
//   a_1 = c, a_{d+1} = a_d + x_d W_d, h_d = σ(a_d), l_d = b_d + V_d · h_d,
//   logp[r] = Σ_d log Bernoulli(x_d; σ(l_d)).
// Writes logp [R] and, if `logits` is not NULL, the conditionals' logits [R, D]
// (p(x_d = 1 | x_<d) = σ(l_d)); the backward needs them.
void ek_nade_forward(const float *x, const float *W, const float *c, const float *V,
                     const float *b, float *logp, float *logits, long R, long D, long H);
// Given the forward's logits and dlogp [R] = dL/dlogp, ACCUMULATES dW [D, H], dc [H], dV [D, H],
// db [D]. The gradient buffers must not overlap the inputs.
void ek_nade_backward(const float *x, const float *W, const float *c, const float *V,
                      const float *logits, const float *dlogp, float *dW, float *dc, float *dV,
                      float *db, long R, long D, long H);

// Ancestral sampling: given uniforms u [R, D] ∈ [0, 1), writes x_d = 1[u_d < σ(l_d)] [R, D] in
// pixel order (each l_d computed from the x_<d just drawn) and the logits [R, D].
void ek_nade_sample(const float *W, const float *c, const float *V, const float *b,
                    const float *u, float *x, float *logits, long R, long D, long H);

// MARK: - Machine throughput
// The core's vector FMA rate in GFLOP/s (2 flops per lane per FMA, the widest vectors this
// binary's clone uses), measured with independent accumulators for at least `seconds` of the calling
// thread's CPU time (CLOCK_THREAD_CPUTIME_ID).
double ek_measure_fma_gflops(double seconds);

#ifdef __cplusplus
}
#endif
#endif
