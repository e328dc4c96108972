/* oneDNN training plans. Every node runs unfused (backward needs the intermediate values) with
 * forward-training primitives; backward primitives follow in reverse node order. Each value's
 * gradient lives in the layout of the value itself: a backward primitive writes straight into it
 * when it is the first contribution in that layout, otherwise into a temporary that a reorder
 * copies or accumulates (a reorder with a sum post-op) into place. Parameter gradients accumulate
 * the same way into the caller's plain tensors. Weights are re-laid-out every step, since the
 * optimizer changes them between steps. Planning gives every buffer its own slot; afterwards
 * exec_pack_slots reuses slots by liveness over the forward-then-backward order, so a forward value
 * lives until the last backward step that reads it and a gradient until its node's backward has
 * consumed it. ReLU runs in place over its input where nothing else reads that. */
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/dnnl_common.h"

typedef struct {
    int x[CV_MAX_INPUTS];     /* the values the forward read (maybe reordered copies) */
    dnnl_primitive_desc_t pd; /* the forward primitive's, the hint of its backward ones */
    int ws, mean, var; /* max-pool workspace or attention's probabilities; batch or layer norm
                          statistics */
    int w_user, w_fwd; /* conv/linear weights: the parameter, and the forward layout's copy */
    int ref;           /* run by a reference kernel on plain layouts */
} tnode;

typedef struct {
    cv_ctx *ctx;
    cv_exec *e;
    const cv_train_io *io;
    tnode *t;
    int *dval;     /* node -> its gradient value, -1 until the first contribution is planned */
    char *written; /* the gradient has had its first contribution */
    char *need;    /* the node's value needs a gradient */
    int temps[CV_MAX_INPUTS + 4], ntemps;
    dnnl_data_type_t lowp; /* the data type of convolution/linear inputs and weights */
} tplanner;

static float *param(const cv_exec *e, const cv_node *nd, int k)
{
    return nd->param[k] < 0 ? NULL : cv_state_tensor(e->params, nd->param[k])->data;
}

static cv_tensor *pgrad(const tplanner *p, const cv_node *nd, int k)
{
    return nd->param[k] >= 0 ? p->io->grad[nd->param[k]] : NULL;
}

static int in_val(const tplanner *p, const cv_node *nd, int k)
{
    return p->e->node_val[nd->in[k]];
}

static const dnnl_memory_desc_t *md_of(const tplanner *p, int v)
{
    return &p->e->vals[v].md;
}

static cv_status desc_dt(cv_ctx *ctx, dnnl_memory_desc_t *md, int nd, const int64_t *dims,
                         dnnl_data_type_t dt, dnnl_format_tag_t tag)
{
    dnnl_dims_t d;
    for (int i = 0; i < nd; i++) d[i] = dims[i];
    DNNL(ctx, dnnl_memory_desc_init_by_tag(md, nd, d, dt, tag));
    return CV_OK;
}

static cv_status desc(cv_ctx *ctx, dnnl_memory_desc_t *md, int nd, const int64_t *dims,
                      dnnl_format_tag_t tag)
{
    return desc_dt(ctx, md, nd, dims, dnnl_f32, tag);
}

static cv_status no_primitive(cv_ctx *ctx, const char *what, int node)
{
    return cv_fail(ctx, CV_ERR_INTERNAL, "oneDNN: no %s primitive for node %d", what, node);
}

static cv_status make_pd(cv_ctx *ctx, cv_exec *e, const void *op_desc,
                         const_dnnl_primitive_desc_t hint, dnnl_primitive_desc_t *pd,
                         const char *what, int node)
{
    if (dnnl_primitive_desc_create(pd, op_desc, NULL, e->eng, hint) != dnnl_success)
        return no_primitive(ctx, what, node);
    return CV_OK;
}

static const dnnl_memory_desc_t *q(const_dnnl_primitive_desc_t pd, dnnl_query_t what)
{
    return dnnl_primitive_desc_query_md(pd, what, 0);
}

/* The parameter `k` of node `nd` bound as a value in `layout` (the parameter's own memory). */
static cv_status param_value(tplanner *p, const cv_node *nd, int k,
                             const dnnl_memory_desc_t *layout, int *out)
{
    return bound_value(p->ctx, p->e, layout, param(p->e, nd, k), out);
}

/* A copy of the weights `user` in layout `want`, refreshed by a reorder in list `l` each step. */
static cv_status relaid(tplanner *p, xlist *l, int user, const dnnl_memory_desc_t *want, int *out)
{
    if (dnnl_memory_desc_equal(md_of(p, user), want)) {
        *out = user;
        return CV_OK;
    }
    cv_status s = new_value(p->ctx, p->e, want, 1, out);
    return s ? s : reorder_step(p->ctx, p->e, l, user, *out, 0);
}

/* Accumulates value `src` (any layout) into the gradient tensor of parameter `k`. */
static cv_status into_grad(tplanner *p, const cv_node *nd, int k, const dnnl_memory_desc_t *plain,
                           int src)
{
    cv_tensor *g = pgrad(p, nd, k);
    if (!g) return CV_OK;
    int gv;
    cv_status s = bound_value(p->ctx, p->e, plain, g->data, &gv);
    return s ? s : reorder_step(p->ctx, p->e, &p->e->bwd, src, gv, 1);
}

/* A primitive of a weighted op (convolution, inner product) with its optional bias argument:
 * forward (SRC, WEIGHTS, DST [, BIAS]) or backward weights (SRC, DIFF_DST, DIFF_WEIGHTS
 * [, DIFF_BIAS]). bias < 0: none. */
static cv_status weighted_step(tplanner *p, xlist *l, const_dnnl_primitive_desc_t pd,
                               const int kinds[4], int a, int b, int c, int bias)
{
    return prim_step(p->ctx, p->e, l, pd, bias >= 0 ? 4 : 3, kinds, (int[]){a, b, c, bias});
}

static const int FWD_ARGS[4] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST, DNNL_ARG_BIAS};
static const int BWD_W_ARGS[4] = {DNNL_ARG_SRC, DNNL_ARG_DIFF_DST, DNNL_ARG_DIFF_WEIGHTS,
                                  DNNL_ARG_DIFF_BIAS};

/* ---- gradient bookkeeping ---- */

static cv_status dval_of(tplanner *p, int node, int *out)
{
    if (p->dval[node] < 0) {
        cv_status s = new_value(p->ctx, p->e, md_of(p, p->e->node_val[node]), 1, &p->dval[node]);
        if (s) return s;
    }
    *out = p->dval[node];
    return CV_OK;
}

/* Where a backward primitive should write node's gradient in layout `want`: the gradient itself
 * when this is its first contribution and the layouts agree, else a temporary. */
static cv_status grad_target(tplanner *p, int node, const dnnl_memory_desc_t *want, int *out)
{
    int d;
    cv_status s = dval_of(p, node, &d);
    if (s) return s;
    if (!p->written[node] && dnnl_memory_desc_equal(md_of(p, d), want)) {
        *out = d;
        return CV_OK;
    }
    return new_value(p->ctx, p->e, want, 1, out);
}

/* Adds `src` into node's gradient: the first contribution copies, later ones accumulate. */
static cv_status contribute(tplanner *p, int node, int src)
{
    int d;
    cv_status s = dval_of(p, node, &d);
    if (s) return s;
    if (src != d) s = reorder_step(p->ctx, p->e, &p->e->bwd, src, d, p->written[node]);
    p->written[node] = 1;
    return s;
}

/* ---- forward ---- */

static cv_status fwd_ref(tplanner *p, int i)
{
    cv_exec *e = p->e;
    const cv_node *nd = &e->g->nodes[i];
    xstep x = {.kind = X_REF, .node = i, .nin = nd->nin};
    dnnl_memory_desc_t plain;
    cv_status s = CV_OK;
    for (int k = 0; !s && k < nd->nin; k++) {
        md_plain(&plain, &e->shapes[nd->in[k]]);
        s = as_layout(p->ctx, e, &e->fwd, in_val(p, nd, k), &plain, &x.in_val[k], p->temps,
                      &p->ntemps);
        p->t[i].x[k] = x.in_val[k];
    }
    md_plain(&plain, &e->shapes[i]);
    if (!s) s = new_value(p->ctx, e, &plain, 1, &e->node_val[i]);
    x.out_val = e->node_val[i];
    p->t[i].ref = 1;
    return s ? s : add_xstep(p->ctx, &e->fwd, &x);
}

