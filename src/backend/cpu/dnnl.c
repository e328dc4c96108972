/* The CPU backend on oneDNN (C API, v2.x): the eval planner and the backend's entry points.
 *
 * Planning walks the fused steps (core/fuse.h) once: each step becomes a oneDNN primitive whose
 * source takes the layout its producer chose (a reorder is inserted only where a primitive insists
 * on another), so activations stay in oneDNN's blocked layouts from the first convolution to the
 * global pool. Folded conv+BN weights are reordered into the primitive's preferred layout once.
 * Activation buffers are assigned to slots by liveness and reused; running is a flat loop.
 * Training plans are built by dnnl_train.c. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/dnnl_common.h"
#include "core/fuse.h"

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
    return s ? s : reorder_step(p->ctx, e, &e->fwd, v, *out, 0);
}

static cv_status plan_conv(planner *p, const cv_step *st, int step, int *out)
{
    cv_exec *e = p->e;
    cv_ctx *ctx = p->ctx;
    const cv_graph *g = e->g;
    const cv_node *nd = &g->nodes[st->node];
    const cv_tensor *wt = cv_state_tensor(p->params, nd->param[0]);
    const cv_shape4 *xs = &e->shapes[nd->in[0]], *ys = &e->shapes[st->out];
    int64_t O = wt->shape[0], I = wt->shape[1], KH = nd->a.kh, KW = nd->a.kw, G = nd->a.groups;

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
    if (st->scale >= 0) {
        const float *ls = param(p, &g->nodes[st->scale], 0);
        for (int64_t o = 0; o < O; o++) {
            for (size_t k = 0; k < wn / (size_t)O; k++)
                w[(size_t)o * (wn / (size_t)O) + k] *= ls[o];
            b[o] *= ls[o];
        }
    }

    dnnl_memory_desc_t src_any, w_any, b_md, dst_any, w_user, src_cl, dst_cl;
    int x0 = e->node_val[p->f->value[nd->in[0]]];
    md_cl(&src_cl, xs);
    int cl = e->vals[x0].cl && dnnl_memory_desc_equal(&e->vals[x0].md, &src_cl);
    dnnl_dims_t sd = {xs->d[0], xs->d[1], xs->d[2], xs->d[3]},
                dd = {ys->d[0], ys->d[1], ys->d[2], ys->d[3]};
    dnnl_dims_t bd = {O};
    DNNL(ctx, dnnl_memory_desc_init_by_tag(&src_any, 4, sd, dnnl_f32, dnnl_format_tag_any));
    DNNL(ctx, dnnl_memory_desc_init_by_tag(&dst_any, 4, dd, dnnl_f32, dnnl_format_tag_any));
    DNNL(ctx, dnnl_memory_desc_init_by_tag(&b_md, 1, bd, dnnl_f32, dnnl_x));
    md_cl(&dst_cl, ys);
    if (G > 1) {
        dnnl_dims_t wd = {G, O / G, I, KH, KW};
        DNNL(ctx, dnnl_memory_desc_init_by_tag(&w_any, 5, wd, dnnl_f32, dnnl_format_tag_any));
        DNNL(ctx, dnnl_memory_desc_init_by_tag(&w_user, 5, wd, dnnl_f32, dnnl_goihw));
    } else {
        dnnl_dims_t wd = {O, I, KH, KW};
        DNNL(ctx, dnnl_memory_desc_init_by_tag(&w_any, 4, wd, dnnl_f32, dnnl_format_tag_any));
        DNNL(ctx, dnnl_memory_desc_init_by_tag(&w_user, 4, wd, dnnl_f32, dnnl_oihw));
    }
    dnnl_dims_t strides, dil, pl, pr;
    conv_geometry(nd, xs, ys, KH, KW, strides, dil, pl, pr);
    dnnl_primitive_attr_t attr;
    if ((s = post_ops(ctx, st->act, st->sum >= 0, &attr))) return s;
    dnnl_primitive_desc_t pd;
    dnnl_status_t ds = dnnl_unimplemented;
    /* A channels-last transformer value (tokens, LayerNorm and attention outputs, and the
     * convolutions that keep them) stays channels-last when oneDNN has an optimised convolution
     * for it, so that LayerNorm and the attention kernels around it need no reorders. Otherwise
     * the convolution picks its layout (and algorithm: Winograd wants blocked layouts, and a
     * CNN's NHWC activations would lose it). */
    for (int pass = cl ? 0 : 1; pass < 2 && ds != dnnl_success; pass++)
        for (int a = conv_first_alg(ys); a < CONV_ALGS && ds != dnnl_success; a++) {
            dnnl_convolution_desc_t cd;
            ds = dnnl_dilated_convolution_forward_desc_init(
                &cd, dnnl_forward_inference, conv_algs[a], pass ? &src_any : &src_cl, &w_any, &b_md,
                pass ? &dst_any : &dst_cl, strides, dil, pl, pr);
            if (ds == dnnl_success) ds = dnnl_primitive_desc_create(&pd, &cd, attr, e->eng, NULL);
            if (ds == dnnl_success && !pass) ds = reject_ref_impl(&pd);
        }
    dnnl_primitive_attr_destroy(attr);
    if (ds != dnnl_success)
        return cv_fail(ctx, CV_ERR_INTERNAL, "oneDNN: no convolution for node %d", st->node);
    cl = cl &&
         dnnl_memory_desc_equal(dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0), &dst_cl);

    int x, wv, bv, y = -1;
    s = as_layout(ctx, e, &e->fwd, x0, dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0), &x,
                  p->temps, &p->ntemps);
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
        s = prim_step(ctx, e, &e->fwd, pd, 4,
                      (int[]){DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_BIAS, DNNL_ARG_DST},
                      (int[]){x, wv, bv, y});
    dnnl_primitive_desc_destroy(pd);
    if (!s) e->vals[y].cl = cl;
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
    int x, wv, bv = -1, y = -1;
    s = as_layout(ctx, e, &e->fwd, e->node_val[p->f->value[nd->in[0]]], &src, &x, p->temps,
                  &p->ntemps);
    if (!s)
        s = weights_value(ctx, e, param(p, nd, 0), &w_user,
                          dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0), &wv);
    if (!s && bias) {
        s = new_value(ctx, e, &b_md, 0, &bv);
        if (!s) DNNL(ctx, dnnl_memory_set_data_handle(e->vals[bv].mem, (void *)bias));
    }
    if (!s) s = new_value(ctx, e, dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0), 1, &y);
    if (!s)
        s = bias ? prim_step(ctx, e, &e->fwd, pd, 4,
                             (int[]){DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_BIAS, DNNL_ARG_DST},
                             (int[]){x, wv, bv, y})
                 : prim_step(ctx, e, &e->fwd, pd, 3,
                             (int[]){DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST},
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
    dnnl_memory_desc_t dst_any;
    dnnl_dims_t dd = {ys->d[0], ys->d[1], ys->d[2], ys->d[3]};
    DNNL(ctx, dnnl_memory_desc_init_by_tag(&dst_any, 4, dd, dnnl_f32, dnnl_format_tag_any));
    dnnl_alg_kind_t alg;
    dnnl_dims_t strides, kernel, dil, pl, pr;
    pool_geometry(nd, xs, ys, &alg, strides, kernel, dil, pl, pr);
    dnnl_pooling_v2_desc_t pdsc;
    DNNL(ctx, dnnl_pooling_v2_forward_desc_init(&pdsc, dnnl_forward_inference, alg, &e->vals[x].md,
                                                &dst_any, strides, kernel, dil, pl, pr));
    dnnl_primitive_desc_t pd;
    DNNL(ctx, dnnl_primitive_desc_create(&pd, &pdsc, NULL, e->eng, NULL));
    int y;
    cv_status s = new_value(ctx, e, dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0), 1, &y);
    if (!s)
        s = prim_step(ctx, e, &e->fwd, pd, 2, (int[]){DNNL_ARG_SRC, DNNL_ARG_DST}, (int[]){x, y});
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
        s = prim_step(ctx, e, &e->fwd, pd, 2, (int[]){DNNL_ARG_SRC, DNNL_ARG_DST},
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
    cv_status s = CV_OK;
    if (shape_numel(bs) != shape_numel(&e->shapes[nd->in[0]])) {
        /* The broadcast operand [N, C, 1, 1] (squeeze-excitation) goes in a's layout. oneDNN's
         * optimised binary kernels take nChw16c or NHWC; any other a (RegNet's grouped
         * convolutions leave nChw8c) would run its reference kernel, 30x slower than a reorder
         * of a to NHWC. */
        const cv_shape4 *as = &e->shapes[nd->in[0]];
        dnnl_dims_t ad = {as->d[0], as->d[1], as->d[2], as->d[3]},
                    d = {bs->d[0], bs->d[1], bs->d[2], bs->d[3]};
        dnnl_memory_desc_t m;
        DNNL(ctx, dnnl_memory_desc_init_by_tag(&m, 4, ad, dnnl_f32, dnnl_nChw16c));
        dnnl_format_tag_t tag =
            dnnl_memory_desc_equal(&m, &e->vals[a].md) ? dnnl_nChw16c : dnnl_nhwc;
        if (tag == dnnl_nhwc) {
            md_cl(&m, as);
            s = as_layout(ctx, e, &e->fwd, a, &m, &a, p->temps, &p->ntemps);
            if (s) return s;
        }
        DNNL(ctx, dnnl_memory_desc_init_by_tag(&b_want, 4, d, dnnl_f32, tag));
    } else {
        b_want = e->vals[a].md;
    }
    dnnl_binary_desc_t bd;
    DNNL(ctx, dnnl_binary_desc_init(&bd, nd->op == OP_ADD ? dnnl_binary_add : dnnl_binary_mul,
                                    &e->vals[a].md, &b_want, &e->vals[a].md));
    dnnl_primitive_attr_t attr;
    if ((s = post_ops(ctx, st->act, 0, &attr))) return s;
    dnnl_primitive_desc_t pd;
    dnnl_status_t ds = dnnl_primitive_desc_create(&pd, &bd, attr, e->eng, NULL);
    dnnl_primitive_attr_destroy(attr);
    if (ds != dnnl_success)
        return cv_fail(ctx, CV_ERR_INTERNAL, "oneDNN: no binary primitive for node %d", st->node);
    int bb;
    s = as_layout(ctx, e, &e->fwd, b, &b_want, &bb, p->temps, &p->ntemps);
    if (!s) s = new_value(ctx, e, &e->vals[a].md, 1, out);
    if (!s)
        s = prim_step(ctx, e, &e->fwd, pd, 3, (int[]){DNNL_ARG_SRC_0, DNNL_ARG_SRC_1, DNNL_ARG_DST},
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
    if (!s) s = prim_step(ctx, e, &e->fwd, pd, nd->nin + 1, kinds, vals);
    dnnl_primitive_desc_destroy(pd);
    return s;
}

/* A batch norm that no convolution absorbed (DenseNet's pre-activation layers): oneDNN's batch
 * normalisation with the running statistics, in its input's layout, ReLU fused. */
static cv_status plan_bn(planner *p, const cv_step *st, int *out)
{
    cv_exec *e = p->e;
    cv_ctx *ctx = p->ctx;
    const cv_node *nd = &e->g->nodes[st->node];
    int x = e->node_val[p->f->value[nd->in[0]]];
    int64_t C = e->shapes[st->node].d[1];
    dnnl_memory_desc_t cmd;
    DNNL(ctx, dnnl_memory_desc_init_by_tag(&cmd, 1, (dnnl_dims_t){C}, dnnl_f32, dnnl_x));
    unsigned flags = dnnl_use_global_stats | dnnl_use_scale | dnnl_use_shift;
    if (st->act == ACT_RELU) flags |= dnnl_fuse_norm_relu;
    dnnl_batch_normalization_desc_t bd;
    DNNL(ctx, dnnl_batch_normalization_forward_desc_init(&bd, dnnl_forward_inference,
                                                         &e->vals[x].md, nd->a.eps, flags));
    dnnl_primitive_desc_t pd;
    DNNL(ctx, dnnl_primitive_desc_create(&pd, &bd, NULL, e->eng, NULL));
    int v[4];
    cv_status s = new_value(ctx, e, &e->vals[x].md, 1, out);
    for (int k = 0; k < 4 && !s; k++) s = bound_value(ctx, e, &cmd, (void *)param(p, nd, k), &v[k]);
    if (!s)
        s = prim_step(ctx, e, &e->fwd, pd, 6,
                      (int[]){DNNL_ARG_SRC, DNNL_ARG_SCALE, DNNL_ARG_SHIFT, DNNL_ARG_MEAN,
                              DNNL_ARG_VARIANCE, DNNL_ARG_DST},
                      (int[]){x, v[0], v[1], v[2], v[3], *out});
    dnnl_primitive_desc_destroy(pd);
    if (!s && st->act && st->act != ACT_RELU) s = plan_eltwise(p, *out, st->act, out);
    return s;
}

/* LayerNorm over the channels at each position: oneDNN's layer normalisation on the channels-last
 * value read as [positions, channels]. */
static cv_status plan_layernorm(planner *p, const cv_step *st, int *out)
{
    cv_exec *e = p->e;
    cv_ctx *ctx = p->ctx;
    const cv_node *nd = &e->g->nodes[st->node];
    const cv_shape4 *ys = &e->shapes[st->node];
    dnnl_memory_desc_t cl, rows, cmd;
    md_cl(&cl, ys);
    int64_t C = ys->d[1], M = shape_numel(ys) / C;
    DNNL(ctx, dnnl_memory_desc_init_by_tag(&rows, 2, (dnnl_dims_t){M, C}, dnnl_f32, dnnl_nc));
    DNNL(ctx, dnnl_memory_desc_init_by_tag(&cmd, 1, (dnnl_dims_t){C}, dnnl_f32, dnnl_x));
    dnnl_layer_normalization_desc_t ld;
    DNNL(ctx,
         dnnl_layer_normalization_forward_desc_init(&ld, dnnl_forward_inference, &rows, NULL,
                                                    nd->a.eps, dnnl_use_scale | dnnl_use_shift));
    dnnl_primitive_desc_t pd;
    DNNL(ctx, dnnl_primitive_desc_create(&pd, &ld, NULL, e->eng, NULL));
    int x, xr, yr, w, b;
    cv_status s = as_layout(ctx, e, &e->fwd, e->node_val[p->f->value[nd->in[0]]], &cl, &x, p->temps,
                            &p->ntemps);
    if (!s) s = new_value(ctx, e, &cl, 1, out);
    if (!s) e->vals[*out].cl = 1;
    if (!s) s = alias_value(ctx, e, x, &rows, &xr);
    if (!s) s = alias_value(ctx, e, *out, &rows, &yr);
    if (!s) s = bound_value(ctx, e, &cmd, (void *)param(p, nd, 0), &w);
    if (!s) s = bound_value(ctx, e, &cmd, (void *)param(p, nd, 1), &b);
    if (!s)
        s = prim_step(ctx, e, &e->fwd, pd, 4,
                      (int[]){DNNL_ARG_SRC, DNNL_ARG_SCALE, DNNL_ARG_SHIFT, DNNL_ARG_DST},
                      (int[]){xr, w, b, yr});
    dnnl_primitive_desc_destroy(pd);
    return s;
}

/* Input 0 channels-last, for a channels-last kernel. */
static cv_status cl_input(planner *p, const cv_node *nd, int *x)
{
    dnnl_memory_desc_t cl;
    md_cl(&cl, &p->e->shapes[nd->in[0]]);
    return as_layout(p->ctx, p->e, &p->e->fwd, p->e->node_val[p->f->value[nd->in[0]]], &cl, x,
                     p->temps, &p->ntemps);
}

/* Data-movement ops of the transformers (tokens, take, pad, crop, patch merge) on channels-last
 * values. */
static cv_status plan_cl(planner *p, const cv_step *st, int *out)
{
    cv_exec *e = p->e;
    xstep x = {.kind = X_CL, .node = st->node, .nin = 1};
    dnnl_memory_desc_t od;
    md_cl(&od, &e->shapes[st->node]);
    cv_status s = cl_input(p, &e->g->nodes[st->node], &x.in_val[0]);
    if (!s) s = new_value(p->ctx, e, &od, 1, out);
    if (s) return s;
    e->vals[*out].cl = 1;
    x.out_val = *out;
    return s ? s : add_xstep(p->ctx, &e->fwd, &x);
}

/* Multi-head and windowed attention: scores (dnnl_cl.c) into a temporary [rows, tokens], oneDNN's
 * softmax along the rows in place, then the product with v. Swin V2 first makes its position-bias
 * table and prepared q, k, v (temporaries too). */
static cv_status plan_attention(planner *p, const cv_step *st, int *out)
{
    cv_exec *e = p->e;
    cv_ctx *ctx = p->ctx;
    const cv_node *nd = &e->g->nodes[st->node];
    const cv_shape4 *xs = &e->shapes[nd->in[0]];
    int v2 = nd->op == OP_WINDOW_ATTENTION_V2;
    int64_t dims[2];
    cl_score_shape(nd, xs, dims);
    dnnl_memory_desc_t smd, od;
    DNNL(ctx,
         dnnl_memory_desc_init_by_tag(&smd, 2, (dnnl_dims_t){dims[0], dims[1]}, dnnl_f32, dnnl_nc));
    md_cl(&od, &e->shapes[st->node]);
    xstep a = {.kind = X_CL, .node = st->node, .nin = v2 ? 2 : 1, .phase = CL_OP};
    cv_status s = cl_input(p, nd, &a.in_val[0]);
    if (!s && v2) {
        s = cl_v2_steps(ctx, e, &e->fwd, st->node, a.in_val[0], &a.in_val[1], &a.in_val[0]);
        p->temps[p->ntemps++] = a.in_val[1];
        p->temps[p->ntemps++] = a.in_val[0];
    }
    if (!s) s = new_value(ctx, e, &smd, 1, &a.out_val);
    if (s) return s;
    p->temps[p->ntemps++] = a.out_val;
    if ((s = add_xstep(ctx, &e->fwd, &a))) return s;
    dnnl_softmax_desc_t sd;
    DNNL(ctx, dnnl_softmax_forward_desc_init(&sd, dnnl_forward_inference, &smd, 1));
    dnnl_primitive_desc_t pd;
    DNNL(ctx, dnnl_primitive_desc_create(&pd, &sd, NULL, e->eng, NULL));
    s = prim_step(ctx, e, &e->fwd, pd, 2, (int[]){DNNL_ARG_SRC, DNNL_ARG_DST},
                  (int[]){a.out_val, a.out_val});
    dnnl_primitive_desc_destroy(pd);
    if (!s) s = new_value(ctx, e, &od, 1, out);
    if (!s) e->vals[*out].cl = 1;
    xstep b = {.kind = X_CL,
               .node = st->node,
               .nin = 2,
               .in_val = {a.in_val[0], a.out_val},
               .out_val = *out,
               .phase = CL_APPLY};
    return s ? s : add_xstep(ctx, &e->fwd, &b);
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
        cv_status s = as_layout(p->ctx, e, &e->fwd, e->node_val[p->f->value[nd->in[k]]], &plain,
                                &x.in_val[k], p->temps, &p->ntemps);
        if (s) return s;
    }
    dnnl_memory_desc_t od;
    md_plain(&od, &e->shapes[st->node]);
    cv_status s = new_value(p->ctx, e, &od, 1, out);
    x.out_val = *out;
    return s ? s : add_xstep(p->ctx, &e->fwd, &x);
}

