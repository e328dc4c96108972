/* MobileNetV2 and V3 (torchvision/models/mobilenetv2.py, mobilenetv3.py). */
#include "models/models.h"

static int inverted_residual(cv_builder *b, int x, int inp, int oup, int stride, int expand)
{
    int hidden = (int)(inp * expand + 0.5), i = 0, y = x;
    char idx[16];
    b_push(b, "conv");
    if (expand != 1) {
        b_pushi(b, i++);
        y = conv_norm_act(b, y, hidden, 1, 1, 1, 1, 1e-5f, 0.1f, ACT_RELU6);
        b_pop(b);
    }
    b_pushi(b, i++);
    y = conv_norm_act(b, y, hidden, 3, stride, 1, hidden, 1e-5f, 0.1f, ACT_RELU6);
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
    (void)cfg;
    static const int setting[7][4] = {{1, 16, 1, 1}, {6, 24, 2, 2},  {6, 32, 3, 2}, {6, 64, 4, 2},
                                      {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}};
    const double width = 1.0;
    int input_channel = make_divisible(32 * width, 8);
    int last_channel = make_divisible(1280 * (width > 1.0 ? width : 1.0), 8);
    int x = b_input(b, 3), f = 0;
    b_push(b, "features");
    b_pushi(b, f++);
    x = conv_norm_act(b, x, input_channel, 3, 2, 1, 1, 1e-5f, 0.1f, ACT_RELU6);
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
    x = conv_norm_act(b, x, last_channel, 1, 1, 1, 1, 1e-5f, 0.1f, ACT_RELU6);
    b_pop(b);
    b_pop(b);
    x = b_flatten(b, b_adaptive_avgpool(b, x, 1, 1));
    b_push(b, "classifier");
    x = b_linear(b, b_dropout(b, x, 0.2f), "1", num_classes, 1);
    b_pop(b);
    return x;
}

/* ---- MobileNetV3: BN eps 1e-3, momentum 0.01; SE with ReLU and hardsigmoid ---- */

#define V3_EPS 1e-3f
#define V3_MOM 0.01f

typedef struct {
    int in, k, exp, out, se, hs, stride;
} v3_block;

static const v3_block v3_large[] = {
    {16, 3, 16, 16, 0, 0, 1},    {16, 3, 64, 24, 0, 0, 2},    {24, 3, 72, 24, 0, 0, 1},
    {24, 5, 72, 40, 1, 0, 2},    {40, 5, 120, 40, 1, 0, 1},   {40, 5, 120, 40, 1, 0, 1},
    {40, 3, 240, 80, 0, 1, 2},   {80, 3, 200, 80, 0, 1, 1},   {80, 3, 184, 80, 0, 1, 1},
    {80, 3, 184, 80, 0, 1, 1},   {80, 3, 480, 112, 1, 1, 1},  {112, 3, 672, 112, 1, 1, 1},
    {112, 5, 672, 160, 1, 1, 2}, {160, 5, 960, 160, 1, 1, 1}, {160, 5, 960, 160, 1, 1, 1},
};

static const v3_block v3_small[] = {
    {16, 3, 16, 16, 1, 0, 2},  {16, 3, 72, 24, 0, 0, 2},  {24, 3, 88, 24, 0, 0, 1},
    {24, 5, 96, 40, 1, 1, 2},  {40, 5, 240, 40, 1, 1, 1}, {40, 5, 240, 40, 1, 1, 1},
    {40, 5, 120, 48, 1, 1, 1}, {48, 5, 144, 48, 1, 1, 1}, {48, 5, 288, 96, 1, 1, 2},
    {96, 5, 576, 96, 1, 1, 1}, {96, 5, 576, 96, 1, 1, 1},
};

static int v3_inverted_residual(cv_builder *b, int x, const v3_block *c)
{
    cv_act act = c->hs ? ACT_HARDSWISH : ACT_RELU;
    int y = x, i = 0;
    b_push(b, "block");
    if (c->exp != c->in) {
        b_pushi(b, i++);
        y = conv_norm_act(b, y, c->exp, 1, 1, 1, 1, V3_EPS, V3_MOM, act);
        b_pop(b);
    }
    b_pushi(b, i++);
    y = conv_norm_act(b, y, c->exp, c->k, c->stride, 1, c->exp, V3_EPS, V3_MOM, act);
    b_pop(b);
    if (c->se) {
        b_pushi(b, i++);
        y = squeeze_excitation(b, y, make_divisible(c->exp / 4, 8), ACT_RELU, ACT_HARDSIGMOID);
        b_pop(b);
    }
    b_pushi(b, i++);
    y = conv_norm_act(b, y, c->out, 1, 1, 1, 1, V3_EPS, V3_MOM, ACT_NONE);
    b_pop(b);
    b_pop(b);
    return c->stride == 1 && c->in == c->out ? b_add(b, y, x) : y;
}

int build_mobilenet_v3(cv_builder *b, const void *cfgp, int num_classes)
{
    const mobilenet_v3_cfg *cfg = cfgp;
    const v3_block *blocks = cfg->large ? v3_large : v3_small;
    int n = cfg->large ? (int)(sizeof v3_large / sizeof *v3_large)
                       : (int)(sizeof v3_small / sizeof *v3_small);
    int last_channel = cfg->large ? 1280 : 1024, f = 0;
    int x = b_input(b, 3);
    b_push(b, "features");
    b_pushi(b, f++);
    x = conv_norm_act(b, x, blocks[0].in, 3, 2, 1, 1, V3_EPS, V3_MOM, ACT_HARDSWISH);
    b_pop(b);
    for (int i = 0; i < n; i++) {
        b_pushi(b, f++);
        x = v3_inverted_residual(b, x, &blocks[i]);
        b_pop(b);
    }
    b_pushi(b, f++);
    x = conv_norm_act(b, x, 6 * blocks[n - 1].out, 1, 1, 1, 1, V3_EPS, V3_MOM, ACT_HARDSWISH);
    b_pop(b);
    b_pop(b);
    x = b_flatten(b, b_adaptive_avgpool(b, x, 1, 1));
    b_push(b, "classifier");
    x = b_act(b, b_linear(b, x, "0", last_channel, 1), ACT_HARDSWISH);
    x = b_linear(b, b_dropout(b, x, 0.2f), "3", num_classes, 1);
    b_pop(b);
    return x;
}
