/* Internals shared by src/metrics and src/report. */
#ifndef CV_METRICS_INTERNAL_H
#define CV_METRICS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "cvision/metrics.h"

#define CV_TOPK_N 3
extern const int cv_topk_values[CV_TOPK_N]; /* the k of top_k_accuracy_score.k2/.k3/.k5 */

/* Everything that streams: weighted sums over samples. The unweighted run adds weight 1 per
 * sample as batches arrive; a bootstrap replicate rebuilds it from the kept samples with the
 * replicate's counts as weights. Counts are doubles: exact up to 2^53. */
typedef struct {
    double n;
    double *cm; /* single-label: K×K [true][pred]; multilabel: K×4 [tn, fp, fn, tp] */
    double topk[CV_TOPK_N];
    double logloss, brier;
    double *cal; /* (n_bins+1)×3: count, sum of confidence, sum of correct */
    /* multilabel sample-wise sums */
    double subset, hamming, s_prec, s_rec, s_f1, s_fb, s_jac;
} cv_agg;

struct cv_metrics {
    cv_task task;
    int K;
    cv_metrics_opts opts;
    double *class_thr; /* multilabel: K thresholds */
    float *bounds;     /* n_bins+1 calibration bin boundaries (torch.linspace(0, 1) in float32) */
    int mode;          /* 0: no batch yet, 1: batches carry scores, 2: they do not */
    int keep;          /* per-sample data kept (scores given or bootstrap asked) */
    size_t n, cap;
    int32_t *y;        /* single-label labels (kept) */
    int32_t *p;        /* single-label predictions (kept) */
    uint8_t *Y;        /* multilabel n×K labels (kept) */
    uint8_t *P;        /* multilabel n×K predictions (kept) */
    float *s;          /* n×K scores (kept when mode 1) */
    int outside01;     /* some score is outside [0, 1] */
    int rows_not_sum1; /* some row of scores does not sum to 1 (numpy allclose) */
    cv_agg agg;
    uint64_t **ord; /* per class (and [K]: multilabel micro) sorted (key, index), for bootstrap */
};

int cv_agg_init(cv_agg *a, const cv_metrics *m);
void cv_agg_free(cv_agg *a);
/* Adds one sample: label (index or K indicators), score row or NULL, prediction. */
void cv_agg_add(cv_agg *a, const cv_metrics *m, const int32_t *y, const uint8_t *Y, const float *s,
                int32_t pred, const uint8_t *P, double w);

/* ---- results ---- */
struct cv_metrics_result {
    cv_task task;
    int K;
    size_t n;
    int nbins;
    cv_metric_entry *e;
    int count, cap;
    char **dcode, **dmsg;
    int ndiag;
    int bootstrap;
    double level;
    uint64_t seed;
    int oom;      /* an allocation failed while building: finalize reports CV_ERR_NOMEM */
    char **names; /* K class names, or NULL */
};

cv_metrics_result *cv_res_new(const cv_metrics *m);
/* An empty result for n samples of a task with K classes. */
cv_metrics_result *cv_res_alloc(cv_task task, int K, size_t n);
/* Adds an entry (copies v). Returns the entry or NULL (and sets oom). */
cv_metric_entry *cv_res_add(cv_metrics_result *r, cv_section sec, const char *name, int rows,
                            int cols, const double *v, const char *const *row_names);
void cv_res_scalar(cv_metrics_result *r, const char *name, double v, const char *reason);
void cv_res_vector(cv_metrics_result *r, const char *name, const double *v, int n);
void cv_res_diag(cv_metrics_result *r, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- computations: each fills r from the data, with sample weights w (NULL: all 1) ---- */
/* full = 0 computes scalars only (bootstrap replicates). */
void cv_classification_metrics(const cv_metrics *m, const cv_agg *a, cv_metrics_result *r,
                               int full);
void cv_calibration_metrics(const cv_metrics *m, const cv_agg *a, cv_metrics_result *r, int full);
cv_status cv_ranking_metrics(cv_ctx *ctx, cv_metrics *m, const cv_agg *a, const uint32_t *w,
                             cv_metrics_result *r, int full);
/* The scores of class c (c == K: all n×K scores, multilabel micro) sorted descending, as
 * (order key << 32 | payload). With by_index the payload is the sample index (weights are looked
 * up by it) and, when the bootstrap will need it again, the array stays cached in m->ord[c];
 * otherwise the payload is the label (multilabel: the indicator), so that a pass reads the array
 * sequentially. The caller frees the array unless it is m->ord[c]. */
cv_status cv_rank_order(cv_ctx *ctx, cv_metrics *m, int c, int by_index, uint64_t **order);

/* One class's operating points in descending threshold order: cumulative tp and fp at each
 * distinct score. */
typedef struct {
    size_t n;
    double *tp, *fp;
    float *thr;
    double P, N; /* total positives and negatives */
} cv_groups;
cv_status cv_class_groups(cv_ctx *ctx, cv_metrics *m, int c, cv_groups *g);
void cv_groups_free(cv_groups *g);

cv_status cv_bootstrap_cis(cv_ctx *ctx, cv_metrics *m, cv_metrics_result *r);
/* Computes all scalars of one weighted replicate into a fresh result. */
cv_status cv_metrics_compute(cv_ctx *ctx, cv_metrics *m, const uint32_t *w, int full,
                             cv_metrics_result **out);

/* numpy's default (linear) percentile of sorted values, q in [0, 1] */
double cv_quantile_sorted(const double *v, size_t n, double q);

/* ---- CSV fields (shared by the predictions and the boxes readers) ---- */
/* Strips spaces, tabs, a trailing CR and one pair of enclosing double quotes. */
void cv_csv_trim(const char **b, const char **e);
/* Splits one line into fields (commas; a field may be wrapped in double quotes). Returns the
 * number of fields, up to max (stores their bounds), or max + 1 if there are more. */
int cv_csv_split(const char *b, const char *e, const char **fb, const char **fe, int max);

#endif
