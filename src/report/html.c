/* The HTML report: one self-contained page (inline CSS and SVG, no script, no network). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/metrics_internal.h"
#include "report/svg.h"

#define MAX_CURVES 10 /* classes drawn in the ROC/PR charts */

static const double *row_of(const cv_metric_entry *e, const char *name)
{
    for (int i = 0; e && e->row_names && i < e->rows; i++)
        if (!strcmp(e->row_names[i], name)) return e->v + (size_t)i * e->cols;
    return NULL;
}

/* Collects the ROC or PR curves ("roc_curve" / "precision_recall_curve"). */
static void curves(FILE *f, const cv_metrics_result *r, const char *base, const char *xr,
                   const char *yr, const char *title, const char *xl, const char *yl, int diag)
{
    cv_svg_series s[MAX_CURVES];
    char labels[MAX_CURVES][32];
    int ns = 0;
    size_t bl = strlen(base);
    for (int i = 0; i < r->count && ns < MAX_CURVES; i++) {
        const cv_metric_entry *e = &r->e[i];
        if (e->section != CV_SECTION_CURVE || strncmp(e->name, base, bl) ||
            (e->name[bl] && e->name[bl] != '.'))
            continue;
        s[ns].x = row_of(e, xr);
        s[ns].y = row_of(e, yr);
        s[ns].n = e->cols;
        const char *suffix = e->name[bl] ? e->name + bl + 1 : "positive class";
        char *end;
        long c = strtol(suffix, &end, 10);
        if (r->names && end != suffix && !*end && c >= 0 && c < r->K)
            snprintf(labels[ns], sizeof labels[ns], "%ld %s", c, r->names[c]);
        else
            snprintf(labels[ns], sizeof labels[ns], "%s", suffix);
        s[ns].label = labels[ns];
        ns++;
    }
    if (ns) cv_svg_lines(f, title, xl, yl, s, ns, diag);
}

cv_status cv_metrics_report_html(cv_ctx *ctx, const cv_metrics_result *r, const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f) return cv_fail(ctx, CV_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
    fprintf(f,
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<title>cvision metrics</title>\n<style>\n"
            "body{font-family:sans-serif;margin:2em;color:#222}"
            "table{border-collapse:collapse}td,th{padding:2px 10px;text-align:right}"
            "td:first-child,th:first-child{text-align:left}tr:nth-child(even){background:#f4f4f4}"
            ".warn{background:#fff4e0;border-left:4px solid #f0a020;padding:6px 10px;margin:6px 0}"
            "figure{display:inline-block;margin:10px;vertical-align:top}"
            "figcaption{font-weight:bold;margin-bottom:4px}.undef{color:#999}\n"
            "</style></head><body>\n");
    fprintf(f, "<h1>Classification report</h1>\n<p>%s task, %d classes, %zu samples.</p>\n",
            cv_task_name(r->task), r->K, r->n);
    if (r->ndiag) {
        fprintf(f, "<h2>Diagnostics</h2>\n");
        for (int i = 0; i < r->ndiag; i++) {
            fprintf(f, "<div class=\"warn\"><b>");
            cv_svg_escape(f, r->dcode[i]);
            fprintf(f, "</b>: ");
            cv_svg_escape(f, r->dmsg[i]);
            fprintf(f, "</div>\n");
        }
    }
    if (r->names) {
        fprintf(f, "<h2>Classes</h2>\n<table><tr><th>class</th><th>name</th></tr>\n");
        for (int c = 0; c < r->K; c++) {
            fprintf(f, "<tr><td>%d</td><td>", c);
            cv_svg_escape(f, r->names[c]);
            fprintf(f, "</td></tr>\n");
        }
        fprintf(f, "</table>\n");
    }
    fprintf(f, "<h2>Metrics</h2>\n<table><tr><th>metric</th><th>value</th>");
    if (r->bootstrap) fprintf(f, "<th>%.0f%% CI (%d resamples)</th>", 100 * r->level, r->bootstrap);
    fprintf(f, "</tr>\n");
    for (int i = 0; i < r->count; i++) {
        const cv_metric_entry *e = &r->e[i];
        if (e->section != CV_SECTION_METRIC || e->rows != 0) continue;
        fprintf(f, "<tr><td>");
        cv_svg_escape(f, e->name);
        if (isnan(e->v[0])) {
            fprintf(f, "</td><td class=\"undef\" title=\"");
            cv_svg_escape(f, e->reason ? e->reason : "undefined");
            fprintf(f, "\">undefined</td>");
        } else {
            fprintf(f, "</td><td>%.4f</td>", e->v[0]);
        }
        if (r->bootstrap) {
            if (e->has_ci)
                fprintf(f, "<td>[%.4f, %.4f]</td>", e->ci_low, e->ci_high);
            else
                fprintf(f, "<td></td>");
        }
        fprintf(f, "</tr>\n");
    }
    fprintf(f, "</table>\n<h2>Charts</h2>\n");
    const cv_metric_entry *cm = cv_metrics_result_get(r, "confusion_matrix");
    const cv_metric_entry *cmn = cv_metrics_result_get(r, "confusion_matrix.normalized_true");
    if (cm && cmn && r->K <= 100)
        cv_svg_heatmap(f, "Confusion matrix (colour: fraction of the true class)", cm->v, cmn->v,
                       r->K);
    static const char *bars[] = {"precision_score.per_class", "recall_score.per_class",
                                 "f1_score.per_class"};
    static const char *bar_labels[] = {"precision", "recall", "F1"};
    cv_svg_series bs[3];
    int nbs = 0;
    for (int k = 0; k < 3; k++) {
        const cv_metric_entry *e = cv_metrics_result_get(r, bars[k]);
        if (!e) continue;
        bs[nbs].label = bar_labels[k];
        bs[nbs].x = NULL;
        bs[nbs].y = e->v;
        bs[nbs].n = e->cols;
        nbs++;
    }
    if (nbs && r->K <= 100) cv_svg_bars(f, "Per-class precision, recall and F1", bs, nbs, r->K);
    curves(f, r, "roc_curve", "fpr", "tpr", "ROC curve", "false positive rate",
           "true positive rate", 1);
    curves(f, r, "precision_recall_curve", "recall", "precision", "Precision-recall curve",
           "recall", "precision", 0);
    const cv_metric_entry *rel = cv_metrics_result_get(r, "reliability_diagram");
    if (rel)
        cv_svg_reliability(f, "Reliability diagram", row_of(rel, "bin_lower"),
                           row_of(rel, "bin_upper"), row_of(rel, "count"), row_of(rel, "accuracy"),
                           rel->cols);
    fprintf(f, "\n</body></html>\n");
    if (fclose(f)) return cv_fail(ctx, CV_ERR_IO, "%s: write error: %s", path, strerror(errno));
    return CV_OK;
}
