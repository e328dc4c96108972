/* Ranking metrics: ROC AUC (binary, one-vs-rest, one-vs-one, multilabel micro/macro/weighted),
 * average precision (step-wise, as scikit-learn), ROC and precision-recall curves.
 *
 * Each class's scores are radix-sorted once (descending); one pass over the sorted order with
 * tied scores grouped gives the Mann-Whitney U (= the trapezoidal ROC area, ties counted half),
 * the step-wise AP, the one-vs-one U against every other class and the curve points. Sample
 * weights (bootstrap counts) enter every sum, so a replicate reuses the sort. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/metrics_internal.h"

/* An unsigned key whose ascending order is the descending order of the float (-0 was
 * normalised to +0 when stored, NaN never enters). */
static inline uint32_t key_desc(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    u = (u & 0x80000000u) ? ~u : (u | 0x80000000u);
    return ~u;
}

/* LSD radix sort of (key << 32 | index) on the key's 32 bits, 11 + 11 + 10 bits per pass. */
static int radix_sort(uint64_t *a, uint64_t *tmp, size_t n)
{
    static const int shift[3] = {32, 43, 54};
    static const int bits[3] = {11, 11, 10};
    size_t *hist = calloc(3 * 2048, sizeof *hist);
    if (!hist) return -1;
    for (size_t i = 0; i < n; i++)
        for (int p = 0; p < 3; p++) hist[p * 2048 + ((a[i] >> shift[p]) & ((1u << bits[p]) - 1))]++;
    uint64_t *src = a, *dst = tmp;
    for (int p = 0; p < 3; p++) {
        size_t *h = hist + p * 2048, sum = 0;
        int trivial = 0;
        for (int b = 0; b < (1 << bits[p]); b++) {
            if (h[b] == n) trivial = 1;
            size_t c = h[b];
            h[b] = sum;
            sum += c;
        }
        if (trivial) continue;
        for (size_t i = 0; i < n; i++) {
            uint64_t v = src[i];
            dst[h[(v >> shift[p]) & ((1u << bits[p]) - 1)]++] = v;
        }
        uint64_t *t = src;
        src = dst;
        dst = t;
    }
    if (src != a) memcpy(a, src, n * sizeof *a);
    free(hist);
    return 0;
}

