/* The reference backend: every node's value gets its own buffer and every op runs as written in
 * the graph, unfused. Slow and obviously right; the fast backends are tested against it. In
 * training mode it keeps a gradient buffer per value and runs each op's backward in reverse. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "backend/ref/kernels.h"
#include "backend/sync_bn.h"

struct cv_exec {
    const cv_graph *g;
    cv_state *params;
    const cv_shape4 *shapes;
    cv_plan_mode mode;
    float **val;   /* one buffer per node (the input node's points at the caller's input) */
    float **grad;  /* training: d(loss)/d(value) per node */
    float **stats; /* training: batch mean and biased variance per BN node (2*C floats) */
};

static void ref_free(cv_exec *e)
{
    if (!e) return;
    for (int i = 0; i < e->g->n; i++) {
        if (e->val && e->g->nodes[i].op != OP_INPUT) cv_aligned_free(e->val[i]);
        if (e->grad) cv_aligned_free(e->grad[i]);
        if (e->stats) free(e->stats[i]);
    }
    free(e->val), free(e->grad), free(e->stats);
    free(e);
}

static cv_status ref_plan(cv_ctx *ctx, const cv_graph *g, cv_state *params, const cv_shape4 *shapes,
                          cv_plan_mode mode, const cv_train_io *io, cv_exec **out)
{
    if (mode == PLAN_TRAIN && io && io->bf16)
        return cv_fail(ctx, CV_ERR_UNSUPPORTED,
                       "bf16 mixed precision needs the cpu (oneDNN) backend, not ref");
    size_t n = (size_t)g->n;
    cv_exec *e = calloc(1, sizeof *e);
    if (!e || !(e->val = calloc(n, sizeof *e->val)) ||
        (mode == PLAN_TRAIN &&
         (!(e->grad = calloc(n, sizeof *e->grad)) || !(e->stats = calloc(n, sizeof *e->stats)))))
        goto nomem;
    e->g = g, e->params = params, e->shapes = shapes, e->mode = mode;
    for (int i = 0; i < g->n; i++) {
        size_t bytes = (size_t)shape_numel(&shapes[i]) * sizeof(float);
        if (g->nodes[i].op != OP_INPUT && !(e->val[i] = cv_aligned_alloc(bytes))) goto nomem;
        if (mode != PLAN_TRAIN) continue;
        if (!(e->grad[i] = cv_aligned_alloc(bytes))) goto nomem;
        if (g->nodes[i].op == OP_BN &&
            !(e->stats[i] = malloc(2 * (size_t)shapes[i].d[1] * sizeof(float))))
            goto nomem;
    }
    *out = e;
    return CV_OK;
nomem:
    if (e && !e->g) e->g = g;
    ref_free(e);
    return cv_fail(ctx, CV_ERR_NOMEM, "ref backend: out of memory for activations");
}

static float *param(const cv_exec *e, const cv_node *nd, int k)
{
    return nd->param[k] < 0 ? NULL : cv_state_tensor(e->params, nd->param[k])->data;
}

static uint64_t mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

int dropout_keep(uint64_t seed, int node, int64_t i, float p)
{
    uint64_t r = mix(mix(seed ^ ((uint64_t)node << 40)) + (uint64_t)i * 0x9e3779b97f4a7c15ull);
    return (double)(r >> 11) * (1.0 / 9007199254740992.0) >= p;
}

int *grad_final_node(const cv_graph *g, const cv_state *params)
{
    int np = cv_state_count(params), *first = malloc(((size_t)np + 1) * sizeof *first);
    if (!first) return NULL;
    for (int k = 0; k < np; k++) first[k] = -1;
    for (int i = g->n - 1; i >= 0; i--)
        for (int k = 0; k < g->nodes[i].nparam; k++)
            if (g->nodes[i].param[k] >= 0) first[g->nodes[i].param[k]] = i;
    return first;
}

/* Synchronised batch norm's backward: the two reductions (sums of dy and of dy * x̂) over all
 * ranks give the input gradient; the weight and bias gradients stay this rank's sums, which the
 * data-parallel averaging then combines (as PyTorch's SyncBatchNorm under DDP). */
