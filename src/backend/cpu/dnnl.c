/* The CPU backend on oneDNN (C API, v2.x).
 *
 * Planning walks the fused steps (core/fuse.h) once: each step becomes a oneDNN primitive whose
 * source takes the layout its producer chose (a reorder is inserted only where a primitive insists
 * on another), so activations stay in oneDNN's blocked layouts from the first convolution to the
 * global pool. Folded conv+BN weights are reordered into the primitive's preferred layout once.
 * Activation buffers are assigned to slots by liveness and reused; running is a flat loop. */
#include <dnnl.h>
#include <omp.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "backend/ref/kernels.h"
#include "core/fuse.h"

/* A value: one memory descriptor and object, living in a slot of the activation arena. */
typedef struct {
    dnnl_memory_desc_t md;
    dnnl_memory_t mem;
    int slot; /* -1: not in the arena (the caller's input, owned weights) */
} value;

typedef enum { X_PRIM, X_REF } xkind;

typedef struct {
    xkind kind;
    dnnl_primitive_t prim;
    int nargs;
    int arg_kind[8];
    int arg_val[8]; /* value indices */
    /* X_REF: a node run by a reference kernel on plain layouts */
    int node, in_val[CV_MAX_INPUTS], nin, out_val;
} xstep;

typedef struct {
    size_t size;
    int free;
    void *ptr;
} slot;

struct cv_exec {
    const cv_graph *g;
    const cv_state *params;
    const cv_shape4 *shapes;
    dnnl_engine_t eng;
    dnnl_stream_t stream;
    value *vals;
    int nvals, capvals;
    xstep *xs;
    int nxs, capxs;
    slot *slots;
    int nslots;
    int *node_val; /* node id -> value index (for step outputs) */
    int input_val, output_val;
    void **owned; /* weight buffers owned by the plan */
    int nowned, capowned;
    int threads;
};

#define DNNL(ctx, call)                                                                            \
    do {                                                                                           \
        dnnl_status_t st_ = (call);                                                                \
        if (st_ != dnnl_success)                                                                   \
            return cv_fail(ctx, CV_ERR_INTERNAL, "oneDNN: %s failed (status %d)", #call,           \
                           (int)st_);                                                              \
    } while (0)

/* ---- bookkeeping ---- */

static int grow(void **p, int *cap, int n, size_t elem)
{
    if (n < *cap) return 0;
    int nc = *cap ? *cap * 2 : 64;
    void *q = realloc(*p, (size_t)nc * elem);
    if (!q) return -1;
    memset((char *)q + (size_t)*cap * elem, 0, (size_t)(nc - *cap) * elem);
    *p = q;
    *cap = nc;
    return 0;
}

/* A slot of at least `size` bytes: the smallest free one that fits, else a free one grown, else
 * new. */
static int slot_get(cv_exec *e, size_t size)
{
    int best = -1, any = -1;
    for (int i = 0; i < e->nslots; i++) {
        if (!e->slots[i].free) continue;
        if (e->slots[i].size >= size && (best < 0 || e->slots[i].size < e->slots[best].size))
            best = i;
        if (any < 0 || e->slots[i].size > e->slots[any].size) any = i;
    }
    if (best < 0 && any >= 0) best = any;
    if (best < 0) {
        slot *s = realloc(e->slots, (size_t)(e->nslots + 1) * sizeof *s);
        if (!s) return -1;
        e->slots = s;
        best = e->nslots++;
        e->slots[best] = (slot){0, 1, NULL};
    }
    if (e->slots[best].size < size) e->slots[best].size = size;
    e->slots[best].free = 0;
    return best;
}

static cv_status new_value(cv_ctx *ctx, cv_exec *e, const dnnl_memory_desc_t *md, int in_arena,
                           int *out)
{
    if (grow((void **)&e->vals, &e->capvals, e->nvals, sizeof *e->vals))
        return cv_fail(ctx, CV_ERR_NOMEM, "oneDNN plan: out of memory");
    value *v = &e->vals[e->nvals];
    v->md = *md;
    v->slot = -1;
    if (in_arena && (v->slot = slot_get(e, dnnl_memory_desc_get_size(md))) < 0)
        return cv_fail(ctx, CV_ERR_NOMEM, "oneDNN plan: out of memory");
    DNNL(ctx, dnnl_memory_create(&v->mem, md, e->eng, DNNL_MEMORY_NONE));
    *out = e->nvals++;
    return CV_OK;
}

static cv_status add_xstep(cv_ctx *ctx, cv_exec *e, const xstep *x)
{
    if (grow((void **)&e->xs, &e->capxs, e->nxs, sizeof *e->xs))
        return cv_fail(ctx, CV_ERR_NOMEM, "oneDNN plan: out of memory");
    e->xs[e->nxs++] = *x;
    return CV_OK;
}

