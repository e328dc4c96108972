/* Graph construction (the builder used by model definitions) and shape inference. */
#include "core/graph.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *op_names[OP_COUNT] = {
    [OP_INPUT] = "input",
    [OP_CONV] = "conv2d",
    [OP_BN] = "batch_norm",
    [OP_ACT] = "activation",
    [OP_MAXPOOL] = "max_pool2d",
    [OP_AVGPOOL] = "avg_pool2d",
    [OP_ADAPTIVE_AVGPOOL] = "adaptive_avg_pool2d",
    [OP_LINEAR] = "linear",
    [OP_ADD] = "add",
    [OP_MUL] = "mul",
    [OP_CONCAT] = "cat",
    [OP_FLATTEN] = "flatten",
    [OP_DROPOUT] = "dropout",
    [OP_SOFTMAX] = "softmax",
    [OP_SLICE] = "slice",
    [OP_SHUFFLE] = "channel_shuffle",
    [OP_AFFINE] = "affine",
    [OP_LAYERNORM] = "layer_norm",
    [OP_CHANNEL_SCALE] = "channel_scale",
    [OP_TOKENS] = "tokens",
    [OP_ATTENTION] = "attention",
    [OP_TAKE] = "take",
    [OP_PAD] = "pad",
    [OP_CROP] = "crop",
    [OP_MERGE] = "patch_merge",
    [OP_WINDOW_ATTENTION] = "window_attention",
    [OP_WINDOW_ATTENTION_V2] = "window_attention_v2",
    [OP_PARTITION_ATTENTION] = "partition_attention",
};

const char *op_name(cv_op op)
{
    return (unsigned)op < OP_COUNT ? op_names[op] : "?";
}

void graph_free(cv_graph *g)
{
    if (!g) return;
    free(g->nodes);
    free(g);
}

/* ---- scopes ---- */

void b_push(cv_builder *b, const char *name)
{
    size_t len = strlen(b->scope);
    if (b->depth >= 32 || len + strlen(name) + 2 >= sizeof b->scope) {
        if (!b->err)
            b->err = cv_fail(b->ctx, CV_ERR_INTERNAL, "builder: scope too deep at %s", b->scope);
        return;
    }
    b->scope_len[b->depth++] = (int)len;
    snprintf(b->scope + len, sizeof b->scope - len, "%s%s", len ? "." : "", name);
}

void b_pushi(cv_builder *b, int index)
{
    char s[16];
    snprintf(s, sizeof s, "%d", index);
    b_push(b, s);
}

void b_pop(cv_builder *b)
{
    if (b->depth > 0) b->scope[b->scope_len[--b->depth]] = 0;
}

/* ---- nodes and parameters ---- */

static int add_node(cv_builder *b, cv_op op, int nin, const int *in, int channels, int rank)
{
    if (b->err) return -1;
    for (int i = 0; i < nin; i++)
        if (in[i] < 0 || in[i] >= b->g->n) {
            b->err = cv_fail(b->ctx, CV_ERR_INTERNAL, "builder: bad input to %s at %s", op_name(op),
                             b->scope);
            return -1;
        }
    cv_graph *g = b->g;
    if (g->n == g->cap) {
        int cap = g->cap ? g->cap * 2 : 64;
        cv_node *nodes = realloc(g->nodes, (size_t)cap * sizeof *nodes);
        if (!nodes) {
            b->err = cv_fail(b->ctx, CV_ERR_NOMEM, "builder: out of memory");
            return -1;
        }
        g->nodes = nodes;
        g->cap = cap;
    }
    cv_node *n = &g->nodes[g->n];
    memset(n, 0, sizeof *n);
    n->op = op;
    n->nin = nin;
    if (nin) memcpy(n->in, in, (size_t)nin * sizeof *in);
    for (int i = 0; i < CV_MAX_PARAMS; i++) n->param[i] = -1;
    n->channels = channels;
    n->rank = rank;
    g->output = g->n;
    return g->n++;
}