static int bn_backward_sync(const cv_train_io *io, const float *x, const float *dy, float *dx,
                            float *dweight, float *dbias, const cv_shape4 *s, const float *weight,
                            const float *mean, const float *var, float eps)
{
    int64_t N = s->d[0], C = s->d[1], HW = s->rank == 4 ? s->d[2] * s->d[3] : 1;
    double *b = calloc(2 * (size_t)C + 1, sizeof *b);
    if (!b) return -1;
    for (int64_t c = 0; c < C; c++) {
        double inv = 1 / sqrt((double)var[c] + eps);
        for (int64_t n = 0; n < N; n++)
            for (int64_t k = 0; k < HW; k++) {
                int64_t j = (n * C + c) * HW + k;
                b[c] += dy[j];
                b[C + c] += dy[j] * (x[j] - mean[c]) * inv;
            }
        if (dweight) dweight[c] += (float)b[C + c];
        if (dbias) dbias[c] += (float)b[c];
    }
    b[2 * C] = (double)(N * HW);
    if (io->sum(io->user, b, 2 * (int)C + 1)) {
        free(b);
        return -1;
    }
    double M = b[2 * C];
    for (int64_t c = 0; dx && c < C; c++) {
        double inv = 1 / sqrt((double)var[c] + eps);
        for (int64_t n = 0; n < N; n++)
            for (int64_t k = 0; k < HW; k++) {
                int64_t j = (n * C + c) * HW + k;
                double xhat = (x[j] - mean[c]) * inv;
                dx[j] += (float)(weight[c] * inv / M * (M * dy[j] - b[c] - xhat * b[C + c]));
            }
    }
    free(b);
    return 0;
}

/* Training-mode batch norm: normalise with the batch statistics and update the running ones as
 * PyTorch does (momentum, unbiased variance for the running estimate, num_batches_tracked). */
static cv_status bn_train(cv_ctx *ctx, cv_exec *e, const cv_node *nd, int i, const float *x,
                          float *y, const cv_train_io *io)
{
    const cv_shape4 *s = &e->shapes[i];
    int64_t C = s->d[1];
    double M = (double)(s->d[0] * (s->rank == 4 ? s->d[2] * s->d[3] : 1));
    float *mean = e->stats[i], *var = mean + C;
    if (io && io->sum) {
        if ((M = sync_bn_stats(io, x, s, mean, var)) < 0)
            return cv_fail(ctx, CV_ERR_IO,
                           "synchronised batch norm (node %d): the sum over the "
                           "ranks failed",
                           i);
    } else {
        ref_batch_stats(x, s, mean, var);
    }
    ref_batchnorm(x, y, s, param(e, nd, 0), param(e, nd, 1), mean, var, nd->a.eps);
    float *rm = param(e, nd, 2), *rv = param(e, nd, 3), m = nd->a.momentum;
    for (int64_t c = 0; c < C; c++) {
        rm[c] = (1 - m) * rm[c] + m * mean[c];
        rv[c] = (1 - m) * rv[c] + m * var[c] * (float)M / (float)(M > 1 ? M - 1 : 1);
    }
    if (nd->param[4] >= 0) (*(int64_t *)cv_state_tensor(e->params, nd->param[4])->data)++;
    return CV_OK;
}

