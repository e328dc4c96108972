/* The study's analysis: per dataset, the trend of the task metric with upstream accuracy
 * (Pearson, Spearman, OLS and the normalized slope, with bootstrap intervals over models), and
 * whether the average over the other datasets predicts a dataset better than upstream accuracy
 * does. Writes analysis.json, analysis.csv and report.html (docs/study.md, "Analysis"). */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cvision/analysis.h"
#include "report/json.h"
#include "report/svg.h"
#include "core/atomic.h"
#include "study/study_internal.h"

#define LEVEL     0.95
#define MAX_CELLS 10000000 /* models × datasets */

static const char *norm_slope_definition =
    "OLS slope of the task metric against upstream accuracy expressed as a fraction "
    "(upstream percent / 100): task-metric units per unit of upstream accuracy. For a metric in "
    "[0, 1], 1.0 means one point of task metric per point of upstream accuracy, 0 no trend.";

typedef struct {
    const char *name; /* model */
    double up, v;
    double o; /* the average over the other datasets (analyze_other) */
} point;

typedef struct {
    cv_corr_result r;
    double lo, hi;
    int used;
} corr_ci;

/* Everything computed for one dataset. */
/* A model left out of a statistic: the reason, and the dataset it concerns (NULL: this one). */
typedef struct {
    const char *model, *reason, *dataset;
} excl;

typedef struct {
    excl *v;
    size_t n;
} excl_list;

typedef struct {
    const char *name, *metric;
    point *pts; /* models with both values, by upstream then name */
    size_t n;
    const char *first_model; /* the first row's model (error messages) */
    excl_list ex;
    corr_ci pearson, spearman;
    cv_linregress_result fit;
    double ns, ns_lo, ns_hi;
    int ns_used;
    /* against the average of the other datasets (has_other: at least two datasets) */
    int has_other;
    point *opts; /* up: upstream, v: this dataset; oavg: the others' average */
    double *oavg;
    size_t on;
    excl_list oex;
    corr_ci o_pearson, o_spearman, u_pearson, u_spearman;
    double d_value, d_lo, d_hi;
    int d_used;
} dataset_an;

typedef struct {
    const char **models, **datasets;
    size_t M, D;
    const cv_study_result **cell; /* M×D, NULL where missing */
    dataset_an *an;
    uint64_t seed;
    int n_boot;
} study_an;

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return h;
}

static size_t find_or_add(const char **names, size_t *n, const char *s)
{
    for (size_t i = 0; i < *n; i++)
        if (!strcmp(names[i], s)) return i;
    names[*n] = s;
    return (*n)++;
}

static int cmp_point(const void *a, const void *b)
{
    const point *p = a, *q = b;
    if (p->up != q->up) return p->up < q->up ? -1 : 1;
    return strcmp(p->name, q->name);
}

static int add_excl(excl_list *l, const char *model, const char *reason, const char *dataset)
{
    excl *v = realloc(l->v, (l->n + 1) * sizeof *v);
    if (!v) return -1;
    l->v = v;
    v[l->n++] = (excl){model, reason, dataset};
    return 0;
}

/* "reason", or "reason 'X'" naming the dataset */
static void excl_text(const excl *e, char *buf, size_t size)
{
    if (e->dataset)
        snprintf(buf, size, "%s '%s'", e->reason, e->dataset);
    else
        snprintf(buf, size, "%s", e->reason);
}

static void split_pts(const point *p, size_t n, double *x, double *y)
{
    for (size_t i = 0; i < n; i++) x[i] = p[i].up, y[i] = p[i].v;
}

static cv_status corr_pair(cv_ctx *ctx, const double *x, const double *y, size_t n, corr_ci *pe,
                           corr_ci *sp)
{
    cv_status st;
    if ((st = cv_pearson(ctx, x, y, n, &pe->r)) || (st = cv_spearman(ctx, x, y, n, &sp->r)))
        return st;
    return CV_OK;
}

static void set_ci(corr_ci *c, const cv_boot_ci *b, cv_boot_stat k)
{
    c->lo = b->low[k], c->hi = b->high[k], c->used = b->used[k];
}