/* Registers parameter <scope>.<name>.<leaf> with the given shape and returns its index. */
static int add_param(cv_builder *b, const char *name, const char *leaf, cv_dtype dt, int ndim,
                     const int64_t *shape)
{
    if (b->err) return -1;
    char full[640];
    snprintf(full, sizeof full, "%s%s%s%s%s", b->scope, *b->scope && *name ? "." : "", name,
             *b->scope || *name ? "." : "", leaf);
    cv_tensor *t;
    if ((b->err = cv_tensor_new(b->ctx, dt, ndim, shape, &t))) return -1;
    if (cv_state_get(b->params, full)) {
        cv_tensor_free(t);
        b->err = cv_fail(b->ctx, CV_ERR_INTERNAL, "builder: parameter %s defined twice", full);
        return -1;
    }
    if ((b->err = cv_state_put(b->ctx, b->params, full, t))) return -1;
    return cv_state_count(b->params) - 1;
}

static int channels_of(cv_builder *b, int x)
{
    return x >= 0 && x < b->g->n ? b->g->nodes[x].channels : 0;
}

int b_input(cv_builder *b, int channels)
{
    return add_node(b, OP_INPUT, 0, NULL, channels, 4);
}

int b_conv2(cv_builder *b, int x, const char *name, int out, int kh, int kw, int sh, int sw, int ph,
            int pw, int groups, int bias)
{
    int cin = channels_of(b, x);
    if (!b->err && (groups <= 0 || cin % groups || out % groups)) {
        b->err = cv_fail(b->ctx, CV_ERR_INTERNAL, "builder: %s.%s: %d->%d channels, %d groups",
                         b->scope, name, cin, out, groups);
        return -1;
    }
    int id = add_node(b, OP_CONV, 1, &x, out, 4);
    if (id < 0) return -1;
    int64_t ws[4] = {out, cin / groups, kh, kw}, bs[1] = {out};
    int w = add_param(b, name, "weight", CV_F32, 4, ws);
    int bi = bias ? add_param(b, name, "bias", CV_F32, 1, bs) : -1;
    if (b->err) return -1;
    cv_node *n = &b->g->nodes[id];
    n->nparam = 2;
    n->param[0] = w;
    n->param[1] = bi;
    n->a = (cv_attrs){.kh = kh,
                      .kw = kw,
                      .sh = sh,
                      .sw = sw,
                      .ph = ph,
                      .pw = pw,
                      .dh = 1,
                      .dw = 1,
                      .groups = groups};
    return id;
}

int b_conv(cv_builder *b, int x, const char *name, int out, int k, int stride, int pad,
           int dilation, int groups, int bias)
{
    int id = b_conv2(b, x, name, out, k, k, stride, stride, pad, pad, groups, bias);
    if (id >= 0) b->g->nodes[id].a.dh = b->g->nodes[id].a.dw = dilation;
    return id;
}

int b_bn(cv_builder *b, int x, const char *name, float eps)
{
    int c = channels_of(b, x);
    int id = add_node(b, OP_BN, 1, &x, c, 4);
    if (id < 0) return -1;
    int64_t s[1] = {c};
    int p0 = add_param(b, name, "weight", CV_F32, 1, s);
    int p1 = add_param(b, name, "bias", CV_F32, 1, s);
    int p2 = add_param(b, name, "running_mean", CV_F32, 1, s);
    int p3 = add_param(b, name, "running_var", CV_F32, 1, s);
    int p4 = add_param(b, name, "num_batches_tracked", CV_I64, 0, NULL);
    if (b->err) return -1;
    /* PyTorch's initial state: weight 1, bias 0, running_var 1 */
    float *wt = cv_state_tensor(b->params, p0)->data, *rv = cv_state_tensor(b->params, p3)->data;
    for (int i = 0; i < c; i++) wt[i] = rv[i] = 1.0f;
    cv_node *n = &b->g->nodes[id];
    n->nparam = 5;
    n->param[0] = p0, n->param[1] = p1, n->param[2] = p2, n->param[3] = p3, n->param[4] = p4;
    n->a.eps = eps;
    n->a.momentum = 0.1f;
    return id;
}

int b_act(cv_builder *b, int x, cv_act act)
{
    int id =
        add_node(b, OP_ACT, 1, &x, channels_of(b, x), x >= 0 && !b->err ? b->g->nodes[x].rank : 4);
    if (id >= 0) b->g->nodes[id].a.act = act;
    return id;
}

static int pool(cv_builder *b, cv_op op, int x, int k, int stride, int pad, int ceil_mode, int cip)
{
    int id = add_node(b, op, 1, &x, channels_of(b, x), 4);
    if (id >= 0)
        b->g->nodes[id].a = (cv_attrs){.kh = k,
                                       .kw = k,
                                       .sh = stride,
                                       .sw = stride,
                                       .ph = pad,
                                       .pw = pad,
                                       .dh = 1,
                                       .dw = 1,
                                       .ceil_mode = ceil_mode,
                                       .count_include_pad = cip};
    return id;
}