static cv_status own(cv_ctx *ctx, cv_exec *e, void *p)
{
    if (!p || grow((void **)&e->owned, &e->capowned, e->nowned, sizeof *e->owned)) {
        cv_aligned_free(p);
        return cv_fail(ctx, CV_ERR_NOMEM, "oneDNN plan: out of memory for weights");
    }
    e->owned[e->nowned++] = p;
    return CV_OK;
}

static cv_status prim_step(cv_ctx *ctx, cv_exec *e, const_dnnl_primitive_desc_t pd, int nargs,
                           const int *kinds, const int *vals)
{
    xstep x = {.kind = X_PRIM, .nargs = nargs};
    DNNL(ctx, dnnl_primitive_create(&x.prim, pd));
    memcpy(x.arg_kind, kinds, (size_t)nargs * sizeof *kinds);
    memcpy(x.arg_val, vals, (size_t)nargs * sizeof *vals);
    return add_xstep(ctx, e, &x);
}

static void md_plain(dnnl_memory_desc_t *md, const cv_shape4 *s)
{
    dnnl_dims_t d;
    for (int i = 0; i < s->rank; i++) d[i] = s->d[i];
    dnnl_memory_desc_init_by_tag(md, s->rank, d, dnnl_f32, s->rank == 4 ? dnnl_nchw : dnnl_nc);
}

/* Makes value `v` available with descriptor `want`: itself if it already has that layout, else a
 * reorder into a fresh arena value that dies with the current step (listed in temps). */
static cv_status as_layout(cv_ctx *ctx, cv_exec *e, int v, const dnnl_memory_desc_t *want, int *out,
                           int *temps, int *ntemps)
{
    if (dnnl_memory_desc_equal(&e->vals[v].md, want)) {
        *out = v;
        return CV_OK;
    }
    dnnl_primitive_desc_t pd;
    DNNL(ctx, dnnl_reorder_primitive_desc_create(&pd, &e->vals[v].md, e->eng, want, e->eng, NULL));
    int t;
    cv_status s = new_value(ctx, e, want, 1, &t);
    if (!s) s = prim_step(ctx, e, pd, 2, (int[]){DNNL_ARG_FROM, DNNL_ARG_TO}, (int[]){v, t});
    dnnl_primitive_desc_destroy(pd);
    if (s) return s;
    temps[(*ntemps)++] = t;
    *out = t;
    return CV_OK;
}

/* A weight tensor in the layout a primitive wants, owned by the plan. */
static cv_status weights_value(cv_ctx *ctx, cv_exec *e, const float *data,
                               const dnnl_memory_desc_t *user, const dnnl_memory_desc_t *want,
                               int *out)
{
    size_t size = dnnl_memory_desc_get_size(want);
    void *buf = cv_aligned_alloc(size);
    cv_status s = own(ctx, e, buf);
    if (s) return s;
    dnnl_memory_t src, dst;
    DNNL(ctx, dnnl_memory_create(&src, user, e->eng, (void *)data));
    DNNL(ctx, dnnl_memory_create(&dst, want, e->eng, buf));
    dnnl_primitive_desc_t pd;
    dnnl_primitive_t r;
    DNNL(ctx, dnnl_reorder_primitive_desc_create(&pd, user, e->eng, want, e->eng, NULL));
    DNNL(ctx, dnnl_primitive_create(&r, pd));
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, src}, {DNNL_ARG_TO, dst}};
    DNNL(ctx, dnnl_primitive_execute(r, e->stream, 2, args));
    DNNL(ctx, dnnl_stream_wait(e->stream));
    dnnl_primitive_destroy(r);
    dnnl_primitive_desc_destroy(pd);
    dnnl_memory_destroy(src);
    dnnl_memory_destroy(dst);
    if ((s = new_value(ctx, e, want, 0, out))) return s;
    DNNL(ctx, dnnl_memory_set_data_handle(e->vals[*out].mem, buf));
    return CV_OK;
}

/* PyTorch activations as oneDNN eltwise algorithms; hardsigmoid needs two (linear, then clip). */
typedef struct {
    int n;
    dnnl_alg_kind_t alg[2];
    float alpha[2], beta[2];
} act_algs;

static act_algs act_to_dnnl(cv_act act)
{
    switch (act) {
    case ACT_RELU:
        return (act_algs){1, {dnnl_eltwise_relu}, {0}, {0}};
    case ACT_RELU6:
        return (act_algs){1, {dnnl_eltwise_clip_v2}, {0}, {6}};
    case ACT_HARDSWISH:
        return (act_algs){1, {dnnl_eltwise_hardswish}, {0}, {0}};
    case ACT_HARDSIGMOID:
        return (act_algs){2, {dnnl_eltwise_linear, dnnl_eltwise_clip_v2}, {1.0f / 6, 0}, {0.5f, 1}};
    case ACT_SILU:
        return (act_algs){1, {dnnl_eltwise_swish}, {1}, {0}};
    case ACT_GELU:
        return (act_algs){1, {dnnl_eltwise_gelu_erf}, {0}, {0}};
    case ACT_SIGMOID:
        return (act_algs){1, {dnnl_eltwise_logistic}, {0}, {0}};
    default:
        return (act_algs){0, {0}, {0}, {0}};
    }
}