/* Binds a weighted op's forward primitive (t->pd made): its source in the layout it wants, the
 * weights re-laid-out each step from the parameter (plain layout `w_user`), the optional bias, and
 * a new destination value. */
static cv_status fwd_weighted(tplanner *p, int i, const dnnl_memory_desc_t *w_user,
                              const dnnl_memory_desc_t *b_md)
{
    cv_exec *e = p->e;
    const cv_node *nd = &e->g->nodes[i];
    tnode *t = &p->t[i];
    int bv = -1, y = -1;
    cv_status s = as_layout(p->ctx, e, &e->fwd, in_val(p, nd, 0), q(t->pd, dnnl_query_src_md),
                            &t->x[0], p->temps, &p->ntemps);
    if (!s) s = param_value(p, nd, 0, w_user, &t->w_user);
    if (!s) s = relaid(p, &e->fwd, t->w_user, q(t->pd, dnnl_query_weights_md), &t->w_fwd);
    if (!s && nd->param[1] >= 0) s = param_value(p, nd, 1, b_md, &bv);
    if (!s) s = new_value(p->ctx, e, q(t->pd, dnnl_query_dst_md), 1, &y);
    if (s) return s;
    e->node_val[i] = y;
    return weighted_step(p, &e->fwd, t->pd, FWD_ARGS, t->x[0], t->w_fwd, y, bv);
}

/* A convolution's weight, [G, O/G, I, kh, kw] when grouped (the stored weight may be [O, I]), as
 * type dt in torchvision's layout (`user`) or any. */
static cv_status conv_weight_desc(const tplanner *p, const cv_node *nd, dnnl_data_type_t dt,
                                  int user, dnnl_memory_desc_t *md)
{
    const cv_tensor *wt = cv_state_tensor(p->e->params, nd->param[0]);
    int64_t O = wt->shape[0], G = nd->a.groups;
    int64_t wd5[5] = {G, O / G, wt->shape[1], nd->a.kh, nd->a.kw},
            wd4[4] = {O, wt->shape[1], nd->a.kh, nd->a.kw};
    dnnl_format_tag_t tag = !user ? dnnl_format_tag_any : G > 1 ? dnnl_goihw : dnnl_oihw;
    return desc_dt(p->ctx, md, G > 1 ? 5 : 4, G > 1 ? wd5 : wd4, dt, tag);
}

static cv_status fwd_conv(tplanner *p, int i)
{
    cv_exec *e = p->e;
    cv_ctx *ctx = p->ctx;
    const cv_node *nd = &e->g->nodes[i];
    tnode *t = &p->t[i];
    const cv_shape4 *xs = &e->shapes[nd->in[0]], *ys = &e->shapes[i];
    int64_t O = cv_state_tensor(e->params, nd->param[0])->shape[0];
    dnnl_memory_desc_t src_any, dst_any, w_any, w_user, b_md;
    cv_status s = desc_dt(ctx, &src_any, 4, xs->d, p->lowp, dnnl_format_tag_any);
    if (!s) s = desc(ctx, &dst_any, 4, ys->d, dnnl_format_tag_any);
    if (!s) s = desc(ctx, &b_md, 1, &O, dnnl_x);
    if (!s) s = conv_weight_desc(p, nd, p->lowp, 0, &w_any);
    if (!s) s = conv_weight_desc(p, nd, dnnl_f32, 1, &w_user);
    if (s) return s;
    dnnl_dims_t strides, dil, pl, pr;
    conv_geometry(nd, xs, ys, nd->a.kh, nd->a.kw, strides, dil, pl, pr);
    int has_bias = nd->param[1] >= 0;
    /* Direct, never Winograd, in the training forward: its rounding feeds training-mode batch
     * norm, which amplifies it (DenseNet-121 after one SGD step: 2.3e-3 from PyTorch float64 with
     * Winograd, 4.3e-6 without, PyTorch float32 3.6e-6). The backward passes keep Winograd. */
    dnnl_convolution_desc_t cd;
    DNNL(ctx, dnnl_dilated_convolution_forward_desc_init(
                  &cd, dnnl_forward_training, dnnl_convolution_direct, &src_any, &w_any,
                  has_bias ? &b_md : NULL, &dst_any, strides, dil, pl, pr));
    if ((s = make_pd(ctx, e, &cd, NULL, &t->pd, "convolution", i))) return s;
    return fwd_weighted(p, i, &w_user, &b_md);
}

static cv_status fwd_linear(tplanner *p, int i)
{
    cv_exec *e = p->e;
    cv_ctx *ctx = p->ctx;
    const cv_node *nd = &e->g->nodes[i];
    tnode *t = &p->t[i];
    const cv_shape4 *xs = &e->shapes[nd->in[0]], *ys = &e->shapes[i];
    int64_t wd[2] = {ys->d[1], xs->d[1]};
    dnnl_memory_desc_t src, w_any, w_user, b_md, dst;
    cv_status s = desc_dt(ctx, &src, 2, xs->d, p->lowp, dnnl_nc);
    if (!s) s = desc_dt(ctx, &w_any, 2, wd, p->lowp, dnnl_format_tag_any);
    if (!s) s = desc(ctx, &w_user, 2, wd, dnnl_oi);
    if (!s) s = desc(ctx, &b_md, 1, &ys->d[1], dnnl_x);
    if (!s) s = desc(ctx, &dst, 2, ys->d, dnnl_nc);
    if (s) return s;
    int has_bias = nd->param[1] >= 0;
    dnnl_inner_product_desc_t ipd;
    DNNL(ctx, dnnl_inner_product_forward_desc_init(&ipd, dnnl_forward_training, &src, &w_any,
                                                   has_bias ? &b_md : NULL, &dst));
    if ((s = make_pd(ctx, e, &ipd, NULL, &t->pd, "inner product", i))) return s;
    return fwd_weighted(p, i, &w_user, &b_md);
}

/* Batch norm's flags: synchronised batch norm (io->sum) computes the statistics itself, over all
 * ranks, and has the primitives take them as given. */
static unsigned bn_flags(const tplanner *p)
{
    return dnnl_use_scale | dnnl_use_shift | (p->io->sum ? dnnl_use_global_stats : 0);
}

static cv_status fwd_bn(tplanner *p, int i)
{
    cv_exec *e = p->e;
    cv_ctx *ctx = p->ctx;
    const cv_node *nd = &e->g->nodes[i];
    tnode *t = &p->t[i];
    t->x[0] = in_val(p, nd, 0);
    dnnl_batch_normalization_desc_t bd;
    DNNL(ctx, dnnl_batch_normalization_forward_desc_init(
                  &bd, dnnl_forward_training, md_of(p, t->x[0]), nd->a.eps, bn_flags(p)));
    cv_status s = make_pd(ctx, e, &bd, NULL, &t->pd, "batch norm", i);
    dnnl_memory_desc_t c_md;
    if (!s) s = desc(ctx, &c_md, 1, &e->shapes[i].d[1], dnnl_x);
    int sc, sh, y = -1;
    if (!s) s = param_value(p, nd, 0, &c_md, &sc);
    if (!s) s = param_value(p, nd, 1, &c_md, &sh);
    if (!s) s = new_value(ctx, e, &c_md, 1, &t->mean);
    if (!s) s = new_value(ctx, e, &c_md, 1, &t->var);
    if (!s) s = new_value(ctx, e, q(t->pd, dnnl_query_dst_md), 1, &y);
    if (!s && p->io->sum) { /* the statistics (and running ones) from a plain copy of the input */
        dnnl_memory_desc_t plain;
        md_plain(&plain, &e->shapes[nd->in[0]]);
        xstep x = {.kind = X_BN_SYNC_STATS, .node = i, .nin = 3, .in_val = {-1, t->mean, t->var}};
        s = as_layout(ctx, e, &e->fwd, t->x[0], &plain, &x.in_val[0], p->temps, &p->ntemps);
        if (!s) s = add_xstep(ctx, &e->fwd, &x);
    }
    if (!s)
        s = prim_step(ctx, e, &e->fwd, t->pd, 6,
                      (int[]){DNNL_ARG_SRC, DNNL_ARG_DST, DNNL_ARG_MEAN, DNNL_ARG_VARIANCE,
                              DNNL_ARG_SCALE, DNNL_ARG_SHIFT},
                      (int[]){t->x[0], y, t->mean, t->var, sc, sh});
    if (s) return s;
    e->node_val[i] = y;
    if (p->io->sum) return CV_OK; /* X_BN_SYNC_STATS updated the running statistics */
    xstep upd = {.kind = X_BN_UPDATE, .node = i, .nin = 2, .in_val = {t->mean, t->var}};
    return add_xstep(ctx, &e->fwd, &upd);
}

