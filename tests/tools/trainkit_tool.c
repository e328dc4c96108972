/* The C side of tests/parity/test_train_kit.py: runs a JSON job of loss, optimizer, schedule,
 * parameter-group and EMA cases on inputs the Python test wrote (.npy and .safetensors) and
 * writes the results beside them for comparison with PyTorch.
 *
 * usage: trainkit_tool JOB.json   (paths in the job are relative to the job's directory) */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cvision/cvision.h"

static char dir[4096];

static const char *path_of(const char *name, char *buf, size_t n)
{
    snprintf(buf, n, "%s/%s", dir, name);
    return buf;
}

static const char *str(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double num(const cJSON *o, const char *key, double def)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : def;
}

static cv_status load_npy(cv_ctx *ctx, const cJSON *o, const char *key, cv_tensor **t)
{
    char b[4200];
    *t = NULL;
    const char *f = str(o, key);
    return f ? cv_npy_load(ctx, path_of(f, b, sizeof b), t) : CV_OK;
}

static cv_status save_f64(cv_ctx *ctx, const char *name, const double *v, int64_t n)
{
    cv_tensor *t;
    char b[4200];
    cv_status s = cv_tensor_new(ctx, CV_F64, 1, &n, &t);
    if (s) return s;
    memcpy(t->data, v, t->nbytes);
    s = cv_npy_save(ctx, path_of(name, b, sizeof b), t);
    cv_tensor_free(t);
    return s;
}

static cv_status run_loss(cv_ctx *ctx, const cJSON *job, const char *op)
{
    cv_tensor *x = NULL, *y = NULL, *w = NULL, *pw = NULL, *g = NULL;
    cv_status s = load_npy(ctx, job, "logits", &x);
    if (!s) s = load_npy(ctx, job, "target", &y);
    if (!s) s = load_npy(ctx, job, "weight", &w);
    if (!s) s = load_npy(ctx, job, "pos_weight", &pw);
    if (!s) s = cv_tensor_new(ctx, CV_F32, x->ndim, x->shape, &g);
    double loss = NAN;
    cv_ce_opts o = {.label_smoothing = num(job, "smoothing", 0), .weight = w};
    if (cJSON_GetObjectItemCaseSensitive(job, "ignore_index")) {
        o.use_ignore_index = 1;
        o.ignore_index = (int64_t)num(job, "ignore_index", -100);
    }
    if (s) {
    } else if (!strcmp(op, "ce")) {
        s = cv_loss_cross_entropy(ctx, x, y, &o, &loss, g);
    } else if (!strcmp(op, "soft_ce")) {
        s = cv_loss_soft_cross_entropy(ctx, x, y, &o, &loss, g);
    } else if (!strcmp(op, "bce")) {
        s = cv_loss_bce_logits(ctx, x, y, w, pw, &loss, g);
    } else if (!strcmp(op, "l1")) {
        s = cv_loss_l1(ctx, x, y, &loss, g);
    } else {
        s = cv_loss_mse(ctx, x, y, &loss, g);
    }
    char b[4200];
    if (!s) s = save_f64(ctx, str(job, "out_loss"), &loss, 1);
    if (!s) s = cv_npy_save(ctx, path_of(str(job, "out_grad"), b, sizeof b), g);
    cv_tensor_free(x);
    cv_tensor_free(y);
    cv_tensor_free(w);
    cv_tensor_free(pw);
    cv_tensor_free(g);
    return s;
}

static void read_rules(const cJSON *job, cv_param_rules *r)
{
    cv_param_rules_default(r);
    const cJSON *rj = cJSON_GetObjectItemCaseSensitive(job, "rules");
    if (!rj) return;
    r->norm_weight_decay = num(rj, "norm_weight_decay", NAN);
    r->bias_weight_decay = num(rj, "bias_weight_decay", NAN);
    r->lr_mults = str(rj, "lr_mults");
    r->trainable = str(rj, "trainable");
    r->frozen = str(rj, "frozen");
}

