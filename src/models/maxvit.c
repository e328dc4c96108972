/* MaxViT-T (torchvision/models/maxvit.py): a stem, then four blocks of MaxVit layers, each an
 * MBConv (pre-norm batch norm, expand 4x, depthwise 3x3, squeeze-excitation, project; BN eps 1e-3
 * momentum 0.99, GELU) followed by block attention in 7x7 windows and grid attention over 7x7
 * pixels spread across the map, each with an MLP (LayerNorm eps 1e-5, head dimension 32).
 * torchvision partitions the map into [B, groups, tokens, C] for attention; LayerNorm, the
 * Linear layers and the residual sums act per token, so here they run on the NCHW map
 * (pointwise convolutions) and only the attention op groups the tokens (no partition and
 * departition copies). As in torchvision, every stage's map must be a multiple of 7 (224x224
 * or 223x223 inputs). */
#include "models/models.h"

#define BN_EPS 1e-3f
#define BN_MOM 0.99f

static int mbconv(cv_builder *b, int x, int in, int out, int stride, float sd)
{
    int res = x, mid = out * 4, sqz = out / 4;
    b_push(b, "MBconv");
    if (stride != 1 || in != out) {
        b_push(b, "proj");
        if (stride == 2) res = b_avgpool(b, res, 3, 2, 1, 0, 1);
        res = b_conv(b, res, stride == 2 ? "1" : "0", out, 1, 1, 0, 1, 1, 1);
        b_pop(b);
    }
    b_push(b, "layers");
    int y = b_bn_m(b, x, "pre_norm", BN_EPS, BN_MOM);
    b_push(b, "conv_a");
    y = conv_norm_act(b, y, mid, 1, 1, 1, 1, BN_EPS, BN_MOM, ACT_GELU);
    b_pop(b);
    b_push(b, "conv_b");
    y = conv_norm_act(b, y, mid, 3, stride, 1, mid, BN_EPS, BN_MOM, ACT_GELU);
    b_pop(b);
    b_push(b, "squeeze_excitation");
    y = squeeze_excitation(b, y, sqz, ACT_SILU, ACT_SIGMOID);
    b_pop(b);
    y = b_conv(b, y, "conv_c", out, 1, 1, 0, 1, 1, 1);
    b_pop(b);
    b_pop(b);
    return b_add(b, res, b_stochastic_depth(b, y, sd));
}

/* PartitionAttentionLayer: x + sd(attn(norm(x))), then x + sd(mlp(norm(x))) */
static int partition_layer(cv_builder *b, int x, int c, int grid, float sd)
{
    b_push(b, "attn_layer");
    int y = b_layernorm(b, x, "0", 1e-5f);
    b_push(b, "1");
    y = b_pointwise(b, y, "to_qkv", 3 * c, 1);
    y = b_pointwise(b, b_partition_attention(b, y, 7, grid, c / 32), "merge", c, 1);
    b_pop(b);
    b_pop(b);
    x = b_add(b, x, b_stochastic_depth(b, y, sd));
    b_push(b, "mlp_layer");
    y = b_act(b, b_pointwise(b, b_layernorm(b, x, "0", 1e-5f), "1", 4 * c, 1), ACT_GELU);
    y = b_pointwise(b, y, "3", c, 1);
    b_pop(b);
    return b_add(b, x, b_stochastic_depth(b, y, sd));
}

int build_maxvit(cv_builder *b, const void *cfg, int num_classes)
{
    static const int channels[4] = {64, 128, 256, 512}, layers[4] = {2, 2, 5, 2};
    (void)cfg;
    int x = b_input(b, 3), in = 64, id = 0, total = 11;
    b_push(b, "stem");
    b_pushi(b, 0);
    x = conv_norm_act(b, x, 64, 3, 2, 1, 1, BN_EPS, BN_MOM, ACT_GELU);
    b_pop(b);
    b_pushi(b, 1);
    x = b_conv(b, x, "0", 64, 3, 1, 1, 1, 1, 1);
    b_pop(b);
    b_pop(b);
    b_push(b, "blocks");
    for (int s = 0; s < 4; s++) {
        b_pushi(b, s);
        b_push(b, "layers");
        for (int i = 0; i < layers[s]; i++, id++) {
            float sd = (float)(0.2 * id / (total - 1)); /* np.linspace(0, 0.2, 11) */
            b_pushi(b, i);
            b_push(b, "layers");
            x = mbconv(b, x, in, channels[s], i == 0 ? 2 : 1, sd);
            b_push(b, "window_attention");
            x = partition_layer(b, x, channels[s], 0, sd);
            b_pop(b);
            b_push(b, "grid_attention");
            x = partition_layer(b, x, channels[s], 1, sd);
            b_pop(b);
            b_pop(b);
            b_pop(b);
            in = channels[s];
        }
        b_pop(b);
        b_pop(b);
    }
    b_pop(b);
    b_push(b, "classifier");
    x = b_layernorm(b, b_flatten(b, b_adaptive_avgpool(b, x, 1, 1)), "2", 1e-5f);
    x = b_act(b, b_linear(b, x, "3", 512, 1), ACT_TANH);
    x = b_linear(b, x, "5", num_classes, 0);
    b_pop(b);
    return x;
}
