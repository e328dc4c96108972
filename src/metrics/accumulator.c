/* The streaming accumulator: checks and takes batches, keeps the running sums (cv_agg) and, when
 * ranking metrics or the bootstrap need them, the samples themselves (compactly: int32 labels,
 * float32 scores). */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/metrics_internal.h"

const int cv_topk_values[CV_TOPK_N] = {2, 3, 5};

const char *cv_task_name(cv_task t)
{
    switch (t) {
    case CV_TASK_BINARY:
        return "binary";
    case CV_TASK_MULTICLASS:
        return "multiclass";
    case CV_TASK_MULTILABEL:
        return "multilabel";
    case CV_TASK_ORDINAL:
        return "ordinal";
    case CV_TASK_SEGMENTATION:
        return "segmentation";
    case CV_TASK_DETECTION:
        return "detection";
    }
    return "unknown";
}

cv_status cv_task_parse(cv_ctx *ctx, const char *name, cv_task *out)
{
    static const cv_task all[] = {CV_TASK_BINARY, CV_TASK_MULTICLASS, CV_TASK_MULTILABEL,
                                  CV_TASK_ORDINAL};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (!strcmp(name, cv_task_name(all[i]))) {
            *out = all[i];
            return CV_OK;
        }
    return cv_fail(ctx, CV_ERR_INVALID,
                   "unknown task '%s' (expected binary, multiclass, multilabel or ordinal)", name);
}

void cv_metrics_opts_default(cv_metrics_opts *o)
{
    memset(o, 0, sizeof *o);
    o->n_bins = 15;
    o->beta = 2.0;
    o->threshold = 0.5;
    o->curve_points = 1000;
    o->ci_level = 0.95;
    o->seed = 0;
}

/* torch.linspace(0, 1, n_bins + 1) in float32, computed as torch does on the CPU (from the
 * start for the first half, from the end for the second), so that confidences on a boundary
 * fall in the same bin as in torchmetrics. */
static void bin_boundaries(int n_bins, float *b)
{
    int steps = n_bins + 1;
    float step = 1.0f / (float)n_bins;
    int half = steps / 2;
    for (int i = 0; i < steps; i++)
        b[i] = i < half ? step * (float)i : 1.0f - step * (float)(steps - i - 1);
}

/* torch.bucketize(conf, boundaries, right=True) - 1: the bin i with b[i] <= conf < b[i+1]; 1.0
 * lands in the extra bin n_bins, as in torchmetrics. */
static int bin_index(const float *b, int n_bins, float conf)
{
    int i = (int)(conf * (float)n_bins);
    if (i < 0) i = 0;
    if (i > n_bins) i = n_bins;
    while (i + 1 <= n_bins && b[i + 1] <= conf) i++;
    while (i >= 0 && b[i] > conf) i--;
    return i;
}

int cv_agg_init(cv_agg *a, const cv_metrics *m)
{
    memset(a, 0, sizeof *a);
    size_t cm = m->task == CV_TASK_MULTILABEL ? (size_t)m->K * 4 : (size_t)m->K * (size_t)m->K;
    a->cm = calloc(cm, sizeof *a->cm);
    a->cal = calloc((size_t)(m->opts.n_bins + 1) * 3, sizeof *a->cal);
    if (!a->cm || !a->cal) {
        cv_agg_free(a);
        return -1;
    }
    return 0;
}

void cv_agg_free(cv_agg *a)
{
    free(a->cm);
    free(a->cal);
    a->cm = a->cal = NULL;
}

static int argmax(const float *s, int K)
{
    int best = 0;
    for (int j = 1; j < K; j++)
        if (s[j] > s[best]) best = j;
    return best;
}

