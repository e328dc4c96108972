/* Shared plumbing of the oneDNN planners: arena slots, values, step lists, reorders, and the
 * interpreter loop that runs a step list. */
#include "backend/cpu/dnnl_common.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "backend/ref/kernels.h"
#include "backend/sync_bn.h"
#include "oneapi/dnnl/dnnl_debug.h"

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
int slot_get(cv_exec *e, size_t size)
{
    int best = -1, any = -1;
    for (int i = 0; i < e->nslots; i++) {
        if (e->slots[i].free != 1) continue;
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

cv_status new_value(cv_ctx *ctx, cv_exec *e, const dnnl_memory_desc_t *md, int in_arena, int *out)
{
    dnnl_memory_desc_t copy = *md; /* md may point into e->vals, which grow() can move */
    if (grow((void **)&e->vals, &e->capvals, e->nvals, sizeof *e->vals))
        return cv_fail(ctx, CV_ERR_NOMEM, "oneDNN plan: out of memory");
    value *v = &e->vals[e->nvals];
    v->md = copy;
    md = &v->md;
    v->slot = -1;
    v->cl = 0;
    if (in_arena && (v->slot = slot_get(e, dnnl_memory_desc_get_size(md))) < 0)
        return cv_fail(ctx, CV_ERR_NOMEM, "oneDNN plan: out of memory");
    DNNL(ctx, dnnl_memory_create(&v->mem, md, e->eng, DNNL_MEMORY_NONE));
    *out = e->nvals++;
    return CV_OK;
}

cv_status bound_value(cv_ctx *ctx, cv_exec *e, const dnnl_memory_desc_t *md, void *data, int *out)
{
    cv_status s = new_value(ctx, e, md, 0, out);
    if (!s) DNNL(ctx, dnnl_memory_set_data_handle(e->vals[*out].mem, data));
    return s;
}

cv_status add_xstep(cv_ctx *ctx, xlist *l, const xstep *x)
{
    if (grow((void **)&l->v, &l->cap, l->n, sizeof *l->v))
        return cv_fail(ctx, CV_ERR_NOMEM, "oneDNN plan: out of memory");
    l->v[l->n++] = *x;
    return CV_OK;
}

cv_status own(cv_ctx *ctx, cv_exec *e, void *p)
{
    if (!p || grow((void **)&e->owned, &e->capowned, e->nowned, sizeof *e->owned)) {
        cv_aligned_free(p);
        return cv_fail(ctx, CV_ERR_NOMEM, "oneDNN plan: out of memory for weights");
    }
    e->owned[e->nowned++] = p;
    return CV_OK;
}

cv_status prim_step(cv_ctx *ctx, cv_exec *e, xlist *l, const_dnnl_primitive_desc_t pd, int nargs,
                    const int *kinds, const int *vals)
{
    dnnl_primitive_kind_t kind = dnnl_undefined_primitive;
    dnnl_primitive_desc_query(pd, dnnl_query_primitive_kind, 0, &kind);
    xstep x = {.kind = X_PRIM,
               .nargs = nargs,
               .node = e->cur_node,
               .prof = kind == dnnl_reorder ? PROF_REORDER : PROF_PRIM};
    DNNL(ctx, dnnl_primitive_create(&x.prim, pd));
    memcpy(x.arg_kind, kinds, (size_t)nargs * sizeof *kinds);
    memcpy(x.arg_val, vals, (size_t)nargs * sizeof *vals);
    cv_status s = add_xstep(ctx, l, &x);
    if (s) dnnl_primitive_destroy(x.prim);
    return s;
}

cv_status reorder_step(cv_ctx *ctx, cv_exec *e, xlist *l, int src, int dst, int accumulate)
{
    dnnl_primitive_attr_t attr = NULL;
    if (accumulate) {
        cv_status s = post_ops(ctx, ACT_NONE, 1, &attr);
        if (s) return s;
    }
    dnnl_primitive_desc_t pd;
    dnnl_status_t ds = dnnl_reorder_primitive_desc_create(&pd, &e->vals[src].md, e->eng,
                                                          &e->vals[dst].md, e->eng, attr);
    if (attr) dnnl_primitive_attr_destroy(attr);
    if (ds != dnnl_success)
        return cv_fail(ctx, CV_ERR_INTERNAL, "oneDNN: no reorder (status %d)", (int)ds);
    cv_status s =
        prim_step(ctx, e, l, pd, 2, (int[]){DNNL_ARG_FROM, DNNL_ARG_TO}, (int[]){src, dst});
    dnnl_primitive_desc_destroy(pd);
    return s;
}

void md_plain(dnnl_memory_desc_t *md, const cv_shape4 *s)
{
    dnnl_dims_t d;
    for (int i = 0; i < s->rank; i++) d[i] = s->d[i];
    dnnl_memory_desc_init_by_tag(md, s->rank, d, dnnl_f32, s->rank == 4 ? dnnl_nchw : dnnl_nc);
}

void md_cl(dnnl_memory_desc_t *md, const cv_shape4 *s)
{
    dnnl_dims_t d;
    for (int i = 0; i < s->rank; i++) d[i] = s->d[i];
    dnnl_memory_desc_init_by_tag(md, s->rank, d, dnnl_f32, s->rank == 4 ? dnnl_nhwc : dnnl_nc);
}

cv_status alias_value(cv_ctx *ctx, cv_exec *e, int v, const dnnl_memory_desc_t *md, int *out)
{
    if (e->vals[v].slot < 0)
        return cv_fail(ctx, CV_ERR_INTERNAL, "oneDNN plan: a view of a value outside the arena");
    cv_status s = new_value(ctx, e, md, 0, out);
    if (!s) e->vals[*out].slot = e->vals[v].slot;
    return s;
}

cv_status as_layout(cv_ctx *ctx, cv_exec *e, xlist *l, int v, const dnnl_memory_desc_t *want,
                    int *out, int *temps, int *ntemps)
{
    if (dnnl_memory_desc_equal(&e->vals[v].md, want)) {
        *out = v;
        return CV_OK;
    }
    int t;
    cv_status s = new_value(ctx, e, want, 1, &t);
    if (!s) s = reorder_step(ctx, e, l, v, t, 0);
    if (s) return s;
    temps[(*ntemps)++] = t;
    *out = t;
    return CV_OK;
}

cv_status weights_value(cv_ctx *ctx, cv_exec *e, const float *data, const dnnl_memory_desc_t *user,
                        const dnnl_memory_desc_t *want, int *out)
{
    void *buf = cv_aligned_alloc(dnnl_memory_desc_get_size(want));
    cv_status s = own(ctx, e, buf);
    if (s) return s;
    xlist once = {0};
    int src;
    if ((s = bound_value(ctx, e, user, (void *)data, &src)) ||
        (s = bound_value(ctx, e, want, buf, out)) ||
        (s = reorder_step(ctx, e, &once, src, *out, 0)))
        goto done;
    s = run_list(ctx, e, &once, NULL);
done:
    for (int i = 0; i < once.n; i++) dnnl_primitive_destroy(once.v[i].prim);
    free(once.v);
    return s;
}

act_algs act_to_dnnl(cv_act act)
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
    case ACT_TANH:
        return (act_algs){1, {dnnl_eltwise_tanh}, {0}, {0}};
    default:
        return (act_algs){0, {0}, {0}, {0}};
    }
}

