/* Training toolkit: checkpoint atomicity under a kill at every file-system step, bit-exact resume
 * of optimizer and EMA state, the runs database, and argument checking. The numerical parity with
 * PyTorch is tests/parity/test_train_kit.py. */
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test.h"
#include "train/checkpoint.h"

static cv_ctx *ctx;

/* A tiny "model": two parameters with gradients, a float buffer and num_batches_tracked. */
typedef struct {
    cv_state *params, *grads;
} net;

static cv_tensor *tensor(cv_dtype dt, int nd, int64_t a, int64_t b)
{
    int64_t shape[2] = {a, b};
    cv_tensor *t = NULL;
    CHECK_OK(ctx, cv_tensor_new(ctx, dt, nd, shape, &t));
    return t;
}

static void net_init(net *n, float base)
{
    n->params = cv_state_new();
    n->grads = cv_state_new();
    const char *names[] = {"conv.weight", "bn.weight", "bn.running_mean", "bn.num_batches_tracked"};
    for (int i = 0; i < 4; i++) {
        cv_tensor *t = i == 3 ? tensor(CV_I64, 0, 0, 0) : tensor(CV_F32, i ? 1 : 2, i ? 6 : 6, 5);
        if (i == 3)
            *(int64_t *)t->data = 7;
        else
            for (int64_t k = 0; k < cv_tensor_numel(t); k++)
                ((float *)t->data)[k] = base + 0.01f * (float)k * (float)(i + 1);
        CHECK_OK(ctx, cv_state_put(ctx, n->params, names[i], t));
        if (i < 2) {
            cv_tensor *g = tensor(CV_F32, t->ndim, t->shape[0], t->shape[1]);
            CHECK_OK(ctx, cv_state_put(ctx, n->grads, names[i], g));
        }
    }
}

static void net_free(net *n)
{
    cv_state_free(n->params);
    cv_state_free(n->grads);
}

/* Deterministic pseudo-gradients for step `step`. */
static void fill_grads(net *n, int step)
{
    for (int i = 0; i < cv_state_count(n->grads); i++) {
        cv_tensor *g = cv_state_tensor(n->grads, i);
        for (int64_t k = 0; k < cv_tensor_numel(g); k++)
            ((float *)g->data)[k] = (float)sin(0.7 * (double)(k + 1) * (step + 1) + i);
    }
}

static cv_optim *make_optim(net *n, cv_optim_kind kind)
{
    cv_optim_config cfg;
    cv_optim_config_default(kind, &cfg);
    cfg.momentum = 0.9;
    cfg.nesterov = kind == CV_OPTIM_SGD;
    cfg.amsgrad = kind == CV_OPTIM_ADAMW;
    cfg.weight_decay = 1e-2;
    cv_optim *o = NULL;
    CHECK_OK(ctx, cv_optim_new(ctx, &cfg, &o));
    cv_param_rules rules;
    cv_param_rules_default(&rules);
    rules.norm_weight_decay = 0;
    rules.lr_mults = "bn.=2";
    CHECK_OK(ctx, cv_optim_add_state(ctx, o, n->params, n->grads, &rules));
    return o;
}

static void train_steps(net *n, cv_optim *o, cv_ema *e, int from, int to)
{
    for (int s = from; s < to; s++) {
        fill_grads(n, s);
        CHECK_OK(ctx, cv_optim_clip_grad_norm(ctx, o, 2.0, NULL));
        CHECK_OK(ctx, cv_optim_step(ctx, o, 0.05));
        /* the buffers move too, as in training mode */
        float *rm = cv_state_get(n->params, "bn.running_mean")->data;
        rm[s % 6] += 0.5f;
        *(int64_t *)cv_state_get(n->params, "bn.num_batches_tracked")->data += 1;
        if (e) CHECK_OK(ctx, cv_ema_step(ctx, e, n->params, s, 0));
    }
}

