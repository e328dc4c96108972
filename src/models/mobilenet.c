/* MobileNetV2 (torchvision/models/mobilenetv2.py). */
#include "models/models.h"

/* torchvision's _make_divisible: round to a multiple of `divisor`, never below 90% of v. */
static int make_divisible(double v, int divisor)
{
    int nv = (int)(v + divisor / 2.0) / divisor * divisor;
    if (nv < divisor) nv = divisor;
    if (nv < 0.9 * v) nv += divisor;
    return nv;
}

/* Conv2dNormActivation: conv (no bias) -> BN -> activation, children "0" and "1". */
static int conv_bn_act(cv_builder *b, int x, int out, int k, int stride, int groups, cv_act act)
{
    x = b_conv(b, x, "0", out, k, stride, (k - 1) / 2, 1, groups, 0);
    x = b_bn(b, x, "1", 1e-5f);
    return act ? b_act(b, x, act) : x;
}

static int inverted_residual(cv_builder *b, int x, int inp, int oup, int stride, int expand)
{
    int hidden = (int)(inp * expand + 0.5), i = 0, y = x;
    char idx[16];
    b_push(b, "conv");
    if (expand != 1) {
        b_pushi(b, i++);
        y = conv_bn_act(b, y, hidden, 1, 1, 1, ACT_RELU6);
        b_pop(b);
    }
    b_pushi(b, i++);
    y = conv_bn_act(b, y, hidden, 3, stride, hidden, ACT_RELU6);
    b_pop(b);
    snprintf(idx, sizeof idx, "%d", i++);
    y = b_conv(b, y, idx, oup, 1, 1, 0, 1, 1, 0);
    snprintf(idx, sizeof idx, "%d", i++);
    y = b_bn(b, y, idx, 1e-5f);
    b_pop(b);
    return stride == 1 && inp == oup ? b_add(b, y, x) : y;
}

int build_mobilenet_v2(cv_builder *b, const void *cfg, int num_classes)
{
    static const int setting[7][4] = {{1, 16, 1, 1}, {6, 24, 2, 2},  {6, 32, 3, 2}, {6, 64, 4, 2},
                                      {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}};
    const double width = 1.0;
    int input_channel = make_divisible(32 * width, 8);
    int last_channel = make_divisible(1280 * (width > 1.0 ? width : 1.0), 8);
    int x = b_input(b, 3), f = 0;
    b_push(b, "features");
    b_pushi(b, f++);
    x = conv_bn_act(b, x, input_channel, 3, 2, 1, ACT_RELU6);
    b_pop(b);
    for (int s = 0; s < 7; s++) {
        int out = make_divisible(setting[s][1] * width, 8);
        for (int i = 0; i < setting[s][2]; i++) {
            b_pushi(b, f++);
            x = inverted_residual(b, x, input_channel, out, i == 0 ? setting[s][3] : 1,
                                  setting[s][0]);
            b_pop(b);
            input_channel = out;
        }
    }
    b_pushi(b, f++);
    x = conv_bn_act(b, x, last_channel, 1, 1, 1, ACT_RELU6);
    b_pop(b);
    b_pop(b);
    x = b_flatten(b, b_adaptive_avgpool(b, x, 1, 1));
    b_push(b, "classifier");
    x = b_linear(b, b_dropout(b, x, 0.2f), "1", num_classes, 1);
    b_pop(b);
    return x;
}
