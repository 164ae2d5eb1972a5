#ifndef ELBO_CZLIB_SHIM_H
#define ELBO_CZLIB_SHIM_H
#include <zlib.h>
#endif