/* LayerNorm over the channels at each position: oneDNN's layer normalisation on a channels-last
 * copy of the input (NHWC; [N, F] for rank 2, the plain layout) viewed as [positions, channels],
 * as the eval planner runs it. Its batch statistics (per position) are kept for the backward. A
 * value outside the arena (the graph's input) cannot be viewed; the reference kernel takes it. */
static cv_status ln_descs(tplanner *p, int i, dnnl_memory_desc_t *cl, dnnl_memory_desc_t *rows,
                          dnnl_memory_desc_t *stat, dnnl_memory_desc_t *c_md)
{
    const cv_shape4 *ys = &p->e->shapes[i];
    int64_t C = ys->d[1], M = shape_numel(ys) / C, rd[2] = {M, C};
    md_cl(cl, ys);
    cv_status s = desc(p->ctx, rows, 2, rd, dnnl_nc);
    if (!s) s = desc(p->ctx, stat, 1, &M, dnnl_x);
    return s ? s : desc(p->ctx, c_md, 1, &C, dnnl_x);
}

static cv_status fwd_layernorm(tplanner *p, int i)
{
    cv_exec *e = p->e;
    cv_ctx *ctx = p->ctx;
    const cv_node *nd = &e->g->nodes[i];
    tnode *t = &p->t[i];
    dnnl_memory_desc_t cl, rows, stat, c_md;
    cv_status s = ln_descs(p, i, &cl, &rows, &stat, &c_md);
    if (!s) s = as_layout(ctx, e, &e->fwd, in_val(p, nd, 0), &cl, &t->x[0], p->temps, &p->ntemps);
    if (s) return s;
    if (e->vals[t->x[0]].slot < 0) return fwd_ref(p, i);
    dnnl_layer_normalization_desc_t ld;
    DNNL(ctx,
         dnnl_layer_normalization_forward_desc_init(&ld, dnnl_forward_training, &rows, &stat,
                                                    nd->a.eps, dnnl_use_scale | dnnl_use_shift));
    int xr, yr, sc, sh, y = -1;
    s = make_pd(ctx, e, &ld, NULL, &t->pd, "layer norm", i);
    if (!s) s = new_value(ctx, e, &cl, 1, &y);
    if (!s) s = alias_value(ctx, e, t->x[0], &rows, &xr);
    if (!s) s = alias_value(ctx, e, y, &rows, &yr);
    if (!s) s = param_value(p, nd, 0, &c_md, &sc);
    if (!s) s = param_value(p, nd, 1, &c_md, &sh);
    if (!s) s = new_value(ctx, e, &stat, 1, &t->mean);
    if (!s) s = new_value(ctx, e, &stat, 1, &t->var);
    if (s) return s;
    e->node_val[i] = y;
    return prim_step(ctx, e, &e->fwd, t->pd, 6,
                     (int[]){DNNL_ARG_SRC, DNNL_ARG_MEAN, DNNL_ARG_VARIANCE, DNNL_ARG_SCALE,
                             DNNL_ARG_SHIFT, DNNL_ARG_DST},
                     (int[]){xr, t->mean, t->var, sc, sh, yr});
}

/* Multi-head and windowed attention on the channels-last qkv, as the eval planner runs them:
 * scores (dnnl_cl.c) into [rows, tokens], oneDNN's softmax along the rows in place (its output,
 * the probabilities, kept for the backward), then the product with v. Swin V2 keeps its prepared
 * q, k, v in x[1] and its position-bias table in x[2]. */
static cv_status attn_descs(tplanner *p, int i, dnnl_memory_desc_t *cl_in, dnnl_memory_desc_t *smd)
{
    const cv_node *nd = &p->e->g->nodes[i];
    const cv_shape4 *xs = &p->e->shapes[nd->in[0]];
    int64_t sd[2];
    cl_score_shape(nd, xs, sd);
    md_cl(cl_in, xs);
    return desc(p->ctx, smd, 2, sd, dnnl_nc);
}

static cv_status fwd_attention(tplanner *p, int i)
{
    cv_exec *e = p->e;
    cv_ctx *ctx = p->ctx;
    const cv_node *nd = &e->g->nodes[i];
    tnode *t = &p->t[i];
    int v2 = nd->op == OP_WINDOW_ATTENTION_V2;
    dnnl_memory_desc_t cl_in, smd, cl_out;
    md_cl(&cl_out, &e->shapes[i]);
    cv_status s = attn_descs(p, i, &cl_in, &smd);
    if (!s)
        s = as_layout(ctx, e, &e->fwd, in_val(p, nd, 0), &cl_in, &t->x[0], p->temps, &p->ntemps);
    if (!s && v2) s = cl_v2_steps(ctx, e, &e->fwd, i, t->x[0], &t->x[2], &t->x[1]);
    if (!s) s = new_value(ctx, e, &smd, 1, &t->ws);
    if (s) return s;
    int q = v2 ? t->x[1] : t->x[0];
    xstep a = {.kind = X_CL,
               .node = i,
               .nin = v2 ? 2 : 1,
               .in_val = {q, v2 ? t->x[2] : -1},
               .out_val = t->ws,
               .phase = CL_OP};
    if ((s = add_xstep(ctx, &e->fwd, &a))) return s;
    dnnl_softmax_desc_t sd;
    DNNL(ctx, dnnl_softmax_forward_desc_init(&sd, dnnl_forward_training, &smd, 1));
    if ((s = make_pd(ctx, e, &sd, NULL, &t->pd, "softmax", i))) return s;
    s = prim_step(ctx, e, &e->fwd, t->pd, 2, (int[]){DNNL_ARG_SRC, DNNL_ARG_DST},
                  (int[]){t->ws, t->ws});
    if (!s) s = new_value(ctx, e, &cl_out, 1, &e->node_val[i]);
    xstep b = {.kind = X_CL,
               .node = i,
               .nin = 2,
               .in_val = {q, t->ws},
               .out_val = e->node_val[i],
               .phase = CL_APPLY};
    return s ? s : add_xstep(ctx, &e->fwd, &b);
}

/* Pad and crop on channels-last values with the eval planner's kernel (dnnl_cl.c); crop's second
 * input only gives the size. Their backward is the same kernel from the output's size back to the
 * input's. */
static cv_status fwd_pad_crop(tplanner *p, int i)
{
    cv_exec *e = p->e;
    const cv_node *nd = &e->g->nodes[i];
    dnnl_memory_desc_t cl_in, cl_out;
    md_cl(&cl_in, &e->shapes[nd->in[0]]);
    md_cl(&cl_out, &e->shapes[i]);
    xstep x = {.kind = X_CL, .node = i, .nin = 1};
    cv_status s =
        as_layout(p->ctx, e, &e->fwd, in_val(p, nd, 0), &cl_in, &x.in_val[0], p->temps, &p->ntemps);
    if (!s) s = new_value(p->ctx, e, &cl_out, 1, &e->node_val[i]);
    x.out_val = e->node_val[i];
    return s ? s : add_xstep(p->ctx, &e->fwd, &x);
}

/* The training eltwise algorithm: ReLU computes its backward from its output (the same result:
 * dst > 0 exactly where src > 0), so its input need not be kept. */
static act_algs train_act(cv_act act)
{
    act_algs a = act_to_dnnl(act);
    if (a.n == 1 && a.alg[0] == dnnl_eltwise_relu && a.alpha[0] == 0)
        a.alg[0] = dnnl_eltwise_relu_use_dst_for_bwd;
    return a;
}

/* Whether node i's output may be overwritten by its consumer: it has one consumer, is not the
 * graph's output, lives in the arena, and its own backward does not read it (convolution, inner
 * product, batch norm and add read only their inputs). */