static int states_equal(const cv_state *a, const cv_state *b)
{
    if (cv_state_count(a) != cv_state_count(b)) return 0;
    for (int i = 0; i < cv_state_count(a); i++) {
        const cv_tensor *x = cv_state_tensor(a, i), *y = cv_state_get(b, cv_state_name(a, i));
        if (!y || x->dtype != y->dtype || !cv_tensor_same_shape(x, y) ||
            memcmp(x->data, y->data, x->nbytes))
            return 0;
    }
    return 1;
}

static void test_resume_bit_exact(void)
{
    for (int kind = 0; kind < 3; kind++) {
        net a, b;
        net_init(&a, 0.5f);
        net_init(&b, 0.5f);
        cv_optim *oa = make_optim(&a, (cv_optim_kind)kind),
                 *ob = make_optim(&b, (cv_optim_kind)kind);
        cv_ema *ea = NULL, *eb = NULL;
        CHECK_OK(ctx, cv_ema_new(ctx, a.params, 0.9, 2, &ea));
        CHECK_OK(ctx, cv_ema_new(ctx, b.params, 0.9, 2, &eb));
        train_steps(&a, oa, ea, 0, 12);
        train_steps(&b, ob, eb, 0, 5);
        /* through a file, into fresh objects, as a resumed process */
        cv_state *st = cv_state_new(), *back = NULL;
        CHECK_OK(ctx, cv_optim_state_save(ctx, ob, st, "optim/"));
        CHECK_OK(ctx, cv_ema_state_save(ctx, eb, st, "ema/"));
        CHECK_OK(ctx, cv_safetensors_save(ctx, st, "train_kit_resume.safetensors"));
        cv_optim_free(ob);
        cv_ema_free(eb);
        ob = make_optim(&b, (cv_optim_kind)kind);
        CHECK_OK(ctx, cv_ema_new(ctx, b.params, 0.9, 2, &eb));
        CHECK_OK(ctx, cv_weights_load(ctx, "train_kit_resume.safetensors", &back));
        CHECK_OK(ctx, cv_optim_state_load(ctx, ob, back, "optim/"));
        CHECK_OK(ctx, cv_ema_state_load(ctx, eb, back, "ema/"));
        CHECK(cv_optim_steps(ob) == 5);
        train_steps(&b, ob, eb, 5, 12);
        CHECK(states_equal(a.params, b.params));
        CHECK(states_equal(cv_ema_state(ea), cv_ema_state(eb)));
        CHECK(cv_ema_count(ea) == cv_ema_count(eb) && cv_ema_count(ea) == 6);
        /* a state from another optimizer kind, or with a missing tensor, is refused */
        cv_optim *other = make_optim(&b, (cv_optim_kind)((kind + 1) % 3));
        CHECK(cv_optim_state_load(ctx, other, back, "optim/") == CV_ERR_FORMAT);
        cv_optim_free(other);
        if (kind != CV_OPTIM_SGD) {
            cv_tensor_free(cv_state_take(back, "optim/conv.weight.exp_avg"));
            CHECK(cv_optim_state_load(ctx, ob, back, "optim/") == CV_ERR_FORMAT);
            CHECK(strstr(cv_ctx_error(ctx), "conv.weight.exp_avg") != NULL);
        }
        cv_state_free(st);
        cv_state_free(back);
        cv_optim_free(oa);
        cv_optim_free(ob);
        cv_ema_free(ea);
        cv_ema_free(eb);
        net_free(&a);
        net_free(&b);
    }
    unlink("train_kit_resume.safetensors");
}

static void rm_dir(const char *dir)
{
    const char *tags[] = {"last", "last.prev"},
               *suf[] = {".safetensors", ".optim.safetensors", ".json"};
    char p[512];
    for (int t = 0; t < 2; t++)
        for (int s = 0; s < 3; s++)
            for (int n = 0; n < 2; n++) {
                snprintf(p, sizeof p, "%s/%s%s%s", dir, tags[t], suf[s], n ? ".new" : "");
                unlink(p);
            }
    rmdir(dir);
}

