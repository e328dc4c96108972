/* ConvNeXt (torchvision/models/convnext.py): depthwise 7x7, channels-last LayerNorm (eps 1e-6),
 * pointwise MLP (Linear weights [out, in]) with GELU, layer scale, stochastic depth; LayerNorm2d
 * before every downsampling convolution and before the classifier. */
#include "models/models.h"

static int cn_block(cv_builder *b, int x, int dim, float sd)
{
    b_push(b, "block");
    int y = b_conv(b, x, "0", dim, 7, 1, 3, 1, dim, 1);
    y = b_layernorm(b, y, "2", 1e-6f);
    y = b_act(b, b_pointwise(b, y, "3", 4 * dim, 1), ACT_GELU);
    y = b_pointwise(b, y, "5", dim, 1);
    b_pop(b);
    int64_t shape[3] = {dim, 1, 1};
    y = b_channel_scale(b, y, "layer_scale", 3, shape);
    return b_add(b, b_stochastic_depth(b, y, sd), x);
}

int build_convnext(cv_builder *b, const void *cfgp, int num_classes)
{
    const convnext_cfg *cfg = cfgp;
    int x = b_input(b, 3), f = 0, total = 0, id = 0;
    for (int s = 0; s < 4; s++) total += cfg->depths[s];
    b_push(b, "features");
    b_pushi(b, f++);
    x = b_layernorm(b, b_conv(b, x, "0", cfg->dims[0], 4, 4, 0, 1, 1, 1), "1", 1e-6f);
    b_pop(b);
    for (int s = 0; s < 4; s++) {
        b_pushi(b, f++);
        for (int i = 0; i < cfg->depths[s]; i++, id++) {
            b_pushi(b, i);
            x = cn_block(b, x, cfg->dims[s], cfg->sd_prob * (float)id / (float)(total - 1));
            b_pop(b);
        }
        b_pop(b);
        if (s == 3) break;
        b_pushi(b, f++);
        x = b_layernorm(b, x, "0", 1e-6f);
        x = b_conv(b, x, "1", cfg->dims[s + 1], 2, 2, 0, 1, 1, 1);
        b_pop(b);
    }
    b_pop(b);
    x = b_adaptive_avgpool(b, x, 1, 1);
    b_push(b, "classifier");
    x = b_linear(b, b_flatten(b, b_layernorm(b, x, "0", 1e-6f)), "2", num_classes, 1);
    b_pop(b);
    return x;
}