/* Post-ops for an accumulate into the destination and a fused activation, in that order. */
static cv_status post_ops(cv_ctx *ctx, cv_act act, int sum, dnnl_primitive_attr_t *attr)
{
    dnnl_post_ops_t po;
    DNNL(ctx, dnnl_primitive_attr_create(attr));
    DNNL(ctx, dnnl_post_ops_create(&po));
    if (sum) DNNL(ctx, dnnl_post_ops_append_sum(po, 1.0f));
    act_algs a = act_to_dnnl(act);
    for (int i = 0; i < a.n; i++)
        DNNL(ctx, dnnl_post_ops_append_eltwise(po, 1.0f, a.alg[i], a.alpha[i], a.beta[i]));
    DNNL(ctx, dnnl_primitive_attr_set_post_ops(*attr, po));
    dnnl_post_ops_destroy(po);
    return CV_OK;
}

/* ---- steps ---- */

typedef struct {
    cv_ctx *ctx;
    cv_exec *e;
    const cv_state *params;
    const cv_fused *f;
    int temps[CV_MAX_INPUTS + 4], ntemps;
} planner;

static const float *param(const planner *p, const cv_node *nd, int k)
{
    return nd->param[k] < 0 ? NULL : cv_state_tensor(p->params, nd->param[k])->data;
}

/* The destination of a step with an accumulate: the summand itself when this is its last use and
 * its layout matches (in place), else a copy of it in the destination layout. */
static cv_status sum_dst(planner *p, int sum_val, int src_val, const dnnl_memory_desc_t *dst_md,
                         int step, int *out)
{
    cv_exec *e = p->e;
    int v = e->node_val[sum_val];
    if (p->f->last_use[sum_val] == step && dnnl_memory_desc_equal(&e->vals[v].md, dst_md) &&
        v != e->input_val && v != src_val && e->vals[v].slot != e->vals[src_val].slot) {
        *out = e->node_val[sum_val];
        e->slots[e->vals[*out].slot].free = 2; /* taken over: not released with the inputs */
        return CV_OK;
    }
    cv_status s = new_value(p->ctx, e, dst_md, 1, out);
    if (s) return s;
    dnnl_primitive_desc_t pd;
    DNNL(p->ctx, dnnl_reorder_primitive_desc_create(&pd, &e->vals[e->node_val[sum_val]].md, e->eng,
                                                    dst_md, e->eng, NULL));
    s = prim_step(p->ctx, e, pd, 2, (int[]){DNNL_ARG_FROM, DNNL_ARG_TO},
                  (int[]){e->node_val[sum_val], *out});
    dnnl_primitive_desc_destroy(pd);
    return s;
}

