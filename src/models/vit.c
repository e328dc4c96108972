/* Vision Transformer (torchvision/models/vision_transformer.py). Token sequences are [N, D, L, 1]
 * values: the patch embedding is a strided convolution whose h*w outputs are the patches in
 * torchvision's order, Linear layers are pointwise convolutions, LayerNorm (eps 1e-6) normalises
 * the channels of each token. The class token is taken before the final LayerNorm, which acts
 * on each token alone, so only its row is normalised. As in torchvision, the input must have the
 * image size the position embeddings were made for: 224, or the size a checkpoint's
 * pos_embedding implies (384, 512, 518 for the SWAG weights), which the cfg_for hook reads. */
#include <stdio.h>
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

/* The image size the checkpoint's position embeddings were made for: (1 + side^2) tokens. */
const void *vit_cfg_for(const void *cfgp, const cv_state *st, void *buf)
{
    const vit_cfg *cfg = cfgp;
    const cv_tensor *pos = cv_state_get(st, "encoder.pos_embedding");
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

/* MLPBlock version 1 named its layers linear_1 and linear_2 (now 0 and 3). */
int vit_rename(const char *key, char *out, size_t size)
{
    const char *m = strstr(key, ".mlp.linear_");
    if (!m || (m[12] != '1' && m[12] != '2') || m[13] != '.' || strlen(key) >= size) return 0;
    size_t pre = (size_t)(m - key) + 5; /* through ".mlp." */
    snprintf(out, size, "%.*s%c%s", (int)pre, key, m[12] == '1' ? '0' : '3', m + 13);
    return 1;
}
