/* cvision metrics: streaming classification metrics that agree with scikit-learn, bootstrap
 * confidence intervals, decision thresholds, diagnostics and reports.
 *
 *   cv_metrics *m;
 *   cv_metrics_opts o; cv_metrics_opts_default(&o);
 *   cv_metrics_new(ctx, CV_TASK_MULTICLASS, 10, &o, &m);
 *   for each batch: cv_metrics_add(ctx, m, labels, scores, NULL, n);
 *   cv_metrics_result *r; cv_metrics_finalize(ctx, m, &r);
 *   cv_metrics_report_text(stdout, r);
 *   cv_metrics_result_free(r); cv_metrics_free(m);
 *
 * Every value is named after the scikit-learn function and average that computes it
 * ("f1_score.macro", "roc_auc_score.ovr_weighted", ...); docs/metrics-json.md lists them. A
 * value that scikit-learn would refuse to compute (it raises, or returns NaN) is NaN here, with
 * a reason, and is written as JSON null. */
#ifndef CVISION_METRICS_H
#define CVISION_METRICS_H

#include <stdint.h>
#include <stdio.h>

#include "cvision/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    CV_TASK_BINARY = 0, /* labels 0/1, K = 2 score columns (P(class 0), P(class 1)) */
    CV_TASK_MULTICLASS, /* labels 0..K-1, scores N×K (probabilities) */
    CV_TASK_MULTILABEL, /* labels N×K 0/1 indicators, scores N×K independent probabilities */
    CV_TASK_ORDINAL,    /* as multiclass; classes are ordered grades (adds MAE, reads QWK first) */
    CV_TASK_SEGMENTATION, /* label maps: cv_seg_* below (not cv_metrics_new) */
    CV_TASK_DETECTION,    /* boxes: cv_det_* below (not cv_metrics_new) */
} cv_task;

const char *cv_task_name(cv_task t);
/* Parses the four classification task names (segmentation and detection are not accepted: they
 * have their own entry points). */
cv_status cv_task_parse(cv_ctx *ctx, const char *name, cv_task *out);

typedef struct {
    int n_bins;       /* calibration bins (torchmetrics binning), default 15 */
    double beta;      /* the beta of fbeta_score, default 2 */
    double threshold; /* multilabel: predicted positive when score >= threshold (0.5) */
    const double *class_thresholds; /* multilabel: K per-class thresholds instead (copied) */
    int curve_points; /* at most this many points kept per ROC/PR curve; 0 = all (1000) */
    int bootstrap;    /* resamples for percentile CIs of every scalar; 0 = none */
    double ci_level;  /* confidence level of the CIs, default 0.95 */
    uint64_t seed;    /* seed of the bootstrap resampling */
} cv_metrics_opts;

void cv_metrics_opts_default(cv_metrics_opts *o);

/* Scores from logits, n rows of k: softmax per row (computed in double), or the sigmoid of each
 * logit when `multilabel`. `out` may equal `logits`. */
void cv_logits_to_scores(const float *logits, float *out, int64_t n, int64_t k, int multilabel);

/* ---- the accumulator ---- */
typedef struct cv_metrics cv_metrics;

cv_status cv_metrics_new(cv_ctx *ctx, cv_task task, int num_classes, const cv_metrics_opts *opts,
                         cv_metrics **out);
void cv_metrics_free(cv_metrics *m);

/* Adds n samples.
 *   labels: single-label tasks: n class indices; multilabel: n×K 0/1 indicators (row-major).
 *   scores: n×K float probabilities, or NULL. Either every batch has scores or none has.
 *   preds:  single-label: n predicted classes; multilabel: n×K 0/1; or NULL to derive them from
 *           the scores (argmax, first maximum on ties; multilabel: score >= threshold).
 * At least one of scores and preds must be given. Values are checked (label range, finite
 * scores); a bad batch is rejected whole and leaves the accumulator unchanged. */
cv_status cv_metrics_add(cv_ctx *ctx, cv_metrics *m, const int *labels, const float *scores,
                         const int *preds, size_t n);
size_t cv_metrics_count(const cv_metrics *m);
int cv_metrics_num_classes(const cv_metrics *m);
cv_task cv_metrics_task(const cv_metrics *m);

/* ---- results ---- */
typedef struct cv_metrics_result cv_metrics_result;

typedef enum {
    CV_SECTION_METRIC = 0, /* "metrics" in the JSON: scalars, per-class vectors, matrices */
    CV_SECTION_CURVE,      /* "curves": ROC, precision-recall and reliability curves */
    CV_SECTION_THRESHOLD,  /* "thresholds": operating points from cv_metrics_thresholds */
} cv_section;