/* The trend with upstream accuracy. */
static cv_status analyze_upstream(cv_ctx *ctx, study_an *s, size_t d, double *x, double *y)
{
    dataset_an *a = &s->an[d];
    a->pts = malloc((s->M ? s->M : 1) * sizeof *a->pts);
    if (!a->pts) return cv_fail(ctx, CV_ERR_NOMEM, "study analysis: out of memory");
    for (size_t m = 0; m < s->M; m++) {
        const cv_study_result *r = s->cell[m * s->D + d];
        const char *why = !r                       ? NULL
                          : !isfinite(r->value)    ? "no task value (the run failed or is missing)"
                          : !isfinite(r->upstream) ? "no upstream accuracy"
                                                   : "";
        if (!why) continue;
        if (*why) {
            if (add_excl(&a->ex, r->model, why, NULL))
                return cv_fail(ctx, CV_ERR_NOMEM, "study analysis: out of memory");
            continue;
        }
        a->pts[a->n++] = (point){r->model, r->upstream, r->value, NAN};
    }
    qsort(a->pts, a->n, sizeof *a->pts, cmp_point);
    split_pts(a->pts, a->n, x, y);
    cv_status st = corr_pair(ctx, x, y, a->n, &a->pearson, &a->spearman);
    if (!st) st = cv_linregress(ctx, x, y, a->n, &a->fit);
    if (st) return st;
    a->ns = cv_normalized_slope(&a->fit);
    cv_boot_ci b;
    st = cv_bootstrap_pairs(ctx, x, y, NULL, a->n, s->seed, fnv1a(a->name), s->n_boot, LEVEL, &b,
                            NULL, NULL, NULL);
    if (st) return st;
    set_ci(&a->pearson, &b, CV_BOOT_PEARSON);
    set_ci(&a->spearman, &b, CV_BOOT_SPEARMAN);
    a->ns_lo = b.low[CV_BOOT_NORM_SLOPE], a->ns_hi = b.high[CV_BOOT_NORM_SLOPE];
    a->ns_used = b.used[CV_BOOT_NORM_SLOPE];
    return CV_OK;
}

/* The average of the other datasets against upstream accuracy, on the models that have every
 * dataset's value and this dataset's upstream accuracy. */
static cv_status analyze_other(cv_ctx *ctx, study_an *s, size_t d, double *x, double *y)
{
    dataset_an *a = &s->an[d];
    if (s->D < 2) return CV_OK;
    a->has_other = 1;
    size_t cap = s->M ? s->M : 1;
    a->opts = malloc(cap * sizeof *a->opts);
    a->oavg = malloc(cap * sizeof *a->oavg);
    if (!a->opts || !a->oavg) return cv_fail(ctx, CV_ERR_NOMEM, "study analysis: out of memory");
    for (size_t m = 0; m < s->M; m++) {
        const cv_study_result *r = s->cell[m * s->D + d];
        if (!r) continue; /* not in this dataset at all: nothing to compare */
        const char *why = !isfinite(r->value)      ? "no task value on this dataset"
                          : !isfinite(r->upstream) ? "no upstream accuracy"
                                                   : NULL;
        const char *other = NULL;
        double sum = 0;
        for (size_t e = 0; e < s->D && !why; e++) {
            if (e == d) continue;
            const cv_study_result *o = s->cell[m * s->D + e];
            if (!o || !isfinite(o->value))
                why = "no task value on dataset", other = s->datasets[e];
            else
                sum += o->value;
        }
        if (why) {
            if (add_excl(&a->oex, r->model, why, other))
                return cv_fail(ctx, CV_ERR_NOMEM, "study analysis: out of memory");
            continue;
        }
        a->opts[a->on++] = (point){r->model, r->upstream, r->value, sum / (double)(s->D - 1)};
    }
    qsort(a->opts, a->on, sizeof *a->opts, cmp_point);
    for (size_t i = 0; i < a->on; i++) a->oavg[i] = a->opts[i].o;
    split_pts(a->opts, a->on, x, y);
    cv_status st = corr_pair(ctx, a->oavg, y, a->on, &a->o_pearson, &a->o_spearman);
    if (!st) st = corr_pair(ctx, x, y, a->on, &a->u_pearson, &a->u_spearman);
    if (st) return st;
    a->d_value = a->o_spearman.r.r - a->u_spearman.r.r;
    /* the same replicates (seed, stream, n) for both, so the difference is paired */
    uint64_t stream = fnv1a(a->name) + 1;
    cv_boot_ci bu, bo;
    if ((st = cv_bootstrap_pairs(ctx, x, y, a->oavg, a->on, s->seed, stream, s->n_boot, LEVEL, &bu,
                                 &a->d_lo, &a->d_hi, &a->d_used)) ||
        (st = cv_bootstrap_pairs(ctx, a->oavg, y, NULL, a->on, s->seed, stream, s->n_boot, LEVEL,
                                 &bo, NULL, NULL, NULL)))
        return st;
    set_ci(&a->u_pearson, &bu, CV_BOOT_PEARSON);
    set_ci(&a->u_spearman, &bu, CV_BOOT_SPEARMAN);
    set_ci(&a->o_pearson, &bo, CV_BOOT_PEARSON);
    set_ci(&a->o_spearman, &bo, CV_BOOT_SPEARMAN);
    return CV_OK;
}

