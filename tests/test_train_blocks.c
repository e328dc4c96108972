/* One training step of the oneDNN backend against the reference backend on the building blocks
 * of the model zoo, one graph per block: every op's forward-training and backward path (primitive
 * or reference fallback, in place or accumulated, blocked or plain) is exercised on inputs small
 * enough to be well conditioned. Outputs, input-free parameter gradients and BN running
 * statistics must agree. */
#include <string.h>

#include "backend/backend.h"
#include "core/graph.h"
#include "test.h"

static uint64_t rng;

static float uniform(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (float)((rng >> 11) * (1.0 / 9007199254740992.0)) * 2 - 1;
}

typedef int (*block_fn)(cv_builder *b);

/* The grad_ready hook's record: how often each parameter was reported, and its gradient then. */
typedef struct {
    cv_tensor **grad;
    int *calls;
    float **seen;
} hook_log;

static void hook(void *user, int k)
{
    hook_log *h = user;
    if (h->calls[k]++ == 0 && (h->seen[k] = malloc(h->grad[k]->nbytes)))
        memcpy(h->seen[k], h->grad[k]->data, h->grad[k]->nbytes);
}

typedef struct {
    float *out, **grad, *params;
    int64_t nout;
} result;

static int run_one(const cv_backend_ops *ops, block_fn build, const int64_t *in, result *r,
                   int *ngrad, int64_t **gn, int64_t *nparams)
{
    cv_ctx *ctx = cv_ctx_new();
    cv_builder b = {.ctx = ctx};
    b.g = calloc(1, sizeof *b.g);
    b.params = cv_state_new();
    b.g->output = build(&b);
    int ok = !b.err;
    CHECK(ok);
    cv_shape4 *sh = calloc((size_t)b.g->n, sizeof *sh);
    int np = cv_state_count(b.params);
    cv_tensor **grad = calloc((size_t)np, sizeof *grad);
    rng = 11;
    for (int i = 0; ok && i < np; i++) {
        cv_tensor *t = cv_state_tensor(b.params, i);
        const char *name = cv_state_name(b.params, i);
        if (t->dtype != CV_F32) continue;
        int64_t n = cv_tensor_numel(t), fan = t->ndim > 1 ? n / t->shape[0] : 1;
        for (int64_t k = 0; k < n; k++)
            ((float *)t->data)[k] = strstr(name, "running_var")              ? 1 + 0.5f * uniform()
                                    : t->ndim == 1 && strstr(name, "weight") ? 1 + 0.3f * uniform()
                                    : t->ndim > 1 ? 1.7f / sqrtf((float)fan) * uniform()
                                                  : 0.2f * uniform();
        if (graph_is_buffer(name)) continue; /* running statistics, fixed tables: never train */
        CHECK_OK(ctx, cv_tensor_clone(ctx, t, &grad[i]));
        memset(grad[i]->data, 0, grad[i]->nbytes);
    }
    ok = ok && graph_infer_shapes(ctx, b.g, b.params, in[0], in[1], in[2], in[3], sh) == CV_OK;
    CHECK(ok);
    hook_log hl = {grad, calloc((size_t)np + 1, sizeof(int)),
                   calloc((size_t)np + 1, sizeof(float *))};
    cv_train_io io = {.grad = grad, .seed = 3, .grad_ready = hook, .user = &hl};
    cv_exec *e = NULL;
    if (ok) CHECK_OK(ctx, ops->plan(ctx, b.g, b.params, sh, PLAN_TRAIN, &io, &e));
    int64_t nin = in[0] * in[1] * in[2] * in[3], nout = ok ? shape_numel(&sh[b.g->output]) : 0;
    float *x = malloc((size_t)nin * 4), *dy = malloc((size_t)(nout + 1) * 4);
    r->out = malloc((size_t)(nout + 1) * 4);
    r->nout = nout;
    rng = 5;
    for (int64_t i = 0; i < nin; i++) x[i] = uniform() + 0.3f;
    for (int64_t i = 0; i < nout; i++) dy[i] = uniform();
    if (e) {
        CHECK_OK(ctx, ops->run(ctx, e, x, r->out, &io));
        CHECK_OK(ctx, ops->backward(ctx, e, dy, &io));
    }
    /* every gradient was reported once, after its last contribution */
    for (int i = 0; e && i < np; i++) {
        CHECK(hl.calls[i] == (grad[i] != NULL));
        if (grad[i] && hl.seen[i]) CHECK(!memcmp(hl.seen[i], grad[i]->data, grad[i]->nbytes));
        free(hl.seen[i]);
    }
    free(hl.calls), free(hl.seen);
    /* gradients, then every float parameter (the running statistics moved) */
    r->grad = calloc((size_t)np, sizeof *r->grad);
    *gn = calloc((size_t)np, sizeof **gn);
    *nparams = 0;
    for (int i = 0; i < np; i++) {
        cv_tensor *t = cv_state_tensor(b.params, i);
        (*gn)[i] = grad[i] ? cv_tensor_numel(grad[i]) : 0;
        if (grad[i]) {
            r->grad[i] = malloc(grad[i]->nbytes);
            memcpy(r->grad[i], grad[i]->data, grad[i]->nbytes);
        }
        if (t->dtype == CV_F32) *nparams += cv_tensor_numel(t);
    }
    r->params = malloc((size_t)(*nparams + 1) * 4);
    for (int i = 0, off = 0; i < np; i++) {
        cv_tensor *t = cv_state_tensor(b.params, i);
        if (t->dtype != CV_F32) continue;
        memcpy(r->params + off, t->data, t->nbytes);
        off += (int)cv_tensor_numel(t);
    }
    *ngrad = np;
    if (e) ops->free(e);
    for (int i = 0; i < np; i++) cv_tensor_free(grad[i]);
    free(grad), free(sh), free(x), free(dy);
    graph_free(b.g);
    cv_state_free(b.params);
    cv_ctx_free(ctx);
    return ok;
}

