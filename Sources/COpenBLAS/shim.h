// OpenBLAS's CBLAS interface plus its thread-count controls.
#ifndef ELBO_COPENBLAS_SHIM_H
#define ELBO_COPENBLAS_SHIM_H
#include <cblas.h>
#endif