static cv_status read_config(cv_ctx *ctx, const cJSON *job, cv_optim_config *c)
{
    const cJSON *cj = cJSON_GetObjectItemCaseSensitive(job, "config");
    const char *kind = str(cj, "kind");
    int k = kind ? cv_optim_kind_parse(kind) : -1;
    if (k < 0) return cv_fail(ctx, CV_ERR_INVALID, "job: bad optimizer kind");
    cv_optim_config_default((cv_optim_kind)k, c);
    c->lr = num(cj, "lr", c->lr);
    c->weight_decay = num(cj, "weight_decay", c->weight_decay);
    c->momentum = num(cj, "momentum", c->momentum);
    c->dampening = num(cj, "dampening", c->dampening);
    c->nesterov = (int)num(cj, "nesterov", 0);
    c->beta1 = num(cj, "beta1", c->beta1);
    c->beta2 = num(cj, "beta2", c->beta2);
    c->eps = num(cj, "eps", c->eps);
    c->amsgrad = (int)num(cj, "amsgrad", 0);
    return CV_OK;
}

/* An optimizer over `params`, with a fresh zero gradient per parameter in *grads. */
static cv_status build_optim(cv_ctx *ctx, const cJSON *job, cv_state *params, cv_state **grads,
                             cv_optim **o)
{
    cv_optim_config cfg;
    cv_param_rules rules;
    cv_status s = read_config(ctx, job, &cfg);
    if (s) return s;
    read_rules(job, &rules);
    *grads = cv_state_new();
    for (int i = 0; i < cv_state_count(params) && !s; i++) {
        cv_tensor *p = cv_state_tensor(params, i), *g;
        if (p->dtype != CV_F32) continue;
        s = cv_tensor_new(ctx, CV_F32, p->ndim, p->shape, &g);
        if (!s) s = cv_state_put(ctx, *grads, cv_state_name(params, i), g);
    }
    if (!s) s = cv_optim_new(ctx, &cfg, o);
    if (!s) s = cv_optim_add_state(ctx, *o, params, *grads, &rules);
    return s;
}

static cv_status write_groups(cv_ctx *ctx, const cv_optim *o, const char *name)
{
    char b[4200];
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; i < cv_optim_count(o); i++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "name", cv_optim_name(o, i));
        cJSON_AddNumberToObject(e, "lr_mult", cv_optim_lr_mult(o, i));
        cJSON_AddNumberToObject(e, "weight_decay", cv_optim_weight_decay(o, i));
        cJSON_AddItemToArray(arr, e);
    }
    char *text = cJSON_PrintUnformatted(arr);
    cv_status s = CV_OK;
    FILE *f = fopen(path_of(name, b, sizeof b), "w");
    if (f && text) fputs(text, f);
    if (!f || fclose(f)) s = cv_fail(ctx, CV_ERR_IO, "%s: cannot write", b);
    free(text);
    cJSON_Delete(arr);
    return s;
}