void cv_agg_add(cv_agg *a, const cv_metrics *m, const int32_t *y, const uint8_t *Y, const float *s,
                int32_t pred, const uint8_t *P, double w)
{
    const int K = m->K;
    a->n += w;
    if (m->task == CV_TASK_MULTILABEL) {
        int tp = 0, nt = 0, np = 0, wrong = 0;
        for (int c = 0; c < K; c++) {
            int t = Y[c], p = P[c];
            a->cm[(size_t)c * 4 + (size_t)(t * 2 + p)] += w;
            tp += t & p;
            nt += t;
            np += p;
            wrong += t != p;
        }
        double pr = np ? (double)tp / np : 0.0, rc = nt ? (double)tp / nt : 0.0;
        double b2 = m->opts.beta * m->opts.beta;
        int uni = nt + np - tp;
        a->subset += wrong ? 0.0 : w;
        a->hamming += w * wrong;
        a->s_prec += w * pr;
        a->s_rec += w * rc;
        a->s_f1 += pr + rc > 0 ? w * 2 * pr * rc / (pr + rc) : 0.0;
        a->s_fb += b2 * pr + rc > 0 ? w * (1 + b2) * pr * rc / (b2 * pr + rc) : 0.0;
        a->s_jac += uni ? w * (double)tp / uni : 0.0;
        return;
    }
    int t = *y;
    a->cm[(size_t)t * (size_t)K + (size_t)pred] += w;
    if (!s) return;
    /* top-k as scikit-learn: a stable descending order, so among equal scores the higher class
     * index ranks first */
    int rank = 0;
    for (int j = 0; j < K; j++) rank += s[j] > s[t] || (s[j] == s[t] && j > t);
    for (int i = 0; i < CV_TOPK_N; i++) a->topk[i] += rank < cv_topk_values[i] ? w : 0.0;
    /* log loss as scikit-learn: clip to [eps, 1-eps], renormalise the row */
    double sum = 0, py = 0, br = 0;
    for (int j = 0; j < K; j++) {
        double v = s[j];
        v = v < DBL_EPSILON ? DBL_EPSILON : v > 1 - DBL_EPSILON ? 1 - DBL_EPSILON : v;
        sum += v;
        if (j == t) py = v;
        double d = (double)s[j] - (j == t);
        br += d * d;
    }
    a->logloss += -w * log(py / sum);
    double d1 = (double)s[1] - t;
    a->brier += w * (m->task == CV_TASK_BINARY ? d1 * d1 : br);
    /* calibration (torchmetrics): binary uses P(class 1) against the label; multiclass the
     * top-label confidence against correctness */
    float conf;
    int correct;
    if (m->task == CV_TASK_BINARY) {
        conf = s[1];
        correct = t == 1;
    } else {
        int am = argmax(s, K);
        conf = s[am];
        correct = am == t;
    }
    int b = bin_index(m->bounds, m->opts.n_bins, conf);
    if (b >= 0) {
        a->cal[b * 3] += w;
        a->cal[b * 3 + 1] += w * conf;
        a->cal[b * 3 + 2] += w * correct;
    }
}