cv_status post_ops(cv_ctx *ctx, cv_act act, int sum, dnnl_primitive_attr_t *attr)
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

const dnnl_alg_kind_t conv_algs[CONV_ALGS] = {dnnl_convolution_winograd, dnnl_convolution_direct};

int conv_first_alg(const cv_shape4 *ys)
{
    /* Winograd's 4x4 output tiles waste most of their work on maps under 4x4: resnet18 training
     * at 28x28 ran at half speed with it on layer3/layer4's 2x2 and 1x1 maps. */
    return ys->d[2] >= 4 && ys->d[3] >= 4 ? 0 : 1;
}

dnnl_status_t reject_ref_impl(dnnl_primitive_desc_t *pd)
{
    const char *impl = NULL;
    if (!dnnl_primitive_desc_query(*pd, dnnl_query_impl_info_str, 0, &impl) && impl &&
        !strstr(impl, "ref"))
        return dnnl_success;
    dnnl_primitive_desc_destroy(*pd);
    return dnnl_unimplemented;
}

void conv_geometry(const cv_node *nd, const cv_shape4 *xs, const cv_shape4 *ys, int64_t kh,
                   int64_t kw, dnnl_dims_t strides, dnnl_dims_t dil, dnnl_dims_t pl, dnnl_dims_t pr)
{
    strides[0] = nd->a.sh, strides[1] = nd->a.sw;
    dil[0] = nd->a.dh - 1, dil[1] = nd->a.dw - 1;
    pl[0] = nd->a.ph, pl[1] = nd->a.pw;
    pr[0] = (ys->d[2] - 1) * nd->a.sh + (kh - 1) * nd->a.dh + 1 - xs->d[2] - nd->a.ph;
    pr[1] = (ys->d[3] - 1) * nd->a.sw + (kw - 1) * nd->a.dw + 1 - xs->d[3] - nd->a.pw;
}

void pool_geometry(const cv_node *nd, const cv_shape4 *xs, const cv_shape4 *ys,
                   dnnl_alg_kind_t *alg, dnnl_dims_t strides, dnnl_dims_t kernel, dnnl_dims_t dil,
                   dnnl_dims_t pl, dnnl_dims_t pr)
{
    cv_attrs a = nd->a;
    if (nd->op == OP_ADAPTIVE_AVGPOOL) /* callers checked that the windows are uniform */
        a = (cv_attrs){.kh = (int)(xs->d[2] / ys->d[2]),
                       .kw = (int)(xs->d[3] / ys->d[3]),
                       .sh = (int)(xs->d[2] / ys->d[2]),
                       .sw = (int)(xs->d[3] / ys->d[3]),
                       .dh = 1,
                       .dw = 1};
    *alg = nd->op == OP_MAXPOOL  ? dnnl_pooling_max
           : a.count_include_pad ? dnnl_pooling_avg_include_padding
                                 : dnnl_pooling_avg_exclude_padding;
    strides[0] = a.sh, strides[1] = a.sw, kernel[0] = a.kh, kernel[1] = a.kw;
    dil[0] = a.dh - 1, dil[1] = a.dw - 1, pl[0] = a.ph, pl[1] = a.pw;
    pr[0] = (ys->d[2] - 1) * a.sh + (a.kh - 1) * a.dh + 1 - xs->d[2] - a.ph;
    pr[1] = (ys->d[3] - 1) * a.sw + (a.kw - 1) * a.dw + 1 - xs->d[3] - a.pw;
}

