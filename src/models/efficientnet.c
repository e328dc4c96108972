/* EfficientNet B0-B7 and V2 S/M/L (torchvision/models/efficientnet.py): MBConv (expand, depthwise,
 * squeeze-excitation with SiLU and sigmoid, project) and V2's FusedMBConv, SiLU everywhere,
 * residuals through stochastic depth (identity in eval). Batch-norm eps/momentum per variant. */
#include <math.h>

#include <stdio.h>
#include <string.h>

#include "models/models.h"

/* one stage: expand ratio, kernel, stride, in, out, layers, fused */
typedef struct {
    int expand, k, stride, in, out, layers, fused;
} stage;

static const stage v1_stages[] = {{1, 3, 1, 32, 16, 1, 0},   {6, 3, 2, 16, 24, 2, 0},
                                  {6, 5, 2, 24, 40, 2, 0},   {6, 3, 2, 40, 80, 3, 0},
                                  {6, 5, 1, 80, 112, 3, 0},  {6, 5, 2, 112, 192, 4, 0},
                                  {6, 3, 1, 192, 320, 1, 0}, {0}};
static const stage v2s_stages[] = {{1, 3, 1, 24, 24, 2, 1},
                                   {4, 3, 2, 24, 48, 4, 1},
                                   {4, 3, 2, 48, 64, 4, 1},
                                   {4, 3, 2, 64, 128, 6, 0},
                                   {6, 3, 1, 128, 160, 9, 0},
                                   {6, 3, 2, 160, 256, 15, 0},
                                   {0}};
static const stage v2m_stages[] = {{1, 3, 1, 24, 24, 3, 1},    {4, 3, 2, 24, 48, 5, 1},
                                   {4, 3, 2, 48, 80, 5, 1},    {4, 3, 2, 80, 160, 7, 0},
                                   {6, 3, 1, 160, 176, 14, 0}, {6, 3, 2, 176, 304, 18, 0},
                                   {6, 3, 1, 304, 512, 5, 0},  {0}};
static const stage v2l_stages[] = {{1, 3, 1, 32, 32, 4, 1},    {4, 3, 2, 32, 64, 7, 1},
                                   {4, 3, 2, 64, 96, 7, 1},    {4, 3, 2, 96, 192, 10, 0},
                                   {6, 3, 1, 192, 224, 19, 0}, {6, 3, 2, 224, 384, 25, 0},
                                   {6, 3, 1, 384, 640, 7, 0},  {0}};

static int block(cv_builder *b, int x, const stage *s, int in, int stride, float sd,
                 const efficientnet_cfg *cfg)
{
    int exp = make_divisible((double)in * s->expand, 8), y = x, i = 0;
    float eps = cfg->eps, mom = cfg->momentum;
    b_push(b, "block");
    if (s->fused) {
        b_pushi(b, i++);
        y = conv_norm_act(b, y, exp != in ? exp : s->out, s->k, stride, 1, 1, eps, mom, ACT_SILU);
        b_pop(b);
        if (exp != in) {
            b_pushi(b, i++);
            y = conv_norm_act(b, y, s->out, 1, 1, 1, 1, eps, mom, ACT_NONE);
            b_pop(b);
        }
    } else {
        if (exp != in) {
            b_pushi(b, i++);
            y = conv_norm_act(b, y, exp, 1, 1, 1, 1, eps, mom, ACT_SILU);
            b_pop(b);
        }
        b_pushi(b, i++);
        y = conv_norm_act(b, y, exp, s->k, stride, 1, exp, eps, mom, ACT_SILU);
        b_pop(b);
        b_pushi(b, i++);
        y = squeeze_excitation(b, y, in / 4 > 1 ? in / 4 : 1, ACT_SILU, ACT_SIGMOID);
        b_pop(b);
        b_pushi(b, i++);
        y = conv_norm_act(b, y, s->out, 1, 1, 1, 1, eps, mom, ACT_NONE);
        b_pop(b);
    }
    b_pop(b);
    if (stride == 1 && in == s->out) y = b_add(b, b_stochastic_depth(b, y, sd), x);
    return y;
}