static cv_status plan_conv(planner *p, const cv_step *st, int step, int *out)
{
    cv_exec *e = p->e;
    cv_ctx *ctx = p->ctx;
    const cv_graph *g = e->g;
    const cv_node *nd = &g->nodes[st->node];
    const cv_tensor *wt = cv_state_tensor(p->params, nd->param[0]);
    const cv_shape4 *xs = &e->shapes[nd->in[0]], *ys = &e->shapes[st->out];
    int64_t O = wt->shape[0], I = wt->shape[1], KH = wt->shape[2], KW = wt->shape[3],
            G = nd->a.groups;

    /* Fold BN: w' = w * gamma / sqrt(var + eps), b' = (b - mean) * gamma / sqrt(var + eps) + beta
     */
    size_t wn = (size_t)(O * I * KH * KW);
    float *w = cv_aligned_alloc(wn * sizeof *w), *b = cv_aligned_alloc((size_t)O * sizeof *b);
    cv_status s = own(ctx, e, w);
    if (!s) s = own(ctx, e, b);
    if (s) return s;
    memcpy(w, wt->data, wn * sizeof *w);
    const float *bias = param(p, nd, 1);
    for (int64_t o = 0; o < O; o++) b[o] = bias ? bias[o] : 0.0f;
    if (st->bn >= 0) {
        const cv_node *bn = &g->nodes[st->bn];
        const float *gamma = param(p, bn, 0), *beta = param(p, bn, 1), *mean = param(p, bn, 2),
                    *var = param(p, bn, 3);
        for (int64_t o = 0; o < O; o++) {
            float scale = gamma[o] / sqrtf(var[o] + bn->a.eps);
            for (size_t k = 0; k < wn / (size_t)O; k++)
                w[(size_t)o * (wn / (size_t)O) + k] *= scale;
            b[o] = (b[o] - mean[o]) * scale + beta[o];
        }
    }

    dnnl_memory_desc_t src_any, w_any, b_md, dst_any, w_user;
    dnnl_dims_t sd = {xs->d[0], xs->d[1], xs->d[2], xs->d[3]},
                dd = {ys->d[0], ys->d[1], ys->d[2], ys->d[3]};
    dnnl_dims_t bd = {O};
    DNNL(ctx, dnnl_memory_desc_init_by_tag(&src_any, 4, sd, dnnl_f32, dnnl_format_tag_any));
    DNNL(ctx, dnnl_memory_desc_init_by_tag(&dst_any, 4, dd, dnnl_f32, dnnl_format_tag_any));
    DNNL(ctx, dnnl_memory_desc_init_by_tag(&b_md, 1, bd, dnnl_f32, dnnl_x));
    if (G > 1) {
        dnnl_dims_t wd = {G, O / G, I, KH, KW};
        DNNL(ctx, dnnl_memory_desc_init_by_tag(&w_any, 5, wd, dnnl_f32, dnnl_format_tag_any));
        DNNL(ctx, dnnl_memory_desc_init_by_tag(&w_user, 5, wd, dnnl_f32, dnnl_goihw));
    } else {
        dnnl_dims_t wd = {O, I, KH, KW};
        DNNL(ctx, dnnl_memory_desc_init_by_tag(&w_any, 4, wd, dnnl_f32, dnnl_format_tag_any));
        DNNL(ctx, dnnl_memory_desc_init_by_tag(&w_user, 4, wd, dnnl_f32, dnnl_oihw));
    }
    dnnl_dims_t strides = {nd->a.sh, nd->a.sw}, dil = {nd->a.dh - 1, nd->a.dw - 1};
    dnnl_dims_t pl = {nd->a.ph, nd->a.pw};
    dnnl_dims_t pr = {(ys->d[2] - 1) * nd->a.sh + (KH - 1) * nd->a.dh + 1 - xs->d[2] - nd->a.ph,
                      (ys->d[3] - 1) * nd->a.sw + (KW - 1) * nd->a.dw + 1 - xs->d[3] - nd->a.pw};
    dnnl_convolution_desc_t cd;
    DNNL(ctx, dnnl_dilated_convolution_forward_desc_init(&cd, dnnl_forward_inference,
                                                         dnnl_convolution_direct, &src_any, &w_any,
                                                         &b_md, &dst_any, strides, dil, pl, pr));
    dnnl_primitive_attr_t attr;
    if ((s = post_ops(ctx, st->act, st->sum >= 0, &attr))) return s;
    dnnl_primitive_desc_t pd;
    dnnl_status_t ds = dnnl_primitive_desc_create(&pd, &cd, attr, e->eng, NULL);
    dnnl_primitive_attr_destroy(attr);
    if (ds != dnnl_success)
        return cv_fail(ctx, CV_ERR_INTERNAL, "oneDNN: no convolution for node %d", st->node);

    int x, wv, bv, y;
    s = as_layout(ctx, e, e->node_val[p->f->value[nd->in[0]]],
                  dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0), &x, p->temps, &p->ntemps);
    if (!s)
        s = weights_value(ctx, e, w, &w_user,
                          dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0), &wv);
    if (!s) s = new_value(ctx, e, &b_md, 0, &bv);
    if (!s) DNNL(ctx, dnnl_memory_set_data_handle(e->vals[bv].mem, b));
    const dnnl_memory_desc_t *dst_md = dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0);
    if (!s)
        s = st->sum >= 0 ? sum_dst(p, p->f->value[st->sum], x, dst_md, step, &y)
                         : new_value(ctx, e, dst_md, 1, &y);
    if (!s)
        s = prim_step(ctx, e, pd, 4,
                      (int[]){DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_BIAS, DNNL_ARG_DST},
                      (int[]){x, wv, bv, y});
    dnnl_primitive_desc_destroy(pd);
    *out = y;
    return s;
}

