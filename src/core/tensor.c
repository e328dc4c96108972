/* Dense tensors: allocation with overflow checks, shapes, dtypes. */
#include "cvision/core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    size_t size;
    const char *name;
} dtypes[CV_DTYPE_COUNT] = {
    [CV_F32] = {4, "float32"},   [CV_F64] = {8, "float64"}, [CV_F16] = {2, "float16"},
    [CV_BF16] = {2, "bfloat16"}, [CV_I64] = {8, "int64"},   [CV_I32] = {4, "int32"},
    [CV_I16] = {2, "int16"},     [CV_I8] = {1, "int8"},     [CV_U8] = {1, "uint8"},
    [CV_BOOL] = {1, "bool"},
};

size_t cv_dtype_size(cv_dtype t)
{
    return (unsigned)t < CV_DTYPE_COUNT ? dtypes[t].size : 0;
}

const char *cv_dtype_name(cv_dtype t)
{
    return (unsigned)t < CV_DTYPE_COUNT ? dtypes[t].name : "invalid";
}

void *cv_aligned_alloc(size_t nbytes)
{
    void *p = NULL;
    if (posix_memalign(&p, 64, nbytes ? nbytes : 64)) return NULL;
    return p;
}

void cv_aligned_free(void *p)
{
    free(p);
}

int64_t cv_shape_numel(int ndim, const int64_t *shape)
{
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) return -1;
        if (shape[i] && n > INT64_MAX / shape[i]) return -1;
        n *= shape[i];
    }
    return n;
}

int64_t cv_tensor_numel(const cv_tensor *t)
{
    return cv_shape_numel(t->ndim, t->shape);
}

int cv_tensor_same_shape(const cv_tensor *a, const cv_tensor *b)
{
    if (a->ndim != b->ndim) return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return 0;
    return 1;
}

const char *cv_shape_str(int ndim, const int64_t *shape, char *buf, size_t size)
{
    size_t off = 0;
    off += (size_t)snprintf(buf + off, size - off, "[");
    for (int i = 0; i < ndim && off < size; i++)
        off += (size_t)snprintf(buf + off, size - off, i ? ", %lld" : "%lld", (long long)shape[i]);
    if (off < size) snprintf(buf + off, size - off, "]");
    return buf;
}

static cv_status make(cv_ctx *ctx, cv_dtype dtype, int ndim, const int64_t *shape, void *data,
                      cv_tensor **out)
{
    *out = NULL;
    if ((unsigned)dtype >= CV_DTYPE_COUNT || ndim < 0 || ndim > CV_MAX_DIMS)
        return cv_fail(ctx, CV_ERR_INVALID, "tensor: bad dtype %d or rank %d", (int)dtype, ndim);
    int64_t n = cv_shape_numel(ndim, shape);
    size_t es = cv_dtype_size(dtype);
    if (n < 0 || (uint64_t)n > SIZE_MAX / es) {
        char b[128];
        return cv_fail(ctx, CV_ERR_NOMEM, "tensor: shape %s is too large",
                       cv_shape_str(ndim, shape, b, sizeof b));
    }
    cv_tensor *t = calloc(1, sizeof *t);
    if (!t) return cv_fail(ctx, CV_ERR_NOMEM, "tensor: out of memory");
    t->dtype = dtype;
    t->ndim = ndim;
    if (ndim) memcpy(t->shape, shape, (size_t)ndim * sizeof *shape);
    t->nbytes = (size_t)n * es;
    if (data) {
        t->data = data;
    } else {
        t->data = cv_aligned_alloc(t->nbytes);
        if (!t->data) {
            free(t);
            return cv_fail(ctx, CV_ERR_NOMEM, "tensor: cannot allocate %zu bytes", (size_t)n * es);
        }
        memset(t->data, 0, t->nbytes);
        t->owns_data = 1;
    }
    *out = t;
    return CV_OK;
}

cv_status cv_tensor_new(cv_ctx *ctx, cv_dtype dtype, int ndim, const int64_t *shape,
                        cv_tensor **out)
{
    return make(ctx, dtype, ndim, shape, NULL, out);
}

cv_status cv_tensor_wrap(cv_ctx *ctx, cv_dtype dtype, int ndim, const int64_t *shape, void *data,
                         cv_tensor **out)
{
    if (!data) return cv_fail(ctx, CV_ERR_INVALID, "tensor: wrapping a NULL pointer");
    return make(ctx, dtype, ndim, shape, data, out);
}

cv_status cv_tensor_clone(cv_ctx *ctx, const cv_tensor *src, cv_tensor **out)
{
    cv_status s = make(ctx, src->dtype, src->ndim, src->shape, NULL, out);
    if (s == CV_OK && src->nbytes) memcpy((*out)->data, src->data, src->nbytes);
    return s;
}

void cv_tensor_free(cv_tensor *t)
{
    if (!t) return;
    if (t->owns_data) cv_aligned_free(t->data);
    free(t);
}
