/* The study's final table: per (model, dataset) the grid point with the best validation score,
 * and its test metric; written as DIR/table.csv and DIR/table.json. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/atomic.h"
#include "runner.h"

cv_status cv_study_table(cv_ctx *ctx, cv_study *s, const cv_study_row **rows, size_t *n)
{
    *rows = NULL;
    *n = 0;
    study_run *runs;
    size_t nr;
    cv_status st = studydb_runs(ctx, s, &runs, &nr);
    if (st) return st;
    size_t pairs = (size_t)s->n_datasets * (size_t)s->n_models;
    free(s->rows);
    s->rows = calloc(pairs ? pairs : 1, sizeof *s->rows);
    s->n_rows = 0;
    if (!s->rows) {
        free(runs);
        return cv_fail(ctx, CV_ERR_NOMEM, "out of memory");
    }
    for (int d = 0; d < s->n_datasets; d++)
        for (int m = 0; m < s->n_models; m++) {
            const study_dataset *ds = &s->datasets[d];
            cv_study_row *r = &s->rows[s->n_rows++];
            *r = (cv_study_row){.dataset = ds->name,
                                .model = s->models[m].arch,
                                .metric = ds->metric,
                                .upstream = s->models[m].upstream,
                                .lr = NAN,
                                .wd = NAN,
                                .val_score = NAN,
                                .value = NAN};
            int lower = study_lower_is_better(ds->key);
            const study_run *best = NULL;
            for (size_t i = 0; i < nr; i++) { /* ascending id = grid order: ties keep the first */
                const study_run *x = &runs[i];
                if (x->dataset != d || x->model != m) continue;
                if (!strcmp(x->status, "failed")) r->runs_failed++;
                if (strcmp(x->status, "done")) continue;
                r->runs_done++;
                if (isnan(x->val_score)) continue;
                if (!best ||
                    (lower ? x->val_score < best->val_score : x->val_score > best->val_score))
                    best = x;
            }
            if (!best) continue;
            const study_point *p = &s->points[best->point];
            r->run_id = best->id;
            r->lr = p->lr, r->wd = p->wd, r->opt = p->opt, r->sched = p->sched;
            r->val_score = best->val_score;
            r->best_epoch = best->best_epoch;
            r->value = best->test_value;
        }
    free(runs);
    *rows = s->rows;
    *n = s->n_rows;
    return CV_OK;
}

/* A CSV field: numbers round-trip exactly (%.17g), NaN is empty, text is quoted when needed. */
static void csv_num(char **p, size_t *left, double v, int last)
{
    int k = isnan(v) ? snprintf(*p, *left, "%s", last ? "\n" : ",")
                     : snprintf(*p, *left, "%.17g%s", v, last ? "\n" : ",");
    if (k > 0 && (size_t)k < *left) *p += k, *left -= (size_t)k;
}

static void csv_str(char **p, size_t *left, const char *v)
{
    int quote = v && strpbrk(v, ",\"\n");
    int k = snprintf(*p, *left, "%s", quote ? "\"" : "");
    if (k > 0 && (size_t)k < *left) *p += k, *left -= (size_t)k;
    for (const char *c = v ? v : ""; *c && *left > 2; c++) {
        if (*c == '"') *(*p)++ = '"', (*left)--;
        *(*p)++ = *c, (*left)--;
    }
    k = snprintf(*p, *left, "%s,", quote ? "\"" : "");
    if (k > 0 && (size_t)k < *left) *p += k, *left -= (size_t)k;
}

static cJSON *num_or_null(double v)
{
    return isnan(v) ? cJSON_CreateNull() : cJSON_CreateNumber(v);
}

cv_status cv_study_write_table(cv_ctx *ctx, cv_study *s)
{
    const cv_study_row *rows;
    size_t n;
    cv_status st = cv_study_table(ctx, s, &rows, &n);
    if (st) return st;
    size_t cap = 256 + n * 1024, left = cap;
    char *csv = malloc(cap), *p = csv;
    cJSON *arr = cJSON_CreateArray();
    if (!csv || !arr) {
        free(csv);
        cJSON_Delete(arr);
        return cv_fail(ctx, CV_ERR_NOMEM, "out of memory");
    }
    int k = snprintf(p, left,
                     "dataset,model,metric,upstream,run_id,lr,wd,opt,sched,val_score,best_epoch,"
                     "value,runs_done,runs_failed\n");
    p += k, left -= (size_t)k;
    for (size_t i = 0; i < n; i++) {
        const cv_study_row *r = &rows[i];
        csv_str(&p, &left, r->dataset);
        csv_str(&p, &left, r->model);
        csv_str(&p, &left, r->metric);
        csv_num(&p, &left, r->upstream, 0);
        csv_num(&p, &left, r->run_id ? (double)r->run_id : NAN, 0);
        csv_num(&p, &left, r->lr, 0);
        csv_num(&p, &left, r->wd, 0);
        csv_str(&p, &left, r->opt);
        csv_str(&p, &left, r->sched);
        csv_num(&p, &left, r->val_score, 0);
        csv_num(&p, &left, r->run_id ? r->best_epoch : NAN, 0);
        csv_num(&p, &left, r->value, 0);
        csv_num(&p, &left, r->runs_done, 0);
        csv_num(&p, &left, r->runs_failed, 1);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "dataset", r->dataset);
        cJSON_AddStringToObject(o, "model", r->model);
        cJSON_AddStringToObject(o, "metric", r->metric);
        cJSON_AddItemToObject(o, "upstream", num_or_null(r->upstream));
        cJSON_AddItemToObject(
            o, "run_id", r->run_id ? cJSON_CreateNumber((double)r->run_id) : cJSON_CreateNull());
        cJSON_AddItemToObject(o, "lr", num_or_null(r->lr));
        cJSON_AddItemToObject(o, "wd", num_or_null(r->wd));
        cJSON_AddItemToObject(o, "opt", r->opt ? cJSON_CreateString(r->opt) : cJSON_CreateNull());
        cJSON_AddItemToObject(o, "sched",
                              r->sched ? cJSON_CreateString(r->sched) : cJSON_CreateNull());
        cJSON_AddItemToObject(o, "val_score", num_or_null(r->val_score));
        cJSON_AddItemToObject(o, "best_epoch",
                              r->run_id ? cJSON_CreateNumber(r->best_epoch) : cJSON_CreateNull());
        cJSON_AddItemToObject(o, "value", num_or_null(r->value));
        cJSON_AddNumberToObject(o, "runs_done", r->runs_done);
        cJSON_AddNumberToObject(o, "runs_failed", r->runs_failed);
        cJSON_AddItemToArray(arr, o);
    }
    char *json = cJSON_Print(arr);
    cJSON_Delete(arr);
    char path[4400];
    if (!json) st = cv_fail(ctx, CV_ERR_NOMEM, "out of memory");
    if (!st) {
        snprintf(path, sizeof path, "%s/table.csv", s->out_dir);
        st = cv_write_file_atomic(ctx, path, 0, csv, strlen(csv));
    }
    if (!st) {
        snprintf(path, sizeof path, "%s/table.json", s->out_dir);
        cv_write_part parts[2] = {{json, strlen(json)}, {"\n", 1}};
        st = cv_write_parts_atomic(ctx, path, 0, parts, 2);
    }
    free(csv);
    free(json);
    return st;
}