/* max|a - b| / max(max|a|, floor): `floor` keeps tensors whose true value is zero (a conv bias
 * feeding a training-mode batch norm has an exactly zero gradient) from comparing rounding noise.
 */
static double rel(const float *a, const float *b, int64_t n, double floor)
{
    double d = 0, m = floor;
    for (int64_t i = 0; i < n; i++) d = fmax(d, fabs(a[i] - b[i])), m = fmax(m, fabs(a[i]));
    return m > 0 ? d / m : d;
}

static void check_block(const char *name, block_fn build, int64_t n, int64_t c, int64_t h,
                        int64_t w)
{
    int64_t in[4] = {n, c, h, w}, *gn0, *gn1, np0, np1;
    result r[2];
    int ng0, ng1;
    if (!run_one(&cv_backend_ref, build, in, &r[0], &ng0, &gn0, &np0) ||
        !run_one(&cv_backend_dnnl, build, in, &r[1], &ng1, &gn1, &np1))
        return;
    double dout = rel(r[0].out, r[1].out, r[0].nout, 0), dg = 0,
           dp = rel(r[0].params, r[1].params, np0, 0);
    double gmax = 0;
    for (int i = 0; i < ng0; i++)
        for (int64_t k = 0; r[0].grad[i] && k < gn0[i]; k++)
            gmax = fmax(gmax, fabs(r[0].grad[i][k]));
    for (int i = 0; i < ng0; i++)
        if (r[0].grad[i]) dg = fmax(dg, rel(r[0].grad[i], r[1].grad[i], gn0[i], 1e-3 * gmax));
    fprintf(stderr, "  %-32s out %.2g  grads %.2g  params+stats %.2g\n", name, dout, dg, dp);
    CHECK(dout <= 1e-5 && dg <= 1e-4 && dp <= 1e-6);
    for (int k = 0; k < 2; k++) {
        for (int i = 0; i < ng0; i++) free(r[k].grad[i]);
        free(r[k].grad), free(r[k].out), free(r[k].params);
    }
    free(gn0), free(gn1);
}

