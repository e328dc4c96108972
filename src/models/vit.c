/* Vision Transformer (torchvision/models/vision_transformer.py). Token sequences are [N, D, L, 1]
 * values: the patch embedding is a strided convolution whose h*w outputs are the patches in
 * torchvision's order, Linear layers are pointwise convolutions, LayerNorm (eps 1e-6) normalises
 * the channels of each token. The class token is taken before the final LayerNorm, which acts
 * on each token alone, so only its row is normalised. As in torchvision, the input must have the
 * image size the position embeddings were made for: 224, or the size a checkpoint's
 * pos_embedding implies (384, 512, 518 for the SWAG weights), which the cfg_for hook reads, or
 * the size the caller asks for (state metadata "image_size"), for which the position embeddings
 * are interpolated as torchvision's interpolate_embeddings does. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/models.h"

static int encoder_block(cv_builder *b, int x, const vit_cfg *cfg)
{
    int d = cfg->hidden;
    int y = b_layernorm(b, x, "ln_1", 1e-6f);
    b_push(b, "self_attention");
    y = b_pointwise_named(b, y, "in_proj_weight", "in_proj_bias", 3 * d);
    y = b_attention(b, y, cfg->heads);
    y = b_pointwise(b, y, "out_proj", d, 1);
    b_pop(b);
    x = b_add(b, b_dropout(b, y, 0.0f), x);
    y = b_layernorm(b, x, "ln_2", 1e-6f);
    b_push(b, "mlp");
    y = b_act(b, b_pointwise(b, y, "0", cfg->mlp, 1), ACT_GELU);
    y = b_pointwise(b, y, "3", d, 1);
    b_pop(b);
    return b_add(b, y, x);
}

int build_vit(cv_builder *b, const void *cfgp, int num_classes)
{
    const vit_cfg *cfg = cfgp;
    int side = cfg->image_size / cfg->patch;
    int x = b_input(b, 3);
    x = b_conv(b, x, "conv_proj", cfg->hidden, cfg->patch, cfg->patch, 0, 1, 1, 1);
    x = b_tokens(b, x, "", "encoder", 1 + side * side);
    b_push(b, "encoder");
    b_push(b, "layers");
    for (int i = 0; i < cfg->layers; i++) {
        char name[32];
        snprintf(name, sizeof name, "encoder_layer_%d", i);
        b_push(b, name);
        x = encoder_block(b, x, cfg);
        b_pop(b);
    }
    b_pop(b);
    x = b_layernorm(b, b_take(b, x, 0), "ln", 1e-6f);
    b_pop(b);
    b_push(b, "heads");
    x = b_linear(b, b_flatten(b, x), "head", num_classes, 1);
    b_pop(b);
    return x;
}

/* The image size: the state's "image_size" metadata when set (the position embeddings are then
 * interpolated by vit_adapt), else the size the checkpoint's position embeddings were made for:
 * (1 + side^2) tokens. */
const void *vit_cfg_for(const void *cfgp, const cv_state *st, void *buf)
{
    const vit_cfg *cfg = cfgp;
    const char *res = cv_state_get_meta(st, "image_size");
    if (res) {
        char *end;
        long v = strtol(res, &end, 10);
        if (*end || v < cfg->patch || v > 65536 || v == cfg->image_size) return cfg;
        vit_cfg *c = buf;
        *c = *cfg;
        c->image_size = (int)v;
        return c;
    }
    const cv_tensor *pos = cv_state_get(st, "encoder.pos_embedding");
    if (!pos) pos = cv_state_get(st, "pos_embed"); /* timm's name */
    if (!pos || pos->ndim != 3 || pos->shape[1] < 2 || pos->shape[1] > 1 + 4096 * 4096) return cfg;
    int side = 1;
    while ((int64_t)side * side < pos->shape[1] - 1) side++;
    if ((int64_t)side * side != pos->shape[1] - 1 || side * cfg->patch == cfg->image_size)
        return cfg; /* not a square grid: the shape check reports the mismatch */
    vit_cfg *v = buf;
    *v = *cfg;
    v->image_size = side * cfg->patch;
    return v;
}

