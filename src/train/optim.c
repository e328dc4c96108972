/* SGD, Adam and AdamW with PyTorch 1.13's single-tensor update order, in float32 as PyTorch
 * computes them (scalar factors rounded to float32 before they touch a tensor), so that a step
 * here and a step there differ only by rounding. Updates are elementwise, hence identical for
 * any thread count; the gradient norm is summed in fixed-size blocks in a fixed order for the
 * same reason. */
#include "cvision/train.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *name;
    cv_tensor *p, *g;
    int64_t n;
    double mult, wd;
    /* SGD: s1 = momentum_buffer. Adam: s1 = exp_avg, s2 = exp_avg_sq, s3 = max_exp_avg_sq. */
    float *s1, *s2, *s3;
    int64_t step;
} entry;

struct cv_optim {
    cv_optim_config cfg;
    entry *e;
    int n, cap;
    int64_t steps;
};

static const char *kind_name(cv_optim_kind k)
{
    return k == CV_OPTIM_SGD ? "sgd" : k == CV_OPTIM_ADAM ? "adam" : "adamw";
}

void cv_optim_config_default(cv_optim_kind kind, cv_optim_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->kind = kind;
    cfg->lr = kind == CV_OPTIM_SGD ? 0.1 : 0.001;
    cfg->beta1 = 0.9;
    cfg->beta2 = 0.999;
    cfg->eps = 1e-8;
    cfg->weight_decay = kind == CV_OPTIM_ADAMW ? 0.01 : 0.0;
}

int cv_optim_kind_parse(const char *name)
{
    if (!strcmp(name, "sgd") || !strcmp(name, "sgd_nesterov")) return CV_OPTIM_SGD;
    if (!strcmp(name, "adam")) return CV_OPTIM_ADAM;
    if (!strcmp(name, "adamw")) return CV_OPTIM_ADAMW;
    return -1;
}

cv_status cv_optim_new(cv_ctx *ctx, const cv_optim_config *cfg, cv_optim **out)
{
    *out = NULL;
    if ((unsigned)cfg->kind > CV_OPTIM_ADAMW)
        return cv_fail(ctx, CV_ERR_INVALID, "optimizer: unknown kind %d", (int)cfg->kind);
    if (!(cfg->lr >= 0) || !(cfg->weight_decay >= 0) || !(cfg->momentum >= 0) || !(cfg->eps >= 0) ||
        !(cfg->beta1 >= 0 && cfg->beta1 < 1) || !(cfg->beta2 >= 0 && cfg->beta2 < 1))
        return cv_fail(ctx, CV_ERR_INVALID,
                       "optimizer: lr, weight decay, momentum and eps must be >= 0 and betas in "
                       "[0, 1)");
    if (cfg->kind == CV_OPTIM_SGD && cfg->nesterov && (cfg->momentum <= 0 || cfg->dampening != 0))
        return cv_fail(ctx, CV_ERR_INVALID,
                       "optimizer: Nesterov momentum requires a momentum and zero dampening");
    cv_optim *o = calloc(1, sizeof *o);
    if (!o) return cv_fail(ctx, CV_ERR_NOMEM, "optimizer: out of memory");
    o->cfg = *cfg;
    *out = o;
    return CV_OK;
}

void cv_optim_free(cv_optim *o)
{
    if (!o) return;
    for (int i = 0; i < o->n; i++) {
        free(o->e[i].name);
        cv_aligned_free(o->e[i].s1);
        cv_aligned_free(o->e[i].s2);
        cv_aligned_free(o->e[i].s3);
    }
    free(o->e);
    free(o);
}

static float *zeros(int64_t n)
{
    size_t bytes = (size_t)(n ? n : 1) * sizeof(float);
    float *p = cv_aligned_alloc(bytes);
    if (p) memset(p, 0, bytes);
    return p;
}