/* ResNet's Bottleneck with a strided downsample, then one with the identity. */
static int bottleneck(cv_builder *b, int x, int planes, int stride, int ds)
{
    int y =
        b_act(b, b_bn(b, b_conv(b, x, "conv1", planes, 1, 1, 0, 1, 1, 0), "bn1", 1e-5f), ACT_RELU);
    y = b_act(b, b_bn(b, b_conv(b, y, "conv2", planes, 3, stride, 1, 1, 1, 0), "bn2", 1e-5f),
              ACT_RELU);
    y = b_bn(b, b_conv(b, y, "conv3", planes * 4, 1, 1, 0, 1, 1, 0), "bn3", 1e-5f);
    int id = x;
    if (ds) {
        b_push(b, "downsample");
        id = b_bn(b, b_conv(b, x, "0", planes * 4, 1, stride, 0, 1, 1, 0), "1", 1e-5f);
        b_pop(b);
    }
    return b_act(b, b_add(b, y, id), ACT_RELU);
}

static int head(cv_builder *b, int x)
{
    return b_linear(b, b_flatten(b, b_adaptive_avgpool(b, x, 1, 1)), "fc", 5, 1);
}

static int blk_bottleneck(cv_builder *b)
{
    int x = b_input(b, 32);
    b_push(b, "a");
    x = bottleneck(b, x, 16, 2, 1);
    b_pop(b);
    b_push(b, "b");
    x = bottleneck(b, x, 16, 1, 0);
    b_pop(b);
    return head(b, x);
}

/* MobileNetV2's inverted residual: expand 1x1, depthwise 3x3 (strided), project, residual. */
static int blk_inverted_residual(cv_builder *b)
{
    int x = b_input(b, 16), y = x;
    for (int s = 0; s < 2; s++) {
        b_pushi(b, s);
        y = b_act(b, b_bn(b, b_conv(b, x, "expand", 96, 1, 1, 0, 1, 1, 0), "bn0", 1e-5f),
                  ACT_RELU6);
        y = b_act(b, b_bn(b, b_conv(b, y, "dw", 96, 3, 2 - s, 1, 1, 96, 0), "bn1", 1e-5f),
                  ACT_RELU6);
        y = b_bn(b, b_conv(b, y, "project", 16, 1, 1, 0, 1, 1, 0), "bn2", 1e-5f);
        x = s ? b_add(b, y, x) : y;
        b_pop(b);
    }
    return head(b, x);
}

/* VGG-BN: conv (with bias) -> BN -> ReLU -> max pool, twice; classifier with dropout. */
static int blk_vgg(cv_builder *b)
{
    int x = b_input(b, 3);
    x = b_maxpool(
        b, b_act(b, b_bn(b, b_conv(b, x, "c0", 16, 3, 1, 1, 1, 1, 1), "b0", 1e-5f), ACT_RELU), 2, 2,
        0, 0);
    x = b_maxpool(
        b, b_act(b, b_bn(b, b_conv(b, x, "c1", 32, 3, 1, 1, 1, 1, 1), "b1", 1e-5f), ACT_RELU), 3, 2,
        1, 1);
    x = b_flatten(b, b_adaptive_avgpool(b, x, 3, 3)); /* 5x5 -> 3x3: non-uniform windows */
    x = b_dropout(b, b_act(b, b_linear(b, x, "fc0", 24, 1), ACT_RELU), 0.5f);
    return b_linear(b, x, "fc1", 5, 1);
}

static int squeeze(cv_builder *b, int x, int c, cv_act act, cv_act gate)
{
    int s = b_adaptive_avgpool(b, x, 1, 1);
    s = b_act(b, b_conv(b, s, "fc1", c, 1, 1, 0, 1, 1, 1), act);
    s = b_act(b, b_conv(b, s, "fc2", b->g->nodes[x].channels, 1, 1, 0, 1, 1, 1), gate);
    return b_mul(b, x, s);
}

