/* Internals shared by the dataset readers: the dataset object, the per-format ops, helpers for
 * in-memory pixel arrays and spec option parsing. */
#ifndef CV_DATA_DATASET_IMPL_H
#define CV_DATA_DATASET_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "cvision/data.h"
#include "cvision/transforms.h"

/* How one sample's pixels lie in an in-memory array (strides in bytes from the sample start). */
typedef struct {
    const uint8_t *base;  /* sample 0 */
    size_t sample_stride; /* bytes between samples */
    int h, w, c;
    ptrdiff_t sy, sx, sc; /* strides of row, column, channel */
} ds_pixels;

typedef struct {
    /* Reads sample i (an index into this dataset, not a subset). */
    cv_status (*get)(cv_ctx *ctx, const cv_dataset *ds, int64_t i, cv_image **img);
    void (*name)(const cv_dataset *ds, int64_t i, char *buf, size_t size);
    void (*free)(void *impl);
    /* Image-file datasets only (else NULL): sample i's encoded file, for decoders that want to
     * see it before decoding (the loader's scaled JPEG decode). Errors name the sample as get's. */
    cv_status (*read)(cv_ctx *ctx, const cv_dataset *ds, int64_t i, void **buf, size_t *n);
} ds_ops;

struct cv_dataset {
    const ds_ops *ops; /* NULL for a subset view */
    void *impl;
    char *spec;
    int64_t n;
    int num_classes;
    char **class_names;
    int32_t *labels; /* n; -1 = none */
    uint8_t *multi;  /* n x num_classes, multi-label only */
    int ordinal;
    cv_dataset *parent; /* subset view: index[i] is a sample of parent */
    int64_t *index;
    int refs;
};

/* The encoded file of sample i (an index of ds, subsets resolved) into *buf (free()), or
 * CV_ERR_UNSUPPORTED without a message when the dataset's samples are not image files. */
cv_status ds_read_encoded(cv_ctx *ctx, const cv_dataset *ds, int64_t i, void **buf, size_t *n);

/* A new dataset with `n` samples and `k` classes (names NULL until set). */
cv_dataset *ds_new(int64_t n, int k);
/* Sets class i's name (copied). Returns 0 on allocation failure. */
int ds_set_class(cv_dataset *ds, int i, const char *name);
/* Sets classes from a static list. */
cv_status ds_set_classes(cv_ctx *ctx, cv_dataset *ds, const char *const *names, int k);

/* Copies one sample of an in-memory array into a new HWC image. */
cv_status ds_pixels_get(cv_ctx *ctx, const ds_pixels *px, int64_t i, cv_image **img);

/* Format openers: `args` is the spec after "type:", `type` the type name. */
cv_status ds_open_mnist(cv_ctx *ctx, const char *type, const char *args, cv_dataset **out);
cv_status ds_open_cifar(cv_ctx *ctx, const char *type, const char *args, cv_dataset **out);
cv_status ds_open_stl10(cv_ctx *ctx, const char *args, cv_dataset **out);
cv_status ds_open_svhn(cv_ctx *ctx, const char *args, cv_dataset **out);
cv_status ds_open_folder(cv_ctx *ctx, const char *args, cv_dataset **out);
cv_status ds_open_csv(cv_ctx *ctx, const char *args, cv_dataset **out);
cv_status ds_open_npy(cv_ctx *ctx, const char *args, cv_dataset **out);

/* Fisher-Yates shuffle driven by `rng`. */
void ds_shuffle(int64_t *v, int64_t n, cv_rng *rng);

/* Splits `s` at ':' into at most `max` fields (copied into `buf`). Returns the count. */
int ds_split_fields(const char *s, char sep, char *buf, size_t bufsize, char **fields, int max);
/* Reads a whole file (at most `limit` bytes), with a NUL after the last byte. */
cv_status ds_read_file(cv_ctx *ctx, const char *path, size_t limit, uint8_t **data, size_t *n);
/* Joins dir and name into buf; returns buf. */
const char *ds_join(char *buf, size_t size, const char *dir, const char *name);
int ds_file_exists(const char *path);

#endif