static int json_epoch(const char *json)
{
    const char *p = json ? strstr(json, "\"epoch\":") : NULL;
    return p ? atoi(p + 8) : -1;
}

/* Saves generations 1 and 2, then generation 3 killed before each of its file-system steps: the
 * loader must always return a complete generation (2 or 3), model and optimizer state agreeing. */
static void test_checkpoint_kill_anywhere(void)
{
    const char *dir = "train_kit_ckpt";
    net n;
    net_init(&n, 1.0f);
    cv_optim *o = make_optim(&n, CV_OPTIM_ADAMW);
    cv_ema *e = NULL;
    CHECK_OK(ctx, cv_ema_new(ctx, n.params, 0.5, 1, &e));
    cv_state *gen[4] = {0};
    int64_t gen_steps[4];
    char extra[64];
    /* the model states of generations 1..3 (gen 3 is what the killed save writes) */
    int total = -1;
    for (int stop = 0;; stop++) {
        rm_dir(dir);
        cv_optim_free(o);
        cv_ema_free(e);
        net_free(&n);
        net_init(&n, 1.0f);
        o = make_optim(&n, CV_OPTIM_ADAMW);
        CHECK_OK(ctx, cv_ema_new(ctx, n.params, 0.5, 1, &e));
        for (int g = 1; g <= 3; g++) {
            train_steps(&n, o, e, (g - 1) * 3, g * 3);
            if (stop == 0) {
                cv_state_free(gen[g]);
                gen[g] = cv_state_new();
                for (int i = 0; i < cv_state_count(n.params); i++) {
                    cv_tensor *t;
                    CHECK_OK(ctx, cv_tensor_clone(ctx, cv_state_tensor(n.params, i), &t));
                    CHECK_OK(ctx, cv_state_put(ctx, gen[g], cv_state_name(n.params, i), t));
                }
                gen_steps[g] = cv_optim_steps(o);
            }
            snprintf(extra, sizeof extra, "{\"epoch\": %d, \"seed\": 1}", g);
            int steps = 0;
            CHECK_OK(ctx, cv_checkpoint_save_until(ctx, dir, "last", n.params, o, e, extra,
                                                   g == 3 ? stop : -1, &steps));
            if (g == 3 && stop == 0) {
                /* how many steps does a complete save have? */
                rm_dir("train_kit_ckpt_count");
                CHECK_OK(ctx, cv_checkpoint_save_until(ctx, "train_kit_ckpt_count", "last",
                                                       n.params, o, e, extra, -1, &total));
                CHECK_OK(ctx, cv_checkpoint_save_until(ctx, "train_kit_ckpt_count", "last",
                                                       n.params, o, e, extra, -1, &total));
                rm_dir("train_kit_ckpt_count");
            }
        }
        /* load into fresh objects */
        net m;
        net_init(&m, 0.0f);
        cv_optim *lo = make_optim(&m, CV_OPTIM_ADAMW);
        cv_ema *le = NULL;
        CHECK_OK(ctx, cv_ema_new(ctx, m.params, 0.5, 1, &le));
        cv_state *st = NULL;
        char *json = NULL;
        CHECK_OK(ctx, cv_checkpoint_load(ctx, dir, "last", &st, lo, le, &json));
        int ep = json_epoch(json);
        CHECK(ep == 2 || ep == 3);
        if (ep == 2 || ep == 3) {
            CHECK(st && states_equal(st, gen[ep]));
            CHECK(cv_optim_steps(lo) == gen_steps[ep]);
        }
        if (stop == 0) CHECK(ep == 2); /* killed before anything happened */
        if (stop >= total) CHECK(ep == 3);
        cv_state_free(st);
        free(json);
        cv_optim_free(lo);
        cv_ema_free(le);
        net_free(&m);
        if (stop >= total) break;
    }
    CHECK(total >= 6);

    /* a torn tensor file (bytes changed after the JSON committed it) falls back to the previous */
    char path[256];
    snprintf(path, sizeof path, "%s/last.safetensors", dir);
    FILE *f = fopen(path, "r+b");
    CHECK(f != NULL);
    if (f) {
        fseek(f, -1, SEEK_END);
        int c = fgetc(f);
        fseek(f, -1, SEEK_END);
        fputc(c ^ 0x55, f);
        fclose(f);
    }
    cv_state *st = NULL;
    char *json = NULL;
    CHECK_OK(ctx, cv_checkpoint_load(ctx, dir, "last", &st, NULL, NULL, &json));
    CHECK(json_epoch(json) == 2 && st && states_equal(st, gen[2]));
    CHECK(json && strstr(json, "\"loaded_from\":\t\"last.prev.json\"") != NULL);
    cv_state_free(st);
    free(json);
    /* both broken: an error naming the files */
    snprintf(path, sizeof path, "%s/last.prev.safetensors", dir);
    CHECK(truncate(path, 10) == 0);
    CHECK(cv_checkpoint_load(ctx, dir, "last", &st, NULL, NULL, NULL) == CV_ERR_FORMAT);
    CHECK(strstr(cv_ctx_error(ctx), "last.safetensors") != NULL);
    CHECK(strstr(cv_ctx_error(ctx), "last.prev.safetensors") != NULL);
    rm_dir(dir);
    CHECK(cv_checkpoint_load(ctx, dir, "last", &st, NULL, NULL, NULL) == CV_ERR_NOT_FOUND);
    /* bad extra JSON and tags are refused */
    CHECK(cv_checkpoint_save(ctx, dir, "last", n.params, NULL, NULL, "[1]") == CV_ERR_INVALID);
    CHECK(cv_checkpoint_save(ctx, dir, "../x", n.params, NULL, NULL, NULL) == CV_ERR_INVALID);
    /* model only, then loading with an optimizer asks for state that is not there */
    CHECK_OK(ctx, cv_checkpoint_save(ctx, dir, "last", n.params, NULL, NULL, "{\"epoch\": 9}"));
    CHECK(cv_checkpoint_load(ctx, dir, "last", &st, o, NULL, NULL) != CV_OK);
    CHECK_OK(ctx, cv_checkpoint_load(ctx, dir, "last", &st, NULL, NULL, NULL));
    CHECK(st && states_equal(st, n.params));
    cv_state_free(st);
    rm_dir(dir);
    for (int g = 0; g < 4; g++) cv_state_free(gen[g]);
    cv_optim_free(o);
    cv_ema_free(e);
    net_free(&n);
}

