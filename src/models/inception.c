/* GoogLeNet and Inception v3 (torchvision/models/googlenet.py, inception.py). BasicConv2d is
 * conv (no bias) -> BN (eps 1e-3) -> ReLU. torchvision builds these with transform_input=True when
 * it loads pretrained weights: the input, normalised with ImageNet's mean/std, is re-normalised to
 * mean 0.5, std 0.5 per channel. The cfg_for hook picks that variant for a checkpoint whose
 * metadata says transform_input=1 (the CLI sets it for the catalog's weights). The auxiliary
 * classifiers are training-only outputs: their checkpoint keys are skipped (registry `ignore`). */
#include <string.h>

#include "models/models.h"

static int basic_conv(cv_builder *b, int x, const char *name, int out, int kh, int kw, int stride,
                      int ph, int pw)
{
    b_push(b, name);
    x = b_conv2(b, x, "conv", out, kh, kw, stride, stride, ph, pw, 1, 0);
    x = b_act(b, b_bn(b, x, "bn", 1e-3f), ACT_RELU);
    b_pop(b);
    return x;
}

static int conv(cv_builder *b, int x, const char *name, int out, int k, int stride, int pad)
{
    return basic_conv(b, x, name, out, k, k, stride, pad, pad);
}

static int transform_input(cv_builder *b, int x)
{
    static const float mean[3] = {0.485f, 0.456f, 0.406f}, std[3] = {0.229f, 0.224f, 0.225f};
    float scale[3], shift[3];
    for (int c = 0; c < 3; c++)
        scale[c] = (float)(std[c] / 0.5), shift[c] = (float)((mean[c] - 0.5) / 0.5);
    return b_affine(b, x, scale, shift);
}

/* ---- GoogLeNet ---- */

static int inception(cv_builder *b, int x, const char *name, int c1, int c3r, int c3, int c5r,
                     int c5, int pp)
{
    b_push(b, name);
    int br[4];
    br[0] = conv(b, x, "branch1", c1, 1, 1, 0);
    b_push(b, "branch2");
    br[1] = conv(b, conv(b, x, "0", c3r, 1, 1, 0), "1", c3, 3, 1, 1);
    b_pop(b);
    b_push(b, "branch3");
    br[2] = conv(b, conv(b, x, "0", c5r, 1, 1, 0), "1", c5, 3, 1, 1); /* 3x3, as torchvision */
    b_pop(b);
    b_push(b, "branch4");
    br[3] = conv(b, b_maxpool(b, x, 3, 1, 1, 1), "1", pp, 1, 1, 0);
    b_pop(b);
    b_pop(b);
    return b_concat(b, 4, br);
}

int build_googlenet(cv_builder *b, const void *cfgp, int num_classes)
{
    const inception_cfg *cfg = cfgp;
    int x = b_input(b, 3);
    if (cfg->transform_input) x = transform_input(b, x);
    x = b_maxpool(b, conv(b, x, "conv1", 64, 7, 2, 3), 3, 2, 0, 1);
    x = conv(b, x, "conv2", 64, 1, 1, 0);
    x = b_maxpool(b, conv(b, x, "conv3", 192, 3, 1, 1), 3, 2, 0, 1);
    x = inception(b, x, "inception3a", 64, 96, 128, 16, 32, 32);
    x = inception(b, x, "inception3b", 128, 128, 192, 32, 96, 64);
    x = b_maxpool(b, x, 3, 2, 0, 1);
    x = inception(b, x, "inception4a", 192, 96, 208, 16, 48, 64);
    x = inception(b, x, "inception4b", 160, 112, 224, 24, 64, 64);
    x = inception(b, x, "inception4c", 128, 128, 256, 24, 64, 64);
    x = inception(b, x, "inception4d", 112, 144, 288, 32, 64, 64);
    x = inception(b, x, "inception4e", 256, 160, 320, 32, 128, 128);
    x = b_maxpool(b, x, 2, 2, 0, 1);
    x = inception(b, x, "inception5a", 256, 160, 320, 32, 128, 128);
    x = inception(b, x, "inception5b", 384, 192, 384, 48, 128, 128);
    x = b_dropout(b, b_flatten(b, b_adaptive_avgpool(b, x, 1, 1)), 0.2f);
    return b_linear(b, x, "fc", num_classes, 1);
}

/* ---- Inception v3 ---- */

static int avgpool3(cv_builder *b, int x) /* F.avg_pool2d(x, 3, 1, 1): count_include_pad */
{
    return b_avgpool(b, x, 3, 1, 1, 0, 1);
}

static int inception_a(cv_builder *b, int x, const char *name, int pool_features)
{
    b_push(b, name);
    int br[4];
    br[0] = conv(b, x, "branch1x1", 64, 1, 1, 0);
    br[1] = conv(b, conv(b, x, "branch5x5_1", 48, 1, 1, 0), "branch5x5_2", 64, 5, 1, 2);
    br[2] = conv(b, x, "branch3x3dbl_1", 64, 1, 1, 0);
    br[2] = conv(b, br[2], "branch3x3dbl_2", 96, 3, 1, 1);
    br[2] = conv(b, br[2], "branch3x3dbl_3", 96, 3, 1, 1);
    br[3] = conv(b, avgpool3(b, x), "branch_pool", pool_features, 1, 1, 0);
    b_pop(b);
    return b_concat(b, 4, br);
}