int b_maxpool(cv_builder *b, int x, int k, int stride, int pad, int ceil_mode)
{
    return pool(b, OP_MAXPOOL, x, k, stride, pad, ceil_mode, 0);
}

int b_avgpool(cv_builder *b, int x, int k, int stride, int pad, int ceil_mode,
              int count_include_pad)
{
    return pool(b, OP_AVGPOOL, x, k, stride, pad, ceil_mode, count_include_pad);
}

int b_adaptive_avgpool(cv_builder *b, int x, int out_h, int out_w)
{
    int id = add_node(b, OP_ADAPTIVE_AVGPOOL, 1, &x, channels_of(b, x), 4);
    if (id >= 0) b->g->nodes[id].a.out_h = out_h, b->g->nodes[id].a.out_w = out_w;
    return id;
}

int b_linear(cv_builder *b, int x, const char *name, int out, int bias)
{
    int in = channels_of(b, x);
    int id = add_node(b, OP_LINEAR, 1, &x, out, 2);
    if (id < 0) return -1;
    int64_t ws[2] = {out, in}, bs[1] = {out};
    int w = add_param(b, name, "weight", CV_F32, 2, ws);
    int bi = bias ? add_param(b, name, "bias", CV_F32, 1, bs) : -1;
    if (b->err) return -1;
    b->g->nodes[id].nparam = 2;
    b->g->nodes[id].param[0] = w;
    b->g->nodes[id].param[1] = bi;
    return id;
}

int b_add(cv_builder *b, int x, int y)
{
    int in[2] = {x, y};
    return add_node(b, OP_ADD, 2, in, channels_of(b, x), 4);
}

int b_mul(cv_builder *b, int x, int y)
{
    int in[2] = {x, y};
    return add_node(b, OP_MUL, 2, in, channels_of(b, x), 4);
}

int b_concat(cv_builder *b, int n, const int *xs)
{
    if (n < 1 || n > CV_MAX_INPUTS) {
        if (!b->err) b->err = cv_fail(b->ctx, CV_ERR_INTERNAL, "builder: concat of %d inputs", n);
        return -1;
    }
    int c = 0;
    for (int i = 0; i < n; i++) c += channels_of(b, xs[i]);
    return add_node(b, OP_CONCAT, n, xs, c, 4);
}

/* The feature count must be known when the following linear is built: it is C*oh*ow after an
 * adaptive pool (VGG, AlexNet) and C when the spatial size is 1x1 (every global-pool model). */
int b_flatten(cv_builder *b, int x)
{
    int f = channels_of(b, x);
    if (x >= 0 && x < b->g->n && b->g->nodes[x].op == OP_ADAPTIVE_AVGPOOL)
        f *= b->g->nodes[x].a.out_h * b->g->nodes[x].a.out_w;
    return add_node(b, OP_FLATTEN, 1, &x, f, 2);
}

int b_dropout(cv_builder *b, int x, float p)
{
    int id = add_node(b, OP_DROPOUT, 1, &x, channels_of(b, x),
                      x >= 0 && !b->err ? b->g->nodes[x].rank : 4);
    if (id >= 0) b->g->nodes[id].a.p = p;
    return id;
}

int b_stochastic_depth(cv_builder *b, int x, float p)
{
    int id = b_dropout(b, x, p);
    if (id >= 0) b->g->nodes[id].a.rows = 1;
    return id;
}

int b_softmax(cv_builder *b, int x)
{
    return add_node(b, OP_SOFTMAX, 1, &x, channels_of(b, x), 2);
}

int b_slice(cv_builder *b, int x, int start, int len)
{
    if (!b->err && (start < 0 || len < 1 || start + len > channels_of(b, x))) {
        b->err = cv_fail(b->ctx, CV_ERR_INTERNAL, "builder: %s: slice [%d, %d) of %d channels",
                         b->scope, start, start + len, channels_of(b, x));
        return -1;
    }
    int id = add_node(b, OP_SLICE, 1, &x, len, 4);
    if (id >= 0) b->g->nodes[id].a.start = start;
    return id;
}

