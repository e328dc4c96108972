/* Duplicate and leakage detection for `cvision data check`. */
#ifndef CV_DATA_DEDUP_H
#define CV_DATA_DEDUP_H

#include "cvision/data.h"
#include "data/scan.h"

#define DEDUP_EXAMPLES 20

/* Hashes of one dataset's samples. */
typedef struct {
    const cv_dataset *ds;
    int64_t n;
    uint64_t *h1, *h2; /* 128-bit hash of (w, h, c, pixels) */
    uint64_t *ph;      /* perceptual hash */
    uint8_t *thumb;    /* 16x16 gray thumbnails */
    uint8_t *ok;       /* 0: unreadable */
    ds_bad *bad;
    int64_t nbad;
} dd_set;

typedef struct {
    int64_t a, b; /* sample indices (b in the second set for leakage) */
    int dist;     /* Hamming distance of the perceptual hashes (0 for exact) */
} dd_pair;

typedef struct {
    int threshold;
    double max_diff;
    /* within the first set */
    int64_t exact_groups, exact_extra, exact_conflicts;
    int64_t near_pairs, near_conflicts;
    dd_pair exact_ex[DEDUP_EXAMPLES], near_ex[DEDUP_EXAMPLES];
    int n_exact_ex, n_near_ex;
    /* second set against the first */
    int64_t leak_exact, leak_near, leak_conflicts;
    dd_pair leak_ex[DEDUP_EXAMPLES];
    int n_leak_ex;
} dd_report;

/* Reads and hashes every sample (unreadable ones collected in set->bad). */
cv_status dd_hash(cv_ctx *ctx, const cv_dataset *ds, int threads, dd_set *set);
void dd_set_free(dd_set *set);
/* Duplicates within a, and (b != NULL) samples of b duplicating a sample of a. Near duplicates
 * are pairs that are not exact duplicates, at pHash Hamming distance <= threshold (0..15) and
 * with 16x16 gray thumbnails differing by <= max_diff gray levels on average. */
cv_status dd_compare(cv_ctx *ctx, const dd_set *a, const dd_set *b, int threshold, double max_diff,
                     dd_report *r);

#endif