/* timm's VisionTransformer (DeiT) names -> torchvision's (docs/models.md). */
static int vit_timm_rename(const char *key, char *out, size_t size)
{
    static const char *const top[][2] = {
        {"cls_token", "class_token"},
        {"pos_embed", "encoder.pos_embedding"},
        {"patch_embed.proj.weight", "conv_proj.weight"},
        {"patch_embed.proj.bias", "conv_proj.bias"},
        {"norm.weight", "encoder.ln.weight"},
        {"norm.bias", "encoder.ln.bias"},
        {"head.weight", "heads.head.weight"},
        {"head.bias", "heads.head.bias"},
    };
    static const char *const blk[][2] = {
        {"norm1.", "ln_1."},
        {"attn.qkv.weight", "self_attention.in_proj_weight"},
        {"attn.qkv.bias", "self_attention.in_proj_bias"},
        {"attn.proj.", "self_attention.out_proj."},
        {"norm2.", "ln_2."},
        {"mlp.fc1.", "mlp.0."},
        {"mlp.fc2.", "mlp.3."},
    };
    for (size_t i = 0; i < sizeof top / sizeof *top; i++)
        if (!strcmp(key, top[i][0])) return snprintf(out, size, "%s", top[i][1]) < (int)size;
    int layer, used = 0;
    if (sscanf(key, "blocks.%d.%n", &layer, &used) != 1 || !used || layer < 0) return 0;
    const char *rest = key + used;
    for (size_t i = 0; i < sizeof blk / sizeof *blk; i++) {
        size_t n = strlen(blk[i][0]);
        if (!strncmp(rest, blk[i][0], n))
            return snprintf(out, size, "encoder.layers.encoder_layer_%d.%s%s", layer, blk[i][1],
                            rest + n) < (int)size;
    }
    return 0;
}

/* MLPBlock version 1 named its layers linear_1 and linear_2 (now 0 and 3); timm's names. */
int vit_rename(const char *key, char *out, size_t size)
{
    if (vit_timm_rename(key, out, size)) return 1;
    const char *m = strstr(key, ".mlp.linear_");
    if (!m || (m[12] != '1' && m[12] != '2') || m[13] != '.' || strlen(key) >= size) return 0;
    size_t pre = (size_t)(m - key) + 5; /* through ".mlp." */
    snprintf(out, size, "%.*s%c%s", (int)pre, key, m[12] == '1' ? '0' : '3', m + 13);
    return 1;
}

/* PyTorch's cubic convolution weights (A = -0.75) for the 4 taps around fraction t. */
static void cubic_weights(double t, double w[4])
{
    const double A = -0.75;
    double x;
    x = t + 1, w[0] = ((A * x - 5 * A) * x + 8 * A) * x - 4 * A;
    x = t, w[1] = ((A + 2) * x - (A + 3)) * x * x + 1;
    x = 1 - t, w[2] = ((A + 2) * x - (A + 3)) * x * x + 1;
    x = 2 - t, w[3] = ((A * x - 5 * A) * x + 8 * A) * x - 4 * A;
}

/* torchvision's interpolate_embeddings: the class token's embedding is kept; the grid part
 * [side, side] of each channel is resized to the model's grid by F.interpolate(mode="bicubic",
 * align_corners=True) (edge taps clamped to the border). */
cv_status vit_adapt(cv_ctx *ctx, const void *cfgp, cv_state *view)
{
    const vit_cfg *cfg = cfgp;
    const cv_tensor *pos = cv_state_get(view, "encoder.pos_embedding");
    int64_t n = cfg->image_size / cfg->patch, want = 1 + n * n;
    if (!pos || pos->ndim != 3 || pos->shape[0] != 1 || pos->shape[1] == want ||
        pos->shape[1] < 2 || pos->dtype == CV_BOOL)
        return CV_OK; /* the shape check reports what does not fit */
    int64_t old = pos->shape[1] - 1, side = (int64_t)sqrt((double)old), D = pos->shape[2];
    while (side * side > old) side--;
    while ((side + 1) * (side + 1) <= old) side++;
    if (side * side != old)
        return cv_fail(ctx, CV_ERR_SHAPE,
                       "encoder.pos_embedding: %lld patch positions are not a square grid, "
                       "cannot interpolate them for image size %d",
                       (long long)old, cfg->image_size);
    int64_t shape[3] = {1, want, D};
    cv_tensor *t;
    cv_status s = cv_tensor_new(ctx, CV_F32, 3, shape, &t);
    if (s) return s;
    float *o = t->data;
    for (int64_t d = 0; d < D; d++) o[d] = (float)tensor_value(pos, d);
    double scale = n > 1 ? (double)(side - 1) / (double)(n - 1) : 0;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) {
            double ry = scale * (double)i, rx = scale * (double)j, wy[4], wx[4];
            int64_t y0 = (int64_t)floor(ry), x0 = (int64_t)floor(rx);
            cubic_weights(ry - (double)y0, wy);
            cubic_weights(rx - (double)x0, wx);
            for (int64_t d = 0; d < D; d++) {
                double v = 0;
                for (int a = 0; a < 4; a++) {
                    int64_t y = y0 - 1 + a;
                    y = y < 0 ? 0 : y >= side ? side - 1 : y;
                    double row = 0;
                    for (int c = 0; c < 4; c++) {
                        int64_t x = x0 - 1 + c;
                        x = x < 0 ? 0 : x >= side ? side - 1 : x;
                        row += wx[c] * tensor_value(pos, (1 + y * side + x) * D + d);
                    }
                    v += wy[a] * row;
                }
                o[(1 + i * n + j) * D + d] = (float)v;
            }
        }
    return cv_state_put(ctx, view, "encoder.pos_embedding", t);
}
