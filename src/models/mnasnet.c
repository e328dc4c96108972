/* MNASNet B1 (torchvision/models/mnasnet.py): BN momentum 1 - 0.9997 throughout. Checkpoints of
 * module version 1 with alpha != 1 have a fixed-size stem (32, 32, 16 channels); the registry's
 * cfg_for hook picks that variant from the checkpoint's "version:" metadata, as torchvision's
 * _load_from_state_dict does. */
#include <string.h>

#include "models/models.h"

#define MOM (1 - 0.9997f)

static int round_to_multiple_of(double v, int divisor)
{
    int nv = (int)(v + divisor / 2.0) / divisor * divisor;
    if (nv < divisor) nv = divisor;
    return nv >= 0.9 * v ? nv : nv + divisor;
}

static int layer(cv_builder *b, int x, int i, int out, int k, int stride, int groups, cv_act act)
{
    char n[16];
    snprintf(n, sizeof n, "%d", i);
    x = b_conv(b, x, n, out, k, stride, k / 2, 1, groups, 0);
    snprintf(n, sizeof n, "%d", i + 1);
    x = b_bn_m(b, x, n, 1e-5f, MOM);
    return act ? b_act(b, x, act) : x;
}

static int inverted_residual(cv_builder *b, int x, int in, int out, int k, int stride, int expand)
{
    int mid = in * expand;
    b_push(b, "layers");
    int y = layer(b, x, 0, mid, 1, 1, 1, ACT_RELU);
    y = layer(b, y, 3, mid, k, stride, mid, ACT_RELU);
    y = layer(b, y, 6, out, 1, 1, 1, ACT_NONE);
    b_pop(b);
    return in == out && stride == 1 ? b_add(b, y, x) : y;
}

static int stack(cv_builder *b, int x, int index, int in, int out, int k, int stride, int expand,
                 int repeats)
{
    b_pushi(b, index);
    for (int i = 0; i < repeats; i++) {
        b_pushi(b, i);
        x = inverted_residual(b, x, i ? out : in, out, k, i ? 1 : stride, expand);
        b_pop(b);
    }
    b_pop(b);
    return x;
}

int build_mnasnet(cv_builder *b, const void *cfgp, int num_classes)
{
    const mnasnet_cfg *cfg = cfgp;
    static const int base[8] = {32, 16, 24, 40, 80, 96, 192, 320};
    int d[8];
    for (int i = 0; i < 8; i++) d[i] = round_to_multiple_of(base[i] * cfg->alpha, 8);
    if (cfg->v1_stem) d[0] = 32, d[1] = 16;
    int x = b_input(b, 3);
    b_push(b, "layers");
    x = layer(b, x, 0, d[0], 3, 2, 1, ACT_RELU);
    x = layer(b, x, 3, d[0], 3, 1, d[0], ACT_RELU);
    x = layer(b, x, 6, d[1], 1, 1, 1, ACT_NONE);
    x = stack(b, x, 8, d[1], d[2], 3, 2, 3, 3);
    x = stack(b, x, 9, d[2], d[3], 5, 2, 3, 3);
    x = stack(b, x, 10, d[3], d[4], 5, 2, 6, 3);
    x = stack(b, x, 11, d[4], d[5], 3, 1, 6, 2);
    x = stack(b, x, 12, d[5], d[6], 5, 2, 6, 4);
    x = stack(b, x, 13, d[6], d[7], 3, 1, 6, 1);
    x = layer(b, x, 14, 1280, 1, 1, 1, ACT_RELU);
    b_pop(b);
    x = b_flatten(b, b_adaptive_avgpool(b, x, 1, 1)); /* x.mean([2, 3]) */
    b_push(b, "classifier");
    x = b_linear(b, b_dropout(b, x, 0.2f), "1", num_classes, 1);
    b_pop(b);
    return x;
}

const void *mnasnet_cfg_for(const void *cfgp, const cv_state *st, void *buf)
{
    (void)buf;
    const mnasnet_cfg *cfg = cfgp;
    const char *v = cv_state_get_meta(st, "version:");
    return v && !strcmp(v, "1") && cfg->v1 ? cfg->v1 : cfg;
}