typedef struct {
    const char *name;
    cv_section section;
    int rows, cols;  /* scalar: 0×0 (one value); vector: 1×cols; matrix: rows×cols */
    const double *v; /* row-major; NaN = undefined (JSON null) */
    const char *const *row_names; /* curves: the name of each row ("fpr", "tpr", ...); or NULL */
    const char *reason;           /* why a scalar is undefined, or NULL */
    int has_ci;
    double ci_low, ci_high; /* percentile bootstrap interval (when has_ci) */
} cv_metric_entry;

cv_status cv_metrics_finalize(cv_ctx *ctx, cv_metrics *m, cv_metrics_result **out);
void cv_metrics_result_free(cv_metrics_result *r);
int cv_metrics_result_count(const cv_metrics_result *r);
const cv_metric_entry *cv_metrics_result_at(const cv_metrics_result *r, int i);
const cv_metric_entry *cv_metrics_result_get(const cv_metrics_result *r, const char *name);
/* A scalar by name; NaN if absent or undefined. */
double cv_metrics_result_scalar(const cv_metrics_result *r, const char *name);
cv_task cv_metrics_result_task(const cv_metrics_result *r);
int cv_metrics_result_num_classes(const cv_metrics_result *r);
size_t cv_metrics_result_samples(const cv_metrics_result *r);
int cv_metrics_result_diag_count(const cv_metrics_result *r);
/* A diagnostic: a short code ("accuracy_paradox") and a plain-language message with numbers. */
const char *cv_metrics_result_diag_code(const cv_metrics_result *r, int i);
const char *cv_metrics_result_diag_message(const cv_metrics_result *r, int i);
/* Names for the K classes (copied), shown by the reports and written to the JSON as
 * "class_names". n must equal the result's class count. */
cv_status cv_metrics_result_set_class_names(cv_ctx *ctx, cv_metrics_result *r,
                                            const char *const *names, int n);
/* Class i's name, or NULL when none were set. */
const char *cv_metrics_result_class_name(const cv_metrics_result *r, int i);
/* The bootstrap setting behind the CIs (0 when none). */
int cv_metrics_result_bootstrap(const cv_metrics_result *r, double *level, uint64_t *seed);

/* ---- operating thresholds (binary, and one-vs-rest per class for multiclass/multilabel) ----
 * Adds to the result, for each target, the threshold t (predict positive when score >= t) and
 * the resulting 2×2 confusion matrix [[tn, fp], [fn, tp]]:
 *   target_recall in (0,1]: the largest t whose recall >= target (best precision at that recall)
 *   target_precision in (0,1]: the smallest t whose precision >= target (best recall)
 *   cost_fp_fn > 0: the t minimising cost_fp_fn * FP + FN
 * Pass 0 to skip a target. Needs scores. Binary: the positive class only. */
cv_status cv_metrics_thresholds(cv_ctx *ctx, cv_metrics *m, cv_metrics_result *r,
                                double target_recall, double target_precision, double cost_fp_fn);

/* Multilabel: per-class thresholds that maximise each class's F1 on this (validation) data,
 * written to thresholds_out[K]. Use them with opts.class_thresholds on the test data. */
cv_status cv_metrics_tune_thresholds(cv_ctx *ctx, cv_metrics *m, double *thresholds_out);

/* ---- paired bootstrap: does model A beat model B on the same samples? ----
 * a and b hold the same labels in the same order. Resamples samples (same draw for both) and
 * reports the difference metric(A) - metric(B). */
typedef struct {
    double a, b, diff;      /* point estimates */
    double ci_low, ci_high; /* percentile interval of the difference */
    double p_value;         /* two-sided: 2 * min(P(diff <= 0), P(diff >= 0)) over resamples */
    int resamples_used;     /* resamples where both values were defined */
} cv_paired_result;

cv_status cv_metrics_paired_bootstrap(cv_ctx *ctx, cv_metrics *a, cv_metrics *b, const char *metric,
                                      int resamples, double level, uint64_t seed,
                                      cv_paired_result *out);

/* ---- diagnostics ----
 * Plain-language warnings appended to the result. cv_metrics_finalize already adds those that
 * need only the data (accuracy paradox, imbalance, absent or never-predicted classes, poor
 * calibration); this adds those that need more: overfitting (given the training metrics) and
 * train/test leakage (given the duplicate count). Unknown inputs are NULL / -1. */
typedef struct {
    const cv_metrics_result *train; /* metrics of the same model on its training data, or NULL */
    long long duplicates;           /* train/test duplicates from `cvision data check`, or -1 */
} cv_diag_inputs;

cv_status cv_metrics_diagnose(cv_ctx *ctx, cv_metrics_result *r, const cv_diag_inputs *in);

/* ---- predictions CSV ----
 * Header: `label` and either score_0..score_{K-1} or `pred` (or both); other columns are
 * ignored. Multilabel labels (and preds) are space-separated class indices ("" = none).
 * K comes from the score columns, else from num_classes (> 0), else max label/pred + 1. */