static cv_status ref_run(cv_ctx *ctx, cv_exec *e, const float *in, float *out,
                         const cv_train_io *io)
{
    const cv_graph *g = e->g;
    int train = e->mode == PLAN_TRAIN;
    for (int i = 0; i < g->n; i++) {
        const cv_node *nd = &g->nodes[i];
        const cv_shape4 *s = &e->shapes[i], *xs = nd->nin ? &e->shapes[nd->in[0]] : NULL;
        float *y = e->val[i];
        const float *x = nd->nin ? e->val[nd->in[0]] : NULL;
        switch (nd->op) {
        case OP_INPUT:
            e->val[i] = (float *)in;
            break;
        case OP_CONV: {
            const cv_tensor *w = cv_state_tensor(e->params, nd->param[0]);
            ref_conv2d(x, w->data, param(e, nd, 1), y, xs, s, nd->a.kh, nd->a.kw, &nd->a);
            break;
        }
        case OP_BN:
            if (train) {
                cv_status st = bn_train(ctx, e, nd, i, x, y, io);
                if (st) return st;
            } else
                ref_batchnorm(x, y, s, param(e, nd, 0), param(e, nd, 1), param(e, nd, 2),
                              param(e, nd, 3), nd->a.eps);
            break;
        case OP_ACT:
            ref_act(x, y, shape_numel(s), nd->a.act);
            break;
        case OP_MAXPOOL:
            ref_maxpool(x, y, xs, s, &nd->a);
            break;
        case OP_AVGPOOL:
            ref_avgpool(x, y, xs, s, &nd->a);
            break;
        case OP_ADAPTIVE_AVGPOOL:
            ref_adaptive_avgpool(x, y, xs, s);
            break;
        case OP_LINEAR:
            ref_linear(x, param(e, nd, 0), param(e, nd, 1), y, s->d[0], xs->d[1], s->d[1]);
            break;
        case OP_ADD:
        case OP_MUL:
            ref_binary(nd->op, x, e->val[nd->in[1]], y, xs, &e->shapes[nd->in[1]]);
            break;
        case OP_CONCAT: {
            const float *xsrc[CV_MAX_INPUTS];
            cv_shape4 shp[CV_MAX_INPUTS];
            for (int k = 0; k < nd->nin; k++)
                xsrc[k] = e->val[nd->in[k]], shp[k] = e->shapes[nd->in[k]];
            ref_concat(xsrc, shp, nd->nin, y);
            break;
        }
        case OP_DROPOUT:
            if (train && nd->a.p > 0) {
                float scale = nd->a.p < 1 ? 1 / (1 - nd->a.p) : 0;
                for (int64_t k = 0; k < shape_numel(s); k++)
                    y[k] = dropout_keep(io->seed, i, dropout_index(nd, s, k), nd->a.p)
                               ? x[k] * scale
                               : 0;
                break;
            }
            memcpy(y, x, (size_t)shape_numel(s) * sizeof *y);
            break;
        case OP_FLATTEN:
            memcpy(y, x, (size_t)shape_numel(s) * sizeof *y);
            break;
        case OP_SOFTMAX:
            ref_softmax(x, y, s->d[0], s->d[1]);
            break;
        case OP_SLICE:
            ref_slice(x, y, xs, s, nd->a.start);
            break;
        case OP_SHUFFLE:
            ref_shuffle(x, y, s, nd->a.groups);
            break;
        case OP_AFFINE:
            ref_affine(x, y, s, nd->a.scale, nd->a.shift);
            break;
        case OP_LAYERNORM:
            ref_layernorm(x, y, s, param(e, nd, 0), param(e, nd, 1), nd->a.eps);
            break;
        case OP_CHANNEL_SCALE:
            ref_channel_scale(x, y, s, param(e, nd, 0));
            break;
        case OP_TOKENS:
            ref_tokens(x, y, xs, param(e, nd, 0), param(e, nd, 1));
            break;
        case OP_ATTENTION:
            ref_attention(x, y, xs, nd->a.groups);
            break;
        case OP_TAKE:
            ref_take(x, y, xs, nd->a.start);
            break;
        case OP_PAD:
            ref_pad(x, y, xs, s);
            break;
        case OP_CROP:
            ref_crop(x, y, xs, s);
            break;
        case OP_MERGE:
            ref_merge(x, y, xs, s);
            break;
        case OP_WINDOW_ATTENTION:
            ref_window_attention(x, y, xs, nd->a.kh, nd->a.sh, nd->a.groups, param(e, nd, 0));
            break;
        case OP_PARTITION_ATTENTION:
            ref_partition_attention(x, y, xs, nd->a.kh, nd->a.grid, nd->a.groups, param(e, nd, 0));
            break;
        case OP_WINDOW_ATTENTION_V2: {
            const float *prm[5];
            for (int k = 0; k < 5; k++) prm[k] = param(e, nd, k);
            ref_window_attention_v2(x, y, xs, nd->a.kh, nd->a.sh, nd->a.groups, nd->a.kw, prm);
            break;
        }
        default:
            return cv_fail(ctx, CV_ERR_INTERNAL, "ref backend: op %s", op_name(nd->op));
        }
    }
    memcpy(out, e->val[g->output], (size_t)shape_numel(&e->shapes[g->output]) * sizeof *out);
    return CV_OK;
}