int pool_needs_ref(const cv_exec *e, int node)
{
    const cv_node *nd = &e->g->nodes[node];
    const cv_shape4 *xs = &e->shapes[nd->in[0]], *ys = &e->shapes[node];
    if (nd->op == OP_ADAPTIVE_AVGPOOL) return xs->d[2] % ys->d[2] || xs->d[3] % ys->d[3];
    if (nd->op == OP_AVGPOOL && nd->a.ceil_mode && nd->a.count_include_pad) return 1;
    return 0;
}

static float *ptr(const cv_exec *e, int v)
{
    void *p = NULL;
    if (v >= 0) dnnl_memory_get_data_handle(e->vals[v].mem, &p);
    return p;
}

static float *param(const cv_exec *e, const cv_node *nd, int k)
{
    return nd->param[k] < 0 ? NULL : cv_state_tensor(e->params, nd->param[k])->data;
}

static void run_ref(cv_exec *e, const xstep *x)
{
    const cv_node *nd = &e->g->nodes[x->node];
    const float *in[CV_MAX_INPUTS];
    cv_shape4 shp[CV_MAX_INPUTS];
    for (int k = 0; k < x->nin; k++) in[k] = ptr(e, x->in_val[k]), shp[k] = e->shapes[nd->in[k]];
    float *y = ptr(e, x->out_val);
    const cv_shape4 *xs = &shp[0], *ys = &e->shapes[x->node];
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
    case OP_BN:
        ref_batchnorm(in[0], y, xs, param(e, nd, 0), param(e, nd, 1), param(e, nd, 2),
                      param(e, nd, 3), nd->a.eps);
        break;
    case OP_ACT:
        ref_act(in[0], y, shape_numel(ys), nd->a.act);
        break;
    case OP_ADD:
    case OP_MUL:
        ref_binary(nd->op, in[0], in[1], y, xs, &shp[1]);
        break;
    case OP_CONCAT:
        ref_concat(in, shp, x->nin, y);
        break;
    case OP_SLICE:
        ref_slice(in[0], y, xs, ys, nd->a.start);
        break;
    case OP_SHUFFLE:
        ref_shuffle(in[0], y, ys, nd->a.groups);
        break;
    case OP_AFFINE:
        ref_affine(in[0], y, ys, nd->a.scale, nd->a.shift);
        break;
    case OP_LAYERNORM:
        ref_layernorm(in[0], y, ys, param(e, nd, 0), param(e, nd, 1), nd->a.eps);
        break;
    case OP_CHANNEL_SCALE:
        ref_channel_scale(in[0], y, ys, param(e, nd, 0));
        break;
    case OP_TOKENS:
        ref_tokens(in[0], y, xs, param(e, nd, 0), param(e, nd, 1));
        break;
    case OP_ATTENTION:
        ref_attention(in[0], y, xs, nd->a.groups);
        break;
    case OP_TAKE:
        ref_take(in[0], y, xs, nd->a.start);
        break;
    case OP_PAD:
        ref_pad(in[0], y, xs, ys);
        break;
    case OP_CROP:
        ref_crop(in[0], y, xs, ys);
        break;
    case OP_MERGE:
        ref_merge(in[0], y, xs, ys);
        break;
    case OP_WINDOW_ATTENTION:
        ref_window_attention(in[0], y, xs, nd->a.kh, nd->a.sh, nd->a.groups, param(e, nd, 0));
        break;
    case OP_PARTITION_ATTENTION:
        ref_partition_attention(in[0], y, xs, nd->a.kh, nd->a.grid, nd->a.groups, param(e, nd, 0));
        break;
    case OP_WINDOW_ATTENTION_V2: {
        const float *prm[5];
        for (int k = 0; k < 5; k++) prm[k] = param(e, nd, k);
        ref_window_attention_v2(in[0], y, xs, nd->a.kh, nd->a.sh, nd->a.groups, nd->a.kw, prm);
        break;
    }
    default:
        break; /* the planners send nothing else here */
    }
}

