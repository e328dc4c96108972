/* The transfer study: configuration, grid, the shared splits and head-less weights, and the loop
 * that claims runs from the database, fine-tunes with the trainer and scores the selected
 * checkpoint on the test data. */
#include <cjson/cJSON.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cvision/data.h"
#include "cvision/model.h"
#include "cvision/train.h"
#include "cvision/trainer.h"
#include "cvision/weights.h"
#include "runner.h"

void cv_study_config_default(cv_study_config *c)
{
    memset(c, 0, sizeof *c);
    c->grid = "lr=0.01;wd=1e-4;opt=sgd;sched=cosine";
    c->epochs = 30;
    c->batch = 64;
    c->workers = 2;
    c->stale_s = 600;
}

static void logf_(const cv_study *s, const char *fmt, ...)
{
    if (s->progress < 0) return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%sstudy: ", s->log_prefix);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* ---- grid ---- */

/* The shortest decimal that reads back as v. */
static void fmt_num(char *buf, size_t n, double v)
{
    snprintf(buf, n, "%.15g", v);
    if (strtod(buf, NULL) != v) snprintf(buf, n, "%.17g", v);
}

typedef struct {
    char *vals[64];
    int n;
} axis;

/* Splits an axis' values on ','; for schedules only on a ',' that starts a new schedule name
 * (not a digit), so "cosine,multistep --milestones 15,20,25" is two schedules. */
static cv_status split_axis(cv_ctx *ctx, const char *key, char *v, int sched, axis *a)
{
    a->n = 0;
    char *start = v;
    for (char *p = v;; p++) {
        if (*p == ',' && sched && isdigit((unsigned char)p[1])) continue;
        if (*p != ',' && *p) continue;
        int end = !*p;
        *p = 0;
        while (isspace((unsigned char)*start)) start++;
        char *e = start + strlen(start);
        while (e > start && isspace((unsigned char)e[-1])) *--e = 0;
        if (!*start) return cv_fail(ctx, CV_ERR_INVALID, "--grid: empty value in '%s='", key);
        if (a->n == 64)
            return cv_fail(ctx, CV_ERR_INVALID, "--grid: more than 64 values of %s", key);
        a->vals[a->n++] = start;
        if (end) break;
        start = p + 1;
    }
    return CV_OK;
}

static cv_status parse_grid(cv_ctx *ctx, cv_study *s, const char *grid)
{
    if (strlen(grid) >= 4096) return cv_fail(ctx, CV_ERR_INVALID, "--grid: too long");
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", grid);
    char lr_d[] = "0.01", wd_d[] = "1e-4", opt_d[] = "sgd", sched_d[] = "cosine";
    axis ax[4] = {{{opt_d}, 1}, {{sched_d}, 1}, {{lr_d}, 1}, {{wd_d}, 1}}; /* canonical order */
    static const char *names[4] = {"opt", "sched", "lr", "wd"};
    int seen[4] = {0};
    char *save = NULL;
    for (char *part = strtok_r(buf, ";", &save); part; part = strtok_r(NULL, ";", &save)) {
        while (isspace((unsigned char)*part)) part++;
        if (!*part) continue;
        char *eq = strchr(part, '=');
        if (!eq) return cv_fail(ctx, CV_ERR_INVALID, "--grid: expected KEY=V1,V2 in '%s'", part);
        *eq = 0;
        char *k = part, *ke = eq;
        while (ke > k && isspace((unsigned char)ke[-1])) *--ke = 0;
        int i = 0;
        while (i < 4 && strcmp(k, names[i])) i++;
        if (i == 4)
            return cv_fail(ctx, CV_ERR_INVALID, "--grid: unknown key '%s' (lr, wd, opt, sched)", k);
        if (seen[i]++) return cv_fail(ctx, CV_ERR_INVALID, "--grid: '%s' given twice", k);
        cv_status st = split_axis(ctx, k, eq + 1, i == 1, &ax[i]);
        if (st) return st;
    }
    /* validate every value and build the canonical text */
    char canon[8192] = "";
    size_t used = 0;
    for (int i = 0; i < 4; i++) {
        used +=
            (size_t)snprintf(canon + used, sizeof canon - used, "%s%s=", i ? ";" : "", names[i]);
        for (int j = 0; j < ax[i].n && used < sizeof canon; j++) {
            const char *v = ax[i].vals[j];
            char num[64];
            if (i >= 2) {
                char *end;
                double x = strtod(v, &end);
                if (end == v || *end || !isfinite(x) || x < 0)
                    return cv_fail(ctx, CV_ERR_INVALID,
                                   "--grid: %s value '%s' is not a non-negative number", names[i],
                                   v);
                fmt_num(num, sizeof num, x);
                v = num;
            } else if (i == 0) {
                if (cv_optim_kind_parse(v) < 0 || strlen(v) >= sizeof s->points[0].opt)
                    return cv_fail(ctx, CV_ERR_INVALID,
                                   "--grid: unknown optimizer '%s' (sgd, sgd_nesterov, adam, "
                                   "adamw)",
                                   v);
            } else {
                cv_sched sc;
                cv_sched_default(&sc);
                sc.epochs = s->epochs;
                cv_status st = cv_sched_parse(ctx, v, &sc);
                if (st || strlen(v) >= sizeof s->points[0].sched) {
                    char msg[512];
                    snprintf(msg, sizeof msg, "%s", st ? cv_ctx_error(ctx) : "too long");
                    return cv_fail(ctx, CV_ERR_INVALID, "--grid: schedule '%s': %s", v, msg);
                }
            }
            used += (size_t)snprintf(canon + used, sizeof canon - used, "%s%s", j ? "," : "", v);
        }
        for (int j = 0; j < ax[i].n; j++)
            for (int k = 0; k < j; k++)
                if (i < 2 ? !strcmp(ax[i].vals[j], ax[i].vals[k])
                          : strtod(ax[i].vals[j], NULL) == strtod(ax[i].vals[k], NULL))
                    return cv_fail(ctx, CV_ERR_INVALID, "--grid: %s value '%s' given twice",
                                   names[i], ax[i].vals[j]);
    }
    if (used >= sizeof canon) return cv_fail(ctx, CV_ERR_INVALID, "--grid: too long");
    s->n_points = ax[0].n * ax[1].n * ax[2].n * ax[3].n;
    s->points = calloc((size_t)s->n_points, sizeof *s->points);
    s->grid_canon = strdup(canon);
    if (!s->points || !s->grid_canon) return cv_fail(ctx, CV_ERR_NOMEM, "out of memory");
    int p = 0;
    for (int a = 0; a < ax[0].n; a++)
        for (int b = 0; b < ax[1].n; b++)
            for (int c = 0; c < ax[2].n; c++)
                for (int d = 0; d < ax[3].n; d++, p++) {
                    snprintf(s->points[p].opt, sizeof s->points[p].opt, "%s", ax[0].vals[a]);
                    snprintf(s->points[p].sched, sizeof s->points[p].sched, "%s", ax[1].vals[b]);
                    s->points[p].lr = strtod(ax[2].vals[c], NULL);
                    s->points[p].wd = strtod(ax[3].vals[d], NULL);
                }
    return CV_OK;
}

/* ---- configuration ---- */

static int valid_name(const char *s)
{
    if (!*s) return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_' && *s != '.') return 0;
    return 1;
}

/* The options that decide what the runs compute, as stored in the database and compared. */
static cJSON *config_json(const cv_study *s)
{
    cJSON *o = cJSON_CreateObject(), *m = cJSON_AddArrayToObject(o, "models"),
          *w = cJSON_AddArrayToObject(o, "weights"), *d = cJSON_AddArrayToObject(o, "datasets");
    for (int i = 0; i < s->n_models; i++) {
        cJSON_AddItemToArray(m, cJSON_CreateString(s->models[i].arch));
        cJSON_AddItemToArray(w, cJSON_CreateString(s->models[i].weights));
    }
    for (int i = 0; i < s->n_datasets; i++) {
        const study_dataset *x = &s->datasets[i];
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "name", x->name);
        cJSON_AddStringToObject(e, "train", x->train);
        cJSON_AddItemToObject(e, "val", x->val ? cJSON_CreateString(x->val) : cJSON_CreateNull());
        cJSON_AddItemToObject(e, "test",
                              x->test ? cJSON_CreateString(x->test) : cJSON_CreateNull());
        cJSON_AddStringToObject(e, "metric", x->metric);
        cJSON_AddItemToObject(e, "train_transform",
                              x->train_tf ? cJSON_CreateString(x->train_tf) : cJSON_CreateNull());
        cJSON_AddItemToObject(e, "eval_transform",
                              x->eval_tf ? cJSON_CreateString(x->eval_tf) : cJSON_CreateNull());
        cJSON_AddItemToArray(d, e);
    }
    cJSON_AddStringToObject(o, "grid", s->grid_canon);
    cJSON_AddNumberToObject(o, "epochs", s->epochs);
    cJSON_AddNumberToObject(o, "batch", s->batch);
    cJSON_AddNumberToObject(o, "max_steps", s->max_steps);
    char seed[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)s->seed);
    cJSON_AddStringToObject(o, "seed", seed);
    return o;
}

