/* Metrics that follow from the (weighted) confusion counts: accuracy, precision/recall/F-beta
 * with every scikit-learn average, Jaccard, Cohen's kappa, Matthews correlation, MAE, the
 * confusion matrix. All with scikit-learn's labels=range(K) and zero_division=0. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/metrics_internal.h"

static double safe_div(double a, double b)
{
    return b == 0 ? 0.0 : a / b; /* scikit-learn's zero_division=0 */
}

static double fbeta(double p, double r, double beta)
{
    double b2 = beta * beta, d = b2 * p + r;
    return d == 0 ? 0.0 : (1 + b2) * p * r / d;
}

/* Per-class tp, predicted and true counts → the precision/recall/F1/F-beta/Jaccard families. */
typedef struct {
    int K;
    const double *tp, *pred, *tru;
    double beta;
} prf_in;

static void put_family(cv_metrics_result *r, const char *name, const double *per, const prf_in *in,
                       double micro, int full, const char *binary)
{
    char key[96];
    double macro = 0, weighted = 0, wsum = 0;
    for (int c = 0; c < in->K; c++) {
        macro += per[c];
        weighted += in->tru[c] * per[c];
        wsum += in->tru[c];
    }
    macro /= in->K;
    if (binary) cv_res_scalar(r, name, per[1], NULL);
    snprintf(key, sizeof key, "%s.micro", name);
    cv_res_scalar(r, key, micro, NULL);
    snprintf(key, sizeof key, "%s.macro", name);
    cv_res_scalar(r, key, macro, NULL);
    snprintf(key, sizeof key, "%s.weighted", name);
    if (wsum > 0)
        cv_res_scalar(r, key, weighted / wsum, NULL);
    else if (!strcmp(name, "jaccard_score"))
        cv_res_scalar(r, key, macro, NULL); /* jaccard_score falls back to an unweighted mean */
    else
        cv_res_scalar(r, key, 0.0, NULL); /* precision_recall_fscore_support's zero-weight case */
    if (full) {
        snprintf(key, sizeof key, "%s.per_class", name);
        cv_res_vector(r, key, per, in->K);
    }
}

static void prf_metrics(cv_metrics_result *r, const prf_in *in, int full, int binary,
                        const double *samples /* prec, rec, f1, fb, jac sample averages or NULL */)
{
    int K = in->K;
    double *buf = malloc((size_t)K * 5 * sizeof *buf);
    if (!buf) {
        r->oom = 1;
        return;
    }
    double *P = buf, *R = buf + K, *F = buf + 2 * K, *FB = buf + 3 * K, *J = buf + 4 * K;
    double stp = 0, spred = 0, strue = 0;
    for (int c = 0; c < K; c++) {
        P[c] = safe_div(in->tp[c], in->pred[c]);
        R[c] = safe_div(in->tp[c], in->tru[c]);
        F[c] = fbeta(P[c], R[c], 1.0);
        FB[c] = fbeta(P[c], R[c], in->beta);
        J[c] = safe_div(in->tp[c], in->pred[c] + in->tru[c] - in->tp[c]);
        stp += in->tp[c];
        spred += in->pred[c];
        strue += in->tru[c];
    }
    double mp = safe_div(stp, spred), mr = safe_div(stp, strue);
    const char *bin = binary ? "binary" : NULL;
    put_family(r, "precision_score", P, in, mp, full, bin);
    put_family(r, "recall_score", R, in, mr, full, bin);
    put_family(r, "f1_score", F, in, fbeta(mp, mr, 1.0), full, bin);
    put_family(r, "fbeta_score", FB, in, fbeta(mp, mr, in->beta), full, bin);
    put_family(r, "jaccard_score", J, in, safe_div(stp, spred + strue - stp), full, bin);
    if (samples) {
        static const char *names[] = {"precision_score.samples", "recall_score.samples",
                                      "f1_score.samples", "fbeta_score.samples",
                                      "jaccard_score.samples"};
        for (int i = 0; i < 5; i++) cv_res_scalar(r, names[i], samples[i], NULL);
    }
    if (full) cv_res_vector(r, "support.per_class", in->tru, K);
    free(buf);
}

static double kappa(const double *cm, const double *rows, const double *cols, int K, double n,
                    int weights)
{
    double num = 0, den = 0;
    for (int i = 0; i < K; i++)
        for (int j = 0; j < K; j++) {
            double d = abs(i - j);
            double w = weights == 0 ? (i != j) : weights == 1 ? d : d * d;
            num += w * cm[(size_t)i * K + j];
            den += w * cols[i] * rows[j] / n; /* expected: outer(pred sums, true sums) / n */
        }
    return den == 0 ? NAN : 1 - num / den;
}