typedef struct {
    cv_task task;
    int num_classes;
    size_t n;
    int *labels;   /* n, or n×K for multilabel */
    float *scores; /* n×K or NULL */
    int *preds;    /* n (n×K for multilabel) or NULL */
} cv_pred_table;

cv_status cv_pred_csv_read(cv_ctx *ctx, const char *path, cv_task task, int num_classes,
                           cv_pred_table *out);
/* The same over a buffer; `name` is used in messages. */
cv_status cv_pred_csv_parse(cv_ctx *ctx, const char *buf, size_t len, const char *name,
                            cv_task task, int num_classes, cv_pred_table *out);
void cv_pred_table_free(cv_pred_table *t);

/* ---- semantic segmentation: a streaming K×K confusion matrix over label maps ----
 * torchvision's references/segmentation ConfusionMatrix: rows are the true class, columns the
 * predicted one; pixels whose ground truth is ignore_index are skipped. Any other ground-truth
 * or predicted value outside 0..K-1 is an error (torchvision silently drops such ground truth).
 * num_classes 0: K grows to the largest value seen + 1. The result (cv_seg_finalize) holds
 * pixel_accuracy, mean_accuracy, mean_iou, iou.per_class, accuracy.per_class, support.per_class
 * and confusion_matrix; the means are over the classes where they are defined (a class absent
 * from both the ground truth and the predictions has IoU 0/0: null, and is left out of mean_iou,
 * where torchvision's printed mean would become NaN). */
typedef struct cv_seg cv_seg;

cv_status cv_seg_new(cv_ctx *ctx, int num_classes, int ignore_index, cv_seg **out);
void cv_seg_free(cv_seg *s);
/* Adds n pixels (`what` names the pair in error messages, e.g. the ground-truth file). */
cv_status cv_seg_add(cv_ctx *ctx, cv_seg *s, const int32_t *gt, const int32_t *pred, size_t n,
                     const char *what);
cv_status cv_seg_finalize(cv_ctx *ctx, const cv_seg *s, cv_metrics_result **out);
/* Label maps added, pixels counted and pixels skipped for their ignore index. */
void cv_seg_counts(const cv_seg *s, uint64_t *maps, uint64_t *pixels, uint64_t *ignored);

/* A label map as an H×W int32 array: a PNG (palette images give their palette indices, as
 * numpy.array(PIL.Image.open(path)) does; 8- and 16-bit gray give the values; RGB is refused) or
 * a .npy integer array of shape (H, W) or (1, H, W). Free *out with free(). */
cv_status cv_label_map_read(cv_ctx *ctx, const char *path, int32_t **out, int *w, int *h);
cv_status cv_label_map_decode(cv_ctx *ctx, const void *buf, size_t n, const char *name,
                              int32_t **out, int *w, int *h);

/* ---- object detection ----
 * Box IoU of n boxes a and m boxes b (x1, y1, x2, y2), out n×m, as torchvision.ops.box_iou:
 * inter / (area_a + area_b - inter), with 0/0 (two empty boxes that do not overlap) NaN. */
void cv_box_iou(const double *a, size_t n, const double *b, size_t m, double *out);

/* Ground-truth boxes or predictions read from a CSV (header with image_id, class, x1, y1, x2,
 * y2 and, for predictions, score; ground truth may have iscrowd) or COCO JSON (ground truth: an
 * object with "annotations" and optionally "images" and "categories"; predictions: the results
 * list). The format is sniffed from the first byte; docs/metrics-json.md describes both. */
typedef struct cv_det_set cv_det_set;

cv_status cv_det_read(cv_ctx *ctx, const char *path, int predictions, cv_det_set **out);
cv_status cv_det_parse(cv_ctx *ctx, const char *buf, size_t len, const char *name, int predictions,
                       cv_det_set **out);
void cv_det_free(cv_det_set *d);
size_t cv_det_count(const cv_det_set *d);

/* COCO (pycocotools COCOeval, bbox) and VOC (IoU 0.5, 11-point and all-point) mean average
 * precision of `pred` against `gt`. A prediction on an image the ground truth does not list is
 * an error naming the prediction file and line (or JSON index). */
cv_status cv_det_evaluate(cv_ctx *ctx, const cv_det_set *gt, const cv_det_set *pred,
                          cv_metrics_result **out);

/* ---- reports ---- */
void cv_metrics_report_text(FILE *f, const cv_metrics_result *r);
/* The JSON document (docs/metrics-json.md); caller frees with free(). NULL on allocation failure.
 */
char *cv_metrics_report_json(const cv_metrics_result *r);
/* A self-contained HTML page with inline SVG charts. */
cv_status cv_metrics_report_html(cv_ctx *ctx, const cv_metrics_result *r, const char *path);

#ifdef __cplusplus
}
#endif
#endif
