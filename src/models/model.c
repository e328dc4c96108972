/* cv_model: an architecture's graph, its parameters, and a cached plan for the last input size. */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "cvision/model.h"
#include "models/models.h"

struct cv_model {
    const cv_arch *arch;
    const void *cfg; /* the configuration built: arch->cfg, or arch->cfg_for's for a checkpoint */
    _Alignas(max_align_t) unsigned char cfg_own[CV_CFG_MAX], cfg_tmp[CV_CFG_MAX];
    int num_classes;
    cv_graph *g;
    cv_state *params;
    const cv_backend_ops *backend;
    int training;
    unsigned char *trainable; /* per parameter index */
    cv_state *grads;          /* created on first use: one tensor per trainable parameter */
    cv_tensor **grad_of;      /* per parameter index: its gradient tensor or NULL */
    uint64_t seed, step;
    void (*grad_hook)(void *user, const cv_tensor *grad);
    void *grad_hook_user;
    int (*bn_sum)(void *user, double *buf, int n); /* synchronised batch norm */
    void *bn_sum_user;
    int ran_train; /* a training forward ran since the last backward */
    int bf16;      /* mixed precision in training plans */
    cv_exec *exec; /* planned for exec_shape with the parameters as they were then */
    cv_shape4 *shapes;
    int64_t exec_n, exec_h, exec_w;
    cv_profile *prof; /* cv_model_profile */
};

static cv_status ensure_grads(cv_ctx *ctx, cv_model *m);

/* Builds m->arch with configuration `cfg` into m, replacing its graph, parameters and training
 * tables (the old ones are kept on failure). */
static cv_status build_model(cv_ctx *ctx, cv_model *m, const void *cfg)
{
    const char *arch = m->arch->name;
    cv_builder b = {.ctx = ctx};
    int np = 0;
    unsigned char *trainable = NULL;
    cv_tensor **grad_of = NULL;
    if (!(b.g = calloc(1, sizeof *b.g)) || !(b.params = cv_state_new())) goto nomem;
    int y = m->arch->build(&b, cfg, m->num_classes);
    if (y < 0 || b.err) {
        graph_free(b.g);
        cv_state_free(b.params);
        return b.err ? b.err : cv_fail(ctx, CV_ERR_INTERNAL, "%s: builder failed", arch);
    }
    b.g->output = y;
    np = cv_state_count(b.params);
    if (!(trainable = malloc((size_t)np + 1)) ||
        !(grad_of = calloc((size_t)np + 1, sizeof *grad_of)))
        goto nomem;
    for (int i = 0; i < np; i++)
        trainable[i] = cv_state_tensor(b.params, i)->dtype == CV_F32 &&
                       !graph_is_buffer(cv_state_name(b.params, i));
    cv_model_params_changed(m);
    graph_free(m->g);
    cv_state_free(m->params);
    cv_state_free(m->grads);
    free(m->trainable);
    free(m->grad_of);
    m->g = b.g, m->params = b.params, m->cfg = cfg;
    m->trainable = trainable, m->grad_of = grad_of, m->grads = NULL;
    m->exec_n = 0;
    return CV_OK;
nomem:
    graph_free(b.g);
    cv_state_free(b.params);
    free(trainable);
    return cv_fail(ctx, CV_ERR_NOMEM, "%s: out of memory", arch);
}

cv_status cv_model_create(cv_ctx *ctx, const char *arch, int num_classes, cv_model **out)
{
    *out = NULL;
    const cv_arch *a = arch_find(arch);
    if (!a)
        return cv_fail(ctx, CV_ERR_NOT_FOUND, "unknown architecture '%s' (see 'cvision models')",
                       arch);
    if (num_classes < 1)
        return cv_fail(ctx, CV_ERR_INVALID, "%s: num_classes must be positive, got %d", arch,
                       num_classes);
    cv_model *m = calloc(1, sizeof *m);
    if (!m) return cv_fail(ctx, CV_ERR_NOMEM, "%s: out of memory", arch);
    m->arch = a;
    m->num_classes = num_classes;
    m->backend = &cv_backend_dnnl;
    cv_status s = build_model(ctx, m, a->cfg);
    if (s) {
        free(m);
        return s;
    }
    *out = m;
    return CV_OK;
}