/* ---- JSON ---- */
static cJSON *ci_json(double lo, double hi)
{
    double v[2] = {lo, hi};
    return isnan(lo) ? cJSON_CreateNull() : cv_json_numbers(v, 2);
}

static void add_corr(cJSON *o, cJSON *undef, const char *key, const corr_ci *c, int boot)
{
    cJSON *j = cJSON_AddObjectToObject(o, key);
    cJSON_AddItemToObject(j, "value", cv_json_number(c->r.r));
    cJSON_AddItemToObject(j, "p_value", cv_json_number(c->r.p_value));
    if (boot) {
        cJSON_AddItemToObject(j, "ci", ci_json(c->lo, c->hi));
        cJSON_AddNumberToObject(j, "resamples_used", c->used);
    }
    if (c->r.reason) cJSON_AddStringToObject(undef, key, c->r.reason);
}

static void add_excluded(cJSON *o, const excl_list *l)
{
    cJSON *a = cJSON_AddArrayToObject(o, "excluded");
    for (size_t i = 0; i < l->n; i++) {
        char text[1024];
        excl_text(&l->v[i], text, sizeof text);
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "model", l->v[i].model);
        cJSON_AddStringToObject(e, "reason", text);
        cJSON_AddItemToArray(a, e);
    }
}

static cJSON *dataset_json(const study_an *s, const dataset_an *a)
{
    int boot = s->n_boot > 0;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", a->name);
    cJSON_AddStringToObject(o, "metric", a->metric);
    cJSON_AddNumberToObject(o, "n", (double)a->n);
    cJSON *ms = cJSON_AddArrayToObject(o, "models");
    for (size_t i = 0; i < a->n; i++) {
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "model", a->pts[i].name);
        cJSON_AddItemToObject(m, "upstream", cv_json_number(a->pts[i].up));
        cJSON_AddItemToObject(m, "value", cv_json_number(a->pts[i].v));
        cJSON_AddItemToArray(ms, m);
    }
    add_excluded(o, &a->ex);
    cJSON *undef = cJSON_CreateObject();
    add_corr(o, undef, "pearson_r", &a->pearson, boot);
    add_corr(o, undef, "spearman_rho", &a->spearman, boot);
    cJSON *fit = cJSON_AddObjectToObject(o, "linear_fit");
    cJSON_AddItemToObject(fit, "slope", cv_json_number(a->fit.slope));
    cJSON_AddItemToObject(fit, "intercept", cv_json_number(a->fit.intercept));
    cJSON_AddItemToObject(fit, "r", cv_json_number(a->fit.r));
    cJSON_AddItemToObject(fit, "p_value", cv_json_number(a->fit.p_value));
    cJSON_AddItemToObject(fit, "slope_stderr", cv_json_number(a->fit.slope_stderr));
    cJSON_AddItemToObject(fit, "intercept_stderr", cv_json_number(a->fit.intercept_stderr));
    if (a->fit.reason) cJSON_AddStringToObject(undef, "linear_fit", a->fit.reason);
    cJSON *ns = cJSON_AddObjectToObject(o, "normalized_slope");
    cJSON_AddItemToObject(ns, "value", cv_json_number(a->ns));
    if (boot) {
        cJSON_AddItemToObject(ns, "ci", ci_json(a->ns_lo, a->ns_hi));
        cJSON_AddNumberToObject(ns, "resamples_used", a->ns_used);
    }
    if (a->fit.reason) cJSON_AddStringToObject(undef, "normalized_slope", a->fit.reason);
    cJSON_AddItemToObject(o, "undefined", undef);
    if (!a->has_other) {
        cJSON_AddNullToObject(o, "vs_other_datasets");
        return o;
    }
    cJSON *v = cJSON_AddObjectToObject(o, "vs_other_datasets");
    cJSON_AddNumberToObject(v, "n", (double)a->on);
    cJSON *mm = cJSON_AddArrayToObject(v, "models");
    for (size_t i = 0; i < a->on; i++) {
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "model", a->opts[i].name);
        cJSON_AddItemToObject(m, "upstream", cv_json_number(a->opts[i].up));
        cJSON_AddItemToObject(m, "value", cv_json_number(a->opts[i].v));
        cJSON_AddItemToObject(m, "other_average", cv_json_number(a->oavg[i]));
        cJSON_AddItemToArray(mm, m);
    }
    add_excluded(v, &a->oex);
    cJSON *ou = cJSON_CreateObject();
    add_corr(v, ou, "other_spearman_rho", &a->o_spearman, boot);
    add_corr(v, ou, "other_pearson_r", &a->o_pearson, boot);
    add_corr(v, ou, "upstream_spearman_rho", &a->u_spearman, boot);
    add_corr(v, ou, "upstream_pearson_r", &a->u_pearson, boot);
    cJSON *dj = cJSON_AddObjectToObject(v, "spearman_difference");
    cJSON_AddItemToObject(dj, "value", cv_json_number(a->d_value));
    if (boot) {
        cJSON_AddItemToObject(dj, "ci", ci_json(a->d_lo, a->d_hi));
        cJSON_AddNumberToObject(dj, "resamples_used", a->d_used);
    }
    if (isnan(a->d_value))
        cJSON_AddStringToObject(ou, "spearman_difference", "a Spearman correlation is undefined");
    cJSON_AddItemToObject(v, "undefined", ou);
    return o;
}

