/* ShuffleNetV2 (torchvision/models/shufflenetv2.py). */
#include "models/models.h"

static int conv_bn(cv_builder *b, int x, int i, int out, int k, int stride, int groups)
{
    char n[16];
    snprintf(n, sizeof n, "%d", i);
    x = b_conv(b, x, n, out, k, stride, k / 2, 1, groups, 0);
    snprintf(n, sizeof n, "%d", i + 1);
    return b_bn(b, x, n, 1e-5f);
}

/* stride 1: split the channels in half, transform the second half; stride 2: two branches over
 * the whole input. Then concatenate and shuffle in 2 groups. */
static int inverted_residual(cv_builder *b, int x, int inp, int oup, int stride)
{
    int bf = oup / 2, left, right = x;
    if (stride > 1) {
        b_push(b, "branch1");
        left = conv_bn(b, x, 0, inp, 3, stride, inp); /* depthwise */
        left = b_act(b, conv_bn(b, left, 2, bf, 1, 1, 1), ACT_RELU);
        b_pop(b);
    } else {
        left = b_slice(b, x, 0, inp / 2);
        right = b_slice(b, x, inp / 2, inp - inp / 2);
    }
    b_push(b, "branch2");
    right = b_act(b, conv_bn(b, right, 0, bf, 1, 1, 1), ACT_RELU);
    right = conv_bn(b, right, 3, bf, 3, stride, bf);
    right = b_act(b, conv_bn(b, right, 5, bf, 1, 1, 1), ACT_RELU);
    b_pop(b);
    int xs[2] = {left, right};
    return b_shuffle(b, b_concat(b, 2, xs), 2);
}

int build_shufflenet_v2(cv_builder *b, const void *cfgp, int num_classes)
{
    const shufflenet_cfg *cfg = cfgp;
    static const int repeats[3] = {4, 8, 4};
    int x = b_input(b, 3), c = cfg->channels[0];
    b_push(b, "conv1");
    x = b_act(b, conv_bn(b, x, 0, c, 3, 2, 1), ACT_RELU);
    b_pop(b);
    x = b_maxpool(b, x, 3, 2, 1, 0);
    for (int s = 0; s < 3; s++) {
        char name[16];
        snprintf(name, sizeof name, "stage%d", s + 2);
        b_push(b, name);
        for (int i = 0; i < repeats[s]; i++) {
            b_pushi(b, i);
            x = inverted_residual(b, x, c, cfg->channels[s + 1], i ? 1 : 2);
            b_pop(b);
            c = cfg->channels[s + 1];
        }
        b_pop(b);
    }
    b_push(b, "conv5");
    x = b_act(b, conv_bn(b, x, 0, cfg->channels[4], 1, 1, 1), ACT_RELU);
    b_pop(b);
    x = b_flatten(b, b_adaptive_avgpool(b, x, 1, 1)); /* x.mean([2, 3]) */
    return b_linear(b, x, "fc", num_classes, 1);
}
