/* Percentile bootstrap confidence intervals for every scalar metric, and the paired bootstrap
 * comparing two models on the same samples. A replicate draws n samples with replacement; the
 * draw is passed as per-sample counts (weights), so sorted score orders are reused. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cvision/transforms.h"
#include "metrics/metrics_internal.h"

/* The seed fully determines the intervals: it is the splitmix64 state itself (not mixed by
 * cv_rng_init), which keeps the intervals of earlier versions. */
static void draw(uint32_t *w, size_t n, cv_rng *rng)
{
    memset(w, 0, n * sizeof *w);
    for (size_t i = 0; i < n; i++) w[(size_t)(((unsigned __int128)cv_rng_next(rng) * n) >> 64)]++;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double cv_quantile_sorted(const double *v, size_t n, double q)
{
    if (n == 0) return NAN;
    double pos = q * (double)(n - 1);
    size_t lo = (size_t)floor(pos);
    if (lo + 1 >= n) return v[n - 1];
    return v[lo] + (pos - (double)lo) * (v[lo + 1] - v[lo]);
}

/* Value of a scalar in a replicate, looked up at the same position first (results list their
 * entries in a fixed order), by name otherwise. */
static double lookup(const cv_metrics_result *r, const char *name, int hint)
{
    if (hint < r->count && !strcmp(r->e[hint].name, name)) return r->e[hint].v[0];
    return cv_metrics_result_scalar(r, name);
}

static int count_defined_sort(double *v, int n)
{
    int k = 0;
    for (int i = 0; i < n; i++)
        if (!isnan(v[i])) v[k++] = v[i];
    qsort(v, (size_t)k, sizeof *v, cmp_double);
    return k;
}

cv_status cv_bootstrap_cis(cv_ctx *ctx, cv_metrics *m, cv_metrics_result *r)
{
    const int B = m->opts.bootstrap;
    int ns = 0;
    for (int i = 0; i < r->count; i++)
        ns += r->e[i].rows == 0 && r->e[i].section == CV_SECTION_METRIC;
    int *idx = malloc((size_t)(ns ? ns : 1) * sizeof *idx);
    double *vals = malloc((size_t)(ns ? ns : 1) * (size_t)B * sizeof *vals);
    uint32_t *w = malloc(m->n * sizeof *w);
    cv_status st = CV_OK;
    if (!idx || !vals || !w) {
        st = cv_fail(ctx, CV_ERR_NOMEM, "metrics: out of memory for %d bootstrap resamples", B);
        goto done;
    }
    ns = 0;
    for (int i = 0; i < r->count; i++)
        if (r->e[i].rows == 0 && r->e[i].section == CV_SECTION_METRIC) idx[ns++] = i;
    cv_rng rng = {m->opts.seed};
    for (int b = 0; b < B; b++) {
        draw(w, m->n, &rng);
        cv_metrics_result *rb;
        st = cv_metrics_compute(ctx, m, w, 0, &rb);
        if (st) goto done;
        int hint = 0;
        for (int k = 0; k < ns; k++) {
            const cv_metric_entry *e = &r->e[idx[k]];
            while (hint < rb->count && rb->e[hint].rows != 0) hint++;
            vals[(size_t)k * B + b] = lookup(rb, e->name, hint);
            hint++;
        }
        cv_metrics_result_free(rb);
    }
    double alpha = (1 - m->opts.ci_level) / 2;
    for (int k = 0; k < ns; k++) {
        double *v = vals + (size_t)k * B;
        int nd = count_defined_sort(v, B);
        if (!nd) continue;
        cv_metric_entry *e = &r->e[idx[k]];
        e->has_ci = 1;
        e->ci_low = cv_quantile_sorted(v, (size_t)nd, alpha);
        e->ci_high = cv_quantile_sorted(v, (size_t)nd, 1 - alpha);
    }
    r->bootstrap = B;
    r->level = m->opts.ci_level;
    r->seed = m->opts.seed;
done:
    free(idx);
    free(vals);
    free(w);
    return st;
}

static int same_labels(const cv_metrics *a, const cv_metrics *b)
{
    if (a->task != b->task || a->K != b->K || a->n != b->n) return 0;
    if (a->task == CV_TASK_MULTILABEL) return !memcmp(a->Y, b->Y, a->n * (size_t)a->K);
    return !memcmp(a->y, b->y, a->n * sizeof *a->y);
}

cv_status cv_metrics_paired_bootstrap(cv_ctx *ctx, cv_metrics *a, cv_metrics *b, const char *metric,
                                      int resamples, double level, uint64_t seed,
                                      cv_paired_result *out)
{
    memset(out, 0, sizeof *out);
    if (resamples < 1 || !(level > 0 && level < 1))
        return cv_fail(ctx, CV_ERR_INVALID, "paired bootstrap: %d resamples at level %g", resamples,
                       level);
    if (!a->keep || !b->keep || !a->n)
        return cv_fail(ctx, CV_ERR_INVALID,
                       "paired bootstrap: both accumulators must keep their samples (give scores, "
                       "or set opts.bootstrap > 0)");
    if (!same_labels(a, b))
        return cv_fail(ctx, CV_ERR_INVALID,
                       "paired bootstrap: the two models were not evaluated on the same labels in "
                       "the same order");
    cv_metrics_result *ra = NULL, *rb = NULL;
    double *d = malloc((size_t)resamples * sizeof *d);
    uint32_t *w = malloc(a->n * sizeof *w);
    cv_status st = CV_OK;
    if (!d || !w) {
        st = cv_fail(ctx, CV_ERR_NOMEM, "paired bootstrap: out of memory");
        goto done;
    }
    if ((st = cv_metrics_compute(ctx, a, NULL, 0, &ra)) ||
        (st = cv_metrics_compute(ctx, b, NULL, 0, &rb)))
        goto done;
    const cv_metric_entry *e = cv_metrics_result_get(ra, metric);
    if (!e || e->rows != 0) {
        st = cv_fail(ctx, CV_ERR_NOT_FOUND, "paired bootstrap: no scalar metric '%s'", metric);
        goto done;
    }
    out->a = e->v[0];
    out->b = cv_metrics_result_scalar(rb, metric);
    out->diff = out->a - out->b;
    cv_metrics_result_free(ra);
    cv_metrics_result_free(rb);
    ra = rb = NULL;
    cv_rng rng = {seed};
    int nd = 0, le = 0, ge = 0;
    for (int i = 0; i < resamples; i++) {
        draw(w, a->n, &rng);
        if ((st = cv_metrics_compute(ctx, a, w, 0, &ra)) ||
            (st = cv_metrics_compute(ctx, b, w, 0, &rb)))
            goto done;
        double x = cv_metrics_result_scalar(ra, metric) - cv_metrics_result_scalar(rb, metric);
        cv_metrics_result_free(ra);
        cv_metrics_result_free(rb);
        ra = rb = NULL;
        if (isnan(x)) continue;
        d[nd++] = x;
        le += x <= 0;
        ge += x >= 0;
    }
    out->resamples_used = nd;
    if (nd) {
        qsort(d, (size_t)nd, sizeof *d, cmp_double);
        double alpha = (1 - level) / 2;
        out->ci_low = cv_quantile_sorted(d, (size_t)nd, alpha);
        out->ci_high = cv_quantile_sorted(d, (size_t)nd, 1 - alpha);
        double p = 2.0 * (le < ge ? le : ge) / nd;
        out->p_value = p > 1 ? 1 : p;
    } else {
        out->ci_low = out->ci_high = out->p_value = NAN;
    }
done:
    cv_metrics_result_free(ra);
    cv_metrics_result_free(rb);
    free(d);
    free(w);
    return st;
}