static int overwritable(const tplanner *p, int i)
{
    const cv_exec *e = p->e;
    const cv_graph *g = e->g;
    int op = g->nodes[i].op, uses = 0;
    if (p->t[i].ref || i == g->output || e->vals[e->node_val[i]].slot < 0 ||
        (op != OP_CONV && op != OP_LINEAR && op != OP_BN && op != OP_ADD))
        return 0;
    for (int j = i + 1; j < g->n; j++)
        for (int k = 0; k < g->nodes[j].nin; k++) uses += g->nodes[j].in[k] == i;
    return uses == 1;
}

static cv_status fwd_eltwise(tplanner *p, int i)
{
    cv_exec *e = p->e;
    const cv_node *nd = &e->g->nodes[i];
    tnode *t = &p->t[i];
    act_algs a = train_act(nd->a.act);
    if (a.n != 1) return fwd_ref(p, i);
    t->x[0] = in_val(p, nd, 0);
    dnnl_eltwise_desc_t ed;
    DNNL(p->ctx, dnnl_eltwise_forward_desc_init(&ed, dnnl_forward_training, a.alg[0],
                                                md_of(p, t->x[0]), a.alpha[0], a.beta[0]));
    int y = -1;
    /* in place (PyTorch's ReLU(inplace=True)) when nothing else reads the input */
    int inplace = a.alg[0] == dnnl_eltwise_relu_use_dst_for_bwd && overwritable(p, nd->in[0]);
    cv_status s = make_pd(p->ctx, e, &ed, NULL, &t->pd, "eltwise", i);
    if (!s) s = new_value(p->ctx, e, md_of(p, t->x[0]), !inplace, &y);
    if (!s && inplace) e->vals[y].slot = e->vals[t->x[0]].slot;
    if (!s)
        s = prim_step(p->ctx, e, &e->fwd, t->pd, 2, (int[]){DNNL_ARG_SRC, DNNL_ARG_DST},
                      (int[]){t->x[0], y});
    e->node_val[i] = y;
    return s;
}

static cv_status fwd_pool(tplanner *p, int i)
{
    if (pool_needs_ref(p->e, i)) return fwd_ref(p, i);
    cv_exec *e = p->e;
    cv_ctx *ctx = p->ctx;
    const cv_node *nd = &e->g->nodes[i];
    tnode *t = &p->t[i];
    t->x[0] = in_val(p, nd, 0);
    dnnl_alg_kind_t alg;
    dnnl_dims_t strides, kernel, dil, pl, pr;
    pool_geometry(nd, &e->shapes[nd->in[0]], &e->shapes[i], &alg, strides, kernel, dil, pl, pr);
    dnnl_memory_desc_t dst_any;
    cv_status s = desc(ctx, &dst_any, 4, e->shapes[i].d, dnnl_format_tag_any);
    if (s) return s;
    dnnl_pooling_v2_desc_t pdsc;
    DNNL(ctx,
         dnnl_pooling_v2_forward_desc_init(&pdsc, dnnl_forward_training, alg, md_of(p, t->x[0]),
                                           &dst_any, strides, kernel, dil, pl, pr));
    int y = -1;
    if ((s = make_pd(ctx, e, &pdsc, NULL, &t->pd, "pooling", i))) return s;
    if ((s = new_value(ctx, e, q(t->pd, dnnl_query_dst_md), 1, &y))) return s;
    e->node_val[i] = y;
    t->ws = -1;
    if (alg == dnnl_pooling_max) {
        if ((s = new_value(ctx, e, q(t->pd, dnnl_query_workspace_md), 1, &t->ws))) return s;
        return prim_step(ctx, e, &e->fwd, t->pd, 3,
                         (int[]){DNNL_ARG_SRC, DNNL_ARG_DST, DNNL_ARG_WORKSPACE},
                         (int[]){t->x[0], y, t->ws});
    }
    return prim_step(ctx, e, &e->fwd, t->pd, 2, (int[]){DNNL_ARG_SRC, DNNL_ARG_DST},
                     (int[]){t->x[0], y});
}

static cv_status fwd_add(tplanner *p, int i)
{
    cv_exec *e = p->e;
    const cv_node *nd = &e->g->nodes[i];
    tnode *t = &p->t[i];
    t->x[0] = in_val(p, nd, 0);
    cv_status s = as_layout(p->ctx, e, &e->fwd, in_val(p, nd, 1), md_of(p, t->x[0]), &t->x[1],
                            p->temps, &p->ntemps);
    if (s) return s;
    dnnl_binary_desc_t bd;
    DNNL(p->ctx, dnnl_binary_desc_init(&bd, dnnl_binary_add, md_of(p, t->x[0]), md_of(p, t->x[1]),
                                       md_of(p, t->x[0])));
    int y = -1;
    if ((s = make_pd(p->ctx, e, &bd, NULL, &t->pd, "binary", i))) return s;
    if ((s = new_value(p->ctx, e, md_of(p, t->x[0]), 1, &y))) return s;
    e->node_val[i] = y;
    return prim_step(p->ctx, e, &e->fwd, t->pd, 3,
                     (int[]){DNNL_ARG_SRC_0, DNNL_ARG_SRC_1, DNNL_ARG_DST},
                     (int[]){t->x[0], t->x[1], y});
}

static cv_status fwd_flatten(tplanner *p, int i)
{
    cv_exec *e = p->e;
    const cv_node *nd = &e->g->nodes[i];
    dnnl_memory_desc_t plain, flat;
    md_plain(&plain, &e->shapes[nd->in[0]]);
    md_plain(&flat, &e->shapes[i]);
    cv_status s = as_layout(p->ctx, e, &e->fwd, in_val(p, nd, 0), &plain, &p->t[i].x[0], p->temps,
                            &p->ntemps);
    if (!s && e->vals[p->t[i].x[0]].slot < 0)
        s = cv_fail(p->ctx, CV_ERR_UNSUPPORTED, "oneDNN backend: flatten of the input");
    if (!s) s = new_value(p->ctx, e, &flat, 0, &e->node_val[i]);
    if (!s) e->vals[e->node_val[i]].slot = e->vals[p->t[i].x[0]].slot; /* the same buffer */
    return s;
}

static cv_status fwd_dropout(tplanner *p, int i)
{
    cv_exec *e = p->e;
    const cv_node *nd = &e->g->nodes[i];
    dnnl_memory_desc_t plain;
    md_plain(&plain, &e->shapes[i]);
    xstep x = {.kind = X_DROPOUT, .node = i, .nin = 1};
    cv_status s =
        as_layout(p->ctx, e, &e->fwd, in_val(p, nd, 0), &plain, &x.in_val[0], p->temps, &p->ntemps);
    if (!s) s = new_value(p->ctx, e, &plain, 1, &e->node_val[i]);
    p->t[i].x[0] = x.in_val[0];
    x.out_val = e->node_val[i];
    return s ? s : add_xstep(p->ctx, &e->fwd, &x);
}

/* ---- backward ---- */

static cv_status bwd_ref(tplanner *p, int i, int dy)
{
    cv_exec *e = p->e;
    const cv_node *nd = &e->g->nodes[i];
    xstep x = {
        .kind = X_REF_BWD, .node = i, .nin = nd->nin, .out_val = e->node_val[i], .dout_val = dy};
    dnnl_memory_desc_t plain;
    cv_status s = CV_OK;
    for (int k = 0; k < nd->nin; k++) {
        x.in_val[k] = p->t[i].x[k];
        x.din_val[k] = -1;
        md_plain(&plain, &e->shapes[nd->in[k]]);
        if (p->need[nd->in[k]] && (s = new_value(p->ctx, e, &plain, 1, &x.din_val[k]))) return s;
    }
    if ((s = add_xstep(p->ctx, &e->bwd, &x))) return s;
    for (int k = 0; !s && k < nd->nin; k++)
        if (x.din_val[k] >= 0) s = contribute(p, nd->in[k], x.din_val[k]);
    return s;
}

/* The output gradient dy in the layout a backward primitive wants: dy itself, or a reorder (to
 * bf16 under mixed precision) made once and shared by the node's backward-data and -weights. */
static cv_status dy_as(tplanner *p, int dy, const dnnl_memory_desc_t *want, int *copy, int *out)
{
    if (*copy >= 0 && dnnl_memory_desc_equal(md_of(p, *copy), want)) {
        *out = *copy;
        return CV_OK;
    }
    int tmp[1], nt = 0;
    cv_status s = as_layout(p->ctx, p->e, &p->e->bwd, dy, want, out, tmp, &nt);
    if (!s && nt) *copy = *out;
    return s;
}