static void single_label(const cv_metrics *m, const cv_agg *a, cv_metrics_result *r, int full)
{
    const int K = m->K;
    const double *cm = a->cm;
    double *buf = calloc((size_t)K * 4, sizeof *buf);
    if (!buf) {
        r->oom = 1;
        return;
    }
    double *tp = buf, *rows = buf + K, *cols = buf + 2 * K;
    double trace = 0;
    for (int i = 0; i < K; i++)
        for (int j = 0; j < K; j++) {
            double v = cm[(size_t)i * K + j];
            rows[i] += v;
            cols[j] += v;
            if (i == j) tp[i] = v, trace += v;
        }
    double n = a->n;
    cv_res_scalar(r, "accuracy_score", trace / n, NULL);
    double bsum = 0;
    int present = 0;
    for (int c = 0; c < K; c++)
        if (rows[c] > 0) bsum += tp[c] / rows[c], present++;
    cv_res_scalar(r, "balanced_accuracy_score", bsum / present, NULL);
    if (m->mode == 1)
        for (int i = 0; i < CV_TOPK_N; i++) {
            if (cv_topk_values[i] >= K) break;
            char key[48];
            snprintf(key, sizeof key, "top_k_accuracy_score.k%d", cv_topk_values[i]);
            cv_res_scalar(r, key, a->topk[i] / n, NULL);
        }
    prf_in in = {K, tp, cols, rows, m->opts.beta};
    prf_metrics(r, &in, full, m->task == CV_TASK_BINARY, NULL);

    static const char *kn[] = {"cohen_kappa_score", "cohen_kappa_score.linear",
                               "cohen_kappa_score.quadratic"};
    for (int w = 0; w < 3; w++)
        cv_res_scalar(r, kn[w], kappa(cm, rows, cols, K, n, w),
                      "undefined: labels and predictions are all one class, so the expected "
                      "disagreement is 0");
    /* Matthews correlation, K-class form (Gorodkin), 0 when a marginal is constant */
    double tt = 0, pp = 0, tpd = 0;
    for (int c = 0; c < K; c++) {
        tt += rows[c] * rows[c];
        pp += cols[c] * cols[c];
        tpd += rows[c] * cols[c];
    }
    double cov_tp = trace * n - tpd, cov_pp = n * n - pp, cov_tt = n * n - tt;
    cv_res_scalar(r, "matthews_corrcoef",
                  cov_pp * cov_tt == 0 ? 0.0 : cov_tp / sqrt(cov_tt * cov_pp), NULL);
    if (m->task == CV_TASK_ORDINAL) {
        double mae = 0;
        for (int i = 0; i < K; i++)
            for (int j = 0; j < K; j++) mae += abs(i - j) * cm[(size_t)i * K + j];
        cv_res_scalar(r, "mean_absolute_error", mae / n, NULL);
    }
    if (full) {
        size_t kk = (size_t)K * K;
        double *norm = malloc(kk * sizeof *norm);
        if (!norm) {
            r->oom = 1;
            free(buf);
            return;
        }
        cv_res_add(r, CV_SECTION_METRIC, "confusion_matrix", K, K, cm, NULL);
        for (int mode = 0; mode < 3; mode++) {
            for (int i = 0; i < K; i++)
                for (int j = 0; j < K; j++) {
                    double d = mode == 0 ? rows[i] : mode == 1 ? cols[j] : n;
                    norm[(size_t)i * K + j] = safe_div(cm[(size_t)i * K + j], d);
                }
            static const char *nn[] = {"confusion_matrix.normalized_true",
                                       "confusion_matrix.normalized_pred",
                                       "confusion_matrix.normalized_all"};
            cv_res_add(r, CV_SECTION_METRIC, nn[mode], K, K, norm, NULL);
        }
        free(norm);
    }
    free(buf);
}

static void multilabel(const cv_metrics *m, const cv_agg *a, cv_metrics_result *r, int full)
{
    const int K = m->K;
    double *buf = malloc((size_t)K * 3 * sizeof *buf);
    if (!buf) {
        r->oom = 1;
        return;
    }
    double *tp = buf, *pred = buf + K, *tru = buf + 2 * K;
    for (int c = 0; c < K; c++) {
        const double *q = a->cm + (size_t)c * 4; /* tn fp fn tp */
        tp[c] = q[3];
        pred[c] = q[1] + q[3];
        tru[c] = q[2] + q[3];
    }
    double n = a->n;
    cv_res_scalar(r, "accuracy_score", a->subset / n, NULL);
    cv_res_scalar(r, "hamming_loss", a->hamming / (n * K), NULL);
    double samples[5] = {a->s_prec / n, a->s_rec / n, a->s_f1 / n, a->s_fb / n, a->s_jac / n};
    prf_in in = {K, tp, pred, tru, m->opts.beta};
    prf_metrics(r, &in, full, 0, samples);
    if (full) cv_res_add(r, CV_SECTION_METRIC, "multilabel_confusion_matrix", K, 4, a->cm, NULL);
    free(buf);
}

void cv_classification_metrics(const cv_metrics *m, const cv_agg *a, cv_metrics_result *r, int full)
{
    if (m->task == CV_TASK_MULTILABEL)
        multilabel(m, a, r, full);
    else
        single_label(m, a, r, full);
}