static cv_status plan_linear(planner *p, const cv_step *st, int *out)
{
    cv_exec *e = p->e;
    cv_ctx *ctx = p->ctx;
    const cv_node *nd = &e->g->nodes[st->node];
    const cv_shape4 *xs = &e->shapes[nd->in[0]], *ys = &e->shapes[st->node];
    dnnl_memory_desc_t src, w_any, w_user, b_md, dst_any;
    dnnl_dims_t sd = {xs->d[0], xs->d[1]}, wd = {ys->d[1], xs->d[1]}, bd = {ys->d[1]},
                dd = {ys->d[0], ys->d[1]};
    DNNL(ctx, dnnl_memory_desc_init_by_tag(&src, 2, sd, dnnl_f32, dnnl_nc));
    DNNL(ctx, dnnl_memory_desc_init_by_tag(&w_any, 2, wd, dnnl_f32, dnnl_format_tag_any));
    DNNL(ctx, dnnl_memory_desc_init_by_tag(&w_user, 2, wd, dnnl_f32, dnnl_oi));
    DNNL(ctx, dnnl_memory_desc_init_by_tag(&b_md, 1, bd, dnnl_f32, dnnl_x));
    DNNL(ctx, dnnl_memory_desc_init_by_tag(&dst_any, 2, dd, dnnl_f32, dnnl_nc));
    const float *bias = param(p, nd, 1);
    dnnl_inner_product_desc_t ipd;
    DNNL(ctx, dnnl_inner_product_forward_desc_init(&ipd, dnnl_forward_inference, &src, &w_any,
                                                   bias ? &b_md : NULL, &dst_any));
    dnnl_primitive_attr_t attr;
    cv_status s = post_ops(ctx, st->act, 0, &attr);
    if (s) return s;
    dnnl_primitive_desc_t pd;
    dnnl_status_t ds = dnnl_primitive_desc_create(&pd, &ipd, attr, e->eng, NULL);
    dnnl_primitive_attr_destroy(attr);
    if (ds != dnnl_success)
        return cv_fail(ctx, CV_ERR_INTERNAL, "oneDNN: no inner product for node %d", st->node);
    int x, wv, bv = -1, y;
    s = as_layout(ctx, e, e->node_val[p->f->value[nd->in[0]]], &src, &x, p->temps, &p->ntemps);
    if (!s)
        s = weights_value(ctx, e, param(p, nd, 0), &w_user,
                          dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0), &wv);
    if (!s && bias) {
        s = new_value(ctx, e, &b_md, 0, &bv);
        if (!s) DNNL(ctx, dnnl_memory_set_data_handle(e->vals[bv].mem, (void *)bias));
    }
    if (!s) s = new_value(ctx, e, dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0), 1, &y);
    if (!s)
        s = bias ? prim_step(ctx, e, pd, 4,
                             (int[]){DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_BIAS, DNNL_ARG_DST},
                             (int[]){x, wv, bv, y})
                 : prim_step(ctx, e, pd, 3, (int[]){DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST},
                             (int[]){x, wv, y});
    dnnl_primitive_desc_destroy(pd);
    *out = y;
    return s;
}

static cv_status plan_pool(planner *p, const cv_step *st, int *out)
{
    cv_exec *e = p->e;
    cv_ctx *ctx = p->ctx;
    const cv_node *nd = &e->g->nodes[st->node];
    const cv_shape4 *xs = &e->shapes[nd->in[0]], *ys = &e->shapes[st->node];
    int x = e->node_val[p->f->value[nd->in[0]]];
    cv_attrs a = nd->a;
    if (nd->op == OP_ADAPTIVE_AVGPOOL) /* callers checked the windows are uniform */
        a = (cv_attrs){.kh = (int)(xs->d[2] / ys->d[2]),
                       .kw = (int)(xs->d[3] / ys->d[3]),
                       .sh = (int)(xs->d[2] / ys->d[2]),
                       .sw = (int)(xs->d[3] / ys->d[3]),
                       .dh = 1,
                       .dw = 1};
    dnnl_alg_kind_t alg = nd->op == OP_MAXPOOL  ? dnnl_pooling_max
                          : a.count_include_pad ? dnnl_pooling_avg_include_padding
                                                : dnnl_pooling_avg_exclude_padding;
    dnnl_memory_desc_t dst_any;
    dnnl_dims_t dd = {ys->d[0], ys->d[1], ys->d[2], ys->d[3]};
    DNNL(ctx, dnnl_memory_desc_init_by_tag(&dst_any, 4, dd, dnnl_f32, dnnl_format_tag_any));
    dnnl_dims_t strides = {a.sh, a.sw}, kernel = {a.kh, a.kw}, dil = {a.dh - 1, a.dw - 1},
                pl = {a.ph, a.pw};
    dnnl_dims_t pr = {(ys->d[2] - 1) * a.sh + (a.kh - 1) * a.dh + 1 - xs->d[2] - a.ph,
                      (ys->d[3] - 1) * a.sw + (a.kw - 1) * a.dw + 1 - xs->d[3] - a.pw};
    dnnl_pooling_v2_desc_t pdsc;
    DNNL(ctx, dnnl_pooling_v2_forward_desc_init(&pdsc, dnnl_forward_inference, alg, &e->vals[x].md,
                                                &dst_any, strides, kernel, dil, pl, pr));
    dnnl_primitive_desc_t pd;
    DNNL(ctx, dnnl_primitive_desc_create(&pd, &pdsc, NULL, e->eng, NULL));
    int y;
    cv_status s = new_value(ctx, e, dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0), 1, &y);
    if (!s) s = prim_step(ctx, e, pd, 2, (int[]){DNNL_ARG_SRC, DNNL_ARG_DST}, (int[]){x, y});
    dnnl_primitive_desc_destroy(pd);
    *out = y;
    return s;
}

static cv_status plan_eltwise(planner *p, int x, cv_act act, int *out)
{
    cv_exec *e = p->e;
    cv_ctx *ctx = p->ctx;
    act_algs a = act_to_dnnl(act);
    cv_status s = new_value(ctx, e, &e->vals[x].md, 1, out);
    for (int i = 0; !s && i < a.n; i++) {
        dnnl_eltwise_desc_t ed;
        dnnl_primitive_desc_t pd;
        DNNL(ctx, dnnl_eltwise_forward_desc_init(&ed, dnnl_forward_inference, a.alg[i],
                                                 &e->vals[x].md, a.alpha[i], a.beta[i]));
        DNNL(ctx, dnnl_primitive_desc_create(&pd, &ed, NULL, e->eng, NULL));
        /* the second algorithm runs in place on the first one's result */
        s = prim_step(ctx, e, pd, 2, (int[]){DNNL_ARG_SRC, DNNL_ARG_DST},
                      (int[]){i ? *out : x, *out});
        dnnl_primitive_desc_destroy(pd);
    }
    return s;
}