static float *pgrad(const cv_train_io *io, const cv_node *nd, int k)
{
    return nd->param[k] >= 0 && io->grad[nd->param[k]] ? io->grad[nd->param[k]]->data : NULL;
}

static cv_status ref_backward(cv_ctx *ctx, cv_exec *e, const float *dout, const cv_train_io *io)
{
    const cv_graph *g = e->g;
    if (e->mode != PLAN_TRAIN)
        return cv_fail(ctx, CV_ERR_INTERNAL, "ref backend: backward of an eval plan");
    /* Only values downstream of a trainable parameter need a gradient. */
    char *need = calloc((size_t)g->n, 1);
    int *final = io->grad_ready ? grad_final_node(g, e->params) : NULL;
    if (!need || (io->grad_ready && !final)) {
        free(need);
        free(final);
        return cv_fail(ctx, CV_ERR_NOMEM, "ref backend: out of memory");
    }
    for (int i = 0; i < g->n; i++) {
        const cv_node *nd = &g->nodes[i];
        for (int k = 0; k < nd->nparam; k++) need[i] |= nd->param[k] >= 0 && io->grad[nd->param[k]];
        for (int k = 0; k < nd->nin; k++) need[i] |= need[nd->in[k]];
        memset(e->grad[i], 0, (size_t)shape_numel(&e->shapes[i]) * sizeof(float));
    }
    memcpy(e->grad[g->output], dout, (size_t)shape_numel(&e->shapes[g->output]) * sizeof(float));
    for (int i = g->n - 1; i >= 0; i--) {
        const cv_node *nd = &g->nodes[i];
        if (!need[i] || nd->op == OP_INPUT) continue;
        const cv_shape4 *s = &e->shapes[i], *xs = &e->shapes[nd->in[0]];
        const float *dy = e->grad[i], *x = e->val[nd->in[0]];
        float *dx = need[nd->in[0]] ? e->grad[nd->in[0]] : NULL;
        int64_t n = shape_numel(s);
        switch (nd->op) {
        case OP_CONV: {
            const cv_tensor *w = cv_state_tensor(e->params, nd->param[0]);
            ref_conv2d_backward(x, w->data, dy, dx, pgrad(io, nd, 0), pgrad(io, nd, 1), xs, s,
                                nd->a.kh, nd->a.kw, &nd->a);
            break;
        }
        case OP_BN: {
            const float *mean = e->stats[i];
            if (!io->sum) {
                ref_batchnorm_backward(x, dy, dx, pgrad(io, nd, 0), pgrad(io, nd, 1), s,
                                       param(e, nd, 0), mean, mean + s->d[1], nd->a.eps);
            } else if (bn_backward_sync(io, x, dy, dx, pgrad(io, nd, 0), pgrad(io, nd, 1), s,
                                        param(e, nd, 0), mean, mean + s->d[1], nd->a.eps)) {
                free(need);
                free(final);
                return cv_fail(ctx, CV_ERR_IO,
                               "synchronised batch norm (node %d): the sum over the ranks failed",
                               i);
            }
            break;
        }
        case OP_ACT:
            if (dx) ref_act_backward(x, dy, dx, n, nd->a.act);
            break;
        case OP_MAXPOOL:
            if (dx) ref_maxpool_backward(x, dy, dx, xs, s, &nd->a);
            break;
        case OP_AVGPOOL:
            if (dx) ref_avgpool_backward(dy, dx, xs, s, &nd->a);
            break;
        case OP_ADAPTIVE_AVGPOOL:
            if (dx) ref_adaptive_avgpool_backward(dy, dx, xs, s);
            break;
        case OP_LINEAR:
            ref_linear_backward(x, param(e, nd, 0), dy, dx, pgrad(io, nd, 0), pgrad(io, nd, 1),
                                s->d[0], xs->d[1], s->d[1]);
            break;
        case OP_ADD:
        case OP_MUL:
            ref_binary_backward(nd->op, x, e->val[nd->in[1]], dy, dx,
                                need[nd->in[1]] ? e->grad[nd->in[1]] : NULL, xs,
                                &e->shapes[nd->in[1]]);
            break;
        case OP_CONCAT: {
            float *dxs[CV_MAX_INPUTS];
            cv_shape4 shp[CV_MAX_INPUTS];
            for (int k = 0; k < nd->nin; k++)
                dxs[k] = need[nd->in[k]] ? e->grad[nd->in[k]] : NULL, shp[k] = e->shapes[nd->in[k]];
            ref_concat_backward(dy, dxs, shp, nd->nin);
            break;
        }
        case OP_DROPOUT:
            if (!dx) break;
            for (int64_t k = 0; k < n; k++)
                dx[k] += nd->a.p <= 0 ? dy[k]
                         : dropout_keep(io->seed, i, dropout_index(nd, s, k), nd->a.p)
                             ? dy[k] / (1 - nd->a.p)
                             : 0;
            break;
        case OP_FLATTEN:
            for (int64_t k = 0; dx && k < n; k++) dx[k] += dy[k];
            break;
        case OP_SOFTMAX:
            if (dx) ref_softmax_backward(e->val[i], dy, dx, s->d[0], s->d[1]);
            break;
        case OP_SLICE:
            if (dx) ref_slice_backward(dy, dx, xs, s, nd->a.start);
            break;
        case OP_SHUFFLE:
            if (dx) ref_shuffle_backward(dy, dx, s, nd->a.groups);
            break;
        case OP_AFFINE:
            if (dx) ref_affine_backward(dy, dx, s, nd->a.scale);
            break;
        case OP_LAYERNORM:
            ref_layernorm_backward(x, dy, dx, pgrad(io, nd, 0), pgrad(io, nd, 1), s,
                                   param(e, nd, 0), nd->a.eps);
            break;
        case OP_CHANNEL_SCALE:
            ref_channel_scale_backward(x, dy, dx, pgrad(io, nd, 0), s, param(e, nd, 0));
            break;
        case OP_TOKENS:
            ref_tokens_backward(dy, dx, pgrad(io, nd, 0), pgrad(io, nd, 1), xs);
            break;
        case OP_ATTENTION:
            if (dx) ref_attention_backward(x, dy, dx, xs, nd->a.groups);
            break;
        case OP_TAKE:
            if (dx) ref_take_backward(dy, dx, xs, nd->a.start);
            break;
        case OP_PAD:
            if (dx) ref_pad_backward(dy, dx, xs, s);
            break;
        case OP_CROP:
            if (dx) ref_crop_backward(dy, dx, xs, s);
            break;
        case OP_MERGE:
            if (dx) ref_merge_backward(dy, dx, xs, s);
            break;
        case OP_WINDOW_ATTENTION:
            ref_window_attention_backward(x, dy, dx, pgrad(io, nd, 0), xs, nd->a.kh, nd->a.sh,
                                          nd->a.groups, param(e, nd, 0));
            break;
        case OP_PARTITION_ATTENTION:
            ref_partition_attention_backward(x, dy, dx, pgrad(io, nd, 0), xs, nd->a.kh, nd->a.grid,
                                             nd->a.groups, param(e, nd, 0));
            break;
        case OP_WINDOW_ATTENTION_V2: {
            const float *prm[5];
            float *grad[5];
            for (int k = 0; k < 5; k++) prm[k] = param(e, nd, k), grad[k] = pgrad(io, nd, k);
            ref_window_attention_v2_backward(x, dy, dx, grad, xs, nd->a.kh, nd->a.sh, nd->a.groups,
                                             nd->a.kw, prm);
            break;
        }
        default:
            free(need);
            free(final);
            return cv_fail(ctx, CV_ERR_INTERNAL, "ref backend: no backward for %s",
                           op_name(nd->op));
        }
        for (int k = 0; final && k < nd->nparam; k++)
            if (nd->param[k] >= 0 && io->grad[nd->param[k]] && final[nd->param[k]] == i)
                io->grad_ready(io->user, nd->param[k]);
    }
    free(need);
    free(final);
    return CV_OK;
}

const cv_backend_ops cv_backend_ref = {"ref", ref_plan, ref_run, ref_backward, ref_free, NULL};