int b_shuffle(cv_builder *b, int x, int groups)
{
    if (!b->err && (groups < 1 || channels_of(b, x) % groups)) {
        b->err =
            cv_fail(b->ctx, CV_ERR_INTERNAL, "builder: %s: shuffle of %d channels in %d groups",
                    b->scope, channels_of(b, x), groups);
        return -1;
    }
    int id = add_node(b, OP_SHUFFLE, 1, &x, channels_of(b, x), 4);
    if (id >= 0) b->g->nodes[id].a.groups = groups;
    return id;
}

int b_affine(cv_builder *b, int x, const float *scale, const float *shift)
{
    int c = channels_of(b, x);
    if (!b->err && (c < 1 || c > 4)) {
        b->err =
            cv_fail(b->ctx, CV_ERR_INTERNAL, "builder: %s: affine of %d channels", b->scope, c);
        return -1;
    }
    int id = add_node(b, OP_AFFINE, 1, &x, c, 4);
    if (id < 0) return -1;
    memcpy(b->g->nodes[id].a.scale, scale, (size_t)c * sizeof *scale);
    memcpy(b->g->nodes[id].a.shift, shift, (size_t)c * sizeof *shift);
    return id;
}

static int pointwise(cv_builder *b, int x, const char *name, const char *wleaf, const char *bleaf,
                     int out)
{
    int in = channels_of(b, x);
    int id = add_node(b, OP_CONV, 1, &x, out, 4);
    if (id < 0) return -1;
    int64_t ws[2] = {out, in}, bs[1] = {out};
    int w = add_param(b, name, wleaf, CV_F32, 2, ws);
    int bi = bleaf ? add_param(b, name, bleaf, CV_F32, 1, bs) : -1;
    if (b->err) return -1;
    cv_node *n = &b->g->nodes[id];
    n->nparam = 2;
    n->param[0] = w;
    n->param[1] = bi;
    n->a = (cv_attrs){.kh = 1, .kw = 1, .sh = 1, .sw = 1, .dh = 1, .dw = 1, .groups = 1};
    return id;
}

int b_pointwise(cv_builder *b, int x, const char *name, int out, int bias)
{
    return pointwise(b, x, name, "weight", bias ? "bias" : NULL, out);
}

int b_pointwise_named(cv_builder *b, int x, const char *wleaf, const char *bleaf, int out)
{
    return pointwise(b, x, "", wleaf, bleaf, out);
}

int b_tokens(cv_builder *b, int x, const char *cls_scope, const char *pos_scope, int tokens)
{
    int d = channels_of(b, x);
    int id = add_node(b, OP_TOKENS, 1, &x, d, 4);
    if (id < 0) return -1;
    int64_t cs[3] = {1, 1, d}, ps[3] = {1, tokens, d};
    char saved[sizeof b->scope];
    memcpy(saved, b->scope, sizeof saved);
    snprintf(b->scope, sizeof b->scope, "%s", cls_scope);
    int c = add_param(b, "", "class_token", CV_F32, 3, cs);
    snprintf(b->scope, sizeof b->scope, "%s", pos_scope);
    int p = add_param(b, "", "pos_embedding", CV_F32, 3, ps);
    memcpy(b->scope, saved, sizeof saved);
    if (b->err) return -1;
    b->g->nodes[id].nparam = 2;
    b->g->nodes[id].param[0] = c;
    b->g->nodes[id].param[1] = p;
    return id;
}

int b_attention(cv_builder *b, int qkv, int heads)
{
    int c = channels_of(b, qkv);
    if (!b->err && (heads < 1 || c % (3 * heads))) {
        b->err = cv_fail(b->ctx, CV_ERR_INTERNAL,
                         "builder: %s: attention over %d channels, %d heads", b->scope, c, heads);
        return -1;
    }
    int id = add_node(b, OP_ATTENTION, 1, &qkv, c / 3, 4);
    if (id >= 0) b->g->nodes[id].a.groups = heads;
    return id;
}

int b_take(cv_builder *b, int x, int token)
{
    int id = add_node(b, OP_TAKE, 1, &x, channels_of(b, x), 4);
    if (id >= 0) b->g->nodes[id].a.start = token;
    return id;
}

int b_pad(cv_builder *b, int x, int multiple)
{
    int id = add_node(b, OP_PAD, 1, &x, channels_of(b, x), 4);
    if (id >= 0) b->g->nodes[id].a.kh = multiple;
    return id;
}

int b_crop(cv_builder *b, int x, int like)
{
    int in[2] = {x, like};
    return add_node(b, OP_CROP, 2, in, channels_of(b, x), 4);
}

