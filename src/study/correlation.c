/* Correlation statistics with SciPy's definitions (scipy.stats.pearsonr, spearmanr, linregress
 * of SciPy 1.10) and the percentile bootstrap over pairs. P-values come from the regularized
 * incomplete beta function (continued fraction), accurate to about 1e-14 relative. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cvision/analysis.h"
#include "cvision/transforms.h"
#include "metrics/metrics_internal.h"
#include "study/study_internal.h"

/* Lentz's continued fraction for I_x(a, b) (Numerical Recipes' betacf); converges fast for
 * x < (a + 1) / (a + b + 2). */
static double betacf(double a, double b, double x)
{
    const double tiny = 1e-300;
    double qab = a + b, qap = a + 1, qam = a - 1, c = 1, d = 1 - qab * x / qap;
    if (fabs(d) < tiny) d = tiny;
    d = 1 / d;
    double h = d;
    for (int m = 1; m <= 100000; m++) {
        int m2 = 2 * m;
        double aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1 + aa * d;
        if (fabs(d) < tiny) d = tiny;
        c = 1 + aa / c;
        if (fabs(c) < tiny) c = tiny;
        d = 1 / d;
        h *= d * c;
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1 + aa * d;
        if (fabs(d) < tiny) d = tiny;
        c = 1 + aa / c;
        if (fabs(c) < tiny) c = tiny;
        d = 1 / d;
        double del = d * c;
        h *= del;
        if (fabs(del - 1) < 1e-16) break;
    }
    return h;
}

/* I_x(a, b) given x and y = 1 - x separately, so that neither loses digits near 0 or 1. */
static double betainc2(double a, double b, double x, double y)
{
    if (!(a > 0 && b > 0) || isnan(x) || isnan(y)) return NAN;
    if (x <= 0) return 0;
    if (y <= 0) return 1;
    double lfront = a * log(x) + b * log(y) - (lgamma(a) + lgamma(b) - lgamma(a + b));
    if (x < (a + 1) / (a + b + 2)) return exp(lfront) * betacf(a, b, x) / a;
    return 1 - exp(lfront) * betacf(b, a, y) / b;
}

double cv_betainc(double a, double b, double x)
{
    return betainc2(a, b, x, 1 - x);
}

double cv_t_two_sided_p(double t, double df)
{
    if (isnan(t) || !(df > 0)) return NAN;
    if (isinf(t)) return 0;
    /* 2 P(T > |t|) = I_{df/(df+t^2)}(df/2, 1/2) */
    double t2 = t * t;
    return betainc2(df / 2, 0.5, df / (df + t2), t2 / (df + t2));
}

/* Copies the pairs where both values are finite; returns their count. */
static size_t finite_pairs(const double *x, const double *y, size_t n, double *xo, double *yo)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (isfinite(x[i]) && isfinite(y[i])) xo[k] = x[i], yo[k] = y[i], k++;
    return k;
}

static int constant(const double *v, size_t n)
{
    for (size_t i = 1; i < n; i++)
        if (v[i] != v[0]) return 0;
    return 1;
}

static double mean(const double *v, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) s += v[i];
    return s / (double)n;
}

/* Pearson's r of finite data (n >= 2, neither constant), clipped to [-1, 1] as SciPy does. */
static double pearson_r(const double *x, const double *y, size_t n)
{
    double mx = mean(x, n), my = mean(y, n), sxx = 0, syy = 0, sxy = 0;
    for (size_t i = 0; i < n; i++) {
        double dx = x[i] - mx, dy = y[i] - my;
        sxx += dx * dx;
        syy += dy * dy;
        sxy += dx * dy;
    }
    /* sqrt(a * a) == a exactly, so identical rank vectors give rho = 1 exactly */
    double den = sqrt(sxx * syy);
    if (!isfinite(den) || den == 0) den = sqrt(sxx) * sqrt(syy); /* overflow or underflow */
    double r = sxy / den;
    return r > 1 ? 1 : r < -1 ? -1 : r;
}

static void undefined(cv_corr_result *out, const char *reason)
{
    out->r = out->p_value = NAN;
    out->reason = reason;
}

/* The checks every statistic shares; returns NULL when the data allow it. */
static const char *why_undefined(const double *x, const double *y, size_t n)
{
    if (n < 3) return "fewer than 3 models with both values";
    if (constant(x, n)) return "the upstream values are all equal";
    if (constant(y, n)) return "the task values are all equal";
    return NULL;
}

static void pearson_finite(const double *x, const double *y, size_t n, cv_corr_result *out)
{
    out->n = n;
    out->reason = NULL;
    const char *why = why_undefined(x, y, n);
    if (why) return undefined(out, why);
    out->r = pearson_r(x, y, n);
    if (isnan(out->r)) return undefined(out, "the spread of the values underflows");
    /* r is Beta(n/2 - 1, n/2 - 1) on [-1, 1] under the null: p = 2 I_{(1-|r|)/2}(ab, ab) */
    double ab = (double)n / 2 - 1, ar = fabs(out->r);
    double p = 2 * betainc2(ab, ab, (1 - ar) / 2, (1 + ar) / 2);
    out->p_value = p > 1 ? 1 : p;
}