static cv_status run_optim(cv_ctx *ctx, const cJSON *job)
{
    char b[4200];
    cv_state *params = NULL, *all = NULL, *grads = NULL;
    cv_optim *o = NULL;
    cv_sched sched;
    int steps = (int)num(job, "steps", 1), spe = (int)num(job, "steps_per_epoch", 1);
    int resume_at = (int)num(job, "resume_at", -1);
    double clip = num(job, "clip", 0);
    const cJSON *lrs = cJSON_GetObjectItemCaseSensitive(job, "lrs");
    double *norms = calloc((size_t)steps + 1, sizeof *norms);
    cv_sched_default(&sched);
    cv_status s = cv_weights_load(ctx, path_of(str(job, "params"), b, sizeof b), &params);
    if (!s) s = cv_weights_load(ctx, path_of(str(job, "grads"), b, sizeof b), &all);
    if (!s && str(job, "sched")) s = cv_sched_parse(ctx, str(job, "sched"), &sched);
    if (!s && str(job, "sched")) s = cv_sched_validate(ctx, &sched);
    if (!s) s = build_optim(ctx, job, params, &grads, &o);
    for (int step = 0; step < steps && !s; step++) {
        for (int i = 0; i < cv_state_count(grads); i++) {
            cv_tensor *g = cv_state_tensor(grads, i);
            const cv_tensor *src = cv_state_get(all, cv_state_name(grads, i));
            if (src) memcpy(g->data, (const char *)src->data + (size_t)step * g->nbytes, g->nbytes);
        }
        if (clip > 0) s = cv_optim_clip_grad_norm(ctx, o, clip, &norms[step]);
        if (s) break;
        if (lrs)
            s = cv_optim_step(ctx, o, cJSON_GetArrayItem(lrs, step)->valuedouble);
        else
            s = cv_optim_step_sched(ctx, o, &sched, step / spe, step % spe, spe);
        if (!s && step + 1 == resume_at) {
            /* through a file and a fresh optimizer, as a resumed run does */
            cv_state *st = cv_state_new(), *back = NULL;
            s = cv_optim_state_save(ctx, o, st, "optim/");
            if (!s) s = cv_safetensors_save(ctx, st, path_of("state.safetensors", b, sizeof b));
            cv_state_free(st);
            cv_optim_free(o);
            cv_state_free(grads);
            o = NULL;
            grads = NULL;
            if (!s) s = build_optim(ctx, job, params, &grads, &o);
            if (!s) s = cv_weights_load(ctx, b, &back);
            if (!s) s = cv_optim_state_load(ctx, o, back, "optim/");
            cv_state_free(back);
        }
    }
    if (!s) s = cv_safetensors_save(ctx, params, path_of(str(job, "out"), b, sizeof b));
    if (!s && clip > 0) s = save_f64(ctx, str(job, "out_norms"), norms, steps);
    if (!s) s = write_groups(ctx, o, str(job, "out_groups"));
    free(norms);
    cv_optim_free(o);
    cv_state_free(params);
    cv_state_free(all);
    cv_state_free(grads);
    return s;
}

/* Parameter grouping only: tensors of the given shapes that nothing reads (SGD without momentum
 * keeps no state), so that large architectures cost nothing. */
static cv_status run_groups(cv_ctx *ctx, const cJSON *job)
{
    static float dummy[16];
    cv_state *params = cv_state_new(), *grads = cv_state_new();
    cv_optim *o = NULL;
    cv_status s = CV_OK;
    const cJSON *item;
    cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(job, "shapes"))
    {
        int64_t shape[CV_MAX_DIMS];
        const cJSON *dims = cJSON_GetArrayItem(item, 1);
        int nd = cJSON_GetArraySize(dims);
        for (int d = 0; d < nd && d < CV_MAX_DIMS; d++)
            shape[d] = (int64_t)cJSON_GetArrayItem(dims, d)->valuedouble;
        const char *name = cJSON_GetArrayItem(item, 0)->valuestring;
        cv_tensor *p, *g;
        s = cv_tensor_wrap(ctx, CV_F32, nd, shape, dummy, &p);
        if (!s) s = cv_state_put(ctx, params, name, p);
        if (!s) s = cv_tensor_wrap(ctx, CV_F32, nd, shape, dummy, &g);
        if (!s) s = cv_state_put(ctx, grads, name, g);
        if (s) break;
    }
    cv_optim_config cfg;
    cv_param_rules rules;
    if (!s) s = read_config(ctx, job, &cfg);
    read_rules(job, &rules);
    if (!s) s = cv_optim_new(ctx, &cfg, &o);
    if (!s) s = cv_optim_add_state(ctx, o, params, grads, &rules);
    if (!s) s = write_groups(ctx, o, str(job, "out_groups"));
    cv_optim_free(o);
    cv_state_free(params);
    cv_state_free(grads);
    return s;
}