static void test_runs_db(void)
{
    const char *db = "train_kit_runs.sqlite";
    unlink(db);
    cv_runs *r = NULL, *r2 = NULL;
    CHECK_OK(ctx, cv_runs_open(ctx, db, &r));
    CHECK_OK(ctx, cv_runs_open(ctx, db, &r2)); /* a second process's connection */
    cv_run_info info = {.arch = "resnet18",
                        .data = "npy:X.npy,Y.npy",
                        .args_json = "{\"lr\": 0.1}",
                        .out_dir = "out",
                        .metric = "acc1",
                        .seed = 42};
    int64_t id1 = 0, id2 = 0;
    CHECK_OK(ctx, cv_run_begin(ctx, r, &info, &id1));
    info.args_json = "{\"lr\": 0.01}";
    CHECK_OK(ctx, cv_run_begin(ctx, r2, &info, &id2));
    CHECK(id1 > 0 && id2 == id1 + 1);
    for (int ep = 0; ep < 3; ep++) {
        cv_run_epoch_info e = {.epoch = ep,
                               .train_loss = 1.0 / (ep + 1),
                               .lr = 0.1,
                               .seconds = 2.5,
                               .val_metrics_json = "{\"acc1\": 0.5}",
                               .is_best = ep != 1,
                               .metric_value = 0.5 + ep};
        CHECK_OK(ctx, cv_run_epoch(ctx, ep % 2 ? r2 : r, id1, &e));
    }
    /* a resumed run replaces its epoch rows */
    cv_run_epoch_info again = {.epoch = 2,
                               .train_loss = 0.25,
                               .lr = 0.05,
                               .seconds = 1,
                               .val_metrics_json = NULL,
                               .is_best = 0};
    CHECK_OK(ctx, cv_run_resume(ctx, r, id1));
    CHECK_OK(ctx, cv_run_epoch(ctx, r, id1, &again));
    CHECK_OK(ctx, cv_run_artifact(ctx, r, id1, "checkpoint", "last.safetensors", "ab12"));
    CHECK_OK(ctx, cv_run_end(ctx, r, id1, "finished"));
    CHECK(cv_run_end(ctx, r, 999, "finished") == CV_ERR_NOT_FOUND);
    cv_run_epoch_info bad = {.epoch = 0, .val_metrics_json = "{oops"};
    CHECK(cv_run_epoch(ctx, r, id1, &bad) == CV_ERR_INVALID);
    cv_run_epoch_info orphan = {.epoch = 0};
    CHECK(cv_run_epoch(ctx, r, 999, &orphan) != CV_OK); /* no such run (foreign key) */
    cv_runs_close(r2);
    cv_runs_close(r);

    CHECK_OK(ctx, cv_runs_open(ctx, db, &r));
    char *json = NULL;
    CHECK_OK(ctx, cv_runs_list_json(ctx, r, &json));
    CHECK(json && strstr(json, "\"epochs\":\t3") && strstr(json, "\"status\":\t\"finished\"") &&
          strstr(json, "\"status\":\t\"running\""));
    free(json);
    CHECK_OK(ctx, cv_run_show_json(ctx, r, id1, &json));
    CHECK(json && strstr(json, "\"best_metric\":\t2.5") && strstr(json, "\"best_epoch\":\t2") &&
          strstr(json, "\"train_loss\":\t0.25") && strstr(json, "\"sha256\":\t\"ab12\"") &&
          strstr(json, "\"lr\":\t0.1"));
    free(json);
    CHECK(cv_run_show_json(ctx, r, 12345, &json) == CV_ERR_NOT_FOUND);
    cv_runs_close(r);
    unlink(db);
    unlink("train_kit_runs.sqlite-wal");
    unlink("train_kit_runs.sqlite-shm");
}