cv_status cv_metrics_new(cv_ctx *ctx, cv_task task, int num_classes, const cv_metrics_opts *opts,
                         cv_metrics **out)
{
    *out = NULL;
    if ((unsigned)task > CV_TASK_ORDINAL)
        return cv_fail(ctx, CV_ERR_INVALID,
                       "metrics: %s is not a classification task (see cv_seg_new, cv_det_evaluate)",
                       cv_task_name(task));
    /* single-label tasks keep a K×K confusion matrix */
    int maxk = task == CV_TASK_MULTILABEL ? 100000 : 25000;
    if (num_classes < 1 || num_classes > maxk)
        return cv_fail(ctx, CV_ERR_INVALID, "metrics: %d classes (a %s task takes 1..%d)",
                       num_classes, cv_task_name(task), maxk);
    if (task == CV_TASK_BINARY && num_classes != 2)
        return cv_fail(ctx, CV_ERR_INVALID, "metrics: a binary task has 2 classes, not %d",
                       num_classes);
    cv_metrics_opts o;
    cv_metrics_opts_default(&o);
    if (opts) o = *opts;
    if (o.n_bins < 1 || o.n_bins > 10000)
        return cv_fail(ctx, CV_ERR_INVALID, "metrics: %d calibration bins (expected 1..10000)",
                       o.n_bins);
    if (o.bootstrap < 0 || o.curve_points < 0 || !(o.ci_level > 0 && o.ci_level < 1) ||
        !(o.beta >= 0) || !isfinite(o.threshold))
        return cv_fail(ctx, CV_ERR_INVALID,
                       "metrics: bad options (bootstrap %d, curve points %d, CI level %g, "
                       "beta %g, threshold %g)",
                       o.bootstrap, o.curve_points, o.ci_level, o.beta, o.threshold);
    cv_metrics *m = calloc(1, sizeof *m);
    if (!m) return cv_fail(ctx, CV_ERR_NOMEM, "metrics: out of memory");
    m->task = task;
    m->K = num_classes;
    m->opts = o;
    m->opts.class_thresholds = NULL;
    m->class_thr = malloc((size_t)num_classes * sizeof *m->class_thr);
    m->ord = calloc((size_t)num_classes + 1, sizeof *m->ord);
    m->bounds = malloc((size_t)(o.n_bins + 1) * sizeof *m->bounds);
    if (!m->class_thr || !m->ord || !m->bounds || cv_agg_init(&m->agg, m)) {
        cv_metrics_free(m);
        return cv_fail(ctx, CV_ERR_NOMEM, "metrics: out of memory");
    }
    for (int c = 0; c < num_classes; c++) {
        m->class_thr[c] = o.class_thresholds ? o.class_thresholds[c] : o.threshold;
        if (!isfinite(m->class_thr[c])) {
            cv_metrics_free(m);
            return cv_fail(ctx, CV_ERR_INVALID, "metrics: threshold of class %d is not finite", c);
        }
    }
    bin_boundaries(o.n_bins, m->bounds);
    *out = m;
    return CV_OK;
}

void cv_metrics_free(cv_metrics *m)
{
    if (!m) return;
    cv_agg_free(&m->agg);
    if (m->ord)
        for (int c = 0; c <= m->K; c++) free(m->ord[c]);
    free(m->ord);
    free(m->class_thr);
    free(m->bounds);
    free(m->y);
    free(m->p);
    free(m->Y);
    free(m->P);
    free(m->s);
    free(m);
}

size_t cv_metrics_count(const cv_metrics *m)
{
    return m->n;
}

int cv_metrics_num_classes(const cv_metrics *m)
{
    return m->K;
}

cv_task cv_metrics_task(const cv_metrics *m)
{
    return m->task;
}

static int grow(void **p, size_t count, size_t elem)
{
    void *q = realloc(*p, count * elem);
    if (!q) return -1;
    *p = q;
    return 0;
}

static cv_status reserve(cv_ctx *ctx, cv_metrics *m, size_t need)
{
    if (need <= m->cap) return CV_OK;
    size_t cap = m->cap ? m->cap : 1024;
    while (cap < need) cap *= 2;
    size_t K = (size_t)m->K;
    if (cap > SIZE_MAX / (K * sizeof(float) + 8)) goto oom;
    int ml = m->task == CV_TASK_MULTILABEL;
    if (ml ? grow((void **)&m->Y, cap * K, 1) || grow((void **)&m->P, cap * K, 1)
           : grow((void **)&m->y, cap, 4) || grow((void **)&m->p, cap, 4))
        goto oom;
    if (m->mode == 1 && grow((void **)&m->s, cap * K, sizeof(float))) goto oom;
    m->cap = cap;
    return CV_OK;
oom:
    return cv_fail(ctx, CV_ERR_NOMEM, "metrics: out of memory keeping %zu samples", need);
}