int b_merge(cv_builder *b, int x)
{
    return add_node(b, OP_MERGE, 1, &x, 4 * channels_of(b, x), 4);
}

/* torchvision's relative_position_index buffer: (dy + w - 1) * (2w - 1) + (dx + w - 1) for the
 * token pairs (i, j) of a window x window window. */
static void relative_position_index(int64_t *idx, int window)
{
    for (int i = 0; i < window * window; i++)
        for (int j = 0; j < window * window; j++)
            idx[i * window * window + j] =
                (int64_t)(i / window - j / window + window - 1) * (2 * window - 1) +
                (i % window - j % window + window - 1);
}

/* Node id's two parameters: the relative position bias table and its index buffer, flat (Swin) or
 * [w * w, w * w] (MaxViT) as torchvision stores it. */
static int add_relative_bias(cv_builder *b, int id, int window, int heads, int index_ndim)
{
    int64_t ts[2] = {(2 * window - 1) * (2 * window - 1), heads},
            is[2] = {window * window, window * window};
    if (index_ndim == 1) is[0] *= is[1];
    int t = add_param(b, "", "relative_position_bias_table", CV_F32, 2, ts);
    int ix = add_param(b, "", "relative_position_index", CV_I64, index_ndim, is);
    if (b->err) return -1;
    relative_position_index(cv_state_tensor(b->params, ix)->data, window);
    cv_node *n = &b->g->nodes[id];
    n->nparam = 2;
    n->param[0] = t;
    n->param[1] = ix;
    return 0;
}

int b_window_attention(cv_builder *b, int qkv, int window, int shift, int heads)
{
    int c = channels_of(b, qkv);
    if (!b->err && (heads < 1 || c % (3 * heads) || window < 1 || shift < 0 || shift >= window)) {
        b->err = cv_fail(b->ctx, CV_ERR_INTERNAL, "builder: %s: window attention %d/%d/%d/%d",
                         b->scope, c, heads, window, shift);
        return -1;
    }
    int id = add_node(b, OP_WINDOW_ATTENTION, 1, &qkv, c / 3, 4);
    if (id < 0) return -1;
    if (add_relative_bias(b, id, window, heads, 1)) return -1;
    cv_node *n = &b->g->nodes[id];
    n->a.kh = window, n->a.sh = shift, n->a.groups = heads;
    return id;
}

int b_window_attention_v2(cv_builder *b, int qkv, int window, int shift, int heads)
{
    int c = channels_of(b, qkv), hidden = 512;
    if (!b->err && (heads < 1 || c % (3 * heads) || window < 2 || shift < 0 || shift >= window)) {
        b->err = cv_fail(b->ctx, CV_ERR_INTERNAL, "builder: %s: window attention v2 %d/%d/%d/%d",
                         b->scope, c, heads, window, shift);
        return -1;
    }
    int id = add_node(b, OP_WINDOW_ATTENTION_V2, 1, &qkv, c / 3, 4);
    if (id < 0) return -1;
    int64_t ls[3] = {heads, 1, 1}, ts[4] = {1, 2 * window - 1, 2 * window - 1, 2},
            is[1] = {window * window * window * window}, w0[2] = {hidden, 2}, b0[1] = {hidden},
            w2[2] = {heads, hidden}, qb[1] = {c};
    int pl = add_param(b, "", "logit_scale", CV_F32, 3, ls);
    int pt = add_param(b, "", "relative_coords_table", CV_F32, 4, ts);
    int ix = add_param(b, "", "relative_position_index", CV_I64, 1, is);
    int p0 = add_param(b, "cpb_mlp.0", "weight", CV_F32, 2, w0);
    int p1 = add_param(b, "cpb_mlp.0", "bias", CV_F32, 1, b0);
    int p2 = add_param(b, "cpb_mlp.2", "weight", CV_F32, 2, w2);
    int pb = add_param(b, "qkv", "bias", CV_F32, 1, qb);
    if (b->err) return -1;
    float *l = cv_state_tensor(b->params, pl)->data, *t = cv_state_tensor(b->params, pt)->data;
    for (int h = 0; h < heads; h++) l[h] = logf(10.0f); /* torchvision's initial value */
    /* torchvision's buffers (the kernel computes the same values itself) */
    for (int i = 0; i < 2 * window - 1; i++)
        for (int j = 0; j < 2 * window - 1; j++)
            for (int k = 0; k < 2; k++) {
                float v = (float)((k ? j : i) - (window - 1)) / (float)(window - 1) * 8;
                t[(i * (2 * window - 1) + j) * 2 + k] = (v > 0   ? 1.0f
                                                         : v < 0 ? -1.0f
                                                                 : 0.0f) *
                                                        log2f(fabsf(v) + 1) / 3;
            }
    relative_position_index(cv_state_tensor(b->params, ix)->data, window);
    cv_node *n = &b->g->nodes[id];
    n->nparam = 5;
    n->param[0] = pl, n->param[1] = p0, n->param[2] = p1, n->param[3] = p2, n->param[4] = pb;
    n->a.kh = window, n->a.sh = shift, n->a.groups = heads, n->a.kw = hidden;
    return id;
}

