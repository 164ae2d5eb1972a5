// TEMPORARY scalar reference kernels; replaced by kernels.c on merge.
#include "elbo_kernels.h"
#include <math.h>
#define MAP(name, expr) void name(const float *x, float *y, long n) { for (long i = 0; i < n; i++) { float v = x[i]; y[i] = (expr); } }
MAP(ek_exp, expf(v)) MAP(ek_log, logf(v)) MAP(ek_log1p, log1pf(v)) MAP(ek_tanh, tanhf(v))
MAP(ek_sigmoid, 1.f/(1.f+expf(-v))) MAP(ek_softplus, fmaxf(v,0)+log1pf(expf(-fabsf(v))))
MAP(ek_log_sigmoid, -(fmaxf(-v,0)+log1pf(expf(-fabsf(v))))) MAP(ek_relu, v > 0 ? v : 0) MAP(ek_elu, v > 0 ? v : expm1f(v))
#define BWD(name, expr) void name(const float *a, const float *dy, float *dx, long n) { for (long i = 0; i < n; i++) { float v = a[i]; dx[i] += dy[i] * (expr); } }
BWD(ek_exp_backward, v) BWD(ek_log_backward, 1.f/v) BWD(ek_log1p_backward, 1.f/(1.f+v)) BWD(ek_tanh_backward, 1.f-v*v)
BWD(ek_sigmoid_backward, v*(1.f-v)) BWD(ek_softplus_backward, 1.f/(1.f+expf(-v))) BWD(ek_log_sigmoid_backward, 1.f/(1.f+expf(v)))
BWD(ek_relu_backward, v > 0 ? 1.f : 0.f)
void ek_elu_backward(const float *x, const float *y, const float *dy, float *dx, long n) { for (long i = 0; i < n; i++) dx[i] += x[i] > 0 ? dy[i] : dy[i]*(y[i]+1.f); }
void ek_bernoulli_logits_rowsum(const float *l, const float *t, float *rs, long rows, long cols) {
  for (long r = 0; r < rows; r++) { double s = 0; for (long c = 0; c < cols; c++) { float v = l[r*cols+c]; s += t[r*cols+c]*v - (fmaxf(v,0)+log1pf(expf(-fabsf(v)))); } rs[r] = (float)s; } }
void ek_bernoulli_logits_backward(const float *l, const float *t, const float *drow, float *dl, long rows, long cols) {
  for (long r = 0; r < rows; r++) for (long c = 0; c < cols; c++) { long i = r*cols+c; dl[i] += drow[r]*(t[i] - 1.f/(1.f+expf(-l[i]))); } }
float ek_sum(const float *x, long n) { double s = 0; for (long i = 0; i < n; i++) s += x[i]; return (float)s; }
float ek_dot(const float *x, const float *y, long n) { double s = 0; for (long i = 0; i < n; i++) s += (double)x[i]*y[i]; return (float)s; }
int ek_all_finite(const float *x, long n) { for (long i = 0; i < n; i++) if (!isfinite(x[i])) return 0; return 1; }
void ek_adam(float *p, const float *g, float *m, float *v, long n, float lr_t, float b1, float b2, float eps_t) {
  for (long i = 0; i < n; i++) { m[i] = b1*m[i] + (1-b1)*g[i]; v[i] = b2*v[i] + (1-b2)*g[i]*g[i]; p[i] -= lr_t*m[i]/(sqrtf(v[i])+eps_t); } }