static const char *option_of(const char *key)
{
    static const char *map[][2] = {{"models", "--models"},
                                   {"weights", "--weights"},
                                   {"datasets", "--data/--val/--test/--metric/--*-transform"},
                                   {"grid", "--grid"},
                                   {"epochs", "--epochs"},
                                   {"batch", "--batch"},
                                   {"max_steps", "--max-steps"},
                                   {"seed", "--seed"}};
    for (size_t i = 0; i < sizeof map / sizeof *map; i++)
        if (!strcmp(map[i][0], key)) return map[i][1];
    return key;
}

static cv_status compare_config(cv_ctx *ctx, const cv_study *s, const char *stored_text)
{
    cJSON *stored = cJSON_Parse(stored_text), *now = config_json(s);
    cv_status st = CV_OK;
    if (!stored) {
        st = cv_fail(ctx, CV_ERR_FORMAT, "%s: the stored study options are not JSON", s->db_path);
    } else {
        const cJSON *it;
        cJSON_ArrayForEach(it, now)
        {
            const cJSON *old = cJSON_GetObjectItem(stored, it->string);
            if (old && cJSON_Compare(old, it, 1)) continue;
            char *a = old ? cJSON_PrintUnformatted(old) : strdup("(none)"),
                 *b = cJSON_PrintUnformatted(it);
            st = cv_fail(ctx, CV_ERR_INVALID,
                         "%s: this study was made with other %s: %s there, %s now (use the same "
                         "options, or another --out)",
                         s->db_path, option_of(it->string), a ? a : "?", b ? b : "?");
            free(a);
            free(b);
            break;
        }
    }
    cJSON_Delete(stored);
    cJSON_Delete(now);
    return st;
}

