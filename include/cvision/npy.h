/* NumPy .npy files: the interchange format for arrays going in and out of cvision. */
#ifndef CVISION_NPY_H
#define CVISION_NPY_H

#include "cvision/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Reads a .npy file (format versions 1.0, 2.0 and 3.0) into a new tensor. Supported dtypes, all
 * little-endian: <f4 <f8 <f2 <i8 <i4 <i2 |i1 |u1 |b1. C order only; a Fortran-ordered array, a
 * big-endian dtype, more than CV_MAX_DIMS dimensions or a file whose size disagrees with its header
 * is an error naming the file. */
cv_status cv_npy_load(cv_ctx *ctx, const char *path, cv_tensor **out);
/* The same from memory; `name` is used in error messages. */
cv_status cv_npy_parse(cv_ctx *ctx, const void *buf, size_t n, const char *name, cv_tensor **out);
/* Writes a tensor as a version 1.0 .npy (byte-identical to np.save's) atomically: the data goes to
 * a temporary file beside `path` which is then renamed over it. bfloat16 has no NumPy dtype and is
 * refused. */
cv_status cv_npy_save(cv_ctx *ctx, const char *path, const cv_tensor *t);

#ifdef __cplusplus
}
#endif
#endif