/* The input gradient of a weighted op from its backward-data primitive `pd`: dy and the weights
 * in the layouts it wants (the forward's weights when the layouts agree; *dyc as in dy_as), into
 * the producer's gradient. */
static cv_status bwd_data(tplanner *p, int i, int dy, int *dyc, const_dnnl_primitive_desc_t pd)
{
    cv_exec *e = p->e;
    const cv_node *nd = &e->g->nodes[i];
    tnode *t = &p->t[i];
    const dnnl_memory_desc_t *wmd = q(pd, dnnl_query_weights_md);
    int wb = t->w_fwd, dx;
    cv_status s = dy_as(p, dy, q(pd, dnnl_query_diff_dst_md), dyc, &dy);
    if (!s && !dnnl_memory_desc_equal(wmd, md_of(p, t->w_fwd)))
        s = relaid(p, &e->bwd, t->w_user, wmd, &wb);
    if (!s) s = grad_target(p, nd->in[0], q(pd, dnnl_query_diff_src_md), &dx);
    if (!s)
        s = prim_step(p->ctx, e, &e->bwd, pd, 3,
                      (int[]){DNNL_ARG_DIFF_DST, DNNL_ARG_WEIGHTS, DNNL_ARG_DIFF_SRC},
                      (int[]){dy, wb, dx});
    return s ? s : contribute(p, nd->in[0], dx);
}

/* Weight (and bias) gradients of a weighted op from its backward-weights primitive `pd` (dy as in
 * bwd_data), accumulated into the parameters' gradient tensors. */
static cv_status bwd_weights(tplanner *p, int i, int x, int dy, int *dyc,
                             const_dnnl_primitive_desc_t pd, const dnnl_memory_desc_t *b_md)
{
    cv_exec *e = p->e;
    const cv_node *nd = &e->g->nodes[i];
    tnode *t = &p->t[i];
    int dw, db = -1, tmp[1], nt = 0;
    cv_status s = dy_as(p, dy, q(pd, dnnl_query_diff_dst_md), dyc, &dy);
    if (!s) s = as_layout(p->ctx, e, &e->bwd, x, q(pd, dnnl_query_src_md), &x, tmp, &nt);
    if (!s) s = new_value(p->ctx, e, q(pd, dnnl_query_diff_weights_md), 1, &dw);
    if (!s && nd->param[1] >= 0) s = new_value(p->ctx, e, b_md, 1, &db);
    if (!s) s = weighted_step(p, &e->bwd, pd, BWD_W_ARGS, x, dy, dw, db);
    if (!s) s = into_grad(p, nd, 0, md_of(p, t->w_user), dw);
    if (!s && db >= 0) s = into_grad(p, nd, 1, b_md, db);
    return s;
}

static cv_status bwd_conv(tplanner *p, int i, int dy)
{
    cv_exec *e = p->e;
    cv_ctx *ctx = p->ctx;
    const cv_node *nd = &e->g->nodes[i];
    tnode *t = &p->t[i];
    const cv_shape4 *xs = &e->shapes[nd->in[0]], *ys = &e->shapes[i];
    int64_t O = cv_state_tensor(e->params, nd->param[0])->shape[0];
    /* float32: the gradients in the values' own layouts. bf16: backward data reads a bf16 copy of
     * the output gradient and bf16 weights and writes a float32 input gradient; the weight gradient
     * comes from the float32 input and output gradient (more accurate, and oneDNN 2.6's bf16
     * backward-weights kernels ran 5x slower here than its float32 ones) */
    dnnl_memory_desc_t w_any, b_md, dx_md = *md_of(p, t->x[0]), dy_md = *md_of(p, dy);
    cv_status s = conv_weight_desc(p, nd, p->lowp, 0, &w_any);
    if (!s) s = desc(ctx, &b_md, 1, &O, dnnl_x);
    if (!s && p->lowp != dnnl_f32) s = desc(ctx, &dx_md, 4, xs->d, dnnl_format_tag_any);
    if (!s && p->lowp != dnnl_f32) s = desc_dt(ctx, &dy_md, 4, ys->d, p->lowp, dnnl_format_tag_any);
    if (s) return s;
    dnnl_dims_t strides, dil, pl, pr;
    conv_geometry(nd, xs, ys, nd->a.kh, nd->a.kw, strides, dil, pl, pr);
    dnnl_primitive_desc_t pd;
    dnnl_status_t ds = dnnl_unimplemented;
    int dyc = -1;
    if (p->need[nd->in[0]]) {
        for (int a = conv_first_alg(ys); a < CONV_ALGS && ds != dnnl_success; a++) {
            dnnl_convolution_desc_t cd;
            ds = dnnl_dilated_convolution_backward_data_desc_init(&cd, conv_algs[a], &dx_md, &w_any,
                                                                  &dy_md, strides, dil, pl, pr);
            if (ds == dnnl_success) ds = dnnl_primitive_desc_create(&pd, &cd, NULL, e->eng, t->pd);
        }
        if (ds != dnnl_success) return no_primitive(ctx, "convolution backward data", i);
        s = bwd_data(p, i, dy, &dyc, pd);
        dnnl_primitive_desc_destroy(pd);
        if (s) return s;
    }
    if (!pgrad(p, nd, 0) && !pgrad(p, nd, 1)) return CV_OK;
    dnnl_memory_desc_t w_f32; /* the weight gradient is float32 */
    if ((s = conv_weight_desc(p, nd, dnnl_f32, 0, &w_f32))) return s;
    ds = dnnl_unimplemented;
    int lowp = p->lowp != dnnl_f32, xw = lowp ? in_val(p, nd, 0) : t->x[0];
    dnnl_memory_desc_t dyw = lowp ? *md_of(p, dy) : dy_md, x_any, dy_any;
    if ((s = desc(ctx, &x_any, 4, xs->d, dnnl_format_tag_any)) ||
        (s = desc(ctx, &dy_any, 4, ys->d, dnnl_format_tag_any)))
        return s;
    /* In the values' layouts unless oneDNN has only its reference kernel for them (ViT's patch
     * embedding, a 32x32 stride-32 kernel on the plain 3-channel input with a blocked output
     * gradient: 10.5 of vit_b_32's 12 s per step); then in the layouts it picks, reordered to. */
    for (int pass = 0; pass < 2 && ds != dnnl_success; pass++)
        for (int a = conv_first_alg(ys); a < CONV_ALGS && ds != dnnl_success; a++) {
            dnnl_convolution_desc_t cd;
            ds = dnnl_dilated_convolution_backward_weights_desc_init(
                &cd, conv_algs[a], pass ? &x_any : md_of(p, xw), &w_f32,
                nd->param[1] >= 0 ? &b_md : NULL, pass ? &dy_any : &dyw, strides, dil, pl, pr);
            if (ds == dnnl_success) ds = dnnl_primitive_desc_create(&pd, &cd, NULL, e->eng, t->pd);
            if (ds == dnnl_success && !pass) ds = reject_ref_impl(&pd);
        }
    if (ds != dnnl_success) return no_primitive(ctx, "convolution backward weights", i);
    s = bwd_weights(p, i, xw, dy, &dyc, pd, &b_md);
    dnnl_primitive_desc_destroy(pd);
    return s;
}

static cv_status bwd_linear(tplanner *p, int i, int dy)
{
    cv_exec *e = p->e;
    cv_ctx *ctx = p->ctx;
    const cv_node *nd = &e->g->nodes[i];
    tnode *t = &p->t[i];
    const cv_shape4 *xs = &e->shapes[nd->in[0]], *ys = &e->shapes[i];
    int64_t wd[2] = {ys->d[1], xs->d[1]};
    dnnl_memory_desc_t w_any, w_f32, b_md, dx_md, dy_md;
    cv_status s = desc_dt(ctx, &w_any, 2, wd, p->lowp, dnnl_format_tag_any);
    if (!s) s = desc(ctx, &w_f32, 2, wd, dnnl_format_tag_any);
    if (!s) s = desc(ctx, &b_md, 1, &ys->d[1], dnnl_x);
    if (!s) s = desc(ctx, &dx_md, 2, xs->d, dnnl_nc);
    if (!s) s = desc_dt(ctx, &dy_md, 2, ys->d, p->lowp, dnnl_nc);
    if (s) return s;
    dnnl_inner_product_desc_t ipd;
    dnnl_primitive_desc_t pd;
    int dyc = -1;
    if (p->need[nd->in[0]]) {
        DNNL(ctx, dnnl_inner_product_backward_data_desc_init(&ipd, &dx_md, &w_any, &dy_md));
        if ((s = make_pd(ctx, e, &ipd, t->pd, &pd, "inner product backward data", i))) return s;
        s = bwd_data(p, i, dy, &dyc, pd);
        dnnl_primitive_desc_destroy(pd);
        if (s) return s;
    }
    if (!pgrad(p, nd, 0) && !pgrad(p, nd, 1)) return CV_OK;
    DNNL(ctx, dnnl_inner_product_backward_weights_desc_init(
                  &ipd, md_of(p, t->x[0]), &w_f32, nd->param[1] >= 0 ? &b_md : NULL, &dy_md));
    if ((s = make_pd(ctx, e, &ipd, t->pd, &pd, "inner product backward weights", i))) return s;
    s = bwd_weights(p, i, t->x[0], dy, &dyc, pd, &b_md);
    dnnl_primitive_desc_destroy(pd);
    return s;
}

