/* cvision core: status codes, the explicit context, tensors and named-tensor tables.
 *
 * Every fallible function returns a cv_status and, on failure, leaves a one-line message in the
 * context (cv_ctx_error). There is no global mutable state: everything a call needs comes through
 * its arguments and the context. */
#ifndef CVISION_CORE_H
#define CVISION_CORE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    CV_OK = 0,
    CV_ERR_IO,          /* a file could not be opened, read or written */
    CV_ERR_FORMAT,      /* a file's bytes are not what its format says they must be */
    CV_ERR_INVALID,     /* an argument is out of range or inconsistent */
    CV_ERR_NOMEM,       /* an allocation failed or a size would overflow */
    CV_ERR_UNSUPPORTED, /* well-formed but outside what cvision implements */
    CV_ERR_NOT_FOUND,   /* a named thing (file, key, model, weight) does not exist */
    CV_ERR_SHAPE,       /* tensor shapes do not agree */
    CV_ERR_NETWORK,     /* a download failed */
    CV_ERR_INTERNAL,    /* a bug in cvision */
} cv_status;

const char *cv_status_name(cv_status s);

/* The context: error message, thread count, verbosity. One per thread of control. */
typedef struct cv_ctx cv_ctx;

cv_ctx *cv_ctx_new(void);
void cv_ctx_free(cv_ctx *ctx);
/* The message of the last failure ("" if none). Valid until the next failing call. */
const char *cv_ctx_error(const cv_ctx *ctx);
/* Records a failure and returns `code`, so that callers can write `return cv_fail(ctx, ...)`. */
cv_status cv_fail(cv_ctx *ctx, cv_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void cv_ctx_clear_error(cv_ctx *ctx);
/* Number of CPU threads kernels may use (default: all online CPUs). */
int cv_ctx_threads(const cv_ctx *ctx);
void cv_ctx_set_threads(cv_ctx *ctx, int threads);

/* ---- tensors ---- */
typedef enum {
    CV_F32 = 0,
    CV_F64,
    CV_F16,
    CV_BF16,
    CV_I64,
    CV_I32,
    CV_I16,
    CV_I8,
    CV_U8,
    CV_BOOL,
    CV_DTYPE_COUNT
} cv_dtype;

size_t cv_dtype_size(cv_dtype t);
const char *cv_dtype_name(cv_dtype t); /* "float32", "int64", ... */

#define CV_MAX_DIMS 8

/* A dense, C-contiguous tensor. The struct is public so that kernels and readers can reach the
 * data directly; create and destroy it only through the functions below. */
typedef struct cv_tensor {
    cv_dtype dtype;
    int ndim;
    int64_t shape[CV_MAX_DIMS];
    void *data;    /* 64-byte aligned when owned */
    size_t nbytes; /* numel * dtype size */
    int owns_data; /* 1: freed with the tensor */
} cv_tensor;

/* Allocates a zero-filled tensor. Fails with CV_ERR_NOMEM on overflow or allocation failure. */
cv_status cv_tensor_new(cv_ctx *ctx, cv_dtype dtype, int ndim, const int64_t *shape,
                        cv_tensor **out);
/* A tensor viewing caller-owned memory (not freed by cv_tensor_free). */
cv_status cv_tensor_wrap(cv_ctx *ctx, cv_dtype dtype, int ndim, const int64_t *shape, void *data,
                         cv_tensor **out);
cv_status cv_tensor_clone(cv_ctx *ctx, const cv_tensor *src, cv_tensor **out);
void cv_tensor_free(cv_tensor *t);
int64_t cv_tensor_numel(const cv_tensor *t);
/* numel of a shape, or -1 if a dimension is negative or the product overflows int64/size_t. */
int64_t cv_shape_numel(int ndim, const int64_t *shape);
int cv_tensor_same_shape(const cv_tensor *a, const cv_tensor *b);
/* Writes "[2, 3, 224, 224]" into buf. */
const char *cv_shape_str(int ndim, const int64_t *shape, char *buf, size_t size);

/* 64-byte aligned allocation used for all tensor storage. */
void *cv_aligned_alloc(size_t nbytes);
void cv_aligned_free(void *p);

/* ---- named tensors (a state_dict) ----
 * An ordered table name -> tensor (insertion order is kept, as in PyTorch's OrderedDict), plus
 * string metadata (safetensors __metadata__, module versions from a .pth's _metadata). */
typedef struct cv_state cv_state;

cv_state *cv_state_new(void);
void cv_state_free(cv_state *st);
/* Takes ownership of `t`. Replaces (and frees) an existing tensor of the same name. */
cv_status cv_state_put(cv_ctx *ctx, cv_state *st, const char *name, cv_tensor *t);
cv_tensor *cv_state_get(const cv_state *st, const char *name);
/* Removes and returns the tensor (caller owns it), or NULL. */
cv_tensor *cv_state_take(cv_state *st, const char *name);
int cv_state_count(const cv_state *st);
const char *cv_state_name(const cv_state *st, int i);
cv_tensor *cv_state_tensor(const cv_state *st, int i);
cv_status cv_state_set_meta(cv_ctx *ctx, cv_state *st, const char *key, const char *value);
const char *cv_state_get_meta(const cv_state *st, const char *key);
int cv_state_meta_count(const cv_state *st);
const char *cv_state_meta_key(const cv_state *st, int i);

#ifdef __cplusplus
}
#endif
#endif