static void run_cl(cv_exec *e, const xstep *x)
{
    const cv_node *nd = &e->g->nodes[x->node];
    const float *in = ptr(e, x->in_val[0]);
    float *y = ptr(e, x->out_val);
    const cv_shape4 *xs = &e->shapes[nd->in[0]], *ys = &e->shapes[x->node];
    switch (nd->op) {
    case OP_ATTENTION:
        if (x->phase == CL_APPLY)
            cl_attention_apply(in, ptr(e, x->in_val[1]), y, xs, nd->a.groups);
        else
            cl_attention_scores(in, y, xs, nd->a.groups);
        break;
    case OP_WINDOW_ATTENTION:
    case OP_WINDOW_ATTENTION_V2:
    case OP_PARTITION_ATTENTION: {
        cl_win cw = cl_win_of(nd, xs);
        int v2 = nd->op == OP_WINDOW_ATTENTION_V2;
        const float *prm[5];
        for (int k = 0; k < 5; k++) prm[k] = v2 ? param(e, nd, k) : NULL;
        if (x->phase == CL_APPLY)
            cl_window_apply(in, ptr(e, x->in_val[1]), y, xs, &cw);
        else if (x->phase == CL_OP)
            cl_window_scores(in, y, xs, &cw, v2 ? ptr(e, x->in_val[1]) : param(e, nd, 0));
        else if (x->phase == CL_V2_TABLE)
            ref_cpb_table(cw.w, cw.heads, nd->a.kw, prm, y, NULL);
        else
            ref_v2_prepare(in, y, xs, cw.heads, prm, 1);
        break;
    }
    case OP_TOKENS:
        cl_tokens(in, y, xs, param(e, nd, 0), param(e, nd, 1));
        break;
    case OP_TAKE:
        cl_take(in, y, xs, nd->a.start);
        break;
    case OP_PAD:
    case OP_CROP:
        cl_pad_crop(in, y, xs, ys);
        break;
    case OP_MERGE:
        cl_merge(in, y, xs, ys);
        break;
    default:
        break; /* the eval planner sends nothing else here */
    }
}

/* The gradient tensor of node parameter k, or NULL when it does not train. */
static float *param_grad(const cv_node *nd, int k, const cv_train_io *io)
{
    return io && nd->param[k] >= 0 && io->grad[nd->param[k]] ? io->grad[nd->param[k]]->data : NULL;
}

/* Backward on channels-last values into din_val[0]. Pad and crop: the gradient is dy's part
 * over the input (zero-filled beyond dy). Attention, around the softmax backward: phase CL_OP the
 * probabilities' gradient from dy and v, phase CL_APPLY dqkv and the bias table's gradient from
 * the scores' gradient (din_val[1]) and the probabilities (in_val[1]). Swin V2: CL_APPLY's qkv is
 * the prepared one and its table gradient goes to din_val[2]; phase CL_V2_PREPARE then takes both
 * back to qkv (in_val[0], its prepared form in_val[1]) and the parameters. */
static void run_cl_backward(cv_exec *e, const xstep *x, const cv_train_io *io)
{
    const cv_node *nd = &e->g->nodes[x->node];
    const float *qkv = ptr(e, x->in_val[0]), *dy = ptr(e, x->dout_val);
    float *out = ptr(e, x->din_val[0]);
    const cv_shape4 *xs = &e->shapes[nd->in[0]];
    int v2 = nd->op == OP_WINDOW_ATTENTION_V2, win = cl_windowed(nd);
    cl_win cw = win ? cl_win_of(nd, xs) : (cl_win){0};
    if (nd->op == OP_PAD || nd->op == OP_CROP) {
        cl_pad_crop(dy, out, &e->shapes[x->node], xs);
    } else if (x->phase == CL_OP && win) {
        cl_window_dprobs(qkv, dy, out, xs, &cw);
    } else if (x->phase == CL_OP) {
        cl_attention_dprobs(qkv, dy, out, xs, nd->a.groups);
    } else if (x->phase == CL_APPLY && win) {
        float *dtable = param_grad(nd, 0, io);
        if (v2) {
            dtable = ptr(e, x->din_val[2]);
            memset(dtable, 0, cl_v2_table_size(&cw) * sizeof(float));
        }
        cl_window_grads(qkv, dy, ptr(e, x->in_val[1]), ptr(e, x->din_val[1]), out, dtable, xs, &cw);
    } else if (x->phase == CL_APPLY) {
        cl_attention_grads(qkv, dy, ptr(e, x->in_val[1]), ptr(e, x->din_val[1]), out, xs,
                           nd->a.groups);
    } else if (x->phase == CL_V2_PREPARE) {
        const float *prm[5];
        float *grad[5];
        for (int k = 0; k < 5; k++) prm[k] = param(e, nd, k), grad[k] = param_grad(nd, k, io);
        memset(out, 0, (size_t)shape_numel(xs) * sizeof(float));
        ref_v2_prepare_backward(qkv, ptr(e, x->in_val[1]), ptr(e, x->din_val[1]), out, grad, xs,
                                cw.heads, prm, 1);
        ref_cpb_table_backward(cw.w, cw.heads, nd->a.kw, prm, ptr(e, x->din_val[2]), grad);
    }
}