/* Synchronised batch norm's input gradient: oneDNN's backward `dx` (the statistics taken as
 * constants) plus the correction (x - mean) k1 + k0, whose factors X_BN_SYNC_BWD computes from the
 * sums over the ranks of this rank's Σdy (`dsh`) and Σdy x̂ (`dsc`); see dnnl_common.c. */
static cv_status bwd_bn_sync(tplanner *p, int i, int dx, int dsc, int dsh)
{
    cv_exec *e = p->e;
    cv_ctx *ctx = p->ctx;
    tnode *t = &p->t[i];
    const cv_shape4 *s4 = &e->shapes[i];
    int64_t kd[4] = {1, s4->d[1], 1, 1};
    int rank = s4->rank == 4 ? 4 : 2, mv, k1, k0;
    dnnl_memory_desc_t k_md;
    cv_status s = desc(ctx, &k_md, rank, kd, rank == 4 ? dnnl_abcd : dnnl_ab);
    if (!s) s = new_value(ctx, e, &k_md, 1, &k1);
    if (!s) s = new_value(ctx, e, &k_md, 1, &k0);
    if (!s) s = new_value(ctx, e, &k_md, 0, &mv); /* the mean, shaped to broadcast */
    if (s) return s;
    e->vals[mv].slot = e->vals[t->mean].slot;
    xstep x = {.kind = X_BN_SYNC_BWD,
               .node = i,
               .nin = 3,
               .in_val = {dsh, dsc, t->var},
               .din_val = {k1, k0}};
    if ((s = add_xstep(ctx, &e->bwd, &x))) return s;
    dnnl_binary_desc_t bd;
    DNNL(ctx, dnnl_binary_desc_init(&bd, dnnl_binary_sub, md_of(p, t->x[0]), &k_md, md_of(p, dx)));
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    dnnl_primitive_desc_t pd = NULL;
    int ok = dnnl_primitive_attr_create(&attr) == dnnl_success &&
             dnnl_post_ops_create(&po) == dnnl_success &&
             dnnl_post_ops_append_binary(po, dnnl_binary_mul, &k_md) == dnnl_success &&
             dnnl_post_ops_append_binary(po, dnnl_binary_add, &k_md) == dnnl_success &&
             dnnl_post_ops_append_sum(po, 1.f) == dnnl_success &&
             dnnl_primitive_attr_set_post_ops(attr, po) == dnnl_success &&
             dnnl_primitive_desc_create(&pd, &bd, attr, e->eng, NULL) == dnnl_success;
    if (po) dnnl_post_ops_destroy(po);
    if (attr) dnnl_primitive_attr_destroy(attr);
    if (!ok) return no_primitive(ctx, "synchronised batch norm backward (binary)", i);
    s = prim_step(ctx, e, &e->bwd, pd, 5,
                  (int[]){DNNL_ARG_SRC_0, DNNL_ARG_SRC_1, DNNL_ARG_DST,
                          DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1,
                          DNNL_ARG_ATTR_MULTIPLE_POST_OP(1) | DNNL_ARG_SRC_1},
                  (int[]){t->x[0], mv, dx, k1, k0});
    dnnl_primitive_desc_destroy(pd);
    return s;
}

static cv_status bwd_bn(tplanner *p, int i, int dy)
{
    cv_exec *e = p->e;
    cv_ctx *ctx = p->ctx;
    const cv_node *nd = &e->g->nodes[i];
    tnode *t = &p->t[i];
    /* synchronised batch norm needs the sums (the parameter gradients) in any case */
    int want_params = pgrad(p, nd, 0) || pgrad(p, nd, 1) || p->io->sum;
    dnnl_batch_normalization_desc_t bd;
    DNNL(ctx, dnnl_batch_normalization_backward_desc_init(
                  &bd, want_params ? dnnl_backward : dnnl_backward_data, md_of(p, dy),
                  md_of(p, t->x[0]), nd->a.eps, bn_flags(p)));
    dnnl_primitive_desc_t pd;
    cv_status s = make_pd(ctx, e, &bd, t->pd, &pd, "batch norm backward", i);
    if (s) return s;
    dnnl_memory_desc_t c_md;
    int sc, sh, dx, dsc = -1, dsh = -1;
    s = desc(ctx, &c_md, 1, &e->shapes[i].d[1], dnnl_x);
    if (!s) s = param_value(p, nd, 0, &c_md, &sc);
    if (!s)
        s = param_value(p, nd, 1, &c_md, &sh); /* oneDNN 2.6 wants it whenever use_shift is set */
    if (!s)
        s = p->need[nd->in[0]] ? grad_target(p, nd->in[0], q(pd, dnnl_query_diff_src_md), &dx)
                               : new_value(ctx, e, q(pd, dnnl_query_diff_src_md), 1, &dx);
    if (!s && want_params) s = new_value(ctx, e, &c_md, 1, &dsc);
    if (!s && want_params) s = new_value(ctx, e, &c_md, 1, &dsh);
    if (!s)
        s = want_params
                ? prim_step(ctx, e, &e->bwd, pd, 9,
                            (int[]){DNNL_ARG_SRC, DNNL_ARG_MEAN, DNNL_ARG_VARIANCE,
                                    DNNL_ARG_DIFF_DST, DNNL_ARG_SCALE, DNNL_ARG_SHIFT,
                                    DNNL_ARG_DIFF_SRC, DNNL_ARG_DIFF_SCALE, DNNL_ARG_DIFF_SHIFT},
                            (int[]){t->x[0], t->mean, t->var, dy, sc, sh, dx, dsc, dsh})
                : prim_step(ctx, e, &e->bwd, pd, 7,
                            (int[]){DNNL_ARG_SRC, DNNL_ARG_MEAN, DNNL_ARG_VARIANCE,
                                    DNNL_ARG_DIFF_DST, DNNL_ARG_SCALE, DNNL_ARG_SHIFT,
                                    DNNL_ARG_DIFF_SRC},
                            (int[]){t->x[0], t->mean, t->var, dy, sc, sh, dx});
    dnnl_primitive_desc_destroy(pd);
    if (!s && p->need[nd->in[0]] && p->io->sum) s = bwd_bn_sync(p, i, dx, dsc, dsh);
    if (!s && p->need[nd->in[0]]) s = contribute(p, nd->in[0], dx);
    if (!s && want_params) s = into_grad(p, nd, 0, &c_md, dsc);
    if (!s && want_params) s = into_grad(p, nd, 1, &c_md, dsh);
    return s;
}

/* LayerNorm's backward on the [positions, channels] views of its channels-last input copy, output
 * gradient and input gradient; the weight and bias gradients (diff scale and shift) accumulate
 * into the parameters' gradients as batch norm's do. */