/* MobileNetV3's pieces: hardswish, squeeze-excitation with hardsigmoid and a broadcast multiply. */
static int blk_se(cv_builder *b)
{
    int x = b_input(b, 8);
    x = b_act(b, b_bn(b, b_conv(b, x, "c0", 24, 3, 1, 1, 1, 1, 0), "b0", 1e-3f), ACT_HARDSWISH);
    int s = b_adaptive_avgpool(b, x, 1, 1);
    s = b_act(b, b_conv(b, s, "fc1", 8, 1, 1, 0, 1, 1, 1), ACT_RELU);
    s = b_act(b, b_conv(b, s, "fc2", 24, 1, 1, 0, 1, 1, 1), ACT_HARDSIGMOID);
    x = b_mul(b, x, s);
    x = b_act(b, x, ACT_SILU);
    return head(b, x);
}

/* Inception/DenseNet-style concatenation and average pooling with ceil_mode and padding. */
static int blk_concat_pool(cv_builder *b)
{
    int x = b_input(b, 6);
    int a = b_act(b, b_conv(b, x, "a", 8, 1, 1, 0, 1, 1, 1), ACT_RELU);
    int c = b_act(b, b_conv(b, x, "c", 4, 3, 1, 2, 2, 1, 1), ACT_GELU); /* dilated */
    int d = b_avgpool(b, x, 3, 1, 1, 0, 0);
    int xs[3] = {a, c, d};
    x = b_concat(b, 3, xs);
    x = b_avgpool(b, x, 2, 2, 1, 1, 1);
    x = b_bn(b, x, "bn", 1e-5f); /* batch norm not after a convolution */
    return head(b, b_act(b, x, ACT_SIGMOID));
}

/* ShuffleNetV2's units: a channel split (slice), a strided two-branch unit, concat, shuffle. */
static int blk_shuffle(cv_builder *b)
{
    int x = b_input(b, 8);
    int l = b_bn(b, b_conv(b, x, "dw", 8, 3, 2, 1, 1, 8, 0), "b0", 1e-5f);
    l = b_act(b, b_bn(b, b_conv(b, l, "pw", 8, 1, 1, 0, 1, 1, 0), "b1", 1e-5f), ACT_RELU);
    int r = b_act(b, b_bn(b, b_conv(b, x, "c", 8, 3, 2, 1, 1, 1, 0), "b2", 1e-5f), ACT_RELU);
    int xs[2] = {l, r};
    x = b_shuffle(b, b_concat(b, 2, xs), 2);
    int a = b_slice(b, x, 0, 8), c = b_slice(b, x, 8, 8);
    c = b_act(b, b_bn(b, b_conv(b, c, "c2", 8, 1, 1, 0, 1, 1, 0), "b3", 1e-5f), ACT_RELU);
    int ys[2] = {a, c};
    return head(b, b_shuffle(b, b_concat(b, 2, ys), 4));
}

/* GoogLeNet/Inception: transform_input's constant affine (here mid-graph, so that it has a
 * gradient to pass on), BasicConv2d with eps 1e-3, asymmetric kernels, a ceil-mode max pool branch
 * and a four-way concat. */
static int blk_inception(cv_builder *b)
{
    static const float scale[3] = {0.458f, 0.448f, 0.45f}, shift[3] = {-0.03f, -0.088f, -0.188f};
    int x = b_input(b, 3);
    x = b_affine(b, b_conv(b, x, "c0", 3, 3, 1, 1, 1, 1, 1), scale, shift);
    x = b_act(b, b_bn(b, b_conv(b, x, "c1", 16, 3, 1, 1, 1, 1, 0), "b1", 1e-3f), ACT_RELU);
    int br[4];
    br[0] = b_act(b, b_bn(b, b_conv2(b, x, "a", 8, 1, 7, 1, 1, 0, 3, 1, 0), "ba", 1e-3f), ACT_RELU);
    br[1] = b_act(b, b_bn(b, b_conv2(b, x, "c", 8, 7, 1, 1, 1, 3, 0, 1, 0), "bc", 1e-3f), ACT_RELU);
    br[2] = b_maxpool(b, x, 3, 1, 1, 1);
    br[3] = b_act(
        b,
        b_bn(b, b_conv(b, b_avgpool(b, x, 3, 1, 1, 0, 1), "p", 8, 1, 1, 0, 1, 1, 0), "bp", 1e-3f),
        ACT_RELU);
    return head(b, b_maxpool(b, b_concat(b, 4, br), 3, 2, 0, 1));
}