cv_status cl_v2_steps(cv_ctx *ctx, cv_exec *e, xlist *l, int node, int x, int *table, int *prep)
{
    const cv_node *nd = &e->g->nodes[node];
    const cv_shape4 *xs = &e->shapes[nd->in[0]];
    cl_win cw = cl_win_of(nd, xs);
    dnnl_memory_desc_t tmd, cl;
    md_cl(&cl, xs);
    DNNL(ctx, dnnl_memory_desc_init_by_tag(&tmd, 1, (dnnl_dims_t){(int64_t)cl_v2_table_size(&cw)},
                                           dnnl_f32, dnnl_a));
    cv_status s = new_value(ctx, e, &tmd, 1, table);
    if (!s) s = new_value(ctx, e, &cl, 1, prep);
    if (s) return s;
    e->vals[*prep].cl = 1;
    xstep t = {.kind = X_CL,
               .node = node,
               .nin = 0,
               .in_val = {-1},
               .out_val = *table,
               .phase = CL_V2_TABLE};
    xstep q = {.kind = X_CL,
               .node = node,
               .nin = 1,
               .in_val = {x},
               .out_val = *prep,
               .phase = CL_V2_PREPARE};
    s = add_xstep(ctx, l, &t);
    return s ? s : add_xstep(ctx, l, &q);
}

static void run_ref_backward(cv_exec *e, const xstep *x, const cv_train_io *io)
{
    const cv_node *nd = &e->g->nodes[x->node];
    const float *in[CV_MAX_INPUTS];
    float *din[CV_MAX_INPUTS];
    cv_shape4 shp[CV_MAX_INPUTS];
    for (int k = 0; k < x->nin; k++) {
        in[k] = ptr(e, x->in_val[k]), din[k] = ptr(e, x->din_val[k]), shp[k] = e->shapes[nd->in[k]];
        if (din[k]) memset(din[k], 0, (size_t)shape_numel(&shp[k]) * sizeof(float));
    }
    const float *dy = ptr(e, x->dout_val), *y = ptr(e, x->out_val);
    const cv_shape4 *xs = &shp[0], *ys = &e->shapes[x->node];
    switch (nd->op) {
    case OP_MAXPOOL:
        ref_maxpool_backward(in[0], dy, din[0], xs, ys, &nd->a);
        break;
    case OP_AVGPOOL:
        ref_avgpool_backward(dy, din[0], xs, ys, &nd->a);
        break;
    case OP_ADAPTIVE_AVGPOOL:
        ref_adaptive_avgpool_backward(dy, din[0], xs, ys);
        break;
    case OP_SOFTMAX:
        ref_softmax_backward(y, dy, din[0], ys->d[0], ys->d[1]);
        break;
    case OP_ACT:
        ref_act_backward(in[0], dy, din[0], shape_numel(ys), nd->a.act);
        break;
    case OP_ADD:
    case OP_MUL:
        ref_binary_backward(nd->op, in[0], in[1], dy, din[0], din[1], xs, &shp[1]);
        break;
    case OP_CONCAT:
        ref_concat_backward(dy, din, shp, x->nin);
        break;
    case OP_SLICE:
        ref_slice_backward(dy, din[0], xs, ys, nd->a.start);
        break;
    case OP_SHUFFLE:
        ref_shuffle_backward(dy, din[0], ys, nd->a.groups);
        break;
    case OP_AFFINE:
        ref_affine_backward(dy, din[0], ys, nd->a.scale);
        break;
    case OP_LAYERNORM:
        ref_layernorm_backward(in[0], dy, din[0], param_grad(nd, 0, io), param_grad(nd, 1, io), ys,
                               param(e, nd, 0), nd->a.eps);
        break;
    case OP_CHANNEL_SCALE:
        ref_channel_scale_backward(in[0], dy, din[0], param_grad(nd, 0, io), ys, param(e, nd, 0));
        break;
    case OP_TOKENS:
        ref_tokens_backward(dy, din[0], param_grad(nd, 0, io), param_grad(nd, 1, io), xs);
        break;
    case OP_ATTENTION:
        if (din[0]) ref_attention_backward(in[0], dy, din[0], xs, nd->a.groups);
        break;
    case OP_TAKE:
        if (din[0]) ref_take_backward(dy, din[0], xs, nd->a.start);
        break;
    case OP_PAD:
        if (din[0]) ref_pad_backward(dy, din[0], xs, ys);
        break;
    case OP_CROP:
        if (din[0]) ref_crop_backward(dy, din[0], xs, ys);
        break;
    case OP_MERGE:
        if (din[0]) ref_merge_backward(dy, din[0], xs, ys);
        break;
    case OP_WINDOW_ATTENTION:
        ref_window_attention_backward(in[0], dy, din[0], param_grad(nd, 0, io), xs, nd->a.kh,
                                      nd->a.sh, nd->a.groups, param(e, nd, 0));
        break;
    case OP_PARTITION_ATTENTION:
        ref_partition_attention_backward(in[0], dy, din[0], param_grad(nd, 0, io), xs, nd->a.kh,
                                         nd->a.grid, nd->a.groups, param(e, nd, 0));
        break;
    case OP_WINDOW_ATTENTION_V2: {
        const float *prm[5];
        float *grad[5];
        for (int k = 0; k < 5; k++) prm[k] = param(e, nd, k), grad[k] = param_grad(nd, k, io);
        ref_window_attention_v2_backward(in[0], dy, din[0], grad, xs, nd->a.kh, nd->a.sh,
                                         nd->a.groups, nd->a.kw, prm);
        break;
    }
    default:
        break;
    }
}

