/* cvision datasets: torchvision's built-in datasets, image folders, CSV-labelled folders and .npy
 * arrays behind one handle, opened from a one-line spec (docs/datasets.md); splits and subsets;
 * the idx reader; duplicate/leakage checks; and the parallel batch loader.
 *
 * Sample order, pixels and labels are torchvision 0.14's for the same files. */
#ifndef CVISION_DATA_H
#define CVISION_DATA_H

#include <stdint.h>

#include "cvision/core.h"
#include "cvision/image.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- idx ("SN3 Pascal Vincent") files, .gz or raw ----
 * Reads the whole file into a tensor of the file's dtype (u8, i8, i16, i32, f32, f64) and shape,
 * converted to host byte order. Magic, type, ndim (1..4) and dims are checked against the data. */
cv_status cv_idx_load(cv_ctx *ctx, const char *path, cv_tensor **out);

/* ---- datasets ---- */
typedef struct cv_dataset cv_dataset;

/* Opens a dataset from a spec such as "fashionmnist:train", "cifar10:DIR:test", "folder:DIR",
 * "csv:FILE,images=DIR,id=COL,label=COL,ext=.png", "npy:X.npy,Y.npy", optionally followed by
 * subset suffixes "@first=N", "@range=A:B", "@split=FILE:train|val[:val=F][:seed=S]",
 * "@fold=FILE:K:I:train|val[:seed=S]". The grammar is in docs/datasets.md. Labels are read at
 * open time; images are read (decoded) by cv_dataset_get. */
cv_status cv_dataset_open(cv_ctx *ctx, const char *spec, cv_dataset **out);
/* Drops this handle's reference (subsets keep their parent alive). NULL is ignored. */
void cv_dataset_free(cv_dataset *ds);

int64_t cv_dataset_len(const cv_dataset *ds);
int cv_dataset_num_classes(const cv_dataset *ds);
const char *cv_dataset_class_name(const cv_dataset *ds, int i);
/* The spec the dataset was opened from. */
const char *cv_dataset_spec(const cv_dataset *ds);
/* 1 if labels are sets of classes (CSV with ",multilabel"). */
int cv_dataset_is_multilabel(const cv_dataset *ds);
/* 1 if classes are ordered integer grades (CSV with ",ordinal"): class k is grade k. */
int cv_dataset_is_ordinal(const cv_dataset *ds);

/* Label of sample i without reading its image: 0..num_classes-1, or -1 if the sample has none
 * (STL10 unlabeled; multi-label datasets). */
int cv_dataset_label(const cv_dataset *ds, int64_t i);
/* Multi-label datasets: num_classes bytes, 1 where the sample carries the class. NULL otherwise. */
const uint8_t *cv_dataset_multilabel(const cv_dataset *ds, int64_t i);
/* Where sample i comes from, for messages: a file path, or "FILE[record]". */
void cv_dataset_sample_name(const cv_dataset *ds, int64_t i, char *buf, size_t size);

/* Reads sample i: a new image (HWC uint8; free it with cv_image_free) and its label (as
 * cv_dataset_label; may be NULL). Thread-safe: any number of threads may call it on one dataset,
 * each with its own context. */
cv_status cv_dataset_get(cv_ctx *ctx, const cv_dataset *ds, int64_t i, cv_image **img, int *label);

/* A view of `n` samples of `ds` (indices may repeat, in any order). Keeps `ds` alive. */
cv_status cv_dataset_subset(cv_ctx *ctx, cv_dataset *ds, const int64_t *idx, int64_t n,
                            cv_dataset **out);

/* ---- splits (src/data/split.c) ----
 * A split is a list of index sets ("parts") over a dataset: a holdout split has parts train, val;
 * a k-fold split has k parts (fold i's validation set is part i, its training set the others).
 * Classes are balanced in every part: per class, counts differ from the exact proportion by < 1
 * (single-label), or by iterative stratification (Sechidis et al. 2011) for multi-label data. */
typedef struct cv_split cv_split;

typedef struct {
    int folds;           /* 0: holdout (train/val); >= 2: k-fold */
    double val_fraction; /* holdout: fraction in val (default 0.2 when 0) */
    uint64_t seed;
} cv_split_params;

cv_status cv_split_make(cv_ctx *ctx, const cv_dataset *ds, const cv_split_params *p,
                        cv_split **out);
/* Loads `path` if it exists (and checks that it was made with the same parameters, for a dataset
 * of the same size and labels), else makes the split and saves it there. */
cv_status cv_split_load_or_make(cv_ctx *ctx, const cv_dataset *ds, const char *path,
                                const cv_split_params *p, cv_split **out);