static cv_status plan_step(planner *p, int si)
{
    cv_exec *e = p->e;
    const cv_step *st = &p->f->steps[si];
    const cv_node *nd = &e->g->nodes[st->node];
    int y = -1;
    cv_status s = CV_OK;
    p->ntemps = 0;
    e->cur_node = st->node;
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
        s = pool_needs_ref(e, st->node) ? plan_ref(p, st, &y) : plan_pool(p, st, &y);
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
        s = as_layout(p->ctx, e, &e->fwd, x0, &plain, &x, p->temps, &p->ntemps);
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
    case OP_LAYERNORM:
        s = plan_layernorm(p, st, &y);
        break;
    case OP_ATTENTION:
    case OP_WINDOW_ATTENTION:
    case OP_WINDOW_ATTENTION_V2:
    case OP_PARTITION_ATTENTION:
        s = plan_attention(p, st, &y);
        break;
    case OP_TOKENS:
    case OP_TAKE:
    case OP_PAD:
    case OP_CROP:
    case OP_MERGE:
        s = plan_cl(p, st, &y);
        break;
    case OP_BN:
        s = plan_bn(p, st, &y);
        break;
    case OP_SOFTMAX:
    case OP_SLICE:
    case OP_SHUFFLE:
    case OP_AFFINE:
    case OP_CHANNEL_SCALE:
        s = plan_ref(p, st, &y);
        break;
    default:
        return cv_fail(p->ctx, CV_ERR_UNSUPPORTED, "oneDNN backend: op %s", op_name(nd->op));
    }
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

