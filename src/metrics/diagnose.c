/* Diagnostics: short plain-language warnings, with the numbers behind them, about numbers that
 * mislead. Thresholds are stated in docs/metrics-json.md. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "metrics/metrics_internal.h"

#define PARADOX_SHARE   0.5  /* errors kept, relative to always predicting the majority */
#define RECALL_GAP      0.3  /* a class recall this far below the accuracy */
#define IMBALANCE_RATIO 3.0  /* largest / smallest class support */
#define ECE_POOR        0.05 /* expected calibration error */
#define OVERFIT_GAP     0.05 /* train - test accuracy */

static const double *vec(const cv_metrics_result *r, const char *name)
{
    const cv_metric_entry *e = cv_metrics_result_get(r, name);
    return e && e->rows == 1 ? e->v : NULL;
}

static void data_checks(cv_metrics_result *r)
{
    const int K = r->K;
    const double *sup = vec(r, "support.per_class"), *rec = vec(r, "recall_score.per_class");
    double acc = cv_metrics_result_scalar(r, "accuracy_score");
    double n = (double)r->n;
    if (!sup || !rec) return;
    int cmax = 0, cmin = -1;
    for (int c = 0; c < K; c++) {
        if (sup[c] > sup[cmax]) cmax = c;
        if (sup[c] > 0 && (cmin < 0 || sup[c] < sup[cmin])) cmin = c;
    }
    char absent[256] = "";
    int nabsent = 0;
    for (int c = 0; c < K; c++)
        if (sup[c] == 0 && nabsent++ < 8) {
            size_t l = strlen(absent);
            snprintf(absent + l, sizeof absent - l, "%s%d", l ? ", " : "", c);
        }
    if (nabsent)
        cv_res_diag(r, "absent_class",
                    "%d class%s never occur%s in the labels (%s%s): their recall is undefined and "
                    "macro averages count them as 0.",
                    nabsent, nabsent > 1 ? "es" : "", nabsent > 1 ? "" : "s", absent,
                    nabsent > 8 ? ", ..." : "");
    if (r->task != CV_TASK_MULTILABEL) {
        double base = sup[cmax] / n;
        /* the model removes less than half of the errors of always predicting the majority */
        if (K > 1 && base < 1 && 1 - acc > PARADOX_SHARE * (1 - base) && base >= 1.0 / K + 0.05)
            cv_res_diag(r, "accuracy_paradox",
                        "accuracy %.3f is barely above the %.3f of always predicting class %d: "
                        "the model removes only %.0f%% of that baseline's errors.",
                        acc, base, cmax, fmax(0.0, 100 * (1 - (1 - acc) / (1 - base))));
        int worst = -1;
        for (int c = 0; c < K; c++)
            if (sup[c] > 0 && (worst < 0 || rec[c] < rec[worst])) worst = c;
        if (worst >= 0 && acc >= 0.8 && rec[worst] < acc - RECALL_GAP)
            cv_res_diag(r, "accuracy_paradox",
                        "accuracy is %.3f but the recall of class %d is only %.3f (%.0f of its "
                        "%.0f samples found): accuracy hides the errors on this class.",
                        acc, worst, rec[worst], rec[worst] * sup[worst], sup[worst]);
        const double *pred_cols = NULL;
        const cv_metric_entry *cm = cv_metrics_result_get(r, "confusion_matrix");
        if (cm) pred_cols = cm->v;
        for (int c = 0; pred_cols && c < K; c++) {
            double np = 0;
            for (int t = 0; t < K; t++) np += pred_cols[(size_t)t * K + c];
            if (np == 0 && sup[c] > 0)
                cv_res_diag(r, "never_predicted",
                            "class %d is never predicted although it has %.0f samples: its "
                            "precision and F1 are 0.",
                            c, sup[c]);
        }
    }
    if (cmin >= 0 && sup[cmax] >= IMBALANCE_RATIO * sup[cmin]) {
        char read[256];
        if (r->task == CV_TASK_MULTILABEL)
            snprintf(read, sizeof read,
                     "f1_score.macro (%.3f), average_precision_score.macro (%.3f)",
                     cv_metrics_result_scalar(r, "f1_score.macro"),
                     cv_metrics_result_scalar(r, "average_precision_score.macro"));
        else
            snprintf(read, sizeof read,
                     "balanced_accuracy_score (%.3f), f1_score.macro (%.3f), matthews_corrcoef "
                     "(%.3f)%s",
                     cv_metrics_result_scalar(r, "balanced_accuracy_score"),
                     cv_metrics_result_scalar(r, "f1_score.macro"),
                     cv_metrics_result_scalar(r, "matthews_corrcoef"),
                     cv_metrics_result_get(r, "average_precision_score.macro") ||
                             cv_metrics_result_get(r, "average_precision_score")
                         ? " and average precision"
                         : "");
        cv_res_diag(r, "class_imbalance",
                    "classes are imbalanced: class %d has %.0f %s, class %d only %.0f (%.1f:1). "
                    "Read %s rather than accuracy.",
                    cmax, sup[cmax], r->task == CV_TASK_MULTILABEL ? "positives" : "samples", cmin,
                    sup[cmin], sup[cmax] / sup[cmin], read);
    }
    double ece = cv_metrics_result_scalar(r, "calibration_error.ece");
    if (ece > ECE_POOR) {
        const cv_metric_entry *rel = cv_metrics_result_get(r, "reliability_diagram");
        char worst[160] = "";
        if (rel) {
            int nb = rel->cols, wb = -1;
            double wg = 0;
            for (int b = 0; b < nb; b++) {
                double cnt = rel->v[2 * nb + b], g = fabs(rel->v[3 * nb + b] - rel->v[4 * nb + b]);
                if (cnt > 0 && g * cnt > wg) wg = g * cnt, wb = b;
            }
            if (wb >= 0)
                snprintf(worst, sizeof worst,
                         "; the largest contribution: %.0f samples with mean confidence %.3f are "
                         "right %.3f of the time",
                         rel->v[2 * nb + wb], rel->v[3 * nb + wb], rel->v[4 * nb + wb]);
        }
        cv_res_diag(r, "poor_calibration",
                    "the scores are poorly calibrated: expected calibration error %.3f over %d "
                    "bins (maximum %.3f)%s. Do not read the scores as probabilities without "
                    "recalibration (e.g. temperature scaling on validation data).",
                    ece, r->nbins, cv_metrics_result_scalar(r, "calibration_error.mce"), worst);
    }
}