static int inception_b(cv_builder *b, int x, const char *name)
{
    b_push(b, name);
    int br[3];
    br[0] = conv(b, x, "branch3x3", 384, 3, 2, 0);
    br[1] = conv(b, x, "branch3x3dbl_1", 64, 1, 1, 0);
    br[1] = conv(b, br[1], "branch3x3dbl_2", 96, 3, 1, 1);
    br[1] = conv(b, br[1], "branch3x3dbl_3", 96, 3, 2, 0);
    br[2] = b_maxpool(b, x, 3, 2, 0, 0);
    b_pop(b);
    return b_concat(b, 3, br);
}

static int inception_c(cv_builder *b, int x, const char *name, int c7)
{
    b_push(b, name);
    int br[4];
    br[0] = conv(b, x, "branch1x1", 192, 1, 1, 0);
    br[1] = conv(b, x, "branch7x7_1", c7, 1, 1, 0);
    br[1] = basic_conv(b, br[1], "branch7x7_2", c7, 1, 7, 1, 0, 3);
    br[1] = basic_conv(b, br[1], "branch7x7_3", 192, 7, 1, 1, 3, 0);
    br[2] = conv(b, x, "branch7x7dbl_1", c7, 1, 1, 0);
    br[2] = basic_conv(b, br[2], "branch7x7dbl_2", c7, 7, 1, 1, 3, 0);
    br[2] = basic_conv(b, br[2], "branch7x7dbl_3", c7, 1, 7, 1, 0, 3);
    br[2] = basic_conv(b, br[2], "branch7x7dbl_4", c7, 7, 1, 1, 3, 0);
    br[2] = basic_conv(b, br[2], "branch7x7dbl_5", 192, 1, 7, 1, 0, 3);
    br[3] = conv(b, avgpool3(b, x), "branch_pool", 192, 1, 1, 0);
    b_pop(b);
    return b_concat(b, 4, br);
}

static int inception_d(cv_builder *b, int x, const char *name)
{
    b_push(b, name);
    int br[3];
    br[0] = conv(b, conv(b, x, "branch3x3_1", 192, 1, 1, 0), "branch3x3_2", 320, 3, 2, 0);
    br[1] = conv(b, x, "branch7x7x3_1", 192, 1, 1, 0);
    br[1] = basic_conv(b, br[1], "branch7x7x3_2", 192, 1, 7, 1, 0, 3);
    br[1] = basic_conv(b, br[1], "branch7x7x3_3", 192, 7, 1, 1, 3, 0);
    br[1] = conv(b, br[1], "branch7x7x3_4", 192, 3, 2, 0);
    br[2] = b_maxpool(b, x, 3, 2, 0, 0);
    b_pop(b);
    return b_concat(b, 3, br);
}

/* torch.cat([1x1, cat([3x3_2a, 3x3_2b]), cat([dbl_3a, dbl_3b]), pool]) in one concatenation */
static int inception_e(cv_builder *b, int x, const char *name)
{
    b_push(b, name);
    int br[6];
    br[0] = conv(b, x, "branch1x1", 320, 1, 1, 0);
    int t = conv(b, x, "branch3x3_1", 384, 1, 1, 0);
    br[1] = basic_conv(b, t, "branch3x3_2a", 384, 1, 3, 1, 0, 1);
    br[2] = basic_conv(b, t, "branch3x3_2b", 384, 3, 1, 1, 1, 0);
    t = conv(b, x, "branch3x3dbl_1", 448, 1, 1, 0);
    t = conv(b, t, "branch3x3dbl_2", 384, 3, 1, 1);
    br[3] = basic_conv(b, t, "branch3x3dbl_3a", 384, 1, 3, 1, 0, 1);
    br[4] = basic_conv(b, t, "branch3x3dbl_3b", 384, 3, 1, 1, 1, 0);
    br[5] = conv(b, avgpool3(b, x), "branch_pool", 192, 1, 1, 0);
    b_pop(b);
    return b_concat(b, 6, br);
}

int build_inception_v3(cv_builder *b, const void *cfgp, int num_classes)
{
    const inception_cfg *cfg = cfgp;
    int x = b_input(b, 3);
    if (cfg->transform_input) x = transform_input(b, x);
    x = conv(b, x, "Conv2d_1a_3x3", 32, 3, 2, 0);
    x = conv(b, x, "Conv2d_2a_3x3", 32, 3, 1, 0);
    x = conv(b, x, "Conv2d_2b_3x3", 64, 3, 1, 1);
    x = b_maxpool(b, x, 3, 2, 0, 0);
    x = conv(b, x, "Conv2d_3b_1x1", 80, 1, 1, 0);
    x = conv(b, x, "Conv2d_4a_3x3", 192, 3, 1, 0);
    x = b_maxpool(b, x, 3, 2, 0, 0);
    x = inception_a(b, x, "Mixed_5b", 32);
    x = inception_a(b, x, "Mixed_5c", 64);
    x = inception_a(b, x, "Mixed_5d", 64);
    x = inception_b(b, x, "Mixed_6a");
    x = inception_c(b, x, "Mixed_6b", 128);
    x = inception_c(b, x, "Mixed_6c", 160);
    x = inception_c(b, x, "Mixed_6d", 160);
    x = inception_c(b, x, "Mixed_6e", 192);
    x = inception_d(b, x, "Mixed_7a");
    x = inception_e(b, x, "Mixed_7b");
    x = inception_e(b, x, "Mixed_7c");
    x = b_dropout(b, b_adaptive_avgpool(b, x, 1, 1), 0.5f);
    return b_linear(b, b_flatten(b, x), "fc", num_classes, 1);
}

const void *inception_cfg_for(const void *cfgp, const cv_state *st, void *buf)
{
    (void)buf;
    const inception_cfg *cfg = cfgp;
    const char *v = cv_state_get_meta(st, "transform_input");
    return v && !strcmp(v, "1") ? cfg->transformed : cfg;
}