cv_status cv_metrics_add(cv_ctx *ctx, cv_metrics *m, const int *labels, const float *scores,
                         const int *preds, size_t n)
{
    const int K = m->K;
    const int ml = m->task == CV_TASK_MULTILABEL;
    if (n == 0) return CV_OK;
    if (!labels || (!scores && !preds))
        return cv_fail(ctx, CV_ERR_INVALID, "metrics: a batch needs labels and scores or preds");
    int mode = scores ? 1 : 2;
    if (m->mode && m->mode != mode)
        return cv_fail(ctx, CV_ERR_INVALID,
                       "metrics: every batch must carry scores, or none (this one %s)",
                       scores ? "does" : "does not");
    if (m->n + n < m->n || m->n + n > (size_t)UINT32_MAX)
        return cv_fail(ctx, CV_ERR_INVALID, "metrics: more than 2^32-1 samples");
    /* check the whole batch before touching anything */
    for (size_t i = 0; i < n; i++) {
        if (ml) {
            for (int c = 0; c < K; c++) {
                int t = labels[i * (size_t)K + (size_t)c];
                int p = preds ? preds[i * (size_t)K + (size_t)c] : 0;
                if ((t != 0 && t != 1) || (p != 0 && p != 1))
                    return cv_fail(ctx, CV_ERR_INVALID,
                                   "metrics: sample %zu class %d: multilabel indicators must be "
                                   "0 or 1 (label %d, pred %d)",
                                   m->n + i, c, t, p);
            }
        } else {
            if (labels[i] < 0 || labels[i] >= K)
                return cv_fail(ctx, CV_ERR_INVALID,
                               "metrics: sample %zu: label %d is outside 0..%d", m->n + i,
                               labels[i], K - 1);
            if (preds && (preds[i] < 0 || preds[i] >= K))
                return cv_fail(ctx, CV_ERR_INVALID,
                               "metrics: sample %zu: prediction %d is outside 0..%d", m->n + i,
                               preds[i], K - 1);
        }
        if (scores)
            for (int c = 0; c < K; c++)
                if (!isfinite(scores[i * (size_t)K + (size_t)c]))
                    return cv_fail(ctx, CV_ERR_INVALID,
                                   "metrics: sample %zu class %d: score is not finite", m->n + i,
                                   c);
    }
    if (!m->mode) {
        m->mode = mode;
        m->keep = scores || m->opts.bootstrap > 0;
    }
    if (m->keep) {
        cv_status st = reserve(ctx, m, m->n + n);
        if (st) return st;
    }
    uint8_t rowP[256], rowY[256];
    uint8_t *bufP = K <= 256 ? rowP : malloc((size_t)K * 2);
    if (!bufP) return cv_fail(ctx, CV_ERR_NOMEM, "metrics: out of memory");
    uint8_t *bufY = K <= 256 ? rowY : bufP + K;
    for (size_t i = 0; i < n; i++) {
        size_t j = m->n + i;
        const float *s = scores ? scores + i * (size_t)K : NULL;
        if (s) {
            double sum = 0;
            for (int c = 0; c < K; c++) {
                float v = s[c] == 0.0f ? 0.0f : s[c]; /* -0 and +0 are one score */
                if (v < 0 || v > 1) m->outside01 = 1;
                sum += v;
                if (m->keep) m->s[j * (size_t)K + (size_t)c] = v;
            }
            if (!(fabs(1.0 - sum) <= 1e-8 + 1e-5 * fabs(sum))) m->rows_not_sum1 = 1;
            if (m->keep) s = m->s + j * (size_t)K;
        }
        if (ml) {
            uint8_t *Y = m->keep ? m->Y + j * (size_t)K : bufY;
            uint8_t *P = m->keep ? m->P + j * (size_t)K : bufP;
            for (int c = 0; c < K; c++) {
                Y[c] = (uint8_t)labels[i * (size_t)K + (size_t)c];
                P[c] = preds ? (uint8_t)preds[i * (size_t)K + (size_t)c]
                             : (uint8_t)(s[c] >= m->class_thr[c]);
            }
            cv_agg_add(&m->agg, m, NULL, Y, s, 0, P, 1.0);
        } else {
            int32_t y = labels[i];
            int32_t p = preds ? preds[i] : argmax(s, K);
            if (m->keep) {
                m->y[j] = y;
                m->p[j] = p;
            }
            cv_agg_add(&m->agg, m, &y, NULL, s, p, NULL, 1.0);
        }
    }
    if (bufP != rowP) free(bufP);
    m->n += n;
    return CV_OK;
}

