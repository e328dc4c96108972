/* RegNetX and RegNetY (torchvision/models/regnet.py). The per-stage depths, widths and group
 * widths are what torchvision's BlockParams.from_init_params computes from each model's
 * (depth, w_0, w_a, w_m, group_width) in float32; they are tabulated in the registry. RegNetY adds
 * squeeze-excitation (ReLU, sigmoid) with int(round(0.25 * block input width)) channels. */
#include "models/models.h"

static int res_bottleneck(cv_builder *b, int x, int in, int out, int stride, int group_width,
                          int se)
{
    int y = x, id = x;
    if (in != out || stride != 1) {
        b_push(b, "proj");
        id = conv_norm_act(b, x, out, 1, stride, 1, 1, 1e-5f, 0.1f, ACT_NONE);
        b_pop(b);
    }
    b_push(b, "f");
    b_push(b, "a");
    y = conv_norm_act(b, y, out, 1, 1, 1, 1, 1e-5f, 0.1f, ACT_RELU);
    b_pop(b);
    b_push(b, "b");
    y = conv_norm_act(b, y, out, 3, stride, 1, out / group_width, 1e-5f, 0.1f, ACT_RELU);
    b_pop(b);
    if (se) {
        b_push(b, "se");
        y = squeeze_excitation(b, y, in / 4, ACT_RELU, ACT_SIGMOID); /* widths are multiples of 8 */
        b_pop(b);
    }
    b_push(b, "c");
    y = conv_norm_act(b, y, out, 1, 1, 1, 1, 1e-5f, 0.1f, ACT_NONE);
    b_pop(b);
    b_pop(b);
    /* proj(x) + f(x) or x + f(x): the operand order of the sum does not change it */
    return b_act(b, b_add(b, y, id), ACT_RELU);
}

int build_regnet(cv_builder *b, const void *cfgp, int num_classes)
{
    const regnet_cfg *cfg = cfgp;
    char name[32];
    int x = b_input(b, 3), c = 32;
    b_push(b, "stem");
    x = conv_norm_act(b, x, 32, 3, 2, 1, 1, 1e-5f, 0.1f, ACT_RELU);
    b_pop(b);
    b_push(b, "trunk_output");
    for (int s = 0; s < 4; s++) {
        snprintf(name, sizeof name, "block%d", s + 1);
        b_push(b, name);
        for (int i = 0; i < cfg->depths[s]; i++) {
            snprintf(name, sizeof name, "block%d-%d", s + 1, i);
            b_push(b, name);
            x = res_bottleneck(b, x, c, cfg->widths[s], i ? 1 : 2, cfg->group_widths[s], cfg->se);
            b_pop(b);
            c = cfg->widths[s];
        }
        b_pop(b);
    }
    b_pop(b);
    x = b_flatten(b, b_adaptive_avgpool(b, x, 1, 1));
    return b_linear(b, x, "fc", num_classes, 1);
}