cv_status cv_optim_add(cv_ctx *ctx, cv_optim *o, const char *name, cv_tensor *param,
                       cv_tensor *grad, double lr_mult, double weight_decay)
{
    if (!param || !grad || param->dtype != CV_F32 || grad->dtype != CV_F32 ||
        !cv_tensor_same_shape(param, grad))
        return cv_fail(ctx, CV_ERR_SHAPE,
                       "optimizer: %s: parameter and gradient must be float32 of one shape", name);
    if (!(lr_mult >= 0) || !(weight_decay >= 0))
        return cv_fail(ctx, CV_ERR_INVALID,
                       "optimizer: %s: lr multiplier %g or weight decay %g < 0", name, lr_mult,
                       weight_decay);
    for (int i = 0; i < o->n; i++)
        if (!strcmp(o->e[i].name, name))
            return cv_fail(ctx, CV_ERR_INVALID, "optimizer: %s added twice", name);
    if (o->n == o->cap) {
        int cap = o->cap ? 2 * o->cap : 64;
        entry *e = realloc(o->e, (size_t)cap * sizeof *e);
        if (!e) return cv_fail(ctx, CV_ERR_NOMEM, "optimizer: out of memory");
        o->e = e;
        o->cap = cap;
    }
    entry *e = &o->e[o->n];
    memset(e, 0, sizeof *e);
    e->n = cv_tensor_numel(param);
    e->p = param;
    e->g = grad;
    e->mult = lr_mult;
    e->wd = weight_decay;
    e->name = strdup(name);
    int adam = o->cfg.kind != CV_OPTIM_SGD;
    if (adam) {
        e->s1 = zeros(e->n);
        e->s2 = zeros(e->n);
        if (o->cfg.amsgrad) e->s3 = zeros(e->n);
    }
    if (!e->name || (adam && (!e->s1 || !e->s2 || (o->cfg.amsgrad && !e->s3)))) {
        free(e->name);
        cv_aligned_free(e->s1);
        cv_aligned_free(e->s2);
        cv_aligned_free(e->s3);
        return cv_fail(ctx, CV_ERR_NOMEM, "optimizer: out of memory for %s", name);
    }
    o->n++;
    return CV_OK;
}

void cv_param_rules_default(cv_param_rules *rules)
{
    memset(rules, 0, sizeof *rules);
    rules->norm_weight_decay = NAN;
    rules->bias_weight_decay = NAN;
}

/* Does `name` start with one of the comma-separated prefixes in `list`? */
static int match_list(const char *list, const char *name)
{
    for (const char *p = list; p && *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len && !strncmp(name, p, len)) return 1;
        p = end ? end + 1 : p + len;
    }
    return 0;
}