static inline float key_value(uint32_t key)
{
    uint32_t t = ~key, u = (t & 0x80000000u) ? (t & 0x7fffffffu) : ~t;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* The payload stored next to each key: the sample index when the order is cached for the
 * bootstrap (weights are looked up by index), otherwise what the pass needs (the label, or the
 * multilabel indicator) so that it reads the sorted array sequentially. */
static inline uint32_t payload(const cv_metrics *m, int c, size_t i, int by_index)
{
    if (by_index) return (uint32_t)i;
    if (c == m->K) return m->Y[i];
    return m->task == CV_TASK_MULTILABEL ? m->Y[i * (size_t)m->K + (size_t)c] : (uint32_t)m->y[i];
}

cv_status cv_rank_order(cv_ctx *ctx, cv_metrics *m, int c, int by_index, uint64_t **order)
{
    *order = by_index ? m->ord[c] : NULL;
    if (*order) return CV_OK;
    const size_t K = (size_t)m->K;
    size_t n = c < m->K ? m->n : m->n * K;
    if (n > UINT32_MAX)
        return cv_fail(ctx, CV_ERR_UNSUPPORTED,
                       "metrics: %zu scores are too many for a micro average (at most 2^32-1)", n);
    uint64_t *a = malloc(n * sizeof *a), *tmp = malloc(n * sizeof *tmp);
    if (!a || !tmp) {
        free(a);
        free(tmp);
        return cv_fail(ctx, CV_ERR_NOMEM, "metrics: out of memory sorting %zu scores", n);
    }
    const float *s = m->s + (c < m->K ? (size_t)c : 0);
    size_t stride = c < m->K ? K : 1;
    for (size_t i = 0; i < n; i++)
        a[i] = (uint64_t)key_desc(s[i * stride]) << 32 | payload(m, c, i, by_index);
    int bad = radix_sort(a, tmp, n);
    free(tmp);
    if (bad) {
        free(a);
        return cv_fail(ctx, CV_ERR_NOMEM, "metrics: out of memory sorting %zu scores", n);
    }
    if (by_index && m->opts.bootstrap > 0) m->ord[c] = a; /* replicates reuse it */
    *order = a;
    return CV_OK;
}

void cv_groups_free(cv_groups *g)
{
    free(g->tp);
    free(g->fp);
    free(g->thr);
    memset(g, 0, sizeof *g);
}

/* The pass over one sorted class (or the flattened micro order, c == K). */
typedef struct {
    double P, N, U, ap_num;
    double *ovo;       /* K: U of class c against each class b (single-label), or NULL */
    const double *tot; /* K weighted class totals, for ovo */
    cv_groups *g;      /* operating points, or NULL */
    size_t gcap;
} pass_t;

static int groups_push(pass_t *o, double tp, double fp, float thr)
{
    cv_groups *g = o->g;
    if (g->n == o->gcap) {
        size_t cap = o->gcap ? o->gcap * 2 : 256;
        double *a = realloc(g->tp, cap * sizeof *a);
        if (!a) return -1;
        g->tp = a;
        double *b = realloc(g->fp, cap * sizeof *b);
        if (!b) return -1;
        g->fp = b;
        float *t = realloc(g->thr, cap * sizeof *t);
        if (!t) return -1;
        g->thr = t;
        o->gcap = cap;
    }
    g->tp[g->n] = tp;
    g->fp[g->n] = fp;
    g->thr[g->n] = thr;
    g->n++;
    return 0;
}

static int class_pass(const cv_metrics *m, int c, const uint64_t *ord, int by_index,
                      const uint32_t *w, pass_t *o)
{
    const size_t K = (size_t)m->K;
    const int ml = m->task == CV_TASK_MULTILABEL, micro = c == m->K;
    const size_t n = micro ? m->n * K : m->n;
    double *grp = NULL, *seen = NULL;
    int *touched = NULL;
    if (o->ovo) {
        grp = calloc(K * 2, sizeof *grp);
        touched = malloc(K * sizeof *touched);
        if (!grp || !touched) {
            free(grp);
            free(touched);
            return -1;
        }
        seen = grp + K;
    }
    double tp = 0, fp = 0, U = 0, apn = 0;
    size_t i = 0;
    while (i < n) {
        uint32_t key = (uint32_t)(ord[i] >> 32);
        double tpg = 0, fpg = 0;
        int nt = 0;
        for (; i < n && (uint32_t)(ord[i] >> 32) == key; i++) {
            uint32_t pl = (uint32_t)ord[i];
            int lab; /* the label (single-label) or the indicator (multilabel) */
            double wt = 1.0;
            if (by_index) {
                size_t idx = pl;
                lab = micro ? m->Y[idx] : ml ? m->Y[idx * K + (size_t)c] : m->y[idx];
                if (w) wt = w[micro ? idx / K : idx];
                if (wt == 0) continue;
            } else {
                lab = (int)pl;
            }
            int pos = ml ? lab : lab == c;
            if (pos)
                tpg += wt;
            else
                fpg += wt;
            if (grp) {
                if (grp[lab] == 0) touched[nt++] = lab;
                grp[lab] += wt;
            }
        }
        if (tpg == 0 && fpg == 0) continue;
        U += fpg * (tp + 0.5 * tpg);
        tp += tpg;
        fp += fpg;
        apn += tpg * (tp / (tp + fp));
        if (grp) {
            if (tpg > 0)
                for (size_t b = 0; b < K; b++)
                    o->ovo[b] += tpg * (o->tot[b] - seen[b] - 0.5 * grp[b]);
            for (int t = 0; t < nt; t++) {
                seen[touched[t]] += grp[touched[t]];
                grp[touched[t]] = 0;
            }
        }
        if (o->g && groups_push(o, tp, fp, key_value(key))) {
            free(grp);
            free(touched);
            return -1;
        }
    }
    free(grp);
    free(touched);
    o->P = tp;
    o->N = fp;
    o->U = U;
    o->ap_num = apn;
    if (o->g) {
        o->g->P = tp;
        o->g->N = fp;
    }
    return 0;
}

static double pass_auc(const pass_t *o)
{
    return o->P > 0 && o->N > 0 ? o->U / (o->P * o->N) : NAN;
}

static double pass_ap(const pass_t *o)
{
    return o->P > 0 ? o->ap_num / o->P : 0.0; /* scikit-learn: 0 when there is no positive */
}

/* Evenly spaced indices when a curve has more points than asked for. */
static size_t curve_index(size_t k, size_t len, size_t keep)
{
    return keep >= len ? k : (size_t)llround((double)k * (double)(len - 1) / (double)(keep - 1));
}

static const char *const roc_rows[] = {"fpr", "tpr", "thresholds"};
static const char *const pr_rows[] = {"precision", "recall", "thresholds"};

/* roc_curve (drop_intermediate=True) and precision_recall_curve from the operating points. */
static void put_curves(const cv_metrics *m, const cv_groups *g, const char *suffix,
                       cv_metrics_result *r)
{
    size_t n = g->n, cp = (size_t)m->opts.curve_points;
    if (n == 0) return;
    size_t *keep = malloc((n + 1) * sizeof *keep);
    double *v = malloc((n + 1) * 3 * sizeof *v);
    if (!keep || !v) goto oom;
    /* ROC: keep the corners (where the second difference of fps or tps is non-zero) */
    size_t nk = 0;
    for (size_t i = 0; i < n; i++) {
        int corner = n <= 2 || i == 0 || i == n - 1 ||
                     g->fp[i + 1] - 2 * g->fp[i] + g->fp[i - 1] != 0 ||
                     g->tp[i + 1] - 2 * g->tp[i] + g->tp[i - 1] != 0;
        if (corner) keep[nk++] = i;
    }
    size_t len = nk + 1, out = cp && cp < len ? cp : len;
    double fpl = g->fp[n - 1], tpl = g->tp[n - 1];
    for (size_t k = 0; k < out; k++) {
        size_t j = curve_index(k, len, out);
        double fps = j ? g->fp[keep[j - 1]] : 0, tps = j ? g->tp[keep[j - 1]] : 0;
        v[k] = fpl > 0 ? fps / fpl : NAN;
        v[out + k] = tpl > 0 ? tps / tpl : NAN;
        v[2 * out + k] = j ? g->thr[keep[j - 1]] : (double)g->thr[keep[0]] + 1;
    }
    char key[64];
    snprintf(key, sizeof key, "roc_curve%s", suffix);
    cv_res_add(r, CV_SECTION_CURVE, key, 3, (int)out, v, roc_rows);
    /* precision-recall: increasing thresholds, then the (precision 1, recall 0) end point */
    len = n + 1;
    out = cp && cp < len ? cp : len;
    for (size_t k = 0; k < out; k++) {
        size_t j = curve_index(k, len, out);
        if (j == n) {
            v[k] = 1;
            v[out + k] = 0;
            v[2 * out + k] = NAN;
            continue;
        }
        size_t gi = n - 1 - j;
        v[k] = g->tp[gi] / (g->tp[gi] + g->fp[gi]);
        v[out + k] = g->P > 0 ? g->tp[gi] / g->P : 1.0;
        v[2 * out + k] = g->thr[gi];
    }
    snprintf(key, sizeof key, "precision_recall_curve%s", suffix);
    cv_res_add(r, CV_SECTION_CURVE, key, 3, (int)out, v, pr_rows);
    free(keep);
    free(v);
    return;
oom:
    free(keep);
    free(v);
    r->oom = 1;
}

static cv_status oom(cv_ctx *ctx)
{
    return cv_fail(ctx, CV_ERR_NOMEM, "metrics: out of memory in ranking metrics");
}

/* One class: sort (or reuse the cached order), pass, curves. */
static cv_status run_class(cv_ctx *ctx, cv_metrics *m, int c, const uint32_t *w, pass_t *o,
                           cv_metrics_result *r, int full, const char *suffix)
{
    uint64_t *ord;
    int by_index = w || m->opts.bootstrap > 0;
    cv_status st = cv_rank_order(ctx, m, c, by_index, &ord);
    if (st) return st;
    cv_groups g = {0};
    o->g = full ? &g : NULL;
    o->gcap = 0;
    int bad = class_pass(m, c, ord, by_index, w, o);
    if (ord != m->ord[c]) free(ord);
    if (!bad && full) put_curves(m, &g, suffix, r);
    cv_groups_free(&g);
    o->g = NULL;
    return bad ? oom(ctx) : CV_OK;
}

cv_status cv_class_groups(cv_ctx *ctx, cv_metrics *m, int c, cv_groups *g)
{
    memset(g, 0, sizeof *g);
    uint64_t *ord;
    cv_status st = cv_rank_order(ctx, m, c, 0, &ord);
    if (st) return st;
    pass_t o = {0};
    o.g = g;
    int bad = class_pass(m, c, ord, 0, NULL, &o);
    free(ord);
    if (bad) {
        cv_groups_free(g);
        return oom(ctx);
    }
    return CV_OK;
}

static const char *notsum1 =
    "undefined: multiclass ROC AUC needs scores that sum to 1 in every row";

cv_status cv_ranking_metrics(cv_ctx *ctx, cv_metrics *m, const cv_agg *a, const uint32_t *w,
                             cv_metrics_result *r, int full)
{
    const int K = m->K;
    char why[160], suffix[32];
    if (m->task == CV_TASK_BINARY) {
        pass_t o = {0};
        cv_status st = run_class(ctx, m, 1, w, &o, r, full, "");
        if (st) return st;
        cv_res_scalar(r, "roc_auc_score", pass_auc(&o),
                      "undefined: only one class is present in the labels");
        cv_res_scalar(r, "average_precision_score", pass_ap(&o), NULL);
        return CV_OK;
    }
    const int ml = m->task == CV_TASK_MULTILABEL;
    double *buf = calloc((size_t)K * ((size_t)K + 3), sizeof *buf);
    if (!buf) return oom(ctx);
    double *auc = buf, *ap = buf + K, *tot = buf + 2 * K, *U = buf + 3 * K;
    for (int c = 0; c < K; c++) {
        if (ml)
            tot[c] = a->cm[c * 4 + 2] + a->cm[c * 4 + 3];
        else
            for (int j = 0; j < K; j++) tot[c] += a->cm[(size_t)c * K + j];
    }
    int undefined = -1;
    for (int c = 0; c < K; c++) {
        pass_t o = {0};
        o.ovo = ml ? NULL : U + (size_t)c * K;
        o.tot = tot;
        snprintf(suffix, sizeof suffix, ".class_%d", c);
        cv_status st = run_class(ctx, m, c, w, &o, r, full, suffix);
        if (st) {
            free(buf);
            return st;
        }
        auc[c] = pass_auc(&o);
        ap[c] = pass_ap(&o);
        if (isnan(auc[c]) && undefined < 0) undefined = c;
    }
    double wsum = 0, macro = 0, weighted = 0, apm = 0, apw = 0;
    for (int c = 0; c < K; c++) {
        wsum += tot[c];
        macro += auc[c];
        weighted += tot[c] * auc[c];
        apm += ap[c];
        apw += tot[c] * ap[c];
    }
    if (undefined >= 0)
        snprintf(why, sizeof why, "undefined: class %d has %s samples in the labels", undefined,
                 tot[undefined] > 0 ? "only positive" : "no");
    if (ml) {
        pass_t o = {0};
        cv_status st = run_class(ctx, m, K, w, &o, r, 0, "");
        if (st) {
            free(buf);
            return st;
        }
        cv_res_scalar(r, "roc_auc_score.micro", pass_auc(&o),
                      "undefined: the labels are all positive or all negative");
        cv_res_scalar(r, "roc_auc_score.macro", undefined < 0 ? macro / K : NAN, why);
        cv_res_scalar(r, "roc_auc_score.weighted",
                      wsum == 0       ? 0.0
                      : undefined < 0 ? weighted / wsum
                                      : NAN,
                      why);
        cv_res_scalar(r, "average_precision_score.micro", pass_ap(&o), NULL);
    } else {
        const char *reason = m->rows_not_sum1 ? notsum1 : why;
        int ok = !m->rows_not_sum1 && undefined < 0;
        cv_res_scalar(r, "roc_auc_score.ovr_macro", ok ? macro / K : NAN, reason);
        cv_res_scalar(r, "roc_auc_score.ovr_weighted", ok ? weighted / wsum : NAN, reason);
        /* one-vs-one (Hand & Till) over the pairs of classes present in the labels */
        double om = 0, ow = 0, pw = 0;
        int pairs = 0;
        for (int i = 0; i < K; i++)
            for (int j = i + 1; j < K; j++) {
                if (tot[i] == 0 || tot[j] == 0) continue;
                double aij = U[(size_t)i * K + j] / (tot[i] * tot[j]);
                double aji = U[(size_t)j * K + i] / (tot[i] * tot[j]);
                double pair = (aij + aji) / 2, prev = (tot[i] + tot[j]) / a->n;
                om += pair;
                ow += prev * pair;
                pw += prev;
                pairs++;
            }
        reason = m->rows_not_sum1 ? notsum1
                                  : "undefined: fewer than two classes are present in the labels";
        ok = !m->rows_not_sum1 && pairs > 0;
        cv_res_scalar(r, "roc_auc_score.ovo_macro", ok ? om / pairs : NAN, reason);
        cv_res_scalar(r, "roc_auc_score.ovo_weighted", ok ? ow / pw : NAN, reason);
    }
    cv_res_scalar(r, "average_precision_score.macro", apm / K, NULL);
    cv_res_scalar(r, "average_precision_score.weighted", wsum == 0 ? 0.0 : apw / wsum, NULL);
    if (full) {
        cv_res_vector(r, "roc_auc_score.per_class", auc, K);
        cv_res_vector(r, "average_precision_score.per_class", ap, K);
    }
    free(buf);
    return CV_OK;
}