static cv_status bwd_layernorm(tplanner *p, int i, int dy)
{
    cv_exec *e = p->e;
    cv_ctx *ctx = p->ctx;
    const cv_node *nd = &e->g->nodes[i];
    tnode *t = &p->t[i];
    int want_params = pgrad(p, nd, 0) || pgrad(p, nd, 1), need_x = p->need[nd->in[0]];
    dnnl_memory_desc_t cl, rows, stat, c_md;
    cv_status s = ln_descs(p, i, &cl, &rows, &stat, &c_md);
    if (s) return s;
    dnnl_layer_normalization_desc_t ld;
    DNNL(ctx, dnnl_layer_normalization_backward_desc_init(
                  &ld, want_params ? dnnl_backward : dnnl_backward_data, &rows, &rows, &stat,
                  nd->a.eps, dnnl_use_scale | dnnl_use_shift));
    dnnl_primitive_desc_t pd;
    if ((s = make_pd(ctx, e, &ld, t->pd, &pd, "layer norm backward", i))) return s;
    int xr, dyr, dx, dxr, sc, sh, dsc = -1, dsh = -1; /* dy is in the output's layout: cl */
    s = need_x ? grad_target(p, nd->in[0], &cl, &dx) : new_value(ctx, e, &cl, 1, &dx);
    if (!s) s = alias_value(ctx, e, t->x[0], &rows, &xr);
    if (!s) s = alias_value(ctx, e, dy, &rows, &dyr);
    if (!s) s = alias_value(ctx, e, dx, &rows, &dxr);
    if (!s) s = param_value(p, nd, 0, &c_md, &sc);
    if (!s)
        s = param_value(p, nd, 1, &c_md, &sh); /* oneDNN 2.6 wants it whenever use_shift is set */
    if (!s && want_params) s = new_value(ctx, e, &c_md, 1, &dsc);
    if (!s && want_params) s = new_value(ctx, e, &c_md, 1, &dsh);
    if (!s)
        s = want_params
                ? prim_step(ctx, e, &e->bwd, pd, 9,
                            (int[]){DNNL_ARG_SRC, DNNL_ARG_MEAN, DNNL_ARG_VARIANCE,
                                    DNNL_ARG_DIFF_DST, DNNL_ARG_SCALE, DNNL_ARG_SHIFT,
                                    DNNL_ARG_DIFF_SRC, DNNL_ARG_DIFF_SCALE, DNNL_ARG_DIFF_SHIFT},
                            (int[]){xr, t->mean, t->var, dyr, sc, sh, dxr, dsc, dsh})
                : prim_step(ctx, e, &e->bwd, pd, 7,
                            (int[]){DNNL_ARG_SRC, DNNL_ARG_MEAN, DNNL_ARG_VARIANCE,
                                    DNNL_ARG_DIFF_DST, DNNL_ARG_SCALE, DNNL_ARG_SHIFT,
                                    DNNL_ARG_DIFF_SRC},
                            (int[]){xr, t->mean, t->var, dyr, sc, sh, dxr});
    dnnl_primitive_desc_destroy(pd);
    if (!s && need_x) s = contribute(p, nd->in[0], dx);
    if (!s && want_params) s = into_grad(p, nd, 0, &c_md, dsc);
    if (!s && want_params) s = into_grad(p, nd, 1, &c_md, dsh);
    return s;
}

/* Attention's backward: the probabilities' gradient dP (dnnl_cl.c), oneDNN's softmax backward
 * in place over it (the scores' gradient), then dqkv and the bias table's gradient (dnnl_cl.c). */
static cv_status bwd_attention(tplanner *p, int i, int dy)
{
    cv_exec *e = p->e;
    cv_ctx *ctx = p->ctx;
    const cv_node *nd = &e->g->nodes[i];
    tnode *t = &p->t[i];
    int v2 = nd->op == OP_WINDOW_ATTENTION_V2, q = v2 ? t->x[1] : t->x[0];
    dnnl_memory_desc_t cl_in, smd;
    int dp, dx = -1, dq = -1, dtab = -1;
    cv_status s = attn_descs(p, i, &cl_in, &smd);
    if (!s) s = new_value(ctx, e, &smd, 1, &dp);
    if (s) return s;
    xstep a = {.kind = X_CL_BWD,
               .node = i,
               .nin = 2,
               .in_val = {q, -1},
               .out_val = -1,
               .din_val = {dp, -1},
               .dout_val = dy,
               .phase = CL_OP};
    if ((s = add_xstep(ctx, &e->bwd, &a))) return s;
    dnnl_softmax_desc_t sd;
    DNNL(ctx, dnnl_softmax_backward_desc_init(&sd, &smd, &smd, 1));
    dnnl_primitive_desc_t pd;
    if ((s = make_pd(ctx, e, &sd, t->pd, &pd, "softmax backward", i))) return s;
    s = prim_step(ctx, e, &e->bwd, pd, 3,
                  (int[]){DNNL_ARG_DST, DNNL_ARG_DIFF_DST, DNNL_ARG_DIFF_SRC},
                  (int[]){t->ws, dp, dp});
    dnnl_primitive_desc_destroy(pd);
    int need_x = p->need[nd->in[0]];
    if (!s) s = need_x ? grad_target(p, nd->in[0], &cl_in, &dx) : new_value(ctx, e, &cl_in, 1, &dx);
    if (!s && v2) s = new_value(ctx, e, &cl_in, 1, &dq);
    if (!s && v2) s = new_value(ctx, e, md_of(p, t->x[2]), 1, &dtab);
    xstep b = a;
    b.nin = v2 ? 3 : 2, b.in_val[1] = t->ws, b.in_val[2] = -1, b.phase = CL_APPLY;
    b.din_val[0] = v2 ? dq : dx, b.din_val[1] = dp, b.din_val[2] = dtab;
    if (!s) s = add_xstep(ctx, &e->bwd, &b);
    xstep c = {.kind = X_CL_BWD,
               .node = i,
               .nin = 3,
               .in_val = {t->x[0], t->x[1], -1},
               .out_val = -1,
               .din_val = {dx, dq, dtab},
               .dout_val = dy,
               .phase = CL_V2_PREPARE};
    if (!s && v2) s = add_xstep(ctx, &e->bwd, &c);
    return s || !need_x ? s : contribute(p, nd->in[0], dx);
}

static cv_status bwd_eltwise(tplanner *p, int i, int dy)
{
    cv_exec *e = p->e;
    const cv_node *nd = &e->g->nodes[i];
    tnode *t = &p->t[i];
    act_algs a = train_act(nd->a.act);
    int use_dst = a.alg[0] == dnnl_eltwise_relu_use_dst_for_bwd;
    int data = use_dst ? e->node_val[i] : t->x[0];
    dnnl_eltwise_desc_t ed;
    DNNL(p->ctx, dnnl_eltwise_backward_desc_init(&ed, a.alg[0], md_of(p, dy), md_of(p, data),
                                                 a.alpha[0], a.beta[0]));
    dnnl_primitive_desc_t pd;
    int dx;
    cv_status s = make_pd(p->ctx, e, &ed, t->pd, &pd, "eltwise backward", i);
    if (s) return s;
    s = grad_target(p, nd->in[0], q(pd, dnnl_query_diff_src_md), &dx);
    if (!s)
        s = prim_step(
            p->ctx, e, &e->bwd, pd, 3,
            (int[]){use_dst ? DNNL_ARG_DST : DNNL_ARG_SRC, DNNL_ARG_DIFF_DST, DNNL_ARG_DIFF_SRC},
            (int[]){data, dy, dx});
    dnnl_primitive_desc_destroy(pd);
    return s ? s : contribute(p, nd->in[0], dx);
}

static cv_status bwd_pool(tplanner *p, int i, int dy)
{
    cv_exec *e = p->e;
    const cv_node *nd = &e->g->nodes[i];
    tnode *t = &p->t[i];
    dnnl_alg_kind_t alg;
    dnnl_dims_t strides, kernel, dil, pl, pr;
    pool_geometry(nd, &e->shapes[nd->in[0]], &e->shapes[i], &alg, strides, kernel, dil, pl, pr);
    dnnl_pooling_v2_desc_t pdsc;
    DNNL(p->ctx, dnnl_pooling_v2_backward_desc_init(&pdsc, alg, md_of(p, t->x[0]), md_of(p, dy),
                                                    strides, kernel, dil, pl, pr));
    dnnl_primitive_desc_t pd;
    int dx;
    cv_status s = make_pd(p->ctx, e, &pdsc, t->pd, &pd, "pooling backward", i);
    if (s) return s;
    s = grad_target(p, nd->in[0], q(pd, dnnl_query_diff_src_md), &dx);
    if (!s)
        s = t->ws >= 0
                ? prim_step(p->ctx, e, &e->bwd, pd, 3,
                            (int[]){DNNL_ARG_DIFF_DST, DNNL_ARG_WORKSPACE, DNNL_ARG_DIFF_SRC},
                            (int[]){dy, t->ws, dx})
                : prim_step(p->ctx, e, &e->bwd, pd, 2,
                            (int[]){DNNL_ARG_DIFF_DST, DNNL_ARG_DIFF_SRC}, (int[]){dy, dx});
    dnnl_primitive_desc_destroy(pd);
    return s ? s : contribute(p, nd->in[0], dx);
}