/* EfficientNet's MBConv: SiLU, SE with a sigmoid gate, a residual through stochastic depth. */
static int blk_mbconv(cv_builder *b)
{
    int x = b_input(b, 8);
    int y = b_act(b, b_bn(b, b_conv(b, x, "e", 32, 1, 1, 0, 1, 1, 0), "b0", 1e-3f), ACT_SILU);
    y = b_act(b, b_bn(b, b_conv(b, y, "dw", 32, 5, 1, 2, 1, 32, 0), "b1", 1e-3f), ACT_SILU);
    b_push(b, "se");
    y = squeeze(b, y, 2, ACT_SILU, ACT_SIGMOID);
    b_pop(b);
    y = b_bn(b, b_conv(b, y, "p", 8, 1, 1, 0, 1, 1, 0), "b2", 1e-3f);
    return head(b, b_add(b, b_stochastic_depth(b, y, 0.5f), x));
}

/* Stochastic depth drops whole samples: each sample's output is 0 or x / (1 - p), and the same
 * samples are dropped in the backward pass. */
static void test_stochastic_depth_rows(void)
{
    cv_ctx *ctx = cv_ctx_new();
    cv_builder b = {.ctx = ctx};
    b.g = calloc(1, sizeof *b.g);
    b.params = cv_state_new();
    b.g->output = b_stochastic_depth(&b, b_input(&b, 3), 0.5f);
    cv_shape4 sh[2];
    CHECK_OK(ctx, graph_infer_shapes(ctx, b.g, b.params, 16, 3, 2, 2, sh));
    cv_train_io io = {.grad = NULL, .seed = 9};
    cv_exec *e = NULL;
    float x[16 * 12], y[16 * 12];
    for (int i = 0; i < 16 * 12; i++) x[i] = 1 + (float)i;
    CHECK_OK(ctx, cv_backend_ref.plan(ctx, b.g, b.params, sh, PLAN_TRAIN, &io, &e));
    if (e) CHECK_OK(ctx, cv_backend_ref.run(ctx, e, x, y, &io));
    int dropped = 0;
    for (int n = 0; e && n < 16; n++) {
        int zeros = 0, kept = 0;
        for (int k = 0; k < 12; k++)
            zeros += y[n * 12 + k] == 0, kept += y[n * 12 + k] == 2 * x[n * 12 + k];
        CHECK(zeros == 12 || kept == 12);
        dropped += zeros == 12;
    }
    CHECK(dropped > 0 && dropped < 16);
    if (e) cv_backend_ref.free(e);
    graph_free(b.g);
    cv_state_free(b.params);
    cv_ctx_free(ctx);
}

/* ConvNeXt's block: depthwise 7x7 with bias, channels-last LayerNorm, pointwise linears with
 * [out, in] weights, GELU, layer scale, stochastic depth; a LayerNorm2d-then-strided-conv
 * downsample. */
static int blk_convnext(cv_builder *b)
{
    int x = b_input(b, 8);
    int y = b_conv(b, x, "dw", 8, 7, 1, 3, 1, 8, 1);
    y = b_layernorm(b, y, "ln", 1e-6f);
    y = b_pointwise(b, b_act(b, b_pointwise(b, y, "fc1", 32, 1), ACT_GELU), "fc2", 8, 1);
    int64_t ls[3] = {8, 1, 1};
    y = b_channel_scale(b, y, "layer_scale", 3, ls);
    x = b_add(b, b_stochastic_depth(b, y, 0.3f), x);
    x = b_conv(b, b_layernorm(b, x, "down", 1e-6f), "dconv", 16, 2, 2, 0, 1, 1, 1);
    return head(b, x);
}