static cv_status run_sched(cv_ctx *ctx, const cJSON *job)
{
    cv_sched sc;
    cv_sched_default(&sc);
    cv_status s = cv_sched_parse(ctx, str(job, "spec"), &sc);
    if (!s) s = cv_sched_validate(ctx, &sc);
    if (s) return s;
    int spe = (int)num(job, "steps_per_epoch", 1);
    int64_t n = (int64_t)sc.epochs * spe;
    double *lr = malloc((size_t)n * sizeof *lr), *mom = malloc((size_t)n * sizeof *mom);
    for (int64_t t = 0; t < n; t++) {
        lr[t] = cv_sched_lr(&sc, num(job, "lr", 0.1), t / spe, t % spe, spe);
        mom[t] = cv_sched_momentum(&sc, t / spe, t % spe, spe);
    }
    s = save_f64(ctx, str(job, "out_lr"), lr, n);
    if (!s) s = save_f64(ctx, str(job, "out_momentum"), mom, n);
    free(lr);
    free(mom);
    return s;
}

/* EMA over model states stored stacked [U, ...]: update u happens after iteration iters[u]. */
static cv_status run_ema(cv_ctx *ctx, const cJSON *job)
{
    char b[4200];
    cv_state *all = NULL, *model = cv_state_new();
    cv_ema *e = NULL;
    const cJSON *iters = cJSON_GetObjectItemCaseSensitive(job, "iters");
    const cJSON *warm = cJSON_GetObjectItemCaseSensitive(job, "warmup");
    cv_status s = cv_weights_load(ctx, path_of(str(job, "states"), b, sizeof b), &all);
    for (int i = 0; !s && i < cv_state_count(all); i++) {
        cv_tensor *src = cv_state_tensor(all, i), *t;
        s = cv_tensor_new(ctx, src->dtype, src->ndim - 1, src->shape + 1, &t);
        if (!s) s = cv_state_put(ctx, model, cv_state_name(all, i), t);
    }
    if (!s) s = cv_ema_new(ctx, model, num(job, "decay", 0.9), (int)num(job, "every", 1), &e);
    for (int u = 0; !s && u < cJSON_GetArraySize(iters); u++) {
        for (int i = 0; i < cv_state_count(model); i++) {
            cv_tensor *t = cv_state_tensor(model, i);
            memcpy(t->data, (const char *)cv_state_tensor(all, i)->data + (size_t)u * t->nbytes,
                   t->nbytes);
        }
        s = cv_ema_step(ctx, e, model, (int64_t)cJSON_GetArrayItem(iters, u)->valuedouble,
                        cJSON_IsTrue(cJSON_GetArrayItem(warm, u)));
    }
    if (!s) s = cv_safetensors_save(ctx, cv_ema_state(e), path_of(str(job, "out"), b, sizeof b));
    cv_ema_free(e);
    cv_state_free(all);
    cv_state_free(model);
    return s;
}

/* Saves a state_dict as checkpoint DIR/TAG with the job's "extra" JSON. */
static cv_status run_checkpoint(cv_ctx *ctx, const cJSON *job)
{
    char b[4200], d[4200];
    cv_state *st = NULL;
    cv_status s = cv_weights_load(ctx, path_of(str(job, "state"), b, sizeof b), &st);
    char *extra = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(job, "extra"));
    if (!s)
        s = cv_checkpoint_save(ctx, path_of(str(job, "dir"), d, sizeof d), str(job, "tag"), st,
                               NULL, NULL, extra);
    free(extra);
    cv_state_free(st);
    return s;
}

