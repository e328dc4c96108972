/* The JSON report (schema: docs/metrics-json.md). Undefined values are null, with their reason
 * under "undefined". */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "metrics/metrics_internal.h"
#include "report/json.h"

void cv_format_double(char buf[40], double v)
{
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, 40, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) break;
    }
}

cJSON *cv_json_number(double v)
{
    if (!isfinite(v)) return cJSON_CreateNull();
    char buf[40];
    cv_format_double(buf, v);
    return cJSON_CreateRaw(buf);
}

cJSON *cv_json_numbers(const double *v, int n)
{
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < n; i++) cJSON_AddItemToArray(a, cv_json_number(v[i]));
    return a;
}

static cJSON *row(const double *v, int n)
{
    return cv_json_numbers(v, n);
}

static cJSON *value(const cv_metric_entry *e)
{
    if (e->rows == 0) return cv_json_number(e->v[0]);
    if (e->rows == 1 && !e->row_names) return row(e->v, e->cols);
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < e->rows; i++)
        cJSON_AddItemToArray(a, row(e->v + (size_t)i * e->cols, e->cols));
    return a;
}

static cJSON *named_rows(const cv_metric_entry *e)
{
    cJSON *o = cJSON_CreateObject();
    for (int i = 0; o && i < e->rows; i++)
        cJSON_AddItemToObject(o, e->row_names[i], row(e->v + (size_t)i * e->cols, e->cols));
    return o;
}

/* threshold entries: threshold, target, precision, recall, tn, fp, fn, tp */
static cJSON *operating_point(const cv_metric_entry *e)
{
    cJSON *o = cJSON_CreateObject();
    for (int i = 0; i < 4; i++) cJSON_AddItemToObject(o, e->row_names[i], cv_json_number(e->v[i]));
    cJSON *cm = cJSON_CreateArray();
    cJSON_AddItemToArray(cm, row(e->v + 4, 2));
    cJSON_AddItemToArray(cm, row(e->v + 6, 2));
    cJSON_AddItemToObject(o, "confusion_matrix", cm);
    return o;
}

char *cv_metrics_report_json(const cv_metrics_result *r)
{
    return cv_metrics_report_json_extra(r, NULL);
}

char *cv_metrics_report_json_extra(const cv_metrics_result *r, cJSON *extra)
{
    cJSON *root = cJSON_CreateObject();
    if (!root) {
        cJSON_Delete(extra);
        return NULL;
    }
    cJSON_AddStringToObject(root, "task", cv_task_name(r->task));
    cJSON_AddNumberToObject(root, "num_classes", r->K);
    if (r->names) {
        cJSON *names = cJSON_AddArrayToObject(root, "class_names");
        for (int i = 0; i < r->K; i++) cJSON_AddItemToArray(names, cJSON_CreateString(r->names[i]));
    }
    cJSON_AddNumberToObject(root, "n_samples", (double)r->n);
    cJSON *metrics = cJSON_AddObjectToObject(root, "metrics");
    cJSON *undef = cJSON_AddObjectToObject(root, "undefined");
    cJSON *cis = NULL;
    if (r->bootstrap) {
        cJSON *ci = cJSON_AddObjectToObject(root, "confidence_intervals");
        cJSON_AddStringToObject(ci, "method", "percentile bootstrap");
        cJSON_AddItemToObject(ci, "level", cv_json_number(r->level));
        cJSON_AddNumberToObject(ci, "resamples", r->bootstrap);
        char seed[24];
        snprintf(seed, sizeof seed, "%llu", (unsigned long long)r->seed); /* all 64 bits */
        cJSON_AddRawToObject(ci, "seed", seed);
        cis = cJSON_AddObjectToObject(ci, "values");
    }
    cJSON *curves = cJSON_AddObjectToObject(root, "curves");
    cJSON *thr = cJSON_AddObjectToObject(root, "thresholds");
    for (int i = 0; i < r->count; i++) {
        const cv_metric_entry *e = &r->e[i];
        switch (e->section) {
        case CV_SECTION_METRIC:
            cJSON_AddItemToObject(metrics, e->name, value(e));
            if (e->reason) cJSON_AddStringToObject(undef, e->name, e->reason);
            if (cis && e->has_ci) {
                double v[2] = {e->ci_low, e->ci_high};
                cJSON_AddItemToObject(cis, e->name, row(v, 2));
            }
            break;
        case CV_SECTION_CURVE:
            cJSON_AddItemToObject(curves, e->name, named_rows(e));
            break;
        case CV_SECTION_THRESHOLD:
            cJSON_AddItemToObject(thr, e->name, operating_point(e));
            break;
        }
    }
    cJSON *diag = cJSON_AddArrayToObject(root, "diagnostics");
    for (int i = 0; i < r->ndiag; i++) {
        cJSON *d = cJSON_CreateObject();
        cJSON_AddStringToObject(d, "code", r->dcode[i]);
        cJSON_AddStringToObject(d, "message", r->dmsg[i]);
        cJSON_AddItemToArray(diag, d);
    }
    while (extra && extra->child) {
        cJSON *item = extra->child;
        cJSON_AddItemToObject(root, item->string, cJSON_DetachItemViaPointer(extra, item));
    }
    cJSON_Delete(extra);
    char *s = cJSON_Print(root);
    cJSON_Delete(root);
    return s;
}