/* Average ranks (1-based) of v, as scipy.stats.rankdata(method="average"). */
static void rank_average(const double *v, size_t n, size_t *ord, double *rank)
{
    for (size_t i = 0; i < n; i++) ord[i] = i;
    /* insertion sort by value: the inputs are models (tens to hundreds) */
    for (size_t i = 1; i < n; i++) {
        size_t t = ord[i], j = i;
        while (j > 0 && v[ord[j - 1]] > v[t]) ord[j] = ord[j - 1], j--;
        ord[j] = t;
    }
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j + 1 < n && v[ord[j + 1]] == v[ord[i]]) j++;
        double r = (double)(i + j) / 2 + 1;
        for (size_t k = i; k <= j; k++) rank[ord[k]] = r;
        i = j + 1;
    }
}

static void spearman_finite(const double *x, const double *y, size_t n, size_t *ord, double *rx,
                            double *ry, cv_corr_result *out)
{
    out->n = n;
    out->reason = NULL;
    const char *why = why_undefined(x, y, n);
    if (why) return undefined(out, why);
    rank_average(x, n, ord, rx);
    rank_average(y, n, ord, ry);
    double rs = pearson_r(rx, ry, n), df = (double)n - 2;
    out->r = rs;
    out->p_value = cv_t_two_sided_p(rs * sqrt(df / ((rs + 1) * (1 - rs))), df);
}

static void linregress_finite(const double *x, const double *y, size_t n, cv_linregress_result *out)
{
    memset(out, 0, sizeof *out);
    out->n = n;
    const char *why = n < 3            ? "fewer than 3 models with both values"
                      : constant(x, n) ? "the upstream values are all equal"
                                       : NULL;
    if (why) {
        out->slope = out->intercept = out->r = out->p_value = NAN;
        out->slope_stderr = out->intercept_stderr = NAN;
        out->reason = why;
        return;
    }
    if (constant(y, n)) {
        /* exactly flat (SciPy's r = 0, p = 1), even where the rounded mean of y differs from y */
        out->intercept = y[0];
        out->p_value = 1;
        return;
    }
    double mx = mean(x, n), my = mean(y, n), sxx = 0, syy = 0, sxy = 0;
    for (size_t i = 0; i < n; i++) {
        double dx = x[i] - mx, dy = y[i] - my;
        sxx += dx * dx;
        syy += dy * dy;
        sxy += dx * dy;
    }
    /* SciPy's np.cov(bias=1) moments; the 1/n factors cancel in every ratio below except the
     * intercept's standard error */
    double ssxm = sxx / (double)n, ssym = syy / (double)n, ssxym = sxy / (double)n;
    double r = ssym == 0 ? 0 : ssxym / sqrt(ssxm * ssym); /* ssym underflowed */
    r = r > 1 ? 1 : r < -1 ? -1 : r;
    double df = (double)n - 2, tiny = 1e-20;
    out->r = r;
    out->slope = ssxym / ssxm;
    out->intercept = my - out->slope * mx;
    out->p_value = cv_t_two_sided_p(r * sqrt(df / ((1 - r + tiny) * (1 + r + tiny))), df);
    out->slope_stderr = sqrt((1 - r * r) * ssym / ssxm / df);
    out->intercept_stderr = out->slope_stderr * sqrt(ssxm + mx * mx);
}

double cv_normalized_slope(const cv_linregress_result *fit)
{
    return fit->slope * 100; /* d value / d (upstream / 100) */
}

/* Scratch space for n pairs. */
typedef struct {
    double *x, *y, *rx, *ry;
    size_t *ord;
} scratch;

static int scratch_alloc(scratch *s, size_t n)
{
    size_t m = n ? n : 1;
    s->x = malloc(m * sizeof *s->x);
    s->y = malloc(m * sizeof *s->y);
    s->rx = malloc(m * sizeof *s->rx);
    s->ry = malloc(m * sizeof *s->ry);
    s->ord = malloc(m * sizeof *s->ord);
    return s->x && s->y && s->rx && s->ry && s->ord;
}

static void scratch_free(scratch *s)
{
    free(s->x);
    free(s->y);
    free(s->rx);
    free(s->ry);
    free(s->ord);
}

cv_status cv_pearson(cv_ctx *ctx, const double *x, const double *y, size_t n, cv_corr_result *out)
{
    scratch s;
    if (!scratch_alloc(&s, n)) {
        scratch_free(&s);
        return cv_fail(ctx, CV_ERR_NOMEM, "pearson: out of memory for %zu pairs", n);
    }
    pearson_finite(s.x, s.y, finite_pairs(x, y, n, s.x, s.y), out);
    scratch_free(&s);
    return CV_OK;
}

cv_status cv_spearman(cv_ctx *ctx, const double *x, const double *y, size_t n, cv_corr_result *out)
{
    scratch s;
    if (!scratch_alloc(&s, n)) {
        scratch_free(&s);
        return cv_fail(ctx, CV_ERR_NOMEM, "spearman: out of memory for %zu pairs", n);
    }
    spearman_finite(s.x, s.y, finite_pairs(x, y, n, s.x, s.y), s.ord, s.rx, s.ry, out);
    scratch_free(&s);
    return CV_OK;
}