static cv_status plan_binary(planner *p, const cv_step *st, int *out)
{
    cv_exec *e = p->e;
    cv_ctx *ctx = p->ctx;
    const cv_node *nd = &e->g->nodes[st->node];
    int a = e->node_val[p->f->value[nd->in[0]]], b = e->node_val[p->f->value[nd->in[1]]];
    const cv_shape4 *bs = &e->shapes[nd->in[1]];
    dnnl_memory_desc_t b_want;
    if (shape_numel(bs) != shape_numel(&e->shapes[nd->in[0]]))
        md_plain(&b_want, bs); /* the broadcast operand [N, C, 1, 1] */
    else
        b_want = e->vals[a].md;
    int bb;
    cv_status s = as_layout(ctx, e, b, &b_want, &bb, p->temps, &p->ntemps);
    if (s) return s;
    dnnl_binary_desc_t bd;
    DNNL(ctx, dnnl_binary_desc_init(&bd, nd->op == OP_ADD ? dnnl_binary_add : dnnl_binary_mul,
                                    &e->vals[a].md, &e->vals[bb].md, &e->vals[a].md));
    dnnl_primitive_attr_t attr;
    if ((s = post_ops(ctx, st->act, 0, &attr))) return s;
    dnnl_primitive_desc_t pd;
    dnnl_status_t ds = dnnl_primitive_desc_create(&pd, &bd, attr, e->eng, NULL);
    dnnl_primitive_attr_destroy(attr);
    if (ds != dnnl_success)
        return cv_fail(ctx, CV_ERR_INTERNAL, "oneDNN: no binary primitive for node %d", st->node);
    s = new_value(ctx, e, &e->vals[a].md, 1, out);
    if (!s)
        s = prim_step(ctx, e, pd, 3, (int[]){DNNL_ARG_SRC_0, DNNL_ARG_SRC_1, DNNL_ARG_DST},
                      (int[]){a, bb, *out});
    dnnl_primitive_desc_destroy(pd);
    return s;
}

static cv_status plan_concat(planner *p, const cv_step *st, int *out)
{
    cv_exec *e = p->e;
    cv_ctx *ctx = p->ctx;
    const cv_node *nd = &e->g->nodes[st->node];
    dnnl_memory_desc_t mds[CV_MAX_INPUTS];
    int vals[CV_MAX_INPUTS + 1], kinds[CV_MAX_INPUTS + 1];
    for (int k = 0; k < nd->nin; k++) {
        vals[k] = e->node_val[p->f->value[nd->in[k]]];
        mds[k] = e->vals[vals[k]].md;
        kinds[k] = DNNL_ARG_MULTIPLE_SRC + k;
    }
    dnnl_primitive_desc_t pd;
    DNNL(ctx, dnnl_concat_primitive_desc_create(&pd, NULL, nd->nin, 1, mds, NULL, e->eng));
    cv_status s = new_value(ctx, e, dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0), 1, out);
    vals[nd->nin] = *out;
    kinds[nd->nin] = DNNL_ARG_DST;
    if (!s) s = prim_step(ctx, e, pd, nd->nin + 1, kinds, vals);
    dnnl_primitive_desc_destroy(pd);
    return s;
}

/* Ops without a oneDNN primitive (or with semantics oneDNN does not match): plain layouts in and
 * out, reference kernel in between. */
static cv_status plan_ref(planner *p, const cv_step *st, int *out)
{
    cv_exec *e = p->e;
    const cv_node *nd = &e->g->nodes[st->node];
    xstep x = {.kind = X_REF, .node = st->node, .nin = nd->nin};
    for (int k = 0; k < nd->nin; k++) {
        dnnl_memory_desc_t plain;
        md_plain(&plain, &e->shapes[nd->in[k]]);
        cv_status s = as_layout(p->ctx, e, e->node_val[p->f->value[nd->in[k]]], &plain,
                                &x.in_val[k], p->temps, &p->ntemps);
        if (s) return s;
    }
    dnnl_memory_desc_t od;
    md_plain(&od, &e->shapes[st->node]);
    cv_status s = new_value(p->ctx, e, &od, 1, out);
    x.out_val = *out;
    return s ? s : add_xstep(p->ctx, e, &x);
}

static int pool_needs_ref(const cv_exec *e, const cv_node *nd)
{
    const cv_shape4 *xs = &e->shapes[nd->in[0]], *ys = &e->shapes[(int)(nd - e->g->nodes)];
    if (nd->op == OP_ADAPTIVE_AVGPOOL) return xs->d[2] % ys->d[2] || xs->d[3] % ys->d[3];
    if (nd->op == OP_AVGPOOL && nd->a.ceil_mode && nd->a.count_include_pad)
        return 1; /* divisor differs */
    return 0;
}