static cv_status dnnl_plan_eval(cv_ctx *ctx, cv_exec *e)
{
    cv_fused f = {0};
    cv_status s = fuse_graph(ctx, e->g, &f);
    planner p = {.ctx = ctx, .e = e, .params = e->params, .f = &f};
    for (int i = 0; !s && i < f.n; i++) s = plan_step(&p, i);
    if (!s) {
        /* the output as a plain row-major array */
        int y = e->node_val[f.value[e->g->output]];
        dnnl_memory_desc_t plain;
        md_plain(&plain, &e->shapes[e->g->output]);
        p.ntemps = 0;
        e->cur_node = e->g->output;
        s = as_layout(ctx, e, &e->fwd, y, &plain, &e->output_val, p.temps, &p.ntemps);
    }
    e->cur_node = -1;
    fuse_free(&f);
    return s;
}

static cv_status dnnl_plan(cv_ctx *ctx, const cv_graph *g, cv_state *params,
                           const cv_shape4 *shapes, cv_plan_mode mode, const cv_train_io *io,
                           cv_exec **out)
{
    cv_exec *e = NULL;
    cv_status s = exec_new(ctx, g, params, shapes, mode, &e);
    if (!s) s = mode == PLAN_TRAIN ? dnnl_plan_train(ctx, e, io) : dnnl_plan_eval(ctx, e);
    if (!s) s = exec_bind(ctx, e);
    if (s) {
        exec_free(e);
        e = NULL;
    }
    *out = e;
    return s;
}