cv_status cv_metrics_compute(cv_ctx *ctx, cv_metrics *m, const uint32_t *w, int full,
                             cv_metrics_result **out)
{
    *out = NULL;
    cv_agg tmp;
    const cv_agg *a = &m->agg;
    if (w) {
        if (cv_agg_init(&tmp, m)) return cv_fail(ctx, CV_ERR_NOMEM, "metrics: out of memory");
        const size_t K = (size_t)m->K;
        int ml = m->task == CV_TASK_MULTILABEL;
        for (size_t i = 0; i < m->n; i++) {
            if (!w[i]) continue;
            const float *s = m->mode == 1 ? m->s + i * K : NULL;
            if (ml)
                cv_agg_add(&tmp, m, NULL, m->Y + i * K, s, 0, m->P + i * K, w[i]);
            else
                cv_agg_add(&tmp, m, &m->y[i], NULL, s, m->p[i], NULL, w[i]);
        }
        a = &tmp;
    }
    cv_metrics_result *r = cv_res_new(m);
    cv_status st = CV_OK;
    if (!r) {
        st = cv_fail(ctx, CV_ERR_NOMEM, "metrics: out of memory");
        goto done;
    }
    cv_classification_metrics(m, a, r, full);
    if (m->mode == 1) {
        cv_calibration_metrics(m, a, r, full);
        st = cv_ranking_metrics(ctx, m, a, w, r, full);
    }
    if (!st && r->oom) st = cv_fail(ctx, CV_ERR_NOMEM, "metrics: out of memory");
    if (st) {
        cv_metrics_result_free(r);
        r = NULL;
    }
done:
    if (w) cv_agg_free(&tmp);
    *out = r;
    return st;
}

cv_status cv_metrics_finalize(cv_ctx *ctx, cv_metrics *m, cv_metrics_result **out)
{
    *out = NULL;
    if (m->n == 0) return cv_fail(ctx, CV_ERR_INVALID, "metrics: no samples were added");
    cv_metrics_result *r;
    cv_status st = cv_metrics_compute(ctx, m, NULL, 1, &r);
    if (st) return st;
    if (m->opts.bootstrap > 0) st = cv_bootstrap_cis(ctx, m, r);
    if (!st) st = cv_metrics_diagnose(ctx, r, NULL);
    if (st) {
        cv_metrics_result_free(r);
        return st;
    }
    *out = r;
    return CV_OK;
}

void cv_logits_to_scores(const float *logits, float *out, int64_t n, int64_t k, int multilabel)
{
    for (int64_t i = 0; i < n; i++) {
        const float *z = logits + i * k;
        float *p = out + i * k;
        if (multilabel) {
            for (int64_t c = 0; c < k; c++) p[c] = (float)(1.0 / (1.0 + exp(-(double)z[c])));
            continue;
        }
        double mx = z[0], sum = 0;
        for (int64_t c = 1; c < k; c++)
            if (z[c] > mx) mx = z[c];
        for (int64_t c = 0; c < k; c++) sum += exp((double)z[c] - mx);
        for (int64_t c = 0; c < k; c++) p[c] = (float)(exp((double)z[c] - mx) / sum);
    }
}