int b_partition_attention(cv_builder *b, int qkv, int window, int grid, int heads)
{
    int c = channels_of(b, qkv);
    if (!b->err && (heads < 1 || c % (3 * heads) || window < 1)) {
        b->err = cv_fail(b->ctx, CV_ERR_INTERNAL, "builder: %s: partition attention %d/%d/%d",
                         b->scope, c, heads, window);
        return -1;
    }
    int id = add_node(b, OP_PARTITION_ATTENTION, 1, &qkv, c / 3, 4);
    if (id < 0) return -1;
    if (add_relative_bias(b, id, window, heads, 2)) return -1;
    cv_node *n = &b->g->nodes[id];
    n->a.kh = window, n->a.grid = grid, n->a.groups = heads;
    return id;
}

int graph_is_buffer(const char *name)
{
    static const char *const leaves[] = {"running_mean", "running_var", "relative_coords_table"};
    const char *dot = strrchr(name, '.'), *leaf = dot ? dot + 1 : name;
    for (size_t i = 0; i < sizeof leaves / sizeof *leaves; i++)
        if (!strcmp(leaf, leaves[i])) return 1;
    return 0;
}

int b_layernorm(cv_builder *b, int x, const char *name, float eps)
{
    int c = channels_of(b, x);
    int id = add_node(b, OP_LAYERNORM, 1, &x, c, x >= 0 && !b->err ? b->g->nodes[x].rank : 4);
    if (id < 0) return -1;
    int64_t s[1] = {c};
    int w = add_param(b, name, "weight", CV_F32, 1, s),
        bi = add_param(b, name, "bias", CV_F32, 1, s);
    if (b->err) return -1;
    float *wd = cv_state_tensor(b->params, w)->data;
    for (int i = 0; i < c; i++) wd[i] = 1.0f;
    cv_node *n = &b->g->nodes[id];
    n->nparam = 2;
    n->param[0] = w;
    n->param[1] = bi;
    n->a.eps = eps;
    return id;
}

int b_channel_scale(cv_builder *b, int x, const char *leaf, int ndim, const int64_t *shape)
{
    int c = channels_of(b, x);
    int64_t numel = 1;
    for (int i = 0; i < ndim; i++) numel *= shape[i];
    if (!b->err && numel != c) {
        b->err = cv_fail(b->ctx, CV_ERR_INTERNAL, "builder: %s.%s: %lld values for %d channels",
                         b->scope, leaf, (long long)numel, c);
        return -1;
    }
    int id = add_node(b, OP_CHANNEL_SCALE, 1, &x, c, 4);
    if (id < 0) return -1;
    int p = add_param(b, "", leaf, CV_F32, ndim, shape);
    if (b->err) return -1;
    float *d = cv_state_tensor(b->params, p)->data;
    for (int i = 0; i < c; i++) d[i] = 1.0f;
    b->g->nodes[id].nparam = 1;
    b->g->nodes[id].param[0] = p;
    return id;
}

/* ---- shape inference ---- */

int64_t shape_numel(const cv_shape4 *s)
{
    int64_t n = 1;
    for (int i = 0; i < s->rank; i++) n *= s->d[i];
    return n;
}

int64_t pool_out_size(int64_t in, int k, int s, int p, int d, int ceil_mode)
{
    int64_t span = in + 2 * p - (int64_t)d * (k - 1) - 1;
    if (span < 0) return 0;
    int64_t out = (ceil_mode ? (span + s - 1) / s : span / s) + 1;
    if (ceil_mode && (out - 1) * s >= in + p) out--; /* last window must start inside */
    return out;
}