void cv_model_params_changed(cv_model *m)
{
    if (m->exec) m->backend->free(m->exec);
    m->exec = NULL;
}

void cv_model_free(cv_model *m)
{
    if (!m) return;
    cv_model_params_changed(m);
    free(m->prof);
    free(m->shapes);
    free(m->trainable);
    free(m->grad_of);
    cv_state_free(m->grads);
    graph_free(m->g);
    cv_state_free(m->params);
    free(m);
}

const char *cv_model_arch(const cv_model *m)
{
    return m->arch->name;
}

int cv_model_num_classes(const cv_model *m)
{
    return m->num_classes;
}

cv_state *cv_model_params(cv_model *m)
{
    return m->params;
}

int cv_model_head_count(const cv_model *m)
{
    int n = 0;
    while (n < 4 && m->arch->head[n]) n++;
    return n;
}

const char *cv_model_head_name(const cv_model *m, int i)
{
    return i >= 0 && i < cv_model_head_count(m) ? m->arch->head[i] : NULL;
}

int64_t cv_model_state_classes(const cv_model *m, const cv_state *st)
{
    const char *head = cv_model_head_name(m, 0);
    char buf[640];
    for (int i = 0; head && i < cv_state_count(st); i++) {
        const char *name = cv_state_name(st, i);
        const cv_tensor *t = cv_state_tensor(st, i);
        if (strcmp(name, head) &&
            !(m->arch->rename && m->arch->rename(name, buf, sizeof buf) && !strcmp(buf, head)))
            continue;
        return t->ndim >= 1 ? t->shape[0] : 0;
    }
    return 0;
}

static int is_head(const cv_model *m, const char *name)
{
    for (int i = 0; i < cv_model_head_count(m); i++)
        if (!strcmp(m->arch->head[i], name)) return 1;
    return 0;
}