static cv_status plan_step(planner *p, int si)
{
    cv_exec *e = p->e;
    const cv_step *st = &p->f->steps[si];
    const cv_node *nd = &e->g->nodes[st->node];
    int y = -1;
    cv_status s = CV_OK;
    p->ntemps = 0;
    switch (nd->op) {
    case OP_INPUT: {
        dnnl_memory_desc_t md;
        md_plain(&md, &e->shapes[st->node]);
        s = new_value(p->ctx, e, &md, 0, &y);
        e->input_val = y;
        break;
    }
    case OP_CONV:
        s = plan_conv(p, st, si, &y);
        break;
    case OP_LINEAR:
        s = plan_linear(p, st, &y);
        break;
    case OP_MAXPOOL:
    case OP_AVGPOOL:
    case OP_ADAPTIVE_AVGPOOL:
        s = pool_needs_ref(e, nd) ? plan_ref(p, st, &y) : plan_pool(p, st, &y);
        break;
    case OP_ADD:
    case OP_MUL:
        s = plan_binary(p, st, &y);
        break;
    case OP_CONCAT:
        s = plan_concat(p, st, &y);
        break;
    case OP_ACT:
        s = plan_eltwise(p, e->node_val[p->f->value[nd->in[0]]], nd->a.act, &y);
        break;
    case OP_FLATTEN: {
        /* a plain NCHW buffer read as [N, C*H*W]: a reorder only if the producer was blocked */
        dnnl_memory_desc_t plain, flat;
        md_plain(&plain, &e->shapes[nd->in[0]]);
        md_plain(&flat, &e->shapes[st->node]);
        int x0 = e->node_val[p->f->value[nd->in[0]]], x;
        s = as_layout(p->ctx, e, x0, &plain, &x, p->temps, &p->ntemps);
        if (!s && e->vals[x].slot < 0)
            s = cv_fail(p->ctx, CV_ERR_UNSUPPORTED, "oneDNN backend: flatten of the input");
        if (!s) s = new_value(p->ctx, e, &flat, 0, &y);
        if (s) break;
        e->vals[y].slot = e->vals[x].slot; /* y aliases x's buffer */
        if (x != x0)
            p->ntemps--; /* the reordered copy is y's storage: it outlives this step */
        else
            e->slots[e->vals[x].slot].free = 2; /* taken over from the producer */
        break;
    }
    case OP_BN:
    case OP_SOFTMAX:
        s = plan_ref(p, st, &y);
        break;
    default:
        return cv_fail(p->ctx, CV_ERR_UNSUPPORTED, "oneDNN backend: op %s", op_name(nd->op));
    }
    if (s) return s;
    if (nd->op == OP_BN && st->act) s = plan_eltwise(p, y, st->act, &y);
    if (s) return s;
    e->node_val[st->out] = y;
    /* release what dies here: inputs at their last use and this step's temporaries */
    for (int k = 0; k < p->ntemps; k++) e->slots[e->vals[p->temps[k]].slot].free = 1;
    for (int k = 0; k <= nd->nin; k++) {
        int v = k < nd->nin ? p->f->value[nd->in[k]] : st->sum;
        if (v < 0 || p->f->last_use[v] != si) continue;
        int sl = e->vals[e->node_val[v]].slot;
        if (sl >= 0 && e->slots[sl].free == 0) e->slots[sl].free = 1;
    }
    for (int i = 0; i < e->nslots; i++)
        if (e->slots[i].free == 2) e->slots[i].free = 0; /* in-place results stay live */
    return CV_OK;
}

static void dnnl_free_exec(cv_exec *e)
{
    if (!e) return;
    for (int i = 0; i < e->nxs; i++)
        if (e->xs[i].prim) dnnl_primitive_destroy(e->xs[i].prim);
    for (int i = 0; i < e->nvals; i++)
        if (e->vals[i].mem) dnnl_memory_destroy(e->vals[i].mem);
    for (int i = 0; i < e->nslots; i++) cv_aligned_free(e->slots[i].ptr);
    for (int i = 0; i < e->nowned; i++) cv_aligned_free(e->owned[i]);
    if (e->stream) dnnl_stream_destroy(e->stream);
    if (e->eng) dnnl_engine_destroy(e->eng);
    free(e->xs), free(e->vals), free(e->slots), free(e->owned), free(e->node_val);
    free(e);
}