cv_status cv_metrics_diagnose(cv_ctx *ctx, cv_metrics_result *r, const cv_diag_inputs *in)
{
    if (!in) {
        data_checks(r);
    } else {
        if (in->train) {
            static const char *keys[] = {"accuracy_score", "f1_score.macro"};
            for (int i = 0; i < 2; i++) {
                double tr = cv_metrics_result_scalar(in->train, keys[i]);
                double te = cv_metrics_result_scalar(r, keys[i]);
                if (tr - te > OVERFIT_GAP) {
                    cv_res_diag(r, "overfitting",
                                "%s is %.3f on the training data but %.3f here: a gap of %.3f "
                                "suggests overfitting (more data or augmentation, stronger "
                                "regularisation, or earlier stopping).",
                                keys[i], tr, te, tr - te);
                    break;
                }
            }
        }
        if (in->duplicates > 0)
            cv_res_diag(r, "leakage",
                        "%lld test sample%s also occur%s in the training data (%.1f%% of %zu): "
                        "the test metrics are optimistic; remove the duplicates and re-evaluate.",
                        in->duplicates, in->duplicates > 1 ? "s" : "",
                        in->duplicates > 1 ? "" : "s",
                        100.0 * (double)in->duplicates / (double)r->n, r->n);
    }
    return r->oom ? cv_fail(ctx, CV_ERR_NOMEM, "diagnostics: out of memory") : CV_OK;
}