static cv_status bwd_node(tplanner *p, int i)
{
    cv_exec *e = p->e;
    const cv_node *nd = &e->g->nodes[i];
    int dy = p->dval[i];
    if (p->t[i].ref) return bwd_ref(p, i, dy);
    switch (nd->op) {
    case OP_CONV:
        return bwd_conv(p, i, dy);
    case OP_LINEAR:
        return bwd_linear(p, i, dy);
    case OP_BN:
        return bwd_bn(p, i, dy);
    case OP_LAYERNORM:
        return bwd_layernorm(p, i, dy);
    case OP_ATTENTION:
    case OP_WINDOW_ATTENTION:
    case OP_WINDOW_ATTENTION_V2:
    case OP_PARTITION_ATTENTION:
        return bwd_attention(p, i, dy);
    case OP_PAD:
    case OP_CROP: {
        if (!p->need[nd->in[0]]) return CV_OK;
        dnnl_memory_desc_t cl_in;
        md_cl(&cl_in, &e->shapes[nd->in[0]]);
        xstep x = {.kind = X_CL_BWD,
                   .node = i,
                   .nin = 1,
                   .in_val = {-1},
                   .out_val = -1,
                   .dout_val = dy}; /* dy is channels-last, as the output */
        cv_status s = grad_target(p, nd->in[0], &cl_in, &x.din_val[0]);
        if (!s) s = add_xstep(p->ctx, &e->bwd, &x);
        return s ? s : contribute(p, nd->in[0], x.din_val[0]);
    }
    case OP_ACT:
        return p->need[nd->in[0]] ? bwd_eltwise(p, i, dy) : CV_OK;
    case OP_MAXPOOL:
    case OP_AVGPOOL:
    case OP_ADAPTIVE_AVGPOOL:
        return p->need[nd->in[0]] ? bwd_pool(p, i, dy) : CV_OK;
    case OP_ADD: {
        cv_status s = CV_OK;
        for (int k = 0; !s && k < 2; k++)
            if (p->need[nd->in[k]]) s = contribute(p, nd->in[k], dy);
        return s;
    }
    case OP_FLATTEN: {
        /* the gradient read back as the plain 4-D array it flattens */
        if (!p->need[nd->in[0]]) return CV_OK;
        dnnl_memory_desc_t plain;
        md_plain(&plain, &e->shapes[nd->in[0]]);
        int view;
        cv_status s = new_value(p->ctx, e, &plain, 0, &view);
        if (!s) e->vals[view].slot = e->vals[dy].slot;
        return s ? s : contribute(p, nd->in[0], view);
    }
    case OP_DROPOUT: {
        if (!p->need[nd->in[0]]) return CV_OK;
        dnnl_memory_desc_t plain;
        md_plain(&plain, &e->shapes[i]);
        xstep x = {.kind = X_DROPOUT_BWD, .node = i, .dout_val = dy};
        cv_status s = grad_target(p, nd->in[0], &plain, &x.din_val[0]);
        if (!s) s = add_xstep(p->ctx, &e->bwd, &x);
        return s ? s : contribute(p, nd->in[0], x.din_val[0]);
    }
    default:
        return cv_fail(p->ctx, CV_ERR_UNSUPPORTED, "oneDNN backend: no training for %s",
                       op_name(nd->op));
    }
}

cv_status dnnl_plan_train(cv_ctx *ctx, cv_exec *e, const cv_train_io *io)
{
    const cv_graph *g = e->g;
    int n = g->n;
    tplanner p = {.ctx = ctx, .e = e, .io = io, .lowp = io->bf16 ? dnnl_bf16 : dnnl_f32};
    /* AVX512-BF16 and above (AMX) include its bits; elsewhere oneDNN would emulate bf16 slowly */
    if (io->bf16 && (dnnl_get_effective_cpu_isa() & dnnl_cpu_isa_avx512_core_bf16) !=
                        dnnl_cpu_isa_avx512_core_bf16)
        return cv_fail(ctx, CV_ERR_UNSUPPORTED,
                       "bf16 mixed precision needs a CPU with AVX512-BF16; this one has none");
    p.t = calloc((size_t)n, sizeof *p.t);
    p.dval = malloc((size_t)n * sizeof *p.dval);
    p.written = calloc((size_t)n, 1);
    p.need = calloc((size_t)n, 1);
    cv_status s = CV_OK;
    if (!p.t || !p.dval || !p.written || !p.need)
        s = cv_fail(ctx, CV_ERR_NOMEM, "oneDNN plan: out of memory");
    for (int i = 0; !s && i < n; i++) {
        const cv_node *nd = &g->nodes[i];
        p.dval[i] = -1;
        for (int k = 0; k < nd->nparam; k++)
            p.need[i] |= nd->param[k] >= 0 && io->grad[nd->param[k]];
        for (int k = 0; k < nd->nin; k++) p.need[i] |= p.need[nd->in[k]];
        p.ntemps = 0;
        e->cur_node = i; /* its primitive steps count for it in cv_model_profile */
        switch (nd->op) {
        case OP_INPUT: {
            dnnl_memory_desc_t md;
            md_plain(&md, &e->shapes[i]);
            s = new_value(ctx, e, &md, 0, &e->node_val[i]);
            e->input_val = e->node_val[i];
            break;
        }
        case OP_CONV:
            s = fwd_conv(&p, i);
            break;
        case OP_LINEAR:
            s = fwd_linear(&p, i);
            break;
        case OP_BN:
            s = fwd_bn(&p, i);
            break;
        case OP_LAYERNORM:
            s = fwd_layernorm(&p, i);
            break;
        case OP_ATTENTION:
        case OP_WINDOW_ATTENTION:
        case OP_WINDOW_ATTENTION_V2:
        case OP_PARTITION_ATTENTION:
            s = fwd_attention(&p, i);
            break;
        case OP_PAD:
        case OP_CROP:
            s = fwd_pad_crop(&p, i);
            break;
        case OP_ACT:
            s = fwd_eltwise(&p, i);
            break;
        case OP_MAXPOOL:
        case OP_AVGPOOL:
        case OP_ADAPTIVE_AVGPOOL:
            s = fwd_pool(&p, i);
            break;
        case OP_ADD:
            s = fwd_add(&p, i);
            break;
        case OP_FLATTEN:
            s = fwd_flatten(&p, i);
            break;
        case OP_DROPOUT:
            s = fwd_dropout(&p, i);
            break;
        default:
            s = fwd_ref(&p, i);
            break; /* mul, concat, softmax */
        }
    }
    if (!s) {
        dnnl_memory_desc_t plain;
        md_plain(&plain, &e->shapes[g->output]);
        p.ntemps = 0;
        s = as_layout(ctx, e, &e->fwd, e->node_val[g->output], &plain, &e->output_val, p.temps,
                      &p.ntemps);
        if (!s) s = new_value(ctx, e, &plain, 0, &e->dout_val);
        if (!s && p.need[g->output]) s = contribute(&p, g->output, e->dout_val);
    }
    int *final = s ? NULL : grad_final_node(g, e->params);
    if (!s && !final) s = cv_fail(ctx, CV_ERR_NOMEM, "oneDNN plan: out of memory");
    for (int i = n - 1; !s && i >= 0; i--) {
        e->cur_node = i;
        if (p.need[i] && p.written[i] && g->nodes[i].op != OP_INPUT) s = bwd_node(&p, i);
        /* after the last step that accumulates into a parameter's gradient: a hook step */
        for (int k = 0; !s && k < g->nodes[i].nparam; k++) {
            int q = g->nodes[i].param[k];
            if (q >= 0 && io->grad[q] && final[q] == i)
                s = add_xstep(ctx, &e->bwd, &(xstep){.kind = X_GRAD_READY, .node = q});
        }
    }
    free(final);
    e->cur_node = -1;
    if (!s) s = exec_pack_slots(ctx, e);
    for (int i = 0; p.t && i < n; i++)
        if (p.t[i].pd) dnnl_primitive_desc_destroy(p.t[i].pd);
    free(p.t), free(p.dval), free(p.written), free(p.need);
    return s;
}
