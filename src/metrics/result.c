/* The result object: an ordered list of named values plus diagnostics. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/metrics_internal.h"

cv_metrics_result *cv_res_alloc(cv_task task, int K, size_t n)
{
    cv_metrics_result *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->task = task;
    r->K = K;
    r->n = n;
    return r;
}

cv_metrics_result *cv_res_new(const cv_metrics *m)
{
    cv_metrics_result *r = cv_res_alloc(m->task, m->K, m->n);
    if (r) r->nbins = m->opts.n_bins;
    return r;
}

void cv_metrics_result_free(cv_metrics_result *r)
{
    if (!r) return;
    for (int i = 0; i < r->count; i++) {
        free((char *)r->e[i].name);
        free((double *)r->e[i].v);
        free((char *)r->e[i].reason);
    }
    for (int i = 0; i < r->ndiag; i++) {
        free(r->dcode[i]);
        free(r->dmsg[i]);
    }
    free(r->dcode);
    free(r->dmsg);
    free(r->e);
    for (int i = 0; r->names && i < r->K; i++) free(r->names[i]);
    free(r->names);
    free(r);
}

cv_metric_entry *cv_res_add(cv_metrics_result *r, cv_section sec, const char *name, int rows,
                            int cols, const double *v, const char *const *row_names)
{
    if (r->count == r->cap) {
        int cap = r->cap ? r->cap * 2 : 64;
        cv_metric_entry *e = realloc(r->e, (size_t)cap * sizeof *e);
        if (!e) {
            r->oom = 1;
            return NULL;
        }
        r->e = e;
        r->cap = cap;
    }
    size_t nv = rows ? (size_t)rows * (size_t)cols : 1;
    double *copy = malloc(nv * sizeof *copy);
    char *nm = strdup(name);
    if (!copy || !nm) {
        free(copy);
        free(nm);
        r->oom = 1;
        return NULL;
    }
    memcpy(copy, v, nv * sizeof *copy);
    cv_metric_entry *e = &r->e[r->count++];
    memset(e, 0, sizeof *e);
    e->name = nm;
    e->section = sec;
    e->rows = rows;
    e->cols = cols;
    e->v = copy;
    e->row_names = row_names;
    return e;
}

void cv_res_scalar(cv_metrics_result *r, const char *name, double v, const char *reason)
{
    cv_metric_entry *e = cv_res_add(r, CV_SECTION_METRIC, name, 0, 0, &v, NULL);
    if (e && isnan(v) && reason) {
        e->reason = strdup(reason);
        if (!e->reason) r->oom = 1;
    }
}

void cv_res_vector(cv_metrics_result *r, const char *name, const double *v, int n)
{
    cv_res_add(r, CV_SECTION_METRIC, name, 1, n, v, NULL);
}

void cv_res_diag(cv_metrics_result *r, const char *code, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    char **c = realloc(r->dcode, (size_t)(r->ndiag + 1) * sizeof *c);
    if (!c) goto oom;
    r->dcode = c;
    char **mm = realloc(r->dmsg, (size_t)(r->ndiag + 1) * sizeof *mm);
    if (!mm) goto oom;
    r->dmsg = mm;
    r->dcode[r->ndiag] = strdup(code);
    r->dmsg[r->ndiag] = strdup(msg);
    if (!r->dcode[r->ndiag] || !r->dmsg[r->ndiag]) {
        free(r->dcode[r->ndiag]);
        free(r->dmsg[r->ndiag]);
        goto oom;
    }
    r->ndiag++;
    return;
oom:
    r->oom = 1;
}

int cv_metrics_result_count(const cv_metrics_result *r)
{
    return r->count;
}

const cv_metric_entry *cv_metrics_result_at(const cv_metrics_result *r, int i)
{
    return i >= 0 && i < r->count ? &r->e[i] : NULL;
}

const cv_metric_entry *cv_metrics_result_get(const cv_metrics_result *r, const char *name)
{
    for (int i = 0; i < r->count; i++)
        if (!strcmp(r->e[i].name, name)) return &r->e[i];
    return NULL;
}

double cv_metrics_result_scalar(const cv_metrics_result *r, const char *name)
{
    const cv_metric_entry *e = cv_metrics_result_get(r, name);
    return e && e->rows == 0 ? e->v[0] : NAN;
}

cv_task cv_metrics_result_task(const cv_metrics_result *r)
{
    return r->task;
}

int cv_metrics_result_num_classes(const cv_metrics_result *r)
{
    return r->K;
}

size_t cv_metrics_result_samples(const cv_metrics_result *r)
{
    return r->n;
}

int cv_metrics_result_diag_count(const cv_metrics_result *r)
{
    return r->ndiag;
}

const char *cv_metrics_result_diag_code(const cv_metrics_result *r, int i)
{
    return i >= 0 && i < r->ndiag ? r->dcode[i] : NULL;
}

const char *cv_metrics_result_diag_message(const cv_metrics_result *r, int i)
{
    return i >= 0 && i < r->ndiag ? r->dmsg[i] : NULL;
}

int cv_metrics_result_bootstrap(const cv_metrics_result *r, double *level, uint64_t *seed)
{
    if (level) *level = r->level;
    if (seed) *seed = r->seed;
    return r->bootstrap;
}

cv_status cv_metrics_result_set_class_names(cv_ctx *ctx, cv_metrics_result *r,
                                            const char *const *names, int n)
{
    if (n != r->K)
        return cv_fail(ctx, CV_ERR_INVALID, "metrics: %d class names for %d classes", n, r->K);
    char **v = calloc((size_t)n, sizeof *v);
    if (!v) return cv_fail(ctx, CV_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n; i++) {
        v[i] = strdup(names[i] ? names[i] : "");
        if (!v[i]) {
            while (i--) free(v[i]);
            free(v);
            return cv_fail(ctx, CV_ERR_NOMEM, "out of memory");
        }
    }
    for (int i = 0; r->names && i < r->K; i++) free(r->names[i]);
    free(r->names);
    r->names = v;
    return CV_OK;
}

const char *cv_metrics_result_class_name(const cv_metrics_result *r, int i)
{
    return r->names && i >= 0 && i < r->K ? r->names[i] : NULL;
}