/* A ViT encoder: patch embedding, class token and position embeddings, pre-norm attention and
 * MLP blocks with residuals, the class token through the final LayerNorm and the head. */
static int blk_vit(cv_builder *b)
{
    int x = b_conv(b, b_input(b, 3), "conv_proj", 16, 4, 4, 0, 1, 1, 1);
    x = b_tokens(b, x, "", "encoder", 1 + 3 * 2);
    for (int i = 0; i < 2; i++) {
        b_pushi(b, i);
        int y = b_layernorm(b, x, "ln_1", 1e-6f);
        b_push(b, "attn");
        y = b_pointwise_named(b, y, "in_proj_weight", "in_proj_bias", 48);
        y = b_pointwise(b, b_attention(b, y, 4), "out_proj", 16, 1);
        b_pop(b);
        x = b_add(b, y, x);
        y = b_act(b, b_pointwise(b, b_layernorm(b, x, "ln_2", 1e-6f), "mlp0", 32, 1), ACT_GELU);
        x = b_add(b, b_pointwise(b, y, "mlp3", 16, 1), x);
        b_pop(b);
    }
    x = b_layernorm(b, b_take(b, x, 0), "ln", 1e-6f);
    return b_linear(b, b_flatten(b, x), "head", 5, 1);
}

/* vit_b_32's patch embedding: a 32x32 stride-32 kernel on the 3-channel input, for which oneDNN
 * has only its reference backward-weights kernel in the values' own layouts (the planner then
 * lets it pick the layouts). */
static int blk_patch32(cv_builder *b)
{
    int x = b_conv(b, b_input(b, 3), "conv_proj", 16, 32, 32, 0, 1, 1, 1);
    return b_linear(b, b_flatten(b, x), "head", 5, 1);
}

/* A Swin block pair (plain, then shifted windows with masks) on a map that needs window padding,
 * then patch merging. */
static int blk_swin(cv_builder *b)
{
    int x = b_layernorm(b, b_conv(b, b_input(b, 3), "embed", 8, 2, 2, 0, 1, 1, 1), "n0", 1e-5f);
    for (int i = 0; i < 2; i++) {
        b_pushi(b, i);
        int y = b_layernorm(b, x, "norm1", 1e-5f);
        int a = b_pointwise(b, b_pad(b, y, 3), "qkv", 24, 1);
        a = b_crop(b, b_window_attention(b, a, 3, i, 2), y);
        x = b_add(b, b_stochastic_depth(b, b_pointwise(b, a, "proj", 8, 1), 0.2f), x);
        y = b_act(b, b_pointwise(b, b_layernorm(b, x, "norm2", 1e-5f), "mlp0", 16, 1), ACT_GELU);
        x = b_add(b, b_pointwise(b, y, "mlp3", 8, 1), x);
        b_pop(b);
    }
    x = b_pointwise(b, b_layernorm(b, b_merge(b, x), "mn", 1e-5f), "reduction", 16, 0);
    return head(b, x);
}

/* Swin V2: post-norm blocks with cosine attention (plain, then shifted), patch merging V2. */
static int blk_swin_v2(cv_builder *b)
{
    int x = b_layernorm(b, b_conv(b, b_input(b, 3), "embed", 8, 2, 2, 0, 1, 1, 1), "n0", 1e-5f);
    for (int i = 0; i < 2; i++) {
        b_pushi(b, i);
        b_push(b, "attn");
        int a = b_pointwise(b, b_pad(b, x, 3), "qkv", 24, 0);
        a = b_pointwise(b, b_crop(b, b_window_attention_v2(b, a, 3, i, 2), x), "proj", 8, 1);
        b_pop(b);
        x = b_add(b, b_stochastic_depth(b, b_layernorm(b, a, "norm1", 1e-5f), 0.2f), x);
        int y = b_act(b, b_pointwise(b, x, "mlp0", 16, 1), ACT_GELU);
        x = b_add(b, b_layernorm(b, b_pointwise(b, y, "mlp3", 8, 1), "norm2", 1e-5f), x);
        b_pop(b);
    }
    x = b_layernorm(b, b_pointwise(b, b_merge(b, x), "reduction", 16, 0), "mn", 1e-5f);
    return head(b, x);
}