/* Samples per channel of batch norm node i's batch on this rank. */
static double bn_count(const cv_exec *e, int i)
{
    const cv_shape4 *s = &e->shapes[i];
    return (double)(s->d[0] * (s->rank == 4 ? s->d[2] * s->d[3] : 1));
}

/* Running statistics as PyTorch updates them from a batch of M samples per channel: momentum,
 * unbiased variance, num_batches_tracked. */
static void bn_update(cv_exec *e, const xstep *x, const float *mean, const float *var, double M)
{
    const cv_node *nd = &e->g->nodes[x->node];
    int64_t C = e->shapes[x->node].d[1];
    float *rm = param(e, nd, 2), *rv = param(e, nd, 3), m = nd->a.momentum;
    for (int64_t c = 0; c < C; c++) {
        rm[c] = (1 - m) * rm[c] + m * mean[c];
        rv[c] = (1 - m) * rv[c] + m * var[c] * (float)M / (float)(M > 1 ? M - 1 : 1);
    }
    if (nd->param[4] >= 0) (*(int64_t *)cv_state_tensor(e->params, nd->param[4])->data)++;
}

static cv_status bn_sync_stats(cv_ctx *ctx, cv_exec *e, const xstep *x, const cv_train_io *io)
{
    float *mean = ptr(e, x->in_val[1]), *var = ptr(e, x->in_val[2]);
    double M = sync_bn_stats(io, ptr(e, x->in_val[0]), &e->shapes[x->node], mean, var);
    if (M < 0)
        return cv_fail(ctx, CV_ERR_IO,
                       "synchronised batch norm (node %d): the sum over the ranks failed", x->node);
    bn_update(e, x, mean, var, M);
    return CV_OK;
}

/* The input gradient of synchronised batch norm is
 *   dx = w inv / M (M dy - Σdy - x̂ Σ(dy x̂)),  inv = 1 / sqrt(var + eps),  x̂ = (x - mean) inv,
 * with Σ over all ranks' M samples. oneDNN's backward with the statistics as constants gives the
 * first term, w inv dy, and this rank's sums; after the sums over the ranks, a binary primitive
 * adds (x - mean) k1 + k0 with k1 = -w inv² Σ(dy x̂) / M and k0 = -w inv Σdy / M. */
static cv_status bn_sync_backward(cv_ctx *ctx, cv_exec *e, const xstep *x, const cv_train_io *io)
{
    const cv_node *nd = &e->g->nodes[x->node];
    int64_t C = e->shapes[x->node].d[1];
    const float *sdy = ptr(e, x->in_val[0]), *sdyx = ptr(e, x->in_val[1]),
                *var = ptr(e, x->in_val[2]), *w = param(e, nd, 0);
    float *k1 = ptr(e, x->din_val[0]), *k0 = ptr(e, x->din_val[1]);
    double *b = malloc((2 * (size_t)C + 1) * sizeof *b);
    if (!b) return cv_fail(ctx, CV_ERR_NOMEM, "out of memory");
    for (int64_t c = 0; c < C; c++) b[c] = sdy[c], b[C + c] = sdyx[c];
    b[2 * C] = bn_count(e, x->node);
    if (io->sum(io->user, b, 2 * (int)C + 1) || b[2 * C] <= 0) {
        free(b);
        return cv_fail(ctx, CV_ERR_IO,
                       "synchronised batch norm (node %d): the sum over the ranks failed", x->node);
    }
    double M = b[2 * C];
    for (int64_t c = 0; c < C; c++) {
        double inv = 1 / sqrt((double)var[c] + nd->a.eps), wi = (w ? w[c] : 1) * inv / M;
        k1[c] = (float)(-wi * inv * b[C + c]);
        k0[c] = (float)(-wi * b[c]);
    }
    free(b);
    return CV_OK;
}

static void dropout(cv_exec *e, const xstep *x, const cv_train_io *io, int backward)
{
    const cv_node *nd = &e->g->nodes[x->node];
    int64_t n = shape_numel(&e->shapes[x->node]);
    const float *src = ptr(e, backward ? x->dout_val : x->in_val[0]);
    float *dst = ptr(e, backward ? x->din_val[0] : x->out_val), p = nd->a.p;
    float scale = p < 1 ? 1 / (1 - p) : 0;
    uint64_t seed = io ? io->seed : 0;
    const cv_shape4 *s = &e->shapes[x->node];
    if (nd->a.rows) { /* one mask value per sample, whose elements are contiguous (any layout) */
        int64_t per = n / s->d[0];
        for (int64_t b = 0; b < s->d[0]; b++) {
            const float *sp = src + b * per;
            float *dp = dst + b * per;
            if (dropout_keep(seed, x->node, b, p))
                for (int64_t k = 0; k < per; k++) dp[k] = sp[k] * scale;
            else
                memset(dp, 0, (size_t)per * sizeof *dp);
        }
        return;
    }
    for (int64_t k = 0; k < n; k++)
        dst[k] = dropout_keep(seed, x->node, dropout_index(nd, s, k), p) ? src[k] * scale : 0;
}