static char *analysis_json(const study_an *s)
{
    cJSON *root = cJSON_CreateObject();
    if (!root) return NULL;
    cJSON_AddStringToObject(root, "schema", "cvision.study.analysis/1");
    cJSON_AddNumberToObject(root, "n_models", (double)s->M);
    cJSON_AddNumberToObject(root, "n_datasets", (double)s->D);
    cJSON *b = cJSON_AddObjectToObject(root, "bootstrap");
    cJSON_AddStringToObject(b, "method",
                            "percentile bootstrap over models (pairs resampled with "
                            "replacement)");
    cJSON_AddNumberToObject(b, "resamples", s->n_boot);
    cJSON_AddItemToObject(b, "level", cv_json_number(LEVEL));
    char seed[24];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)s->seed); /* all 64 bits */
    cJSON_AddRawToObject(b, "seed", seed);
    cJSON_AddStringToObject(root, "normalized_slope_definition", norm_slope_definition);
    cJSON *ds = cJSON_AddArrayToObject(root, "datasets");
    for (size_t d = 0; d < s->D; d++) cJSON_AddItemToArray(ds, dataset_json(s, &s->an[d]));
    char *out = cJSON_Print(root);
    cJSON_Delete(root);
    return out;
}

/* ---- CSV ---- */
static void csv_str(FILE *f, const char *s)
{
    if (!strpbrk(s, ",\"\n\r")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static void csv_num(FILE *f, double v)
{
    char buf[40] = "";
    if (isfinite(v)) cv_format_double(buf, v);
    fprintf(f, ",%s", buf);
}

static void csv_row(FILE *f, const dataset_an *a, const char *stat, double v, double p, double lo,
                    double hi, size_t n, const char *reason)
{
    csv_str(f, a->name);
    fputc(',', f);
    csv_str(f, a->metric);
    fprintf(f, ",%s", stat);
    csv_num(f, v);
    csv_num(f, p);
    csv_num(f, lo);
    csv_num(f, hi);
    fprintf(f, ",%zu,", n);
    csv_str(f, reason ? reason : "");
    fputc('\n', f);
}

static void csv_corr(FILE *f, const dataset_an *a, const char *stat, const corr_ci *c, size_t n)
{
    csv_row(f, a, stat, c->r.r, c->r.p_value, c->lo, c->hi, n, c->r.reason);
}

static void analysis_csv(FILE *f, const study_an *s)
{
    fprintf(f, "dataset,metric,statistic,value,p_value,ci_low,ci_high,n,reason\n");
    for (size_t d = 0; d < s->D; d++) {
        const dataset_an *a = &s->an[d];
        csv_corr(f, a, "pearson_r", &a->pearson, a->n);
        csv_corr(f, a, "spearman_rho", &a->spearman, a->n);
        csv_row(f, a, "slope", a->fit.slope, a->fit.p_value, NAN, NAN, a->n, a->fit.reason);
        csv_row(f, a, "intercept", a->fit.intercept, NAN, NAN, NAN, a->n, a->fit.reason);
        csv_row(f, a, "normalized_slope", a->ns, a->fit.p_value, a->ns_lo, a->ns_hi, a->n,
                a->fit.reason);
        if (!a->has_other) continue;
        csv_corr(f, a, "other.spearman_rho", &a->o_spearman, a->on);
        csv_corr(f, a, "other.pearson_r", &a->o_pearson, a->on);
        csv_corr(f, a, "other.upstream_spearman_rho", &a->u_spearman, a->on);
        csv_corr(f, a, "other.upstream_pearson_r", &a->u_pearson, a->on);
        csv_row(f, a, "other.spearman_difference", a->d_value, NAN, a->d_lo, a->d_hi, a->on,
                isnan(a->d_value) ? "a Spearman correlation is undefined" : NULL);
    }
}

/* ---- HTML ---- */
/* A number cell; data-k is the path of the JSON value it shows under datasets[d] (the report
 * test compares them). */
static void td_num(FILE *f, size_t d, const char *key, const char *sub, double v, const char *fmt,
                   const char *reason)
{
    fprintf(f, "<td data-k=\"%zu.%s.%s\"", d, key, sub);
    if (isnan(v)) {
        fprintf(f, " class=\"undef\" title=\"");
        cv_svg_escape(f, reason ? reason : "undefined");
        fprintf(f, "\">undefined</td>");
        return;
    }
    fprintf(f, ">");
    fprintf(f, fmt, v);
    fprintf(f, "</td>");
}

static void td_ci(FILE *f, size_t d, const char *key, double lo, double hi, int boot)
{
    if (!boot) return;
    if (isnan(lo)) {
        fprintf(f, "<td class=\"undef\">undefined</td>");
        return;
    }
    fprintf(f,
            "<td>[<span data-k=\"%zu.%s.ci.0\">%.4f</span>, <span "
            "data-k=\"%zu.%s.ci.1\">%.4f</span>]</td>",
            d, key, lo, d, key, hi);
}

static void tr_corr(FILE *f, size_t d, const char *label, const char *key, const corr_ci *c,
                    int boot)
{
    fprintf(f, "<tr><td>%s</td>", label);
    td_num(f, d, key, "value", c->r.r, "%.4f", c->r.reason);
    td_ci(f, d, key, c->lo, c->hi, boot);
    td_num(f, d, key, "p_value", c->r.p_value, "%.3g", c->r.reason);
    fprintf(f, "</tr>\n");
}

static void html_excluded(FILE *f, const char *what, const excl_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        char text[1024];
        excl_text(&l->v[i], text, sizeof text);
        fprintf(f, "<div class=\"note\">");
        cv_svg_escape(f, what);
        fprintf(f, ": ");
        cv_svg_escape(f, l->v[i].model);
        fprintf(f, " left out: ");
        cv_svg_escape(f, text);
        fprintf(f, "</div>\n");
    }
}

static void html_dataset(FILE *f, const study_an *s, size_t d)
{
    const dataset_an *a = &s->an[d];
    int boot = s->n_boot > 0;
    fprintf(f, "<section><h2>");
    cv_svg_escape(f, a->name);
    fprintf(f, " <small>(");
    cv_svg_escape(f, a->metric);
    fprintf(f, ", %zu models)</small></h2>\n", a->n);
    html_excluded(f, "Trend", &a->ex);
    const char **labels = malloc((a->n ? a->n : 1) * sizeof *labels);
    double *x = malloc((a->n ? a->n : 1) * sizeof *x), *y = malloc((a->n ? a->n : 1) * sizeof *y);
    if (labels && x && y) {
        for (size_t i = 0; i < a->n; i++) labels[i] = a->pts[i].name;
        split_pts(a->pts, a->n, x, y);
        char title[256];
        snprintf(title, sizeof title, "%s: %s against upstream top-1", a->name, a->metric);
        cv_svg_scatter(f, title, "upstream top-1 (%)", a->metric, x, y, labels, (int)a->n,
                       a->fit.slope, a->fit.intercept);
    }
    free(labels);
    free(x);
    free(y);
    fprintf(f, "<div class=\"side\"><table><tr><th>statistic</th><th>value</th>");
    if (boot) fprintf(f, "<th>95%% CI</th>");
    fprintf(f, "<th>p-value</th></tr>\n");
    tr_corr(f, d, "Pearson r", "pearson_r", &a->pearson, boot);
    tr_corr(f, d, "Spearman &rho;", "spearman_rho", &a->spearman, boot);
    fprintf(f, "<tr><td>normalized slope</td>");
    td_num(f, d, "normalized_slope", "value", a->ns, "%.4f", a->fit.reason);
    td_ci(f, d, "normalized_slope", a->ns_lo, a->ns_hi, boot);
    td_num(f, d, "linear_fit", "p_value", a->fit.p_value, "%.3g", a->fit.reason);
    fprintf(f, "</tr>\n<tr><td>OLS slope (per point)</td>");
    td_num(f, d, "linear_fit", "slope", a->fit.slope, "%.6g", a->fit.reason);
    if (boot) fprintf(f, "<td></td>");
    fprintf(f, "<td></td></tr>\n<tr><td>OLS intercept</td>");
    td_num(f, d, "linear_fit", "intercept", a->fit.intercept, "%.6g", a->fit.reason);
    if (boot) fprintf(f, "<td></td>");
    fprintf(f, "<td></td></tr>\n</table>\n<table><tr><th>model</th><th>upstream top-1 "
               "(%%)</th><th>");
    cv_svg_escape(f, a->metric);
    fprintf(f, "</th></tr>\n");
    for (size_t i = 0; i < a->n; i++) {
        fprintf(f, "<tr><td>");
        cv_svg_escape(f, a->pts[i].name);
        fprintf(f,
                "</td><td data-k=\"%zu.models.%zu.upstream\">%.2f</td>"
                "<td data-k=\"%zu.models.%zu.value\">%.4f</td></tr>\n",
                d, i, a->pts[i].up, d, i, a->pts[i].v);
    }
    fprintf(f, "</table></div></section>\n");
}

static void html_other(FILE *f, const study_an *s)
{
    int boot = s->n_boot > 0;
    fprintf(f, "<h2>Against the average of the other datasets</h2>\n<p>For each dataset, the "
               "correlation of its metric with the mean of the model's metrics on the other "
               "datasets (as given, without normalisation), next to the correlation with "
               "upstream accuracy on the same models. A difference interval above 0 means the "
               "other datasets rank the models better than upstream accuracy does.</p>\n");
    fprintf(f,
            "<table><tr><th>dataset</th><th>models</th><th>Spearman, others</th>%s"
            "<th>Spearman, upstream</th>%s<th>difference</th>%s<th>Pearson, others</th>%s"
            "<th>Pearson, upstream</th>%s</tr>\n",
            boot ? "<th>95% CI</th>" : "", boot ? "<th>95% CI</th>" : "",
            boot ? "<th>95% CI</th>" : "", boot ? "<th>95% CI</th>" : "",
            boot ? "<th>95% CI</th>" : "");
    for (size_t d = 0; d < s->D; d++) {
        const dataset_an *a = &s->an[d];
        fprintf(f, "<tr><td>");
        cv_svg_escape(f, a->name);
        fprintf(f, "</td><td>%zu</td>", a->on);
        const struct {
            const char *key;
            const corr_ci *c;
        } cols[] = {{"vs_other_datasets.other_spearman_rho", &a->o_spearman},
                    {"vs_other_datasets.upstream_spearman_rho", &a->u_spearman},
                    {NULL, NULL},
                    {"vs_other_datasets.other_pearson_r", &a->o_pearson},
                    {"vs_other_datasets.upstream_pearson_r", &a->u_pearson}};
        for (int k = 0; k < 5; k++) {
            if (!cols[k].key) {
                td_num(f, d, "vs_other_datasets.spearman_difference", "value", a->d_value, "%.4f",
                       "a Spearman correlation is undefined");
                td_ci(f, d, "vs_other_datasets.spearman_difference", a->d_lo, a->d_hi, boot);
                continue;
            }
            td_num(f, d, cols[k].key, "value", cols[k].c->r.r, "%.4f", cols[k].c->r.reason);
            td_ci(f, d, cols[k].key, cols[k].c->lo, cols[k].c->hi, boot);
        }
        fprintf(f, "</tr>\n");
    }
    fprintf(f, "</table>\n");
    for (size_t d = 0; d < s->D; d++) {
        char what[300];
        snprintf(what, sizeof what, "Other datasets, %s", s->an[d].name);
        html_excluded(f, what, &s->an[d].oex);
    }
}

static void analysis_html(FILE *f, const study_an *s)
{
    fprintf(f, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
               "<title>cvision study analysis</title>\n<style>\n"
               "body{font-family:sans-serif;margin:2em;color:#222;max-width:1200px}"
               "table{border-collapse:collapse;margin:8px 0}td,th{padding:2px 10px;"
               "text-align:right}td:first-child,th:first-child{text-align:left}"
               "tr:nth-child(even){background:#f4f4f4}figure{display:inline-block;margin:10px;"
               "vertical-align:top}figcaption{font-weight:bold;margin-bottom:4px}"
               ".side{display:inline-block;vertical-align:top;margin:10px}.undef{color:#999}"
               ".note{background:#fff4e0;border-left:4px solid #f0a020;padding:4px 10px;"
               "margin:4px 0}section{border-top:1px solid #ddd;margin-top:1em}\n"
               "</style></head><body>\n<h1>Transfer study: does upstream accuracy predict the "
               "task?</h1>\n");
    fprintf(f, "<p>%zu models, %zu datasets. ", s->M, s->D);
    if (s->n_boot > 0)
        fprintf(f, "Intervals: 95%% percentile bootstrap over models, %d resamples, seed %llu. ",
                s->n_boot, (unsigned long long)s->seed);
    fprintf(f,
            "P-values are two-sided (Pearson: exact under bivariate normality; Spearman and "
            "the slope: t distribution with n&minus;2 degrees of freedom).</p>\n<p><b>Normalized "
            "slope</b>: ");
    cv_svg_escape(f, norm_slope_definition);
    fprintf(f, "</p>\n<h2>Summary</h2>\n<table><tr><th>dataset</th><th>metric</th><th>models</th>"
               "<th>Pearson r</th><th>Spearman &rho;</th><th>normalized slope</th></tr>\n");
    for (size_t d = 0; d < s->D; d++) {
        const dataset_an *a = &s->an[d];
        fprintf(f, "<tr><td>");
        cv_svg_escape(f, a->name);
        fprintf(f, "</td><td>");
        cv_svg_escape(f, a->metric);
        fprintf(f, "</td><td>%zu</td>", a->n);
        td_num(f, d, "pearson_r", "value", a->pearson.r.r, "%.4f", a->pearson.r.reason);
        td_num(f, d, "spearman_rho", "value", a->spearman.r.r, "%.4f", a->spearman.r.reason);
        td_num(f, d, "normalized_slope", "value", a->ns, "%.4f", a->fit.reason);
        fprintf(f, "</tr>\n");
    }
    fprintf(f, "</table>\n");
    for (size_t d = 0; d < s->D; d++) html_dataset(f, s, d);
    if (s->D >= 2) html_other(f, s);
    fprintf(f, "</body></html>\n");
}

/* ---- driver ---- */
static void study_free(study_an *s)
{
    for (size_t d = 0; s->an && d < s->D; d++) {
        dataset_an *a = &s->an[d];
        free(a->ex.v);
        free(a->oex.v);
        free(a->pts);
        free(a->opts);
        free(a->oavg);
    }
    free(s->an);
    free(s->models);
    free(s->datasets);
    free(s->cell);
}

/* Groups the rows into the models × datasets table; rejects inconsistent input. */
static cv_status tabulate(cv_ctx *ctx, study_an *s, const cv_study_result *rows, size_t n)
{
    size_t cap = n ? n : 1;
    s->models = malloc(cap * sizeof *s->models);
    s->datasets = malloc(cap * sizeof *s->datasets);
    if (!s->models || !s->datasets)
        return cv_fail(ctx, CV_ERR_NOMEM, "study analysis: out of memory");
    for (size_t i = 0; i < n; i++) {
        const cv_study_result *r = &rows[i];
        if (!r->model || !r->dataset || !r->metric || !*r->model || !*r->dataset)
            return cv_fail(ctx, CV_ERR_INVALID,
                           "study analysis: result %zu has no model, dataset or metric", i + 1);
        find_or_add(s->models, &s->M, r->model);
        find_or_add(s->datasets, &s->D, r->dataset);
    }
    if (s->D && s->M > MAX_CELLS / s->D)
        return cv_fail(ctx, CV_ERR_INVALID,
                       "study analysis: %zu models × %zu datasets is more than %d cells", s->M,
                       s->D, MAX_CELLS);
    s->cell = calloc(s->M * s->D, sizeof *s->cell); /* n > 0: M, D >= 1 */
    s->an = calloc(s->D ? s->D : 1, sizeof *s->an);
    if (!s->cell || !s->an) return cv_fail(ctx, CV_ERR_NOMEM, "study analysis: out of memory");
    for (size_t i = 0; i < n; i++) {
        const cv_study_result *r = &rows[i];
        size_t m = find_or_add(s->models, &s->M, r->model);
        size_t d = find_or_add(s->datasets, &s->D, r->dataset);
        dataset_an *a = &s->an[d];
        if (s->cell[m * s->D + d])
            return cv_fail(ctx, CV_ERR_INVALID,
                           "study analysis: model '%s' has two results for dataset '%s'", r->model,
                           r->dataset);
        if (a->metric && strcmp(a->metric, r->metric))
            return cv_fail(ctx, CV_ERR_INVALID,
                           "study analysis: dataset '%s' is scored by '%s' for model '%s' but by "
                           "'%s' for model '%s'",
                           r->dataset, a->metric, a->first_model, r->metric, r->model);
        if (!a->metric) a->first_model = r->model;
        a->name = r->dataset;
        a->metric = r->metric;
        s->cell[m * s->D + d] = r;
    }
    return CV_OK;
}

static cv_status write_stream(cv_ctx *ctx, const study_an *s, const char *dir, const char *file,
                              void (*fn)(FILE *, const study_an *))
{
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, file) >= sizeof path)
        return cv_fail(ctx, CV_ERR_INVALID, "%s: path too long", dir);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return cv_fail(ctx, CV_ERR_NOMEM, "%s: out of memory", path);
    fn(f, s);
    int bad = ferror(f);
    if (fclose(f) || bad) {
        free(buf);
        return cv_fail(ctx, CV_ERR_NOMEM, "%s: out of memory", path);
    }
    cv_status st = cv_write_file_atomic(ctx, path, 0, buf, len);
    free(buf);
    return st;
}