cv_status graph_infer_shapes(cv_ctx *ctx, const cv_graph *g, const cv_state *params, int64_t n,
                             int64_t c, int64_t h, int64_t w, cv_shape4 *shapes)
{
    for (int i = 0; i < g->n; i++) {
        const cv_node *nd = &g->nodes[i];
        cv_shape4 *o = &shapes[i];
        const cv_shape4 *x = nd->nin ? &shapes[nd->in[0]] : NULL;
        memset(o, 0, sizeof *o);
        switch (nd->op) {
        case OP_INPUT:
            if (c != nd->channels)
                return cv_fail(ctx, CV_ERR_SHAPE, "input has %lld channels, the model expects %d",
                               (long long)c, nd->channels);
            *o = (cv_shape4){{n, c, h, w}, 4};
            break;
        case OP_CONV: {
            const cv_tensor *wt = cv_state_tensor(params, nd->param[0]);
            int kh = nd->a.kh, kw = nd->a.kw; /* the weight may be [O, I] (b_pointwise) */
            *o = (cv_shape4){{n, wt->shape[0],
                              pool_out_size(x->d[2], kh, nd->a.sh, nd->a.ph, nd->a.dh, 0),
                              pool_out_size(x->d[3], kw, nd->a.sw, nd->a.pw, nd->a.dw, 0)},
                             4};
            if (wt->shape[1] * nd->a.groups != x->d[1])
                return cv_fail(ctx, CV_ERR_SHAPE,
                               "conv node %d: weight expects %lld input channels, got %lld", i,
                               (long long)(wt->shape[1] * nd->a.groups), (long long)x->d[1]);
            break;
        }
        case OP_MAXPOOL:
        case OP_AVGPOOL:
            *o = (cv_shape4){
                {n, x->d[1],
                 pool_out_size(x->d[2], nd->a.kh, nd->a.sh, nd->a.ph, nd->a.dh, nd->a.ceil_mode),
                 pool_out_size(x->d[3], nd->a.kw, nd->a.sw, nd->a.pw, nd->a.dw, nd->a.ceil_mode)},
                4};
            if (2 * nd->a.ph > nd->a.kh || 2 * nd->a.pw > nd->a.kw)
                return cv_fail(ctx, CV_ERR_INTERNAL,
                               "pool node %d: padding exceeds half the kernel", i);
            break;
        case OP_ADAPTIVE_AVGPOOL:
            *o = (cv_shape4){{n, x->d[1], nd->a.out_h, nd->a.out_w}, 4};
            if (x->d[2] < 1 || x->d[3] < 1)
                return cv_fail(ctx, CV_ERR_SHAPE, "adaptive pool node %d: empty input", i);
            break;
        case OP_LINEAR: {
            const cv_tensor *wt = cv_state_tensor(params, nd->param[0]);
            if (x->rank != 2 || x->d[1] != wt->shape[1])
                return cv_fail(ctx, CV_ERR_SHAPE, "linear node %d: expects %lld features, got %lld",
                               i, (long long)wt->shape[1],
                               (long long)(x->rank == 2 ? x->d[1] : -1));
            *o = (cv_shape4){{n, wt->shape[0]}, 2};
            break;
        }
        case OP_ADD:
        case OP_MUL: {
            const cv_shape4 *y = &shapes[nd->in[1]];
            int bcast = nd->op == OP_MUL && y->rank == 4 && y->d[2] == 1 && y->d[3] == 1 &&
                        y->d[1] == x->d[1];
            if (!bcast && memcmp(x->d, y->d, sizeof x->d))
                return cv_fail(ctx, CV_ERR_SHAPE, "%s node %d: operand shapes differ",
                               op_name(nd->op), i);
            *o = *x;
            break;
        }
        case OP_CONCAT: {
            *o = *x;
            o->d[1] = 0;
            for (int k = 0; k < nd->nin; k++) {
                const cv_shape4 *y = &shapes[nd->in[k]];
                if (y->d[2] != x->d[2] || y->d[3] != x->d[3])
                    return cv_fail(ctx, CV_ERR_SHAPE, "cat node %d: spatial sizes differ", i);
                o->d[1] += y->d[1];
            }
            break;
        }
        case OP_FLATTEN:
            *o = (cv_shape4){{n, x->rank == 4 ? x->d[1] * x->d[2] * x->d[3] : x->d[1]}, 2};
            break;
        case OP_BN:
        case OP_ACT:
        case OP_DROPOUT:
        case OP_SOFTMAX:
        case OP_LAYERNORM:
        case OP_CHANNEL_SCALE:
            *o = *x;
            break;
        case OP_SLICE:
            *o = *x;
            o->d[1] = nd->channels;
            if (x->rank != 4 || nd->a.start + nd->channels > x->d[1])
                return cv_fail(ctx, CV_ERR_SHAPE, "slice node %d: channels out of range", i);
            break;
        case OP_TOKENS: {
            const cv_tensor *pos = cv_state_tensor(params, nd->param[1]);
            *o = (cv_shape4){{n, x->d[1], 1 + x->d[2] * x->d[3], 1}, 4};
            if (pos->shape[1] != o->d[2])
                return cv_fail(ctx, CV_ERR_SHAPE,
                               "input %lldx%lld gives %lld patches; the position embeddings are "
                               "for %lld (the image size this model was built for)",
                               (long long)h, (long long)w, (long long)(o->d[2] - 1),
                               (long long)(pos->shape[1] - 1));
            break;
        }
        case OP_ATTENTION:
            *o = *x;
            o->d[1] = x->d[1] / 3;
            if (x->d[3] != 1 || x->d[1] != 3 * (int64_t)nd->channels)
                return cv_fail(ctx, CV_ERR_SHAPE, "attention node %d: not a token sequence", i);
            break;
        case OP_TAKE:
            *o = (cv_shape4){{n, x->d[1], 1, 1}, 4};
            if (x->d[3] != 1 || nd->a.start >= x->d[2])
                return cv_fail(ctx, CV_ERR_SHAPE, "take node %d: no token %d", i, nd->a.start);
            break;
        case OP_PAD:
            *o = *x;
            o->d[2] = (x->d[2] + nd->a.kh - 1) / nd->a.kh * nd->a.kh;
            o->d[3] = (x->d[3] + nd->a.kh - 1) / nd->a.kh * nd->a.kh;
            break;
        case OP_CROP: {
            const cv_shape4 *like = &shapes[nd->in[1]];
            *o = *x;
            o->d[2] = like->d[2], o->d[3] = like->d[3];
            if (like->d[2] > x->d[2] || like->d[3] > x->d[3])
                return cv_fail(ctx, CV_ERR_SHAPE, "crop node %d: larger than its input", i);
            break;
        }
        case OP_MERGE:
            *o = (cv_shape4){{n, 4 * x->d[1], (x->d[2] + 1) / 2, (x->d[3] + 1) / 2}, 4};
            break;
        case OP_WINDOW_ATTENTION:
        case OP_WINDOW_ATTENTION_V2:
        case OP_PARTITION_ATTENTION:
            *o = *x;
            o->d[1] = x->d[1] / 3;
            if (x->d[2] % nd->a.kh || x->d[3] % nd->a.kh)
                return cv_fail(ctx, CV_ERR_SHAPE,
                               "input %lldx%lld: %s node %d gets a %lldx%lld map, not whole %dx%d "
                               "windows%s",
                               (long long)h, (long long)w, op_name(nd->op), i, (long long)x->d[2],
                               (long long)x->d[3], nd->a.kh, nd->a.kh,
                               nd->op == OP_PARTITION_ATTENTION
                                   ? " (MaxViT needs maps that are multiples of 7 at every "
                                     "stage, e.g. a 224x224 input)"
                                   : "");
            break;
        case OP_AFFINE:
            *o = *x;
            if (x->rank != 4 || x->d[1] != nd->channels)
                return cv_fail(ctx, CV_ERR_SHAPE, "affine node %d: channels differ", i);
            break;
        case OP_SHUFFLE:
            *o = *x;
            if (x->rank != 4 || x->d[1] % nd->a.groups)
                return cv_fail(ctx, CV_ERR_SHAPE, "shuffle node %d: %lld channels, %d groups", i,
                               (long long)x->d[1], nd->a.groups);
            break;
        default:
            return cv_fail(ctx, CV_ERR_INTERNAL, "node %d: unknown op %d", i, (int)nd->op);
        }
        for (int k = 0; k < o->rank; k++)
            if (o->d[k] < 1)
                return cv_fail(ctx, CV_ERR_SHAPE,
                               "input %lldx%lld is too small for this architecture (%s node %d "
                               "would be empty)",
                               (long long)h, (long long)w, op_name(nd->op), i);
    }
    return CV_OK;
}