cv_status run_list(cv_ctx *ctx, cv_exec *e, const xlist *l, const cv_train_io *io)
{
    for (int i = 0; i < l->n; i++) {
        const xstep *x = &l->v[i];
        double t0 = e->prof ? omp_get_wtime() : 0;
        switch (x->kind) {
        case X_PRIM: {
            dnnl_exec_arg_t args[10];
            for (int k = 0; k < x->nargs; k++)
                args[k] = (dnnl_exec_arg_t){x->arg_kind[k], e->vals[x->arg_val[k]].mem};
            dnnl_status_t st = dnnl_primitive_execute(x->prim, e->stream, x->nargs, args);
            if (st != dnnl_success) {
                const_dnnl_primitive_desc_t pd = NULL;
                dnnl_primitive_kind_t kind = dnnl_undefined_primitive;
                dnnl_primitive_get_primitive_desc(x->prim, &pd);
                if (pd) dnnl_primitive_desc_query(pd, dnnl_query_primitive_kind, 0, &kind);
                return cv_fail(ctx, CV_ERR_INTERNAL,
                               "oneDNN: executing a %s primitive failed (status %d)",
                               dnnl_prim_kind2str(kind), (int)st);
            }
            break;
        }
        case X_REF:
            run_ref(e, x);
            break;
        case X_CL:
            run_cl(e, x);
            break;
        case X_REF_BWD:
            run_ref_backward(e, x, io);
            break;
        case X_CL_BWD:
            run_cl_backward(e, x, io);
            break;
        case X_BN_UPDATE:
            bn_update(e, x, ptr(e, x->in_val[0]), ptr(e, x->in_val[1]), bn_count(e, x->node));
            break;
        case X_BN_SYNC_STATS:
        case X_BN_SYNC_BWD: {
            cv_status s = x->kind == X_BN_SYNC_STATS ? bn_sync_stats(ctx, e, x, io)
                                                     : bn_sync_backward(ctx, e, x, io);
            if (s) return s;
            break;
        }
        case X_DROPOUT:
            dropout(e, x, io, 0);
            break;
        case X_DROPOUT_BWD:
            dropout(e, x, io, 1);
            break;
        case X_ZERO:
            memset(ptr(e, x->out_val), 0, dnnl_memory_desc_get_size(&e->vals[x->out_val].md));
            break;
        case X_GRAD_READY:
            if (io && io->grad_ready) {
                DNNL(ctx, dnnl_stream_wait(e->stream));
                io->grad_ready(io->user, x->node);
            }
            break;
        }
        if (e->prof && x->node >= 0 && x->kind != X_GRAD_READY) { /* its node is a parameter */
            cv_op op = e->g->nodes[x->node].op;
            int k = x->kind == X_PRIM                        ? x->prof
                    : x->kind == X_CL || x->kind == X_CL_BWD ? PROF_CL
                                                             : PROF_REF;
            e->prof->seconds[op][k] += omp_get_wtime() - t0;
            e->prof->calls[op][k]++;
        }
    }
    DNNL(ctx, dnnl_stream_wait(e->stream));
    return CV_OK;
}

void exec_free(cv_exec *e)
{
    if (!e) return;
    xlist *lists[2] = {&e->fwd, &e->bwd};
    for (int k = 0; k < 2; k++) {
        for (int i = 0; i < lists[k]->n; i++)
            if (lists[k]->v[i].prim) dnnl_primitive_destroy(lists[k]->v[i].prim);
        free(lists[k]->v);
    }
    for (int i = 0; i < e->nvals; i++)
        if (e->vals[i].mem) dnnl_memory_destroy(e->vals[i].mem);
    for (int i = 0; i < e->nslots; i++) cv_aligned_free(e->slots[i].ptr);
    for (int i = 0; i < e->nowned; i++) cv_aligned_free(e->owned[i]);
    if (e->stream) dnnl_stream_destroy(e->stream);
    if (e->eng) dnnl_engine_destroy(e->eng);
    free(e->vals), free(e->slots), free(e->owned), free(e->node_val);
    free(e);
}

cv_status exec_new(cv_ctx *ctx, const cv_graph *g, cv_state *params, const cv_shape4 *shapes,
                   cv_plan_mode mode, cv_exec **out)
{
    cv_exec *e = calloc(1, sizeof *e);
    if (!e || !(e->node_val = malloc((size_t)g->n * sizeof *e->node_val))) {
        free(e);
        return cv_fail(ctx, CV_ERR_NOMEM, "oneDNN plan: out of memory");
    }
    for (int i = 0; i < g->n; i++) e->node_val[i] = -1;
    e->g = g, e->params = params, e->shapes = shapes, e->mode = mode;
    e->input_val = e->output_val = e->dout_val = e->cur_node = -1;
    e->threads = cv_ctx_threads(ctx);
    omp_set_num_threads(e->threads);
    *out = e;
    if (dnnl_engine_create(&e->eng, dnnl_cpu, 0) ||
        dnnl_stream_create(&e->stream, e->eng, dnnl_stream_default_flags))
        return cv_fail(ctx, CV_ERR_INTERNAL, "oneDNN: cannot create a CPU engine");
    return CV_OK;
}