cv_status cv_linregress(cv_ctx *ctx, const double *x, const double *y, size_t n,
                        cv_linregress_result *out)
{
    scratch s;
    if (!scratch_alloc(&s, n)) {
        scratch_free(&s);
        return cv_fail(ctx, CV_ERR_NOMEM, "linregress: out of memory for %zu pairs", n);
    }
    linregress_finite(s.x, s.y, finite_pairs(x, y, n, s.x, s.y), out);
    scratch_free(&s);
    return CV_OK;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The percentile interval of the defined replicates v[0..B) (sorted in place). */
static void percentile_ci(double *v, int B, double level, double *lo, double *hi, int *used)
{
    int k = 0;
    for (int i = 0; i < B; i++)
        if (!isnan(v[i])) v[k++] = v[i];
    qsort(v, (size_t)k, sizeof *v, cmp_double);
    *used = k;
    *lo = cv_quantile_sorted(v, (size_t)k, (1 - level) / 2);
    *hi = cv_quantile_sorted(v, (size_t)k, (1 + level) / 2);
}

cv_status cv_bootstrap_pairs(cv_ctx *ctx, const double *x, const double *y, const double *x2,
                             size_t n, uint64_t seed, uint64_t stream, int n_boot, double level,
                             cv_boot_ci *out, double *diff_lo, double *diff_hi, int *diff_used)
{
    for (int k = 0; k < CV_BOOT_NSTATS; k++) out->low[k] = out->high[k] = NAN, out->used[k] = 0;
    if (x2) *diff_lo = *diff_hi = NAN, *diff_used = 0;
    if (n_boot < 0 || !(level > 0 && level < 1))
        return cv_fail(ctx, CV_ERR_INVALID, "bootstrap: %d resamples at level %g", n_boot, level);
    if (n_boot == 0 || n == 0) return CV_OK;
    scratch s;
    int ok = scratch_alloc(&s, n);
    double *x2b = ok && x2 ? malloc(n * sizeof *x2b) : NULL;
    double *v = ok ? malloc((size_t)n_boot * (CV_BOOT_NSTATS + 1) * sizeof *v) : NULL;
    if (!ok || !v || (x2 && !x2b)) {
        scratch_free(&s);
        free(x2b);
        free(v);
        return cv_fail(ctx, CV_ERR_NOMEM, "bootstrap: out of memory for %d replicates", n_boot);
    }
    cv_rng rng;
    cv_rng_init(&rng, seed, stream);
    for (int b = 0; b < n_boot; b++) {
        for (size_t i = 0; i < n; i++) {
            size_t j = (size_t)cv_rng_randint(&rng, 0, (int64_t)n);
            s.x[i] = x[j];
            s.y[i] = y[j];
            if (x2) x2b[i] = x2[j];
        }
        cv_corr_result c;
        cv_linregress_result fit;
        pearson_finite(s.x, s.y, n, &c);
        v[(size_t)CV_BOOT_PEARSON * n_boot + b] = c.r;
        linregress_finite(s.x, s.y, n, &fit);
        v[(size_t)CV_BOOT_NORM_SLOPE * n_boot + b] = cv_normalized_slope(&fit);
        spearman_finite(s.x, s.y, n, s.ord, s.rx, s.ry, &c);
        v[(size_t)CV_BOOT_SPEARMAN * n_boot + b] = c.r;
        if (x2) {
            cv_corr_result c2;
            spearman_finite(x2b, s.y, n, s.ord, s.rx, s.ry, &c2);
            v[(size_t)CV_BOOT_NSTATS * n_boot + b] = c2.r - c.r;
        }
    }
    for (int k = 0; k < CV_BOOT_NSTATS; k++)
        percentile_ci(v + (size_t)k * n_boot, n_boot, level, &out->low[k], &out->high[k],
                      &out->used[k]);
    if (x2)
        percentile_ci(v + (size_t)CV_BOOT_NSTATS * n_boot, n_boot, level, diff_lo, diff_hi,
                      diff_used);
    scratch_free(&s);
    free(x2b);
    free(v);
    return CV_OK;
}

cv_status cv_bootstrap_corr(cv_ctx *ctx, const double *x, const double *y, size_t n, uint64_t seed,
                            uint64_t stream, int n_boot, double level, cv_boot_ci *out)
{
    double *xf = malloc((n ? n : 1) * sizeof *xf), *yf = malloc((n ? n : 1) * sizeof *yf);
    if (!xf || !yf) {
        free(xf);
        free(yf);
        return cv_fail(ctx, CV_ERR_NOMEM, "bootstrap: out of memory for %zu pairs", n);
    }
    size_t k = finite_pairs(x, y, n, xf, yf);
    cv_status st = cv_bootstrap_pairs(ctx, xf, yf, NULL, k, seed, stream, n_boot, level, out, NULL,
                                      NULL, NULL);
    free(xf);
    free(yf);
    return st;
}
