/* Operating thresholds: a target recall or precision, or the least cost, per positive class; and
 * per-class F1-maximising thresholds for multilabel models (tuned on validation data). A sample
 * is predicted positive when its score >= the threshold, as in scikit-learn's curves. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "metrics/metrics_internal.h"

static const char *const op_rows[] = {"threshold", "target", "precision", "recall",
                                      "tn",        "fp",     "fn",        "tp"};

/* Operating point i of g (i = -1: above every score, nothing predicted positive). */
static void put_point(cv_metrics_result *r, const char *name, const cv_groups *g, long i,
                      double target)
{
    double v[8];
    if (i < -1) {
        for (int k = 0; k < 8; k++) v[k] = NAN;
        v[1] = target;
    } else {
        double tp = i < 0 ? 0 : g->tp[i], fp = i < 0 ? 0 : g->fp[i];
        v[0] = i < 0 ? nextafterf(g->thr[0], INFINITY) : g->thr[i];
        v[1] = target;
        v[2] = tp + fp > 0 ? tp / (tp + fp) : 0.0;
        v[3] = g->P > 0 ? tp / g->P : 0.0;
        v[4] = g->N - fp;
        v[5] = fp;
        v[6] = g->P - tp;
        v[7] = tp;
    }
    cv_res_add(r, CV_SECTION_THRESHOLD, name, 8, 1, v, op_rows);
}

cv_status cv_metrics_thresholds(cv_ctx *ctx, cv_metrics *m, cv_metrics_result *r,
                                double target_recall, double target_precision, double cost_fp_fn)
{
    if (m->mode != 1)
        return cv_fail(ctx, CV_ERR_INVALID, "thresholds: the predictions carry no scores");
    if (target_recall < 0 || target_recall > 1 || target_precision < 0 || target_precision > 1 ||
        !(cost_fp_fn >= 0))
        return cv_fail(ctx, CV_ERR_INVALID,
                       "thresholds: targets must be in (0, 1] and the cost ratio > 0 (got recall "
                       "%g, precision %g, cost %g)",
                       target_recall, target_precision, cost_fp_fn);
    int first = m->task == CV_TASK_BINARY ? 1 : 0;
    for (int c = first; c < m->K; c++) {
        cv_groups g;
        cv_status st = cv_class_groups(ctx, m, c, &g);
        if (st) return st;
        char suffix[32], name[96];
        if (m->task == CV_TASK_BINARY)
            suffix[0] = 0;
        else
            snprintf(suffix, sizeof suffix, ".class_%d", c);
        long n = (long)g.n;
        if (target_recall > 0) {
            long best = -2;
            for (long i = 0; i < n && g.P > 0; i++)
                if (g.tp[i] / g.P >= target_recall) {
                    best = i;
                    break;
                }
            snprintf(name, sizeof name, "target_recall%s", suffix);
            put_point(r, name, &g, best, target_recall);
        }
        if (target_precision > 0) {
            long best = -2;
            for (long i = 0; i < n; i++)
                if (g.tp[i] / (g.tp[i] + g.fp[i]) >= target_precision) best = i;
            snprintf(name, sizeof name, "target_precision%s", suffix);
            put_point(r, name, &g, best, target_precision);
        }
        if (cost_fp_fn > 0) {
            long best = -1;
            double bc = g.P; /* nothing predicted positive: every positive is missed */
            for (long i = 0; i < n; i++) {
                double cost = cost_fp_fn * g.fp[i] + (g.P - g.tp[i]);
                if (cost < bc) bc = cost, best = i;
            }
            snprintf(name, sizeof name, "min_cost%s", suffix);
            put_point(r, name, &g, best, cost_fp_fn);
        }
        cv_groups_free(&g);
    }
    return r->oom ? cv_fail(ctx, CV_ERR_NOMEM, "thresholds: out of memory") : CV_OK;
}

cv_status cv_metrics_tune_thresholds(cv_ctx *ctx, cv_metrics *m, double *thresholds_out)
{
    if (m->mode != 1 || m->n == 0)
        return cv_fail(ctx, CV_ERR_INVALID, "threshold tuning needs scored validation samples");
    for (int c = 0; c < m->K; c++) {
        cv_groups g;
        cv_status st = cv_class_groups(ctx, m, c, &g);
        if (st) return st;
        long best = -1;
        double bf = 0;
        for (size_t i = 0; i < g.n; i++) {
            double f1 = 2 * g.tp[i] / (g.tp[i] + g.fp[i] + g.P);
            if (f1 > bf) bf = f1, best = (long)i;
        }
        thresholds_out[c] = best < 0 ? nextafterf(g.thr[0], INFINITY) : g.thr[best];
        cv_groups_free(&g);
    }
    return CV_OK;
}