/* The values step x touches (reads or writes), into vals; returns how many. */
static int step_values(const xstep *x, int *vals)
{
    int n = 0;
    switch (x->kind) {
    case X_PRIM:
        for (int k = 0; k < x->nargs; k++) vals[n++] = x->arg_val[k];
        break;
    case X_REF_BWD: /* also reads the forward's inputs and output */
    case X_CL_BWD:
        for (int k = 0; k < x->nin; k++) vals[n++] = x->din_val[k];
        vals[n++] = x->dout_val;
        for (int k = 0; k < x->nin; k++) vals[n++] = x->in_val[k];
        vals[n++] = x->out_val;
        break;
    case X_REF:
    case X_CL:
    case X_DROPOUT:
        for (int k = 0; k < x->nin; k++) vals[n++] = x->in_val[k];
        vals[n++] = x->out_val;
        break;
    case X_GRAD_READY:
        break;
    case X_BN_UPDATE:
    case X_BN_SYNC_STATS:
        for (int k = 0; k < x->nin; k++) vals[n++] = x->in_val[k];
        break;
    case X_BN_SYNC_BWD:
        for (int k = 0; k < x->nin; k++) vals[n++] = x->in_val[k];
        vals[n++] = x->din_val[0];
        vals[n++] = x->din_val[1];
        break;
    case X_DROPOUT_BWD:
        vals[n++] = x->din_val[0];
        vals[n++] = x->dout_val;
        break;
    case X_ZERO:
        vals[n++] = x->out_val;
        break;
    }
    return n;
}

cv_status exec_pack_slots(cv_ctx *ctx, cv_exec *e)
{
    int ns = e->nslots, nf = e->fwd.n, total = nf + e->bwd.n;
    int *first = malloc((size_t)ns * sizeof *first), *last = malloc((size_t)ns * sizeof *last);
    int *map = malloc((size_t)ns * sizeof *map), *order = malloc((size_t)ns * sizeof *order);
    slot *old = e->slots;
    cv_status s = CV_OK;
    if (!first || !last || !map || !order) {
        s = cv_fail(ctx, CV_ERR_NOMEM, "oneDNN plan: out of memory");
        goto done;
    }
    for (int i = 0; i < ns; i++) first[i] = -1, last[i] = -1, map[i] = -1;
    for (int k = 0; k < total; k++) {
        const xstep *x = k < nf ? &e->fwd.v[k] : &e->bwd.v[k - nf];
        int vals[4 * CV_MAX_INPUTS + 12], n = step_values(x, vals);
        for (int j = 0; j < n; j++) {
            int sl = vals[j] >= 0 ? e->vals[vals[j]].slot : -1;
            if (sl < 0) continue;
            if (first[sl] < 0) first[sl] = k;
            last[sl] = k;
        }
    }
    /* the caller copies the output out after the forward list */
    int out_sl = e->output_val >= 0 ? e->vals[e->output_val].slot : -1;
    if (out_sl >= 0 && out_sl < ns && last[out_sl] < nf) last[out_sl] = nf;
    /* buffers in order of first use; each takes a slot whose previous tenant is dead */
    int n = 0;
    for (int i = 0; i < ns; i++)
        if (first[i] >= 0) order[n++] = i;
    for (int i = 1; i < n; i++) /* insertion sort: n is a few hundred */
        for (int j = i; j > 0 && first[order[j - 1]] > first[order[j]]; j--) {
            int t = order[j];
            order[j] = order[j - 1], order[j - 1] = t;
        }
    e->slots = NULL, e->nslots = 0;
    int *until = NULL; /* per new slot: the last step of its current tenant */
    for (int i = 0; !s && i < n; i++) {
        int b = order[i];
        for (int k = 0; k < e->nslots; k++) e->slots[k].free = until[k] < first[b];
        int sl = slot_get(e, old[b].size);
        int *u = sl >= 0 ? realloc(until, (size_t)e->nslots * sizeof *until) : NULL;
        if (!u) {
            s = cv_fail(ctx, CV_ERR_NOMEM, "oneDNN plan: out of memory");
            break;
        }
        until = u;
        until[sl] = last[b];
        map[b] = sl;
    }
    free(until);
    for (int i = 0; !s && i < e->nvals; i++)
        if (e->vals[i].slot >= 0) e->vals[i].slot = map[e->vals[i].slot];
    for (int i = 0; i < e->nslots; i++) e->slots[i].free = 0;
done:
    if (s) { /* keep the unpacked slots: exec_free releases them */
        free(e->slots);
        e->slots = old, e->nslots = ns;
    } else
        free(old);
    free(first), free(last), free(map), free(order);
    return s;
}

cv_status exec_bind(cv_ctx *ctx, cv_exec *e)
{
    for (int i = 0; i < e->nslots; i++)
        if (!(e->slots[i].ptr = cv_aligned_alloc(e->slots[i].size)))
            return cv_fail(ctx, CV_ERR_NOMEM,
                           "oneDNN plan: cannot allocate %zu bytes of activations",
                           e->slots[i].size);
    for (int i = 0; i < e->nvals; i++)
        if (e->vals[i].slot >= 0)
            DNNL(ctx, dnnl_memory_set_data_handle(e->vals[i].mem, e->slots[e->vals[i].slot].ptr));
    return CV_OK;
}