cv_status cv_study_analyze(cv_ctx *ctx, const cv_study_result *rows, size_t n, const char *out_dir,
                           uint64_t seed, int n_boot)
{
    if (n_boot < 0 || n_boot > 1000000)
        return cv_fail(ctx, CV_ERR_INVALID, "study analysis: %d bootstrap resamples (0..1000000)",
                       n_boot);
    if (n == 0) return cv_fail(ctx, CV_ERR_INVALID, "study analysis: no results to analyze");
    study_an s = {.seed = seed, .n_boot = n_boot};
    cv_status st = tabulate(ctx, &s, rows, n);
    double *x = NULL, *y = NULL;
    if (!st) {
        x = malloc(s.M * sizeof *x);
        y = malloc(s.M * sizeof *y);
        if (!x || !y) st = cv_fail(ctx, CV_ERR_NOMEM, "study analysis: out of memory");
    }
    for (size_t d = 0; !st && d < s.D; d++)
        if (!(st = analyze_upstream(ctx, &s, d, x, y))) st = analyze_other(ctx, &s, d, x, y);
    free(x);
    free(y);
    if (!st && mkdir(out_dir, 0777) && errno != EEXIST)
        st = cv_fail(ctx, CV_ERR_IO, "%s: cannot create the directory: %s", out_dir,
                     strerror(errno));
    if (!st) {
        char *json = analysis_json(&s);
        char path[4096];
        if (!json)
            st = cv_fail(ctx, CV_ERR_NOMEM, "study analysis: out of memory");
        else if ((size_t)snprintf(path, sizeof path, "%s/analysis.json", out_dir) >= sizeof path)
            st = cv_fail(ctx, CV_ERR_INVALID, "%s: path too long", out_dir);
        else
            st = cv_write_file_atomic(ctx, path, 0, json, strlen(json));
        free(json);
    }
    if (!st) st = write_stream(ctx, &s, out_dir, "analysis.csv", analysis_csv);
    if (!st) st = write_stream(ctx, &s, out_dir, "report.html", analysis_html);
    study_free(&s);
    return st;
}