/* The multiplier of the longest prefix in "a.=1,b.=0.5" matching name (1 if none). */
static cv_status lr_mult_of(cv_ctx *ctx, const char *spec, const char *name, double *mult)
{
    size_t best = 0;
    int found = 0;
    *mult = 1.0;
    for (const char *p = spec; p && *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        char num[64];
        size_t nlen = eq ? len - (size_t)(eq + 1 - p) : 0;
        if (!eq || !nlen || nlen >= sizeof num)
            return cv_fail(ctx, CV_ERR_INVALID,
                           "lr multipliers '%s': expected PREFIX=NUMBER items separated by commas",
                           spec);
        memcpy(num, eq + 1, nlen);
        num[nlen] = 0;
        char *q;
        double v = strtod(num, &q);
        if (*q || !(v >= 0) || isinf(v))
            return cv_fail(ctx, CV_ERR_INVALID, "lr multipliers '%s': '%s' is not a number >= 0",
                           spec, num);
        size_t plen = (size_t)(eq - p);
        if (!strncmp(name, p, plen) && (!found || plen >= best)) {
            best = plen;
            found = 1;
            *mult = v;
        }
        p = end ? end + 1 : p + len;
    }
    return CV_OK;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

/* torchvision's norm classes (BatchNorm, LayerNorm, GroupNorm, InstanceNorm) are the modules
 * whose "weight" has one dimension; their bias shares the module prefix. */
static int is_norm_param(const cv_state *params, const char *name, const cv_tensor *t)
{
    if (!strcmp(name, "weight") || ends_with(name, ".weight")) return t->ndim == 1;
    if (strcmp(name, "bias") && !ends_with(name, ".bias")) return 0;
    size_t pre = strlen(name) - 4; /* keeps the '.' (or nothing) before "bias" */
    char *w = malloc(pre + 7);
    if (!w) return 0;
    memcpy(w, name, pre);
    strcpy(w + pre, "weight");
    const cv_tensor *wt = cv_state_get(params, w);
    free(w);
    return wt && wt->ndim == 1;
}

cv_status cv_optim_add_state(cv_ctx *ctx, cv_optim *o, cv_state *params, cv_state *grads,
                             const cv_param_rules *rules)
{
    cv_param_rules def;
    if (!rules) {
        cv_param_rules_default(&def);
        rules = &def;
    }
    int added = 0;
    for (int i = 0; i < cv_state_count(params); i++) {
        const char *name = cv_state_name(params, i);
        cv_tensor *p = cv_state_tensor(params, i), *g = cv_state_get(grads, name);
        if (!g) continue; /* a buffer */
        if (rules->trainable && *rules->trainable && !match_list(rules->trainable, name)) continue;
        if (match_list(rules->frozen, name)) continue;
        double mult;
        cv_status s = lr_mult_of(ctx, rules->lr_mults, name, &mult);
        if (s) return s;
        if (mult == 0) continue;
        double wd = o->cfg.weight_decay;
        int is_bias = !strcmp(name, "bias") || ends_with(name, ".bias");
        if (is_bias && !isnan(rules->bias_weight_decay))
            wd = rules->bias_weight_decay;
        else if (!isnan(rules->norm_weight_decay) && is_norm_param(params, name, p))
            wd = rules->norm_weight_decay;
        if ((s = cv_optim_add(ctx, o, name, p, g, mult, wd))) return s;
        added++;
    }
    if (!added)
        return cv_fail(
            ctx, CV_ERR_INVALID,
            "optimizer: no parameter left to train (check the trainable/frozen prefixes)");
    return CV_OK;
}

int cv_optim_count(const cv_optim *o)
{
    return o->n;
}
const char *cv_optim_name(const cv_optim *o, int i)
{
    return i >= 0 && i < o->n ? o->e[i].name : NULL;
}
double cv_optim_lr_mult(const cv_optim *o, int i)
{
    return i >= 0 && i < o->n ? o->e[i].mult : NAN;
}
double cv_optim_weight_decay(const cv_optim *o, int i)
{
    return i >= 0 && i < o->n ? o->e[i].wd : NAN;
}
int64_t cv_optim_steps(const cv_optim *o)
{
    return o->steps;
}

void cv_optim_set_momentum(cv_optim *o, double momentum)
{
    if (o->cfg.kind == CV_OPTIM_SGD)
        o->cfg.momentum = momentum;
    else
        o->cfg.beta1 = momentum;
}

#define NORM_BLOCK 65536

cv_status cv_optim_clip_grad_norm(cv_ctx *ctx, cv_optim *o, double max_norm, double *total_norm)
{
    if (!(max_norm > 0))
        return cv_fail(ctx, CV_ERR_INVALID, "clip_grad_norm: max_norm %g must be > 0", max_norm);
    double sum = 0;
    int threads = cv_ctx_threads(ctx);
    for (int i = 0; i < o->n; i++) {
        const float *g = o->e[i].g->data;
        int64_t n = o->e[i].n, nb = (n + NORM_BLOCK - 1) / NORM_BLOCK;
        double *part = malloc((size_t)(nb ? nb : 1) * sizeof *part);
        if (!part) return cv_fail(ctx, CV_ERR_NOMEM, "clip_grad_norm: out of memory");
#pragma omp parallel for num_threads(threads) if (nb > 1)
        for (int64_t b = 0; b < nb; b++) {
            int64_t end = (b + 1) * NORM_BLOCK < n ? (b + 1) * NORM_BLOCK : n;
            double s = 0;
            for (int64_t k = b * NORM_BLOCK; k < end; k++) s += (double)g[k] * g[k];
            part[b] = s;
        }
        for (int64_t b = 0; b < nb; b++) sum += part[b];
        free(part);
    }
    /* PyTorch works on the float32 norm: coef = max_norm / (norm + 1e-6), clamped to 1. */
    float norm = (float)sqrt(sum);
    float coef = (float)max_norm / (norm + 1e-6f);
    if (coef > 1.0f) coef = 1.0f;
    if (total_norm) *total_norm = sqrt(sum);
    for (int i = 0; i < o->n; i++) {
        float *g = o->e[i].g->data;
        int64_t n = o->e[i].n;
#pragma omp parallel for num_threads(threads) if (n > NORM_BLOCK)
        for (int64_t k = 0; k < n; k++) g[k] *= coef;
    }
    return CV_OK;
}

static void sgd_entry(const cv_optim_config *c, entry *e, double lr, int first, int threads)
{
    float *p = e->p->data;
    const float *g = e->g->data;
    float wd = (float)e->wd, mom = (float)c->momentum, damp1 = (float)(1 - c->dampening);
    float neg_lr = (float)(-lr);
    int use_mom = c->momentum != 0, nesterov = c->nesterov;
    float *buf = e->s1;
    int64_t n = e->n;
#pragma omp parallel for num_threads(threads) if (n > 32768)
    for (int64_t k = 0; k < n; k++) {
        float d = g[k];
        if (wd != 0) d = d + wd * p[k];
        if (use_mom) {
            /* PyTorch's first step initialises the buffer with d_p itself (no dampening) */
            float b = first ? d : buf[k] * mom + damp1 * d;
            buf[k] = b;
            d = nesterov ? d + mom * b : b;
        }
        p[k] = p[k] + neg_lr * d;
    }
}

static void adam_entry(const cv_optim_config *c, entry *e, double lr, int threads)
{
    float *p = e->p->data, *m = e->s1, *v = e->s2, *vmax = e->s3;
    const float *g = e->g->data;
    double step = (double)e->step;
    double bc1 = 1 - pow(c->beta1, step), bc2 = 1 - pow(c->beta2, step);
    float neg_step = (float)(-(lr / bc1)), bc2_sqrt = (float)sqrt(bc2), eps = (float)c->eps;
    float b1 = (float)c->beta1, b2 = (float)c->beta2, omb1 = (float)(1 - c->beta1),
          omb2 = (float)(1 - c->beta2);
    int adamw = c->kind == CV_OPTIM_ADAMW, amsgrad = c->amsgrad;
    float wd = (float)e->wd, decay = (float)(1 - lr * e->wd);
    int64_t n = e->n;
#pragma omp parallel for num_threads(threads) if (n > 32768)
    for (int64_t k = 0; k < n; k++) {
        float gr = g[k], pk = p[k];
        if (adamw)
            pk = pk * decay;
        else if (wd != 0)
            gr = gr + wd * pk;
        float mk = m[k] * b1 + omb1 * gr;
        float vk = v[k] * b2 + omb2 * gr * gr;
        m[k] = mk;
        v[k] = vk;
        if (amsgrad) {
            vk = vmax[k] > vk ? vmax[k] : vk;
            vmax[k] = vk;
        }
        float denom = sqrtf(vk) / bc2_sqrt + eps;
        p[k] = pk + neg_step * (mk / denom);
    }
}

/* One step; entry i's learning rate is lrs[i], or lr times its multiplier when lrs is NULL. */
static cv_status step_with(cv_ctx *ctx, cv_optim *o, const double *lrs, double lr)
{
    int threads = cv_ctx_threads(ctx);
    for (int i = 0; i < o->n; i++) {
        entry *e = &o->e[i];
        double lri = lrs ? lrs[i] : lr * e->mult;
        e->step++;
        if (o->cfg.kind != CV_OPTIM_SGD) {
            adam_entry(&o->cfg, e, lri, threads);
            continue;
        }
        int first = 0;
        if (o->cfg.momentum != 0 && !e->s1) {
            /* uninitialised: the first step writes every element */
            e->s1 = cv_aligned_alloc((size_t)(e->n ? e->n : 1) * sizeof(float));
            if (!e->s1) return cv_fail(ctx, CV_ERR_NOMEM, "optimizer: out of memory");
            first = 1;
        }
        sgd_entry(&o->cfg, e, lri, first, threads);
    }
    o->steps++;
    return CV_OK;
}

cv_status cv_optim_step(cv_ctx *ctx, cv_optim *o, double lr)
{
    if (!(lr >= 0)) return cv_fail(ctx, CV_ERR_INVALID, "optimizer: learning rate %g < 0", lr);
    return step_with(ctx, o, NULL, lr);
}

cv_status cv_optim_step_sched(cv_ctx *ctx, cv_optim *o, const cv_sched *s, int64_t epoch,
                              int64_t step, int64_t steps_per_epoch)
{
    double m = cv_sched_momentum(s, epoch, step, steps_per_epoch);
    if (!isnan(m)) cv_optim_set_momentum(o, m);
    double *lrs = malloc((size_t)(o->n ? o->n : 1) * sizeof *lrs);
    if (!lrs) return cv_fail(ctx, CV_ERR_NOMEM, "optimizer: out of memory");
    for (int i = 0; i < o->n; i++)
        lrs[i] = cv_sched_lr(s, o->cfg.lr * o->e[i].mult, epoch, step, steps_per_epoch);
    cv_status st = step_with(ctx, o, lrs, 0);
    free(lrs);
    return st;
}

/* ---- state ---- */

static char *join(const char *prefix, const char *name, const char *suffix)
{
    size_t a = prefix ? strlen(prefix) : 0, b = strlen(name), c = strlen(suffix);
    char *s = malloc(a + b + c + 1);
    if (!s) return NULL;
    if (a) memcpy(s, prefix, a);
    memcpy(s + a, name, b);
    memcpy(s + a + b, suffix, c + 1);
    return s;
}

static cv_status put_copy(cv_ctx *ctx, cv_state *out, const char *prefix, const entry *e,
                          const char *suffix, cv_dtype dt, const void *src)
{
    cv_tensor *t;
    int scalar = dt == CV_I64;
    cv_status s = cv_tensor_new(ctx, dt, scalar ? 0 : e->p->ndim, e->p->shape, &t);
    if (s) return s;
    memcpy(t->data, src, t->nbytes);
    char *key = join(prefix, e->name, suffix);
    if (!key) {
        cv_tensor_free(t);
        return cv_fail(ctx, CV_ERR_NOMEM, "optimizer: out of memory");
    }
    s = cv_state_put(ctx, out, key, t);
    free(key);
    return s;
}

static cv_status put_meta(cv_ctx *ctx, cv_state *out, const char *prefix, const char *key,
                          const char *value)
{
    char *k = join(prefix, key, "");
    if (!k) return cv_fail(ctx, CV_ERR_NOMEM, "optimizer: out of memory");
    cv_status s = cv_state_set_meta(ctx, out, k, value);
    free(k);
    return s;
}

cv_status cv_optim_state_save(cv_ctx *ctx, const cv_optim *o, cv_state *out, const char *prefix)
{
    const cv_optim_config *c = &o->cfg;
    char buf[512];
    cv_status s = put_meta(ctx, out, prefix, "optimizer", kind_name(c->kind));
    snprintf(buf, sizeof buf,
             "{\"lr\":%.17g,\"weight_decay\":%.17g,\"momentum\":%.17g,\"dampening\":%.17g,"
             "\"nesterov\":%d,\"betas\":[%.17g,%.17g],\"eps\":%.17g,\"amsgrad\":%d}",
             c->lr, c->weight_decay, c->momentum, c->dampening, c->nesterov, c->beta1, c->beta2,
             c->eps, c->amsgrad);
    if (!s) s = put_meta(ctx, out, prefix, "hyperparameters", buf);
    snprintf(buf, sizeof buf, "%" PRId64, o->steps);
    if (!s) s = put_meta(ctx, out, prefix, "steps", buf);
    for (int i = 0; i < o->n && !s; i++) {
        const entry *e = &o->e[i];
        s = put_copy(ctx, out, prefix, e, ".step", CV_I64, &e->step);
        if (c->kind == CV_OPTIM_SGD) {
            if (!s && e->s1) s = put_copy(ctx, out, prefix, e, ".momentum_buffer", CV_F32, e->s1);
            continue;
        }
        if (!s) s = put_copy(ctx, out, prefix, e, ".exp_avg", CV_F32, e->s1);
        if (!s) s = put_copy(ctx, out, prefix, e, ".exp_avg_sq", CV_F32, e->s2);
        if (!s && e->s3) s = put_copy(ctx, out, prefix, e, ".max_exp_avg_sq", CV_F32, e->s3);
    }
    return s;
}

/* Finds prefix+name+suffix; checks dtype and shape (the parameter's, or a scalar for int64). */
static cv_status get_state(cv_ctx *ctx, const cv_state *st, const char *prefix, const entry *e,
                           const char *suffix, cv_dtype dt, int required, const cv_tensor **out)
{
    *out = NULL;
    char *key = join(prefix, e->name, suffix);
    if (!key) return cv_fail(ctx, CV_ERR_NOMEM, "optimizer: out of memory");
    const cv_tensor *t = cv_state_get(st, key);
    cv_status s = CV_OK;
    if (!t && required) {
        s = cv_fail(ctx, CV_ERR_FORMAT, "optimizer state: '%s' is missing", key);
    } else if (t && (t->dtype != dt ||
                     (dt == CV_I64 ? cv_tensor_numel(t) != 1 : !cv_tensor_same_shape(t, e->p)))) {
        char a[96], b[96];
        s = cv_fail(ctx, CV_ERR_SHAPE, "optimizer state: '%s' is %s %s, expected %s %s", key,
                    cv_dtype_name(t->dtype), cv_shape_str(t->ndim, t->shape, a, sizeof a),
                    cv_dtype_name(dt),
                    dt == CV_I64 ? "[]" : cv_shape_str(e->p->ndim, e->p->shape, b, sizeof b));
    }
    free(key);
    *out = t;
    return s;
}

cv_status cv_optim_state_load(cv_ctx *ctx, cv_optim *o, const cv_state *st, const char *prefix)
{
    char *k = join(prefix, "optimizer", "");
    if (!k) return cv_fail(ctx, CV_ERR_NOMEM, "optimizer: out of memory");
    const char *kind = cv_state_get_meta(st, k);
    free(k);
    if (!kind || strcmp(kind, kind_name(o->cfg.kind)))
        return cv_fail(ctx, CV_ERR_FORMAT,
                       "optimizer state: saved by optimizer '%s', this one is '%s'",
                       kind ? kind : "(none)", kind_name(o->cfg.kind));
    if (!(k = join(prefix, "steps", "")))
        return cv_fail(ctx, CV_ERR_NOMEM, "optimizer: out of memory");
    const char *steps = cv_state_get_meta(st, k);
    free(k);
    char *end;
    long long nsteps = steps ? strtoll(steps, &end, 10) : -1;
    if (!steps || *end || nsteps < 0)
        return cv_fail(ctx, CV_ERR_FORMAT, "optimizer state: no valid step count");
    /* Every tensor under the prefix must belong to one of our parameters: a state from another
     * parameter set (a linear probe's, say) is refused rather than half-applied. */
    size_t plen = prefix ? strlen(prefix) : 0;
    int expected = 0, present = 0;
    for (int i = 0; i < cv_state_count(st); i++)
        if (!plen || !strncmp(cv_state_name(st, i), prefix, plen)) present++;
    /* validate everything before changing anything */
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < o->n; i++) {
            entry *e = &o->e[i];
            const cv_tensor *step, *a = NULL, *b = NULL, *c = NULL;
            cv_status s = get_state(ctx, st, prefix, e, ".step", CV_I64, 1, &step);
            int adam = o->cfg.kind != CV_OPTIM_SGD;
            if (!s)
                s = get_state(ctx, st, prefix, e, adam ? ".exp_avg" : ".momentum_buffer", CV_F32,
                              adam, &a);
            if (!s && adam) s = get_state(ctx, st, prefix, e, ".exp_avg_sq", CV_F32, 1, &b);
            if (!s && adam && o->cfg.amsgrad)
                s = get_state(ctx, st, prefix, e, ".max_exp_avg_sq", CV_F32, 1, &c);
            if (s) return s;
            if (pass == 0) {
                expected += 1 + (a != NULL) + (b != NULL) + (c != NULL);
                if (*(const int64_t *)step->data < 0)
                    return cv_fail(ctx, CV_ERR_FORMAT, "optimizer state: %s has a negative step",
                                   e->name);
                continue;
            }
            e->step = *(const int64_t *)step->data;
            if (!adam) {
                cv_aligned_free(e->s1);
                e->s1 = NULL;
                if (a) {
                    if (!(e->s1 = cv_aligned_alloc(a->nbytes ? a->nbytes : 1)))
                        return cv_fail(ctx, CV_ERR_NOMEM, "optimizer: out of memory");
                    memcpy(e->s1, a->data, a->nbytes);
                }
                continue;
            }
            memcpy(e->s1, a->data, a->nbytes);
            memcpy(e->s2, b->data, b->nbytes);
            if (c && e->s3) memcpy(e->s3, c->data, c->nbytes);
        }
        if (pass == 0 && expected != present)
            return cv_fail(
                ctx, CV_ERR_FORMAT,
                "optimizer state: %d tensors do not belong to this optimizer's parameters",
                present - expected);
    }
    o->steps = nsteps;
    return CV_OK;
}