static cv_status dnnl_run(cv_ctx *ctx, cv_exec *e, const float *in, float *out,
                          const cv_train_io *io)
{
    omp_set_num_threads(e->threads);
    DNNL(ctx, dnnl_memory_set_data_handle(e->vals[e->input_val].mem, (void *)in));
    cv_status s = run_list(ctx, e, &e->fwd, io);
    if (s) return s;
    void *y;
    DNNL(ctx, dnnl_memory_get_data_handle(e->vals[e->output_val].mem, &y));
    memcpy(out, y, (size_t)shape_numel(&e->shapes[e->g->output]) * sizeof(float));
    return CV_OK;
}

static cv_status dnnl_run_backward(cv_ctx *ctx, cv_exec *e, const float *dout,
                                   const cv_train_io *io)
{
    if (e->mode != PLAN_TRAIN)
        return cv_fail(ctx, CV_ERR_INTERNAL, "oneDNN backend: backward of an eval plan");
    omp_set_num_threads(e->threads);
    DNNL(ctx, dnnl_memory_set_data_handle(e->vals[e->dout_val].mem, (void *)dout));
    return run_list(ctx, e, &e->bwd, io);
}

static void dnnl_set_profile(cv_exec *e, cv_profile *p)
{
    e->prof = p;
}

const cv_backend_ops cv_backend_dnnl = {"onednn",          dnnl_plan, dnnl_run,
                                        dnnl_run_backward, exec_free, dnnl_set_profile};