static void test_argument_checks(void)
{
    cv_tensor *x = tensor(CV_F32, 2, 4, 3), *y = tensor(CV_I64, 1, 4, 0),
              *g = tensor(CV_F32, 2, 4, 3);
    double loss;
    ((int64_t *)y->data)[2] = 3; /* out of range */
    CHECK(cv_loss_cross_entropy(ctx, x, y, NULL, &loss, g) == CV_ERR_INVALID);
    CHECK(strstr(cv_ctx_error(ctx), "target[2] = 3") != NULL);
    ((int64_t *)y->data)[2] = -100;
    cv_ce_opts o = {.use_ignore_index = 1, .ignore_index = -100, .label_smoothing = 1.5};
    CHECK(cv_loss_cross_entropy(ctx, x, y, &o, &loss, g) == CV_ERR_INVALID);
    o.label_smoothing = 0;
    CHECK_OK(ctx, cv_loss_cross_entropy(ctx, x, y, &o, &loss, g));
    CHECK_NEAR(loss, log(3.0), 1e-12);
    CHECK(((float *)g->data)[2 * 3] == 0.0f);
    CHECK(cv_loss_mse(ctx, x, x, &loss, NULL) == CV_ERR_SHAPE); /* [4,3] is not a regression head */
    cv_tensor *bad_grad = tensor(CV_F32, 2, 3, 4);
    CHECK(cv_loss_bce_logits(ctx, x, g, NULL, NULL, &loss, bad_grad) == CV_ERR_SHAPE);

    /* parameter rules */
    net n;
    net_init(&n, 0.0f);
    cv_optim_config cfg;
    cv_optim_config_default(CV_OPTIM_SGD, &cfg);
    cv_optim *opt = NULL;
    CHECK_OK(ctx, cv_optim_new(ctx, &cfg, &opt));
    cv_param_rules rules;
    cv_param_rules_default(&rules);
    rules.lr_mults = "conv.=x";
    CHECK(cv_optim_add_state(ctx, opt, n.params, n.grads, &rules) == CV_ERR_INVALID);
    rules.lr_mults = "conv.=0";
    rules.frozen = "bn.";
    CHECK(cv_optim_add_state(ctx, opt, n.params, n.grads, &rules) == CV_ERR_INVALID);
    rules.lr_mults = "=0.5,conv.=3";
    rules.frozen = NULL;
    rules.trainable = "conv.,fc.";
    CHECK_OK(ctx, cv_optim_add_state(ctx, opt, n.params, n.grads, &rules));
    CHECK(cv_optim_count(opt) == 1 && !strcmp(cv_optim_name(opt, 0), "conv.weight") &&
          cv_optim_lr_mult(opt, 0) == 3);
    CHECK(cv_optim_add_state(ctx, opt, n.params, n.grads, &rules) == CV_ERR_INVALID); /* twice */
    cv_optim_free(opt);
    cfg.nesterov = 1; /* without momentum */
    CHECK(cv_optim_new(ctx, &cfg, &opt) == CV_ERR_INVALID);

    /* EMA: the reference's adjusted decay, and shape checks */
    CHECK_NEAR(cv_ema_adjusted_decay(0.99998, 8, 128, 32, 600),
               1 - (1 - 0.99998) * 8 * 128 * 32 / 600.0, 1e-15);
    CHECK(cv_ema_adjusted_decay(0.9, 8, 128, 32, 10) == 0.0);
    cv_ema *e = NULL;
    CHECK_OK(ctx, cv_ema_new(ctx, n.params, 0.9, 1, &e));
    CHECK(cv_ema_update(ctx, e, n.grads) == CV_ERR_SHAPE);
    cv_ema_free(e);
    CHECK(cv_ema_new(ctx, n.params, 1.5, 1, &e) == CV_ERR_INVALID);

    /* schedules: the parser and the spec errors */
    cv_sched s;
    cv_sched_default(&s);
    CHECK_OK(ctx,
             cv_sched_parse(ctx, "--sched multistep --epochs=9 --milestones 3,6 --gamma 0.5", &s));
    CHECK(s.kind == CV_SCHED_MULTISTEP && s.epochs == 9 && s.n_milestones == 2 && s.gamma == 0.5);
    CHECK_OK(ctx, cv_sched_validate(ctx, &s));
    CHECK_NEAR(cv_sched_lr(&s, 1.0, 6, 0, 10), 0.25, 1e-15);
    CHECK(cv_sched_set(ctx, &s, "nope", "1") == CV_ERR_NOT_FOUND);
    CHECK_OK(ctx, cv_sched_parse(ctx, "onecycle --three-phase --epochs 2", &s));
    CHECK(s.three_phase == 1);
    net_free(&n);
    cv_tensor_free(x);
    cv_tensor_free(y);
    cv_tensor_free(g);
    cv_tensor_free(bad_grad);
}

int main(void)
{
    ctx = cv_ctx_new();
    cv_ctx_set_threads(ctx, 2);
    RUN(test_resume_bit_exact);
    RUN(test_checkpoint_kill_anywhere);
    RUN(test_runs_db);
    RUN(test_argument_checks);
    cv_ctx_free(ctx);
    TEST_EXIT();
}