static int ignored(const cv_model *m, const char *name)
{
    for (int i = 0; i < 3 && m->arch->ignore[i]; i++)
        if (!strncmp(name, m->arch->ignore[i], strlen(m->arch->ignore[i]))) return 1;
    return 0;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

/* Converts one value of any float/int dtype to double. */
double tensor_value(const cv_tensor *t, int64_t i)
{
    const void *p = t->data;
    switch (t->dtype) {
    case CV_F32:
        return ((const float *)p)[i];
    case CV_F64:
        return ((const double *)p)[i];
    case CV_F16: {
        uint16_t h = ((const uint16_t *)p)[i];
        int e = (h >> 10) & 31, f = h & 1023;
        double v = e == 0    ? ldexp(f, -24)
                   : e == 31 ? (f ? NAN : INFINITY)
                             : ldexp(f + 1024, e - 25);
        return h & 0x8000 ? -v : v;
    }
    case CV_BF16: {
        uint32_t u = (uint32_t)((const uint16_t *)p)[i] << 16;
        float f;
        memcpy(&f, &u, 4);
        return f;
    }
    case CV_I64:
        return (double)((const int64_t *)p)[i];
    case CV_I32:
        return ((const int32_t *)p)[i];
    case CV_I16:
        return ((const int16_t *)p)[i];
    case CV_I8:
        return ((const int8_t *)p)[i];
    case CV_U8:
    case CV_BOOL:
        return ((const uint8_t *)p)[i];
    default:
        return 0;
    }
}

static cv_status copy_into(cv_ctx *ctx, cv_tensor *dst, const cv_tensor *src, const char *name)
{
    int64_t n = cv_tensor_numel(dst);
    if (src->dtype == dst->dtype) {
        memcpy(dst->data, src->data, dst->nbytes);
    } else if (dst->dtype == CV_F32) {
        for (int64_t i = 0; i < n; i++) ((float *)dst->data)[i] = (float)tensor_value(src, i);
    } else if (dst->dtype == CV_I64 && src->dtype != CV_F32 && src->dtype != CV_F64) {
        for (int64_t i = 0; i < n; i++) ((int64_t *)dst->data)[i] = (int64_t)tensor_value(src, i);
    } else {
        return cv_fail(ctx, CV_ERR_FORMAT, "%s: cannot load %s into %s", name,
                       cv_dtype_name(src->dtype), cv_dtype_name(dst->dtype));
    }
    return CV_OK;
}

/* Appends `name` to a comma-separated list, keeping the message short. */
static void list_add(char *buf, size_t size, int *count, const char *name)
{
    if (++*count > 8) return;
    size_t len = strlen(buf);
    snprintf(buf + len, size - len, "%s%s", len ? ", " : "", name);
}

static cv_status load_state(cv_ctx *ctx, cv_model *m, const cv_state *st, int flags);

/* The checkpoint as this builder names it: old key spellings rewritten by the architecture's
 * hook, into a state of views (no copies). NULL (and CV_OK) when nothing needs renaming and the
 * architecture has no adapt hook. */
static cv_status renamed_view(cv_ctx *ctx, const cv_model *m, const cv_state *st, cv_state **out)
{
    char buf[640];
    int any = m->arch->adapt != NULL;
    *out = NULL;
    for (int i = 0; m->arch->rename && !any && i < cv_state_count(st); i++)
        any = m->arch->rename(cv_state_name(st, i), buf, sizeof buf);
    if (!any) return CV_OK;
    cv_state *v = cv_state_new();
    if (!v) return cv_fail(ctx, CV_ERR_NOMEM, "out of memory");
    cv_status s = CV_OK;
    for (int i = 0; !s && i < cv_state_count(st); i++) {
        const char *name = cv_state_name(st, i);
        const cv_tensor *t = cv_state_tensor(st, i);
        cv_tensor *view;
        if (!m->arch->rename || !m->arch->rename(name, buf, sizeof buf))
            snprintf(buf, sizeof buf, "%s", name);
        if (cv_state_get(v, buf)) {
            s = cv_fail(ctx, CV_ERR_FORMAT, "key %s appears twice (once as %s)", buf, name);
            break;
        }
        s = cv_tensor_wrap(ctx, t->dtype, t->ndim, t->shape, t->data, &view);
        if (!s) s = cv_state_put(ctx, v, buf, view);
    }
    for (int i = 0; !s && i < cv_state_meta_count(st); i++)
        s = cv_state_set_meta(ctx, v, cv_state_meta_key(st, i),
                              cv_state_get_meta(st, cv_state_meta_key(st, i)));
    if (s) {
        cv_state_free(v);
        return s;
    }
    *out = v;
    return CV_OK;
}

cv_status cv_model_load_state(cv_ctx *ctx, cv_model *m, const cv_state *st, int flags)
{
    cv_status s;
    const void *cfg = m->cfg;
    int rebuild = 0;
    if (m->arch->cfg_for) {
        cfg = m->arch->cfg_for(m->arch->cfg, st, m->cfg_tmp);
        if (cfg == m->cfg_tmp) { /* a configuration made for this checkpoint */
            if (m->cfg == m->cfg_own && !memcmp(m->cfg_own, m->cfg_tmp, CV_CFG_MAX))
                cfg = m->cfg;
            else
                cfg = memcpy(m->cfg_own, m->cfg_tmp, CV_CFG_MAX), rebuild = 1;
        }
    }
    if ((rebuild || cfg != m->cfg) && (s = build_model(ctx, m, cfg))) return s;
    cv_state *view;
    if ((s = renamed_view(ctx, m, st, &view))) return s;
    if (view && m->arch->adapt && (s = m->arch->adapt(ctx, m->cfg, view))) {
        cv_state_free(view);
        return s;
    }
    s = load_state(ctx, m, view ? view : st, flags);
    cv_state_free(view);
    return s;
}

static cv_status load_state(cv_ctx *ctx, cv_model *m, const cv_state *st, int flags)
{
    char missing[512] = "", unexpected[512] = "", mismatch[512] = "";
    int nmissing = 0, nunexpected = 0, nmismatch = 0;
    int skip_head = flags & CV_LOAD_SKIP_HEAD, nonstrict = flags & CV_LOAD_NONSTRICT;
    for (int i = 0; i < cv_state_count(m->params); i++) {
        const char *name = cv_state_name(m->params, i);
        const cv_tensor *src = cv_state_get(st, name), *dst = cv_state_tensor(m->params, i);
        if (skip_head && is_head(m, name)) continue;
        if (!src) {
            if (!nonstrict && !ends_with(name, "num_batches_tracked"))
                list_add(missing, sizeof missing, &nmissing, name);
        } else if (!cv_tensor_same_shape(src, dst)) {
            char a[64], b[64], item[256];
            snprintf(item, sizeof item, "%s (file %s, model %s)", name,
                     cv_shape_str(src->ndim, src->shape, a, sizeof a),
                     cv_shape_str(dst->ndim, dst->shape, b, sizeof b));
            list_add(mismatch, sizeof mismatch, &nmismatch, item);
        }
    }
    for (int i = 0; i < cv_state_count(st); i++) {
        const char *name = cv_state_name(st, i);
        if (!cv_state_get(m->params, name) && !nonstrict && !(skip_head && is_head(m, name)) &&
            !ignored(m, name))
            list_add(unexpected, sizeof unexpected, &nunexpected, name);
    }
    if (nmissing || nunexpected || nmismatch) {
        char msg[1024] = "";
        size_t len;
        if (nmismatch) {
            len = strlen(msg);
            snprintf(msg + len, sizeof msg - len, "; %d shape mismatches: %s%s", nmismatch,
                     mismatch, nmismatch > 8 ? ", ..." : "");
        }
        if (nmissing) {
            len = strlen(msg);
            snprintf(msg + len, sizeof msg - len, "; %d missing keys: %s%s", nmissing, missing,
                     nmissing > 8 ? ", ..." : "");
        }
        if (nunexpected) {
            len = strlen(msg);
            snprintf(msg + len, sizeof msg - len, "; %d unexpected keys: %s%s", nunexpected,
                     unexpected, nunexpected > 8 ? ", ..." : "");
        }
        return cv_fail(ctx, CV_ERR_SHAPE, "weights do not fit %s with %d classes%s", m->arch->name,
                       m->num_classes, msg);
    }
    for (int i = 0; i < cv_state_count(m->params); i++) {
        const char *name = cv_state_name(m->params, i);
        const cv_tensor *src = cv_state_get(st, name);
        if (!src || (skip_head && is_head(m, name))) continue;
        cv_status s = copy_into(ctx, cv_state_tensor(m->params, i), src, name);
        if (s) return s;
    }
    cv_model_params_changed(m);
    return CV_OK;
}

cv_status cv_model_init_weights(cv_ctx *ctx, cv_model *m, uint64_t seed)
{
    (void)ctx;
    init_params(m->g, m->params, m->arch->init, seed);
    cv_model_params_changed(m);
    return CV_OK;
}

static void grad_ready(void *user, int param)
{
    cv_model *m = user;
    if (m->grad_of[param]) m->grad_hook(m->grad_hook_user, m->grad_of[param]);
}

static int bn_sum(void *user, double *buf, int n)
{
    cv_model *m = user;
    return m->bn_sum(m->bn_sum_user, buf, n);
}

/* What the backend gets for this step: gradients, the dropout seed and the optional hooks. */
static cv_train_io train_io(cv_model *m)
{
    return (cv_train_io){.grad = m->grad_of,
                         .seed = m->seed + m->step,
                         .bf16 = m->bf16,
                         .grad_ready = m->grad_hook ? grad_ready : NULL,
                         .user = m,
                         .sum = m->bn_sum ? bn_sum : NULL};
}

cv_status cv_model_set_backend(cv_ctx *ctx, cv_model *m, cv_backend_kind kind)
{
    const cv_backend_ops *b = kind == CV_BACKEND_REF   ? &cv_backend_ref
                              : kind == CV_BACKEND_CPU ? &cv_backend_dnnl
                                                       : NULL;
    if (!b) return cv_fail(ctx, CV_ERR_INVALID, "unknown backend %d", (int)kind);
    cv_model_params_changed(m);
    m->backend = b;
    return CV_OK;
}

cv_status cv_model_forward(cv_ctx *ctx, cv_model *m, const cv_tensor *x, cv_tensor **out)
{
    *out = NULL;
    if (x->dtype != CV_F32 || x->ndim != 4) {
        char b[96];
        return cv_fail(ctx, CV_ERR_SHAPE, "%s expects a float32 N x 3 x H x W input, got %s %s",
                       m->arch->name, cv_dtype_name(x->dtype),
                       cv_shape_str(x->ndim, x->shape, b, sizeof b));
    }
    int64_t n = x->shape[0], h = x->shape[2], w = x->shape[3];
    if (!m->exec || n != m->exec_n || h != m->exec_h || w != m->exec_w) {
        cv_model_params_changed(m);
        cv_shape4 *shapes = realloc(m->shapes, (size_t)m->g->n * sizeof *shapes);
        if (!shapes) return cv_fail(ctx, CV_ERR_NOMEM, "out of memory");
        m->shapes = shapes;
        cv_status s = graph_infer_shapes(ctx, m->g, m->params, n, x->shape[1], h, w, shapes);
        if (!s && m->training) s = ensure_grads(ctx, m);
        cv_train_io io = train_io(m);
        if (!s)
            s = m->backend->plan(ctx, m->g, m->params, shapes, m->training ? PLAN_TRAIN : PLAN_EVAL,
                                 &io, &m->exec);
        if (s) return s;
        m->exec_n = n, m->exec_h = h, m->exec_w = w;
        if (m->prof && m->backend->set_profile) m->backend->set_profile(m->exec, m->prof);
    }
    const cv_shape4 *os = &m->shapes[m->g->output];
    cv_status s = cv_tensor_new(ctx, CV_F32, os->rank, os->d, out);
    if (s) return s;
    if (m->training && (s = ensure_grads(ctx, m))) goto fail;
    cv_train_io io = train_io(m);
    if ((s = m->backend->run(ctx, m->exec, x->data, (*out)->data, &io))) goto fail;
    m->ran_train = m->training;
    return CV_OK;
fail:
    cv_tensor_free(*out);
    *out = NULL;
    return s;
}

cv_status cv_model_profile(cv_ctx *ctx, cv_model *m, int on)
{
    if (on && !m->prof && !(m->prof = malloc(sizeof *m->prof)))
        return cv_fail(ctx, CV_ERR_NOMEM, "out of memory");
    if (on) memset(m->prof, 0, sizeof *m->prof);
    if (m->exec && m->backend->set_profile) m->backend->set_profile(m->exec, on ? m->prof : NULL);
    if (!on) free(m->prof), m->prof = NULL;
    return CV_OK;
}

int cv_model_profile_rows(const cv_model *m, cv_profile_row *rows, int max)
{
    static const char *how[PROF_KINDS] = {"oneDNN", "reorder", "own", "reference"};
    int n = 0;
    for (int op = 0; m->prof && op < OP_COUNT; op++)
        for (int k = 0; k < PROF_KINDS; k++) {
            if (!m->prof->calls[op][k]) continue;
            if (n < max)
                rows[n] = (cv_profile_row){op_name((cv_op)op), how[k], m->prof->seconds[op][k],
                                           m->prof->calls[op][k]};
            n++;
        }
    return n;
}

cv_status cv_model_set_training(cv_ctx *ctx, cv_model *m, int training)
{
    (void)ctx;
    if (!!training != m->training) cv_model_params_changed(m);
    m->training = !!training;
    return CV_OK;
}

int cv_model_training(const cv_model *m)
{
    return m->training;
}

cv_status cv_model_set_trainable(cv_ctx *ctx, cv_model *m, const char *prefix, int trainable)
{
    int hits = 0;
    for (int i = 0; i < cv_state_count(m->params); i++) {
        const char *name = cv_state_name(m->params, i);
        if (strncmp(name, prefix, strlen(prefix)) ||
            cv_state_tensor(m->params, i)->dtype != CV_F32 || graph_is_buffer(name))
            continue;
        m->trainable[i] = !!trainable;
        hits++;
    }
    if (!hits)
        return cv_fail(ctx, CV_ERR_NOT_FOUND, "%s has no parameter named '%s...'", m->arch->name,
                       prefix);
    /* the gradient table follows the trainable set, and plans know it */
    cv_model_params_changed(m);
    cv_state_free(m->grads);
    m->grads = NULL;
    memset(m->grad_of, 0, (size_t)cv_state_count(m->params) * sizeof *m->grad_of);
    return CV_OK;
}

int cv_model_trainable(const cv_model *m, const char *name)
{
    for (int i = 0; i < cv_state_count(m->params); i++)
        if (!strcmp(cv_state_name(m->params, i), name)) return m->trainable[i];
    return 0;
}

static cv_status ensure_grads(cv_ctx *ctx, cv_model *m)
{
    if (m->grads) return CV_OK;
    if (!(m->grads = cv_state_new()))
        return cv_fail(ctx, CV_ERR_NOMEM, "out of memory"); /* ctx may be NULL */
    for (int i = 0; i < cv_state_count(m->params); i++) {
        if (!m->trainable[i]) continue;
        const cv_tensor *p = cv_state_tensor(m->params, i);
        cv_tensor *g;
        cv_status s = cv_tensor_new(ctx, CV_F32, p->ndim, p->shape, &g);
        if (!s) s = cv_state_put(ctx, m->grads, cv_state_name(m->params, i), g);
        if (s) {
            cv_state_free(m->grads);
            m->grads = NULL;
            memset(m->grad_of, 0, (size_t)cv_state_count(m->params) * sizeof *m->grad_of);
            return s;
        }
        m->grad_of[i] = g;
    }
    return CV_OK;
}

void cv_model_set_grad_hook(cv_model *m, void (*fn)(void *user, const cv_tensor *grad), void *user)
{
    m->grad_hook = fn;
    m->grad_hook_user = user;
}

cv_status cv_model_set_sync_bn(cv_ctx *ctx, cv_model *m, int (*sum)(void *user, double *buf, int n),
                               void *user)
{
    cv_model_params_changed(m); /* training plans are made for one or the other */
    m->bn_sum = sum;
    m->bn_sum_user = user;
    return CV_OK;
}

cv_status cv_model_backward(cv_ctx *ctx, cv_model *m, const cv_tensor *dout)
{
    if (!m->ran_train || !m->exec)
        return cv_fail(ctx, CV_ERR_INVALID, "%s: backward needs a training-mode forward first",
                       m->arch->name);
    const cv_shape4 *os = &m->shapes[m->g->output];
    if (dout->dtype != CV_F32 || cv_tensor_numel(dout) != shape_numel(os))
        return cv_fail(ctx, CV_ERR_SHAPE, "%s: the output gradient must be float32 like the output",
                       m->arch->name);
    cv_status s = ensure_grads(ctx, m);
    if (s) return s;
    cv_train_io io = train_io(m);
    s = m->backend->backward(ctx, m->exec, dout->data, &io);
    m->ran_train = 0;
    m->step++;
    /* the parameters will change under the optimizer: the plan re-reads them */
    return s;
}

cv_state *cv_model_grads(cv_model *m)
{
    return ensure_grads(NULL, m) ? NULL : m->grads;
}

void cv_model_zero_grad(cv_model *m)
{
    for (int i = 0; m->grads && i < cv_state_count(m->grads); i++) {
        cv_tensor *g = cv_state_tensor(m->grads, i);
        memset(g->data, 0, g->nbytes);
    }
}

cv_status cv_model_set_dropout(cv_ctx *ctx, cv_model *m, float p)
{
    if (!(p >= 0 && p < 1))
        return cv_fail(ctx, CV_ERR_INVALID, "dropout probability must be in [0, 1), got %g", p);
    for (int i = 0; i < m->g->n; i++)
        if (m->g->nodes[i].op == OP_DROPOUT) m->g->nodes[i].a.p = p;
    cv_model_params_changed(m);
    return CV_OK;
}

cv_status cv_model_set_amp(cv_ctx *ctx, cv_model *m, const char *amp)
{
    int bf16 = amp && strcmp(amp, "off") && strcmp(amp, "fp32");
    if (bf16 && strcmp(amp, "bf16"))
        return cv_fail(ctx, CV_ERR_INVALID, "--amp: expected bf16 or off, got '%s'", amp);
    if (bf16 != m->bf16) cv_model_params_changed(m);
    m->bf16 = bf16;
    return CV_OK;
}

void cv_model_set_seed(cv_model *m, uint64_t seed)
{
    m->seed = seed;
    m->step = 0;
}