/* "model=acc,..." overrides of the upstream accuracy. */
static cv_status parse_upstream(cv_ctx *ctx, cv_study *s, const char *text)
{
    if (!text || !*text) return CV_OK;
    char buf[4096];
    if (strlen(text) >= sizeof buf) return cv_fail(ctx, CV_ERR_INVALID, "--upstream: too long");
    snprintf(buf, sizeof buf, "%s", text);
    char *save = NULL;
    for (char *p = strtok_r(buf, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(p, '='), *end;
        if (!eq) return cv_fail(ctx, CV_ERR_INVALID, "--upstream: expected MODEL=ACC, got '%s'", p);
        *eq = 0;
        double v = strtod(eq + 1, &end);
        if (end == eq + 1 || *end || !isfinite(v) || v < 0 || v > 100)
            return cv_fail(ctx, CV_ERR_INVALID,
                           "--upstream: %s: expected an accuracy in percent (0..100), got '%s'", p,
                           eq + 1);
        int i = 0;
        while (i < s->n_models && strcmp(s->models[i].arch, p)) i++;
        if (i == s->n_models)
            return cv_fail(ctx, CV_ERR_INVALID, "--upstream: '%s' is not one of the study's models",
                           p);
        s->models[i].upstream = v;
    }
    return CV_OK;
}

static cv_status mkdir_one(cv_ctx *ctx, const char *path)
{
    if (mkdir(path, 0777) && errno != EEXIST)
        return cv_fail(ctx, CV_ERR_IO, "%s: cannot create the directory: %s", path,
                       strerror(errno));
    return CV_OK;
}

/* Task, class count, metric key and the shared split of dataset d. */
static cv_status prepare_dataset(cv_ctx *ctx, cv_study *s, study_dataset *d)
{
    cv_dataset *ds = NULL;
    cv_split *sp = NULL;
    cv_status st = cv_dataset_open(ctx, d->train, &ds);
    if (st) return st;
    d->num_classes = cv_dataset_num_classes(ds);
    if (!d->class_names && d->num_classes > 0) {
        d->class_names = calloc((size_t)d->num_classes, sizeof *d->class_names);
        for (int k = 0; d->class_names && k < d->num_classes; k++)
            if (!(d->class_names[k] = strdup(cv_dataset_class_name(ds, k)))) {
                st = cv_fail(ctx, CV_ERR_NOMEM, "out of memory");
                break;
            }
        if (!d->class_names) st = cv_fail(ctx, CV_ERR_NOMEM, "out of memory");
    }
    d->task = cv_dataset_is_multilabel(ds) ? CV_TASK_MULTILABEL
              : cv_dataset_is_ordinal(ds)  ? CV_TASK_ORDINAL
              : d->num_classes == 2        ? CV_TASK_BINARY
                                           : CV_TASK_MULTICLASS;
    if (!st && d->num_classes < 2)
        st = cv_fail(ctx, CV_ERR_INVALID, "%s: dataset %s has %d class(es); a study needs >= 2",
                     d->train, d->name, d->num_classes);
    if (!st && (st = study_metric_key(ctx, d->metric, d->task, d->num_classes, &d->key, &d->tuned)))
        st = cv_fail(ctx, st, "--metric %s=%s: %s", d->name, d->metric, cv_ctx_error(ctx));
    char path[4400], spec[9000];
    if (!st && !d->val) {
        /* One split file per dataset, shared by every run, so all models see the same split. */
        snprintf(path, sizeof path, "%s/splits", s->out_dir);
        st = mkdir_one(ctx, path);
        snprintf(path, sizeof path, "%s/splits/%s.json", s->out_dir, d->name);
        cv_split_params p = {.folds = 0, .val_fraction = 0.2, .seed = s->seed};
        if (!st) st = cv_split_load_or_make(ctx, ds, path, &p, &sp);
        for (int part = 0; !st && part < 2; part++) {
            snprintf(spec, sizeof spec, "%s@split=%s:%s:seed=%llu", d->train, path,
                     part ? "val" : "train", (unsigned long long)s->seed);
            char **dst = part ? &d->val_spec : &d->train_spec;
            free(*dst);
            if (!(*dst = strdup(spec))) st = cv_fail(ctx, CV_ERR_NOMEM, "out of memory");
        }
    } else if (!st) {
        free(d->train_spec), free(d->val_spec);
        d->train_spec = strdup(d->train);
        d->val_spec = strdup(d->val);
        if (!d->train_spec || !d->val_spec) st = cv_fail(ctx, CV_ERR_NOMEM, "out of memory");
    }
    cv_split_free(sp);
    cv_dataset_free(ds);
    return st;
}

/* Resolves a model's pretrained weights and writes the copy without the classifier head that
 * every run loads (the paper's recipe: always a new head, even when the class counts agree). */
static cv_status prepare_weights(cv_ctx *ctx, cv_study *s, study_model *m, int write)
{
    if (!strcmp(m->weights, "none")) return CV_OK;
    char src[4096], dst[4400];
    struct stat sb;
    const cv_weights_info *info = NULL;
    if (stat(m->weights, &sb) == 0) {
        snprintf(src, sizeof src, "%s", m->weights);
    } else {
        info = cv_catalog_find(m->arch, m->weights);
        if (!info && !write) return CV_OK; /* --report: only the upstream accuracy is wanted */
        if (!info)
            return cv_fail(ctx, CV_ERR_NOT_FOUND,
                           "--weights %s: no such file, and no catalog weights of that name for %s",
                           m->weights, m->arch);
        if (isnan(m->upstream)) m->upstream = info->acc1;
    }
    snprintf(dst, sizeof dst, "%s/weights/%s.safetensors", s->out_dir, m->arch);
    free(m->wpath);
    if (!(m->wpath = strdup(dst))) return cv_fail(ctx, CV_ERR_NOMEM, "out of memory");
    if (!write || stat(dst, &sb) == 0) return CV_OK;
    cv_status st;
    if (info && (st = cv_weights_fetch(ctx, info->url, info->file, src, sizeof src))) return st;
    snprintf(dst, sizeof dst, "%s/weights", s->out_dir);
    if ((st = mkdir_one(ctx, dst))) return st;
    cv_state *in = NULL, *out = cv_state_new();
    cv_model *model = NULL;
    if (!out) return cv_fail(ctx, CV_ERR_NOMEM, "out of memory");
    st = cv_weights_load(ctx, src, &in);
    if (!st) st = cv_model_create(ctx, m->arch, 2, &model);
    if (!st) st = cv_model_load_state(ctx, model, in, CV_LOAD_SKIP_HEAD);
    if (st) st = cv_fail(ctx, st, "--weights %s for %s: %s", src, m->arch, cv_ctx_error(ctx));
    while (!st && cv_state_count(in) > 0) {
        const char *name = cv_state_name(in, 0);
        int head = 0;
        for (int i = 0; i < cv_model_head_count(model); i++)
            head |= !strcmp(name, cv_model_head_name(model, i));
        char key[512];
        snprintf(key, sizeof key, "%s", name);
        cv_tensor *t = cv_state_take(in, key);
        if (head)
            cv_tensor_free(t);
        else
            st = cv_state_put(ctx, out, key, t);
    }
    if (!st) st = cv_safetensors_save(ctx, out, m->wpath);
    cv_model_free(model);
    cv_state_free(in);
    cv_state_free(out);
    return st;
}

static void study_free(cv_study *s)
{
    if (!s) return;
    for (int i = 0; s->models && i < s->n_models; i++) {
        free(s->models[i].arch), free(s->models[i].weights), free(s->models[i].wpath);
    }
    for (int i = 0; s->datasets && i < s->n_datasets; i++) {
        study_dataset *d = &s->datasets[i];
        free(d->name), free(d->train), free(d->val), free(d->test), free(d->metric);
        free(d->train_spec), free(d->val_spec), free(d->train_tf), free(d->eval_tf);
        for (int k = 0; d->class_names && k < d->num_classes; k++) free(d->class_names[k]);
        free(d->class_names);
    }
    free(s->models);
    free(s->datasets);
    free(s->points);
    free(s->grid_canon);
    free(s->rows);
    if (s->db) sqlite3_close(s->db);
    free(s->out_dir);
    free(s);
}

void cv_study_close(cv_study *s)
{
    study_free(s);
}

/* Copies and checks the configuration (no files touched). */
static cv_status study_new(cv_ctx *ctx, const cv_study_config *c, cv_study **out)
{
    *out = NULL;
    if (!c->out_dir || !*c->out_dir) return cv_fail(ctx, CV_ERR_INVALID, "--out DIR is required");
    if (c->n_models < 1) return cv_fail(ctx, CV_ERR_INVALID, "--models: no models given");
    if (c->n_datasets < 1) return cv_fail(ctx, CV_ERR_INVALID, "--data: no datasets given");
    if (c->epochs < 1 || c->batch < 2 || c->max_steps < 0)
        return cv_fail(ctx, CV_ERR_INVALID,
                       "--epochs must be >= 1, --batch >= 2 and --max-steps >= 0");
    if (strlen(c->out_dir) > 2048)
        return cv_fail(ctx, CV_ERR_INVALID, "--out: the directory name is too long");
    if (strpbrk(c->out_dir, ":@"))
        return cv_fail(ctx, CV_ERR_INVALID,
                       "--out %s: the directory name may not contain ':' or '@' (it goes into "
                       "dataset specs)",
                       c->out_dir);
    cv_study *s = calloc(1, sizeof *s);
    if (!s) return cv_fail(ctx, CV_ERR_NOMEM, "out of memory");
    s->n_models = c->n_models;
    s->n_datasets = c->n_datasets;
    s->models = calloc((size_t)c->n_models, sizeof *s->models);
    s->datasets = calloc((size_t)c->n_datasets, sizeof *s->datasets);
    s->out_dir = strdup(c->out_dir);
    s->epochs = c->epochs, s->batch = c->batch, s->max_steps = c->max_steps;
    s->threads = c->threads, s->workers = c->workers > 0 ? c->workers : 2;
    s->progress = c->progress, s->seed = c->seed;
    s->stale_s = c->stale_s > 0 ? c->stale_s : 600;
    snprintf(s->log_prefix, sizeof s->log_prefix, "%s", c->log_prefix ? c->log_prefix : "");
    cv_status st = s->models && s->datasets && s->out_dir
                       ? CV_OK
                       : cv_fail(ctx, CV_ERR_NOMEM, "out of memory");
    for (int i = 0; !st && i < c->n_models; i++) {
        const char *w = c->weights && c->weights[i] ? c->weights[i] : "none";
        study_model *m = &s->models[i];
        m->upstream = NAN;
        if (!(m->arch = strdup(c->models[i])) || !(m->weights = strdup(w))) {
            st = cv_fail(ctx, CV_ERR_NOMEM, "out of memory");
            break;
        }
        int known = 0;
        for (int a = 0; a < cv_arch_count(); a++) known |= !strcmp(cv_arch_name(a), m->arch);
        if (!known)
            st = cv_fail(ctx, CV_ERR_NOT_FOUND,
                         "--models: unknown architecture '%s' (see docs/models.md)", m->arch);
        for (int j = 0; !st && j < i; j++)
            if (!strcmp(s->models[j].arch, m->arch))
                st = cv_fail(ctx, CV_ERR_INVALID, "--models: '%s' given twice", m->arch);
    }
    for (int i = 0; !st && i < c->n_datasets; i++) {
        const cv_study_dataset *in = &c->datasets[i];
        study_dataset *d = &s->datasets[i];
        if (!in->name || !valid_name(in->name))
            st = cv_fail(ctx, CV_ERR_INVALID,
                         "--data: dataset name '%s' must be letters, digits, '-', '_' or '.'",
                         in->name ? in->name : "");
        else if (!in->train || !*in->train)
            st = cv_fail(ctx, CV_ERR_INVALID, "--data %s: no training spec", in->name);
        for (int j = 0; !st && j < i; j++)
            if (!strcmp(s->datasets[j].name, in->name))
                st = cv_fail(ctx, CV_ERR_INVALID, "--data: dataset '%s' given twice", in->name);
        if (st) break;
        d->name = strdup(in->name);
        d->train = strdup(in->train);
        d->val = dup_or_null(in->val);
        d->test = dup_or_null(in->test);
        d->metric = strdup(in->metric ? in->metric : "accuracy");
        d->train_tf = dup_or_null(in->train_transform);
        d->eval_tf = dup_or_null(in->eval_transform);
        if (!d->name || !d->train || !d->metric || (in->val && !d->val) || (in->test && !d->test) ||
            (in->train_transform && !d->train_tf) || (in->eval_transform && !d->eval_tf))
            st = cv_fail(ctx, CV_ERR_NOMEM, "out of memory");
    }
    if (!st) st = parse_grid(ctx, s, c->grid ? c->grid : "");
    if (st) {
        study_free(s);
        return st;
    }
    *out = s;
    return CV_OK;
}

/* Creates or checks the database, then prepares datasets and weights, all under the database's
 * write lock so that concurrent processes make each shared file once. */
static cv_status study_init(cv_ctx *ctx, cv_study *s, const char *upstream, int existing)
{
    cv_status st = mkdir_one(ctx, s->out_dir);
    if (!st) st = studydb_open(ctx, s);
    if (!st) st = studydb_exec(ctx, s, "BEGIN IMMEDIATE");
    if (st) return st;
    char *stored = NULL, *stored_up = NULL;
    cJSON *now = NULL;
    char *now_text = NULL;
    st = studydb_meta_get(ctx, s, "config", &stored);
    if (!st && stored) {
        st = compare_config(ctx, s, stored);
    } else if (!st && existing) {
        st = cv_fail(ctx, CV_ERR_NOT_FOUND, "%s: no study there", s->db_path);
    } else if (!st) {
        now = config_json(s);
        now_text = now ? cJSON_PrintUnformatted(now) : NULL;
        st = now_text ? studydb_meta_set(ctx, s, "config", now_text)
                      : cv_fail(ctx, CV_ERR_NOMEM, "out of memory");
        if (!st) st = studydb_insert_runs(ctx, s);
    }
    /* --upstream given now replaces the stored one; otherwise the stored one applies. */
    if (!st && upstream) st = studydb_meta_set(ctx, s, "upstream", upstream);
    if (!st && !upstream) st = studydb_meta_get(ctx, s, "upstream", &stored_up);
    if (!st) st = parse_upstream(ctx, s, upstream ? upstream : stored_up);
    for (int i = 0; !st && i < s->n_datasets; i++) st = prepare_dataset(ctx, s, &s->datasets[i]);
    for (int i = 0; !st && i < s->n_models; i++)
        st = prepare_weights(ctx, s, &s->models[i], !existing);
    if (st) {
        char msg[2048];
        snprintf(msg, sizeof msg, "%s", cv_ctx_error(ctx));
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        cv_fail(ctx, st, "%s", msg);
    } else {
        st = studydb_exec(ctx, s, "COMMIT");
    }
    free(stored);
    free(stored_up);
    free(now_text);
    cJSON_Delete(now);
    return st;
}

cv_status cv_study_open(cv_ctx *ctx, const cv_study_config *c, cv_study **out)
{
    cv_status st = study_new(ctx, c, out);
    if (!st) st = study_init(ctx, *out, c->upstream, 0);
    if (st) {
        study_free(*out);
        *out = NULL;
    }
    return st;
}

static const char *json_str(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItem(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

cv_status cv_study_open_existing(cv_ctx *ctx, const char *out_dir, cv_study **out)
{
    *out = NULL;
    char path[4200];
    snprintf(path, sizeof path, "%s/study.sqlite", out_dir);
    struct stat sb;
    if (stat(path, &sb)) return cv_fail(ctx, CV_ERR_NOT_FOUND, "%s: no study there", path);
    cv_study tmp = {0};
    tmp.out_dir = (char *)out_dir;
    cv_status st = studydb_open(ctx, &tmp);
    char *text = NULL;
    if (!st) st = studydb_meta_get(ctx, &tmp, "config", &text);
    if (!st && !text) st = cv_fail(ctx, CV_ERR_NOT_FOUND, "%s: no study there", path);
    sqlite3_close(tmp.db);
    if (st) return st;
    cJSON *o = cJSON_Parse(text);
    free(text);
    const cJSON *models = o ? cJSON_GetObjectItem(o, "models") : NULL,
                *weights = o ? cJSON_GetObjectItem(o, "weights") : NULL,
                *datasets = o ? cJSON_GetObjectItem(o, "datasets") : NULL;
    int nm = cJSON_GetArraySize(models), nd = cJSON_GetArraySize(datasets);
    const char **mv = calloc((size_t)nm + 1, sizeof *mv), **wv = calloc((size_t)nm + 1, sizeof *wv);
    cv_study_dataset *dv = calloc((size_t)nd + 1, sizeof *dv);
    if (!o || !cJSON_IsArray(models) || !cJSON_IsArray(datasets) ||
        cJSON_GetArraySize(weights) != nm || !json_str(o, "grid") || !json_str(o, "seed"))
        st = cv_fail(ctx, CV_ERR_FORMAT, "%s: the stored study options are damaged", path);
    else if (!mv || !wv || !dv)
        st = cv_fail(ctx, CV_ERR_NOMEM, "out of memory");
    for (int i = 0; !st && i < nm; i++) {
        const cJSON *a = cJSON_GetArrayItem(models, i), *b = cJSON_GetArrayItem(weights, i);
        mv[i] = cJSON_IsString(a) ? a->valuestring : "";
        wv[i] = cJSON_IsString(b) ? b->valuestring : "none";
    }
    for (int i = 0; !st && i < nd; i++) {
        const cJSON *e = cJSON_GetArrayItem(datasets, i);
        dv[i] = (cv_study_dataset){json_str(e, "name"),          json_str(e, "train"),
                                   json_str(e, "val"),           json_str(e, "test"),
                                   json_str(e, "metric"),        json_str(e, "train_transform"),
                                   json_str(e, "eval_transform")};
    }
    if (!st) {
        cv_study_config c;
        cv_study_config_default(&c);
        c.out_dir = out_dir;
        c.models = mv, c.weights = wv, c.n_models = nm;
        c.datasets = dv, c.n_datasets = nd;
        c.grid = json_str(o, "grid");
        c.epochs =
            cJSON_GetObjectItem(o, "epochs") ? cJSON_GetObjectItem(o, "epochs")->valueint : 0;
        c.batch = cJSON_GetObjectItem(o, "batch") ? cJSON_GetObjectItem(o, "batch")->valueint : 0;
        c.max_steps =
            cJSON_GetObjectItem(o, "max_steps") ? cJSON_GetObjectItem(o, "max_steps")->valueint : 0;
        c.seed = strtoull(json_str(o, "seed"), NULL, 10);
        c.progress = -1;
        st = study_new(ctx, &c, out);
        if (!st) st = study_init(ctx, *out, NULL, 1);
        if (st) {
            study_free(*out);
            *out = NULL;
        }
    }
    free(mv);
    free(wv);
    free(dv);
    cJSON_Delete(o);
    return st;
}

const char *cv_study_out_dir(const cv_study *s)
{
    return s->out_dir;
}
uint64_t cv_study_seed(const cv_study *s)
{
    return s->seed;
}

/* ---- running ---- */

/* Removes a run directory's checkpoints (last.*, best.*, with their .prev copies). */
static void remove_checkpoints(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return;
    char path[4400];
    for (struct dirent *e; (e = readdir(d));)
        if ((!strncmp(e->d_name, "last.", 5) || !strncmp(e->d_name, "best.", 5)) &&
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name) < (int)sizeof path)
            unlink(path);
    closedir(d);
}

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Trains and scores run `id` (claimed by this process). Failures of the run itself are recorded
 * in the database; only database errors are returned. */
static cv_status run_claimed(cv_ctx *ctx, cv_study *s, int64_t id, int resumed)
{
    int64_t k = id - 1;
    int P = s->n_points, M = s->n_models;
    if (k < 0 || k >= (int64_t)P * M * s->n_datasets)
        return cv_fail(ctx, CV_ERR_INVALID, "%s: no run %lld", s->db_path, (long long)id);
    const study_point *pt = &s->points[k % P];
    const study_model *m = &s->models[(k / P) % M];
    const study_dataset *d = &s->datasets[k / P / M];
    char dir[4400];
    snprintf(dir, sizeof dir, "%s/runs", s->out_dir);
    cv_status st = mkdir_one(ctx, dir);
    if (st) return st;
    snprintf(dir, sizeof dir, "%s/runs/%04lld-%s-%s", s->out_dir, (long long)id, d->name, m->arch);
    if (!resumed) remove_checkpoints(dir); /* a retried failure starts afresh */
    int total = P * M * s->n_datasets;
    logf_(s, "run %lld/%d%s: %s on %s (opt=%s sched=%s lr=%g wd=%g)", (long long)id, total,
          resumed ? " (resumed)" : "", m->arch, d->name, pt->opt, pt->sched, pt->lr, pt->wd);
    study_heartbeat *hb = NULL;
    if ((st = studydb_heartbeat_start(ctx, s, id, &hb))) return st;

    cv_train_config c;
    cv_train_config_default(&c);
    c.arch = m->arch;
    c.weights = m->wpath;
    c.data = d->train_spec;
    c.val = d->val_spec;
    c.out_dir = dir;
    c.epochs = s->epochs, c.batch = s->batch, c.workers = s->workers, c.threads = s->threads;
    c.optim = pt->opt, c.lr = pt->lr, c.weight_decay = pt->wd, c.sched = pt->sched;
    c.metric = d->key;
    c.train_transform = d->train_tf;
    c.eval_transform = d->eval_tf;
    c.seed = s->seed;
    c.resume = resumed;
    c.progress = s->progress;
    c.max_steps = s->max_steps;
    studydb_result r = {
        .status = "done", .best_epoch = -1, .val_score = NAN, .test_value = NAN, .eval_s = NAN};
    cv_train_result tr;
    double t0 = mono();
    cv_status rs = cv_train_run(ctx, &c, &tr);
    r.train_s = mono() - t0;
    char err[2048] = "";
    if (!rs && tr.best_epoch < 0)
        rs = cv_fail(ctx, CV_ERR_INVALID, "no epoch had a defined validation %s", d->key);
    if (!rs) {
        r.val_score = tr.best_metric;
        r.best_epoch = tr.best_epoch + 1;
        r.epochs_run = tr.epochs_run;
        t0 = mono();
        rs = study_evaluate(ctx, s, d, dir, d->test ? d->test : d->val_spec, &r.test_value,
                            &r.test_samples);
        r.eval_s = mono() - t0;
    }
    if (rs) {
        snprintf(err, sizeof err, "%s", cv_ctx_error(ctx));
        cv_ctx_clear_error(ctx);
        r.status = "failed";
        r.error = err;
    }
    studydb_heartbeat_stop(hb);
    st = studydb_finish(ctx, s, id, &r);
    if (rs)
        logf_(s, "run %lld failed: %s", (long long)id, err);
    else
        logf_(s, "run %lld done: val %s %.4f (epoch %d), test %s %.4f, %.1f s", (long long)id,
              d->key, r.val_score, r.best_epoch, d->metric, r.test_value, r.train_s + r.eval_s);
    return st;
}

cv_status cv_study_run_one(cv_ctx *ctx, cv_study *s, int64_t id)
{
    int64_t got, total = (int64_t)s->n_points * s->n_models * s->n_datasets;
    int resumed;
    if (id < 1 || id > total)
        return cv_fail(ctx, CV_ERR_INVALID, "--only %lld: the study has runs 1..%lld",
                       (long long)id, (long long)total);
    cv_status st = studydb_claim(ctx, s, id, &got, &resumed);
    if (st) return st;
    if (!got) {
        logf_(s, "run %lld is not pending (done, failed or running elsewhere)", (long long)id);
        return CV_OK;
    }
    return run_claimed(ctx, s, got, resumed);
}

cv_status cv_study_counts(cv_ctx *ctx, cv_study *s, int *pending, int *running, int *done,
                          int *failed)
{
    study_run *runs;
    size_t n;
    cv_status st = studydb_runs(ctx, s, &runs, &n);
    if (st) return st;
    *pending = *running = *done = *failed = 0;
    for (size_t i = 0; i < n; i++) {
        const char *x = runs[i].status;
        int *c = !strcmp(x, "pending")   ? pending
                 : !strcmp(x, "running") ? running
                 : !strcmp(x, "done")    ? done
                                         : failed;
        (*c)++;
    }
    free(runs);
    return CV_OK;
}

cv_status cv_study_work(cv_ctx *ctx, cv_study *s, int *ran)
{
    *ran = 0;
    int waiting = 0;
    for (;;) {
        int64_t id;
        int resumed;
        cv_status st = studydb_claim(ctx, s, 0, &id, &resumed);
        if (st) return st;
        if (id) {
            if ((st = run_claimed(ctx, s, id, resumed))) return st;
            (*ran)++;
            waiting = 0;
            continue;
        }
        int pending, running, done, failed;
        if ((st = cv_study_counts(ctx, s, &pending, &running, &done, &failed))) return st;
        if (!running && !pending) return CV_OK;
        if (!waiting++) logf_(s, "waiting for %d run(s) other processes hold", running);
        struct timespec ts = {1, 0};
        nanosleep(&ts, NULL);
    }
}

cv_status cv_study_retry_failed(cv_ctx *ctx, cv_study *s, int *n)
{
    cv_status st = studydb_exec(ctx, s, "UPDATE runs SET status='pending' WHERE status='failed'");
    *n = st ? 0 : sqlite3_changes(s->db);
    return st;
}

cv_status cv_study_pending(cv_ctx *ctx, cv_study *s, int64_t **ids, size_t *n)
{
    study_run *runs;
    size_t nr;
    *ids = NULL;
    *n = 0;
    cv_status st = studydb_runs(ctx, s, &runs, &nr);
    if (st) return st;
    *ids = malloc((nr ? nr : 1) * sizeof **ids);
    if (!*ids) st = cv_fail(ctx, CV_ERR_NOMEM, "out of memory");
    for (size_t i = 0; !st && i < nr; i++)
        if (strcmp(runs[i].status, "done")) (*ids)[(*n)++] = runs[i].id;
    free(runs);
    return st;
}
