/* A bounds-checked reader for the subset of MATLAB level-5 .mat files that numeric datasets use
 * (SVHN's train_32x32.mat, scipy.io.savemat output): little-endian, top-level numeric arrays,
 * stored plain or zlib-compressed (miCOMPRESSED). Cell, struct, sparse, char and complex arrays
 * are skipped. */
#ifndef CV_DATA_MAT_H
#define CV_DATA_MAT_H

#include <stddef.h>
#include <stdint.h>

#include "cvision/core.h"

typedef struct {
    char name[64];
    int mclass; /* mxDOUBLE_CLASS = 6 ... mxUINT64_CLASS = 15 */
    int ndim;
    int64_t dims[8]; /* column-major (MATLAB) order */
    int type;        /* storage type of the data: miINT8 = 1 ... miUINT64 = 13 */
    const uint8_t *data;
    size_t nbytes;
} mat_var;

typedef struct mat_file mat_file;

/* Parses a .mat image in memory (kept by the caller while the result lives). */
cv_status mat_parse(cv_ctx *ctx, const uint8_t *buf, size_t n, const char *name, mat_file **out);
void mat_free(mat_file *m);
const mat_var *mat_find(const mat_file *m, const char *name);
/* Element count of a variable (product of dims), or -1 on overflow. */
int64_t mat_numel(const mat_var *v);
/* Element i of a numeric variable as a double (the storage type converted). */
double mat_get(const mat_var *v, int64_t i);
/* Bytes per element of a storage type (0 if not numeric). */
size_t mat_type_size(int type);

#endif
