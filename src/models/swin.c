/* Swin Transformer V1 (torchvision/models/swin_transformer.py): 4x4 patch embedding, LayerNorm
 * (eps 1e-5) over channels, 7x7 windows with relative position bias, shifted by 3 in every
 * second block, patch merging between stages. Linear layers act on channels-last data and are
 * pointwise convolutions here. torchvision pads the map to whole windows before the qkv
 * projection (padded tokens get its bias and take part in attention) and crops after the output
 * projection; both projections act per position, so the crop can come first.
 *
 * Swin V2 (SwinTransformerBlockV2, ShiftedWindowAttentionV2, PatchMergingV2): 8x8 windows shifted
 * by 4, post-norm residual branches (x + norm(attn(x))), cosine attention with a learned logit
 * scale and a position bias from a small MLP (window_attention_v2, which also adds the qkv bias:
 * torchvision zeroes its k part), and patch merging that reduces before normalising. */
#include "models/models.h"

static int swin_block(cv_builder *b, int x, int dim, int heads, int shift, float sd)
{
    int y = b_layernorm(b, x, "norm1", 1e-5f);
    b_push(b, "attn");
    int a = b_pointwise(b, b_pad(b, y, 7), "qkv", 3 * dim, 1);
    a = b_crop(b, b_window_attention(b, a, 7, shift, heads), y);
    a = b_pointwise(b, a, "proj", dim, 1);
    b_pop(b);
    x = b_add(b, b_stochastic_depth(b, a, sd), x);
    y = b_layernorm(b, x, "norm2", 1e-5f);
    b_push(b, "mlp");
    y = b_pointwise(b, b_act(b, b_pointwise(b, y, "0", 4 * dim, 1), ACT_GELU), "3", dim, 1);
    b_pop(b);
    return b_add(b, b_stochastic_depth(b, y, sd), x);
}

static int swin_v2_block(cv_builder *b, int x, int dim, int heads, int shift, float sd)
{
    b_push(b, "attn");
    int a = b_pointwise(b, b_pad(b, x, 8), "qkv", 3 * dim, 0);
    a = b_crop(b, b_window_attention_v2(b, a, 8, shift, heads), x);
    a = b_pointwise(b, a, "proj", dim, 1);
    b_pop(b);
    x = b_add(b, b_stochastic_depth(b, b_layernorm(b, a, "norm1", 1e-5f), sd), x);
    b_push(b, "mlp");
    int y = b_pointwise(b, b_act(b, b_pointwise(b, x, "0", 4 * dim, 1), ACT_GELU), "3", dim, 1);
    b_pop(b);
    return b_add(b, b_stochastic_depth(b, b_layernorm(b, y, "norm2", 1e-5f), sd), x);
}

int build_swin(cv_builder *b, const void *cfgp, int num_classes)
{
    const swin_cfg *cfg = cfgp;
    int v2 = cfg->v2, win = v2 ? 8 : 7;
    int x = b_input(b, 3), dim = cfg->embed, f = 0, total = 0, id = 0;
    for (int s = 0; s < 4; s++) total += cfg->depths[s];
    b_push(b, "features");
    b_pushi(b, f++);
    x = b_layernorm(b, b_conv(b, x, "0", dim, 4, 4, 0, 1, 1, 1), "2", 1e-5f);
    b_pop(b);
    for (int s = 0; s < 4; s++) {
        b_pushi(b, f++);
        for (int i = 0; i < cfg->depths[s]; i++, id++) {
            b_pushi(b, i);
            float sd = cfg->sd_prob * (float)id / (float)(total - 1);
            int shift = i % 2 ? win / 2 : 0;
            x = v2 ? swin_v2_block(b, x, dim, cfg->heads[s], shift, sd)
                   : swin_block(b, x, dim, cfg->heads[s], shift, sd);
            b_pop(b);
        }
        b_pop(b);
        if (s == 3) break;
        b_pushi(b, f++);
        if (v2) {
            x = b_pointwise(b, b_merge(b, x), "reduction", 2 * dim, 0);
            x = b_layernorm(b, x, "norm", 1e-5f);
        } else {
            x = b_layernorm(b, b_merge(b, x), "norm", 1e-5f);
            x = b_pointwise(b, x, "reduction", 2 * dim, 0);
        }
        b_pop(b);
        dim *= 2;
    }
    b_pop(b);
    x = b_adaptive_avgpool(b, b_layernorm(b, x, "norm", 1e-5f), 1, 1);
    return b_linear(b, b_flatten(b, x), "head", num_classes, 1);
}