/* Records the runs the job describes through the library (for the `cvision runs` test). */
static cv_status run_runs(cv_ctx *ctx, const cJSON *job)
{
    char b[4200];
    cv_runs *r = NULL;
    cv_status s = cv_runs_open(ctx, path_of(str(job, "db"), b, sizeof b), &r);
    const cJSON *rj;
    cJSON_ArrayForEach(rj, cJSON_GetObjectItemCaseSensitive(job, "runs"))
    {
        if (s) break;
        char *args = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(rj, "args"));
        cv_run_info info = {.arch = str(rj, "arch"),
                            .data = str(rj, "data"),
                            .args_json = args,
                            .out_dir = str(rj, "out_dir"),
                            .metric = str(rj, "metric"),
                            .seed = (int64_t)num(rj, "seed", 0)};
        int64_t id = 0;
        s = cv_run_begin(ctx, r, &info, &id);
        free(args);
        const cJSON *ej;
        double best = -INFINITY;
        cJSON_ArrayForEach(ej, cJSON_GetObjectItemCaseSensitive(rj, "epochs"))
        {
            if (s) break;
            const cJSON *m = cJSON_GetObjectItemCaseSensitive(ej, "metrics");
            char *mt = m ? cJSON_PrintUnformatted(m) : NULL;
            double v = num(m, str(rj, "metric"), NAN);
            cv_run_epoch_info e = {.epoch = (int)num(ej, "epoch", 0),
                                   .train_loss = num(ej, "loss", NAN),
                                   .lr = num(ej, "lr", NAN),
                                   .seconds = num(ej, "seconds", NAN),
                                   .val_metrics_json = mt,
                                   .is_best = v > best,
                                   .metric_value = v};
            if (v > best) best = v;
            s = cv_run_epoch(ctx, r, id, &e);
            free(mt);
        }
        const cJSON *aj;
        cJSON_ArrayForEach(aj, cJSON_GetObjectItemCaseSensitive(rj, "artifacts"))
        {
            if (!s) s = cv_run_artifact(ctx, r, id, str(aj, "kind"), str(aj, "path"), NULL);
        }
        if (!s && str(rj, "status")) s = cv_run_end(ctx, r, id, str(rj, "status"));
    }
    cv_runs_close(r);
    return s;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: trainkit_tool JOB.json\n");
        return 2;
    }
    snprintf(dir, sizeof dir, "%s", argv[1]);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = 0;
    else
        strcpy(dir, ".");
    FILE *f = fopen(argv[1], "rb");
    if (!f) {
        perror(argv[1]);
        return 1;
    }
    static char text[1 << 20];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = 0;
    cJSON *jobs = cJSON_Parse(text);
    if (!cJSON_IsArray(jobs)) {
        fprintf(stderr, "%s: not a JSON array of jobs\n", argv[1]);
        return 1;
    }
    cv_ctx *ctx = cv_ctx_new();
    int failed = 0;
    const cJSON *job;
    cJSON_ArrayForEach(job, jobs)
    {
        const char *op = str(job, "op");
        cv_status s;
        if (!op) {
            s = cv_fail(ctx, CV_ERR_INVALID, "job without op");
        } else if (!strcmp(op, "optim")) {
            s = run_optim(ctx, job);
        } else if (!strcmp(op, "sched")) {
            s = run_sched(ctx, job);
        } else if (!strcmp(op, "groups")) {
            s = run_groups(ctx, job);
        } else if (!strcmp(op, "checkpoint")) {
            s = run_checkpoint(ctx, job);
        } else if (!strcmp(op, "runs")) {
            s = run_runs(ctx, job);
        } else if (!strcmp(op, "ema")) {
            s = run_ema(ctx, job);
        } else {
            s = run_loss(ctx, job, op);
        }
        if (s) {
            /* the test expects some jobs to fail: report and go on */
            const char *id = str(job, "id");
            fprintf(stderr, "job %s: %s\n", id ? id : "?", cv_ctx_error(ctx));
            char b[4200];
            snprintf(b, sizeof b, "%s/%s.error", dir, id ? id : "job");
            FILE *ef = fopen(b, "w");
            if (ef) {
                fputs(cv_ctx_error(ctx), ef);
                fclose(ef);
            }
            failed++;
        }
    }
    cJSON_Delete(jobs);
    cv_ctx_free(ctx);
    return failed ? 3 : 0;
}