/* MaxViT: MBConv (pre-norm BN, GELU, SE) then block and grid attention with their MLPs, a
 * LayerNorm -> Linear -> Tanh head. */
static int bn99(cv_builder *b, int x, const char *name) /* MaxViT's eps 1e-3, momentum 0.99 */
{
    int id = b_bn(b, x, name, 1e-3f);
    if (id >= 0) b->g->nodes[id].a.momentum = 0.99f;
    return id;
}

static int blk_maxvit(cv_builder *b)
{
    int x = b_conv(b, b_input(b, 3), "stem", 8, 3, 2, 1, 1, 1, 1), res = x;
    int y = bn99(b, x, "pre");
    y = b_act(b, bn99(b, b_conv(b, y, "a", 16, 1, 1, 0, 1, 1, 0), "an"), ACT_GELU);
    y = b_act(b, bn99(b, b_conv(b, y, "b", 16, 3, 1, 1, 1, 16, 0), "bn"), ACT_GELU);
    y = b_conv(b, squeeze(b, y, 2, ACT_SILU, ACT_SIGMOID), "c", 8, 1, 1, 0, 1, 1, 1);
    x = b_add(b, res, b_stochastic_depth(b, y, 0.2f));
    for (int grid = 0; grid < 2; grid++) {
        b_pushi(b, grid);
        y = b_pointwise(b, b_layernorm(b, x, "ln1", 1e-5f), "qkv", 24, 1);
        y = b_pointwise(b, b_partition_attention(b, y, 3, grid, 2), "merge", 8, 1);
        x = b_add(b, x, y);
        y = b_act(b, b_pointwise(b, b_layernorm(b, x, "ln2", 1e-5f), "mlp1", 16, 1), ACT_GELU);
        x = b_add(b, x, b_pointwise(b, y, "mlp3", 8, 1));
        b_pop(b);
    }
    x = b_layernorm(b, b_flatten(b, b_adaptive_avgpool(b, x, 1, 1)), "ln", 1e-5f);
    return b_linear(b, b_act(b, b_linear(b, x, "pre_logits", 8, 1), ACT_TANH), "fc", 5, 0);
}

int main(void)
{
    check_block("bottleneck (downsample, identity)", blk_bottleneck, 4, 32, 10, 9);
    check_block("inverted residual (depthwise)", blk_inverted_residual, 4, 16, 11, 10);
    check_block("vgg-bn, max pool, dropout", blk_vgg, 4, 3, 21, 19);
    check_block("squeeze-excitation, hardswish", blk_se, 4, 8, 9, 7);
    check_block("concat, ceil-mode avg pool", blk_concat_pool, 4, 6, 9, 11);
    check_block("channel split and shuffle", blk_shuffle, 4, 8, 9, 11);
    check_block("mbconv: SiLU, SE sigmoid, stochastic depth", blk_mbconv, 4, 8, 7, 9);
    test_stochastic_depth_rows();
    check_block("convnext: layernorm, pointwise, layer scale", blk_convnext, 4, 8, 9, 11);
    check_block("vit: tokens, attention, take", blk_vit, 4, 3, 12, 8);
    check_block("patch embedding 32x32, stride 32", blk_patch32, 4, 3, 32, 32);
    check_block("swin: pad, shifted windows, crop, merge", blk_swin, 2, 3, 14, 10);
    check_block("swin v2: cosine attention, position-bias MLP", blk_swin_v2, 2, 3, 14, 10);
    check_block("maxvit: mbconv, block and grid attention, tanh", blk_maxvit, 2, 3, 12, 11);
    check_block("inception: affine, 1x7/7x1, pools, concat", blk_inception, 4, 3, 10, 9);
    TEST_EXIT();
}
