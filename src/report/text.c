/* The aligned terminal summary. */
#include <math.h>
#include <string.h>

#include "metrics/metrics_internal.h"

static void num(FILE *f, double v)
{
    if (isnan(v))
        fprintf(f, "%9s", "-");
    else
        fprintf(f, "%9.4f", v);
}

static const double *vec(const cv_metrics_result *r, const char *name)
{
    const cv_metric_entry *e = cv_metrics_result_get(r, name);
    return e && e->rows == 1 && !e->row_names ? e->v : NULL;
}

void cv_metrics_report_text(FILE *f, const cv_metrics_result *r)
{
    fprintf(f, "%s task, %d classes, %zu %s\n\n", cv_task_name(r->task), r->K, r->n,
            r->task == CV_TASK_SEGMENTATION ? "pixels"
            : r->task == CV_TASK_DETECTION  ? "images"
                                            : "samples");
    int width = 0;
    for (int i = 0; i < r->count; i++)
        if (r->e[i].section == CV_SECTION_METRIC && r->e[i].rows == 0) {
            int l = (int)strlen(r->e[i].name);
            if (l > width) width = l;
        }
    if (r->bootstrap)
        fprintf(f, "  %-*s %9s   %.0f%% CI (%d bootstrap resamples)\n", width, "metric", "value",
                100 * r->level, r->bootstrap);
    for (int i = 0; i < r->count; i++) {
        const cv_metric_entry *e = &r->e[i];
        if (e->section != CV_SECTION_METRIC || e->rows != 0) continue;
        fprintf(f, "  %-*s ", width, e->name);
        num(f, e->v[0]);
        if (e->has_ci) fprintf(f, "   [%.4f, %.4f]", e->ci_low, e->ci_high);
        if (e->reason) fprintf(f, "   %s", e->reason);
        fputc('\n', f);
    }
    /* the per-class columns of every task (those present are shown) */
    enum { NCOL = 11 };
    static const char *cols[NCOL] = {
        "support.per_class",  "precision_score.per_class", "recall_score.per_class",
        "f1_score.per_class", "roc_auc_score.per_class",   "average_precision_score.per_class",
        "iou.per_class",      "accuracy.per_class",        "map_per_class",
        "mar_100_per_class",  "voc_ap_50_per_class"};
    static const char *heads[NCOL] = {"support", "precision", "recall",  "f1",
                                      "roc_auc", "avg_prec",  "iou",     "accuracy",
                                      "ap",      "ar100",     "voc_ap50"};
    const double *v[NCOL];
    for (int j = 0; j < NCOL; j++) v[j] = vec(r, cols[j]);
    if (v[0]) {
        /* the class column: "3" or, with names, "3 sneaker" (names cut to MAX_NAME bytes) */
        enum { MAX_NAME = 24 };
        int cw = 7;
        for (int c = 0; r->names && c < r->K; c++) {
            size_t l = strlen(r->names[c]);
            int w = snprintf(NULL, 0, "%d ", c) + (int)(l < MAX_NAME ? l : MAX_NAME);
            if (w > cw) cw = w;
        }
        fprintf(f, "\nper class:\n  %-*s", cw, "class");
        for (int j = 0; j < NCOL; j++)
            if (v[j]) fprintf(f, " %9s", heads[j]);
        fputc('\n', f);
        for (int c = 0; c < r->K; c++) {
            if (r->names) {
                int w = fprintf(f, "  %d %.*s", c, (int)MAX_NAME, r->names[c]) - 2;
                fprintf(f, "%*s", cw - w, "");
            } else {
                fprintf(f, "  %-*d", cw, c);
            }
            for (int j = 0; j < NCOL; j++) {
                if (!v[j]) continue;
                fputc(' ', f);
                if (j == 0)
                    fprintf(f, "%9.0f", v[j][c]);
                else
                    num(f, v[j][c]);
            }
            fputc('\n', f);
        }
    }
    const cv_metric_entry *cm = cv_metrics_result_get(r, "confusion_matrix");
    if (cm && r->K <= 20) {
        double mx = 1;
        for (int i = 0; i < r->K * r->K; i++)
            if (cm->v[i] > mx) mx = cm->v[i];
        int w = (int)floor(log10(mx)) + 2;
        if (w < 4) w = 4;
        fprintf(f, "\nconfusion matrix (rows: true class, columns: predicted class):\n  %5s", "");
        for (int c = 0; c < r->K; c++) fprintf(f, " %*d", w, c);
        fputc('\n', f);
        for (int t = 0; t < r->K; t++) {
            fprintf(f, "  %5d", t);
            for (int p = 0; p < r->K; p++) fprintf(f, " %*.0f", w, cm->v[t * r->K + p]);
            fputc('\n', f);
        }
    }
    int header = 0;
    for (int i = 0; i < r->count; i++) {
        const cv_metric_entry *e = &r->e[i];
        if (e->section != CV_SECTION_THRESHOLD) continue;
        if (!header++)
            fprintf(f,
                    "\noperating thresholds (positive when score >= threshold):\n  %-26s %9s "
                    "%9s %9s %9s   tn / fp / fn / tp\n",
                    "target", "value", "threshold", "precision", "recall");
        fprintf(f, "  %-26s ", e->name);
        for (int k = 1; k >= 0; k--) num(f, e->v[k]), fputc(' ', f);
        num(f, e->v[2]);
        fputc(' ', f);
        num(f, e->v[3]);
        if (isnan(e->v[0]))
            fprintf(f, "   unreachable\n");
        else
            fprintf(f, "   %.0f / %.0f / %.0f / %.0f\n", e->v[4], e->v[5], e->v[6], e->v[7]);
    }
    if (r->ndiag) {
        fprintf(f, "\ndiagnostics:\n");
        for (int i = 0; i < r->ndiag; i++) fprintf(f, "  ! %s: %s\n", r->dcode[i], r->dmsg[i]);
    }
}