int build_efficientnet(cv_builder *b, const void *cfgp, int num_classes)
{
    const efficientnet_cfg *cfg = cfgp;
    const stage *stages = cfg->version == 1   ? v1_stages
                          : cfg->version == 2 ? v2s_stages
                          : cfg->version == 3 ? v2m_stages
                                              : v2l_stages;
    stage st[8];
    int n = 0, total = 0, id = 0;
    for (; stages[n].layers; n++) {
        st[n] = stages[n];
        if (cfg->version == 1) { /* width and depth multipliers */
            st[n].in = make_divisible(st[n].in * cfg->width, 8);
            st[n].out = make_divisible(st[n].out * cfg->width, 8);
            st[n].layers = (int)ceil(st[n].layers * cfg->depth);
        }
        total += st[n].layers;
    }
    int x = b_input(b, 3), f = 0;
    b_push(b, "features");
    b_pushi(b, f++);
    x = conv_norm_act(b, x, st[0].in, 3, 2, 1, 1, cfg->eps, cfg->momentum, ACT_SILU);
    b_pop(b);
    for (int s = 0; s < n; s++) {
        b_pushi(b, f++);
        for (int i = 0; i < st[s].layers; i++, id++) {
            b_pushi(b, i);
            x = block(b, x, &st[s], i ? st[s].out : st[s].in, i ? 1 : st[s].stride,
                      0.2f * (float)id / (float)total, cfg);
            b_pop(b);
        }
        b_pop(b);
    }
    b_pushi(b, f++);
    int last = cfg->version == 1 ? 4 * st[n - 1].out : 1280;
    x = conv_norm_act(b, x, last, 1, 1, 1, 1, cfg->eps, cfg->momentum, ACT_SILU);
    b_pop(b);
    b_pop(b);
    x = b_flatten(b, b_adaptive_avgpool(b, x, 1, 1));
    b_push(b, "classifier");
    x = b_linear(b, b_dropout(b, x, cfg->dropout), "1", num_classes, 1);
    b_pop(b);
    return x;
}

/* timm's EfficientNet B0-B7 names -> torchvision's (docs/models.md): conv_stem/bn1 ->
 * features.0.0/1, blocks.S.I -> features.(S+1).I.block with, in stage 0's depthwise-separable
 * blocks, conv_dw/bn1 -> 0.0/0.1, se -> 1, conv_pw/bn2 -> 2.0/2.1 and elsewhere conv_pw/bn1 ->
 * 0.0/0.1, conv_dw/bn2 -> 1.0/1.1, se -> 2, conv_pwl/bn3 -> 3.0/3.1 (se.conv_reduce/conv_expand
 * -> fc1/fc2); conv_head/bn2 -> features.8.0/1, classifier -> classifier.1. */
int efficientnet_rename(const char *key, char *out, size_t size)
{
    static const char *const top[][2] = {{"conv_stem.", "features.0.0."},
                                         {"bn1.", "features.0.1."},
                                         {"conv_head.", "features.8.0."},
                                         {"bn2.", "features.8.1."},
                                         {"classifier.", "classifier.1."}};
    static const char *const ds[][2] = {
        {"conv_dw.", "0.0."},          {"bn1.", "0.1."},     {"se.conv_reduce.", "1.fc1."},
        {"se.conv_expand.", "1.fc2."}, {"conv_pw.", "2.0."}, {"bn2.", "2.1."}};
    static const char *const ir[][2] = {
        {"conv_pw.", "0.0."},          {"bn1.", "0.1."},
        {"conv_dw.", "1.0."},          {"bn2.", "1.1."},
        {"se.conv_reduce.", "2.fc1."}, {"se.conv_expand.", "2.fc2."},
        {"conv_pwl.", "3.0."},         {"bn3.", "3.1."}};
    for (size_t i = 0; i < sizeof top / sizeof *top; i++) {
        size_t n = strlen(top[i][0]);
        if (!strncmp(key, top[i][0], n) && strncmp(key, "classifier.1.", 13))
            return snprintf(out, size, "%s%s", top[i][1], key + n) < (int)size;
    }
    int st, bl, used = 0;
    if (sscanf(key, "blocks.%d.%d.%n", &st, &bl, &used) != 2 || !used || st < 0 || st > 6 || bl < 0)
        return 0;
    const char *r = key + used;
    const char *const(*map)[2] = st ? ir : ds;
    size_t count = st ? sizeof ir / sizeof *ir : sizeof ds / sizeof *ds;
    for (size_t i = 0; i < count; i++) {
        size_t n = strlen(map[i][0]);
        if (!strncmp(r, map[i][0], n))
            return snprintf(out, size, "features.%d.%d.block.%s%s", st + 1, bl, map[i][1], r + n) <
                   (int)size;
    }
    return 0;
}