static cv_status dnnl_plan(cv_ctx *ctx, const cv_graph *g, cv_state *params,
                           const cv_shape4 *shapes, cv_plan_mode mode, cv_exec **out)
{
    *out = NULL;
    if (mode != PLAN_EVAL) return cv_fail(ctx, CV_ERR_UNSUPPORTED, "oneDNN backend: training is not implemented yet");
    cv_exec *e = calloc(1, sizeof *e);
    if (!e || !(e->node_val = malloc((size_t)g->n * sizeof *e->node_val))) {
        free(e);
        return cv_fail(ctx, CV_ERR_NOMEM, "oneDNN plan: out of memory");
    }
    for (int i = 0; i < g->n; i++) e->node_val[i] = -1;
    e->g = g, e->params = params, e->shapes = shapes, e->input_val = -1;
    e->threads = cv_ctx_threads(ctx);
    omp_set_num_threads(e->threads);
    cv_fused f = {0};
    cv_status s = CV_OK;
    if (dnnl_engine_create(&e->eng, dnnl_cpu, 0) ||
        dnnl_stream_create(&e->stream, e->eng, dnnl_stream_default_flags))
        s = cv_fail(ctx, CV_ERR_INTERNAL, "oneDNN: cannot create a CPU engine");
    if (!s) s = fuse_graph(ctx, g, &f);
    planner p = {.ctx = ctx, .e = e, .params = params, .f = &f};
    for (int i = 0; !s && i < f.n; i++) s = plan_step(&p, i);
    if (!s) {
        /* the output as a plain row-major array */
        int y = e->node_val[f.value[g->output]];
        dnnl_memory_desc_t plain;
        md_plain(&plain, &shapes[g->output]);
        p.ntemps = 0;
        s = as_layout(ctx, e, y, &plain, &e->output_val, p.temps, &p.ntemps);
    }
    for (int i = 0; !s && i < e->nslots; i++)
        if (!(e->slots[i].ptr = cv_aligned_alloc(e->slots[i].size)))
            s = cv_fail(ctx, CV_ERR_NOMEM, "oneDNN plan: cannot allocate %zu bytes of activations",
                        e->slots[i].size);
    for (int i = 0; !s && i < e->nvals; i++)
        if (e->vals[i].slot >= 0 &&
            dnnl_memory_set_data_handle(e->vals[i].mem, e->slots[e->vals[i].slot].ptr))
            s = cv_fail(ctx, CV_ERR_INTERNAL, "oneDNN: cannot bind activation memory");
    fuse_free(&f);
    if (s) {
        dnnl_free_exec(e);
        return s;
    }
    *out = e;
    return CV_OK;
}

static void run_ref(cv_exec *e, const xstep *x)
{
    const cv_node *nd = &e->g->nodes[x->node];
    const float *in[CV_MAX_INPUTS];
    void *yp;
    for (int k = 0; k < x->nin; k++)
        dnnl_memory_get_data_handle(e->vals[x->in_val[k]].mem, (void **)&in[k]);
    dnnl_memory_get_data_handle(e->vals[x->out_val].mem, &yp);
    float *y = yp;
    const cv_shape4 *xs = &e->shapes[nd->in[0]], *ys = &e->shapes[x->node];
    switch (nd->op) {
    case OP_MAXPOOL:
        ref_maxpool(in[0], y, xs, ys, &nd->a);
        break;
    case OP_AVGPOOL:
        ref_avgpool(in[0], y, xs, ys, &nd->a);
        break;
    case OP_ADAPTIVE_AVGPOOL:
        ref_adaptive_avgpool(in[0], y, xs, ys);
        break;
    case OP_SOFTMAX:
        ref_softmax(in[0], y, ys->d[0], ys->d[1]);
        break;
    case OP_BN: {
        const float *prm[4];
        for (int k = 0; k < 4; k++) prm[k] = cv_state_tensor(e->params, nd->param[k])->data;
        ref_batchnorm(in[0], y, xs, prm[0], prm[1], prm[2], prm[3], nd->a.eps);
        break;
    }
    default:
        break; /* plan_step sends nothing else here */
    }
}

static cv_status dnnl_run(cv_ctx *ctx, cv_exec *e, const float *in, float *out, const cv_train_io *io)
{
    (void)io;
    omp_set_num_threads(e->threads);
    DNNL(ctx, dnnl_memory_set_data_handle(e->vals[e->input_val].mem, (void *)in));
    for (int i = 0; i < e->nxs; i++) {
        const xstep *x = &e->xs[i];
        if (x->kind == X_REF) {
            run_ref(e, x);
            continue;
        }
        dnnl_exec_arg_t args[8];
        for (int k = 0; k < x->nargs; k++)
            args[k] = (dnnl_exec_arg_t){x->arg_kind[k], e->vals[x->arg_val[k]].mem};
        DNNL(ctx, dnnl_primitive_execute(x->prim, e->stream, x->nargs, args));
    }
    DNNL(ctx, dnnl_stream_wait(e->stream));
    void *y;
    DNNL(ctx, dnnl_memory_get_data_handle(e->vals[e->output_val].mem, &y));
    memcpy(out, y, (size_t)shape_numel(&e->shapes[e->g->output]) * sizeof(float));
    return CV_OK;
}

const cv_backend_ops cv_backend_dnnl = {"onednn", dnnl_plan, dnnl_run, NULL, dnnl_free_exec};