cv_status cv_split_save(cv_ctx *ctx, const cv_split *s, const char *path);
cv_status cv_split_load(cv_ctx *ctx, const char *path, cv_split **out);
void cv_split_free(cv_split *s);
int cv_split_num_parts(const cv_split *s);
/* Indices of part `k` (sorted ascending) and their count. */
const int64_t *cv_split_part(const cv_split *s, int k, int64_t *n);
/* Training indices of fold k: every part but k, sorted. Caller frees with free(). */
cv_status cv_split_fold_train(cv_ctx *ctx, const cv_split *s, int k, int64_t **idx, int64_t *n);

/* ---- duplicates and leakage (src/data/dedup.c) ---- */
/* 64-bit DCT perceptual hash, imagehash.phash's definition: grayscale (PIL "L"), Lanczos-resized
 * to 32x32 (Pillow-exact), 2-D DCT-II, the 8x8 lowest frequencies each compared with their median
 * (bit 8*row+col set when above). */
cv_status cv_image_phash(cv_ctx *ctx, const cv_image *img, uint64_t *hash);

/* ---- loader (src/data/loader.c) ---- */
/* Turns one decoded sample into out_c x out_h x out_w floats (CHW). Called from worker threads
 * with the worker's own context; the seed is cv_transform_sample_seed(loader seed, epoch, sample
 * index), so augmentations do not depend on thread count or timing. Returns 0 or a cv_status. */
typedef int (*cv_transform_fn)(void *user, cv_ctx *ctx, const cv_image *img, uint64_t sample_seed,
                               float *out_chw);

/* Adapter for a transforms pipeline (cvision/transforms.h): pass cv_loader_pipeline_fn as the
 * transform and a cv_loader_pipeline as its user data; the pipeline's output must be c x h x w
 * (the loader's out_c, out_h, out_w), else the sample fails with a shape error. */
struct cv_transform_pipeline;
typedef struct {
    const struct cv_transform_pipeline *pipe;
    int c, h, w;
} cv_loader_pipeline;
int cv_loader_pipeline_fn(void *user, cv_ctx *ctx, const cv_image *img, uint64_t sample_seed,
                          float *out_chw);

typedef struct {
    int batch_size;
    int workers;  /* threads (>= 1) */
    int prefetch; /* batches in flight (default 2 * workers) */
    int shuffle;  /* a seeded permutation per epoch */
    int drop_last;
    int skip_bad; /* skip samples that fail to load/transform (counted) instead of failing */
    uint64_t seed;
    int out_c, out_h, out_w;   /* sample shape; without a transform, 0 = take it from sample 0 */
    cv_transform_fn transform; /* NULL: the image as floats in [0,1] (sizes must agree) */
    void *user;
    /* Data-parallel sharding, torch.utils.data.DistributedSampler's: with world > 1 the loader
     * yields rank's share of each epoch's permutation (see cv_shard_indices). 0: one process. */
    int world, rank;
    int shard; /* cv_shard_mode */
} cv_loader_opts;

typedef enum {
    CV_SHARD_PAD = 0, /* pad by repeating the permutation's start to a multiple of world */
    CV_SHARD_DROP,    /* cut the tail to a multiple of world (DistributedSampler drop_last) */
    CV_SHARD_EXACT,   /* neither: every sample exactly once, shards differ by at most one */
} cv_shard_mode;

/* Rank's shard of the permutation perm[0..n): the list padded or cut as `mode` says, then
 * every world-th element starting at `rank` (DistributedSampler's indices[rank::world]). Writes
 * the shard to out (room for (n + world - 1) / world elements) and returns its length. */
int64_t cv_shard_indices(const int64_t *perm, int64_t n, int world, int rank, cv_shard_mode mode,
                         int64_t *out);

typedef struct {
    cv_tensor *x;     /* float32 [n, C, H, W] */
    int64_t n;        /* samples in the batch (< batch_size at the end or after skips) */
    int32_t *labels;  /* n labels (-1 = none) */
    float *targets;   /* multi-label datasets: n x num_classes 0/1, else NULL */
    int64_t *indices; /* n dataset indices */
    int64_t skipped;  /* samples skipped in this batch (skip_bad) */
} cv_batch;

typedef struct cv_loader cv_loader;

cv_status cv_loader_new(cv_ctx *ctx, const cv_dataset *ds, const cv_loader_opts *opts,
                        cv_loader **out);
/* Starts epoch `epoch` (its permutation and sample seeds depend on it). */
cv_status cv_loader_start_epoch(cv_ctx *ctx, cv_loader *L, int epoch);
/* The next batch in order, or *out = NULL at the end of the epoch. The batch stays valid until
 * the next call. */
cv_status cv_loader_next(cv_ctx *ctx, cv_loader *L, const cv_batch **out);
int64_t cv_loader_num_batches(const cv_loader *L);
/* Samples skipped so far (all epochs). */
int64_t cv_loader_skipped(const cv_loader *L);
void cv_loader_free(cv_loader *L);

#ifdef __cplusplus
}
#endif
#endif
