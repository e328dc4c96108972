/* SqueezeNet 1.0 and 1.1 (torchvision/models/squeezenet.py). The classifier is a 1x1 convolution
 * ("classifier.1") followed by ReLU and a global average pool. */
#include "models/models.h"

static int fire(cv_builder *b, int x, int squeeze, int e1, int e3)
{
    x = b_act(b, b_conv(b, x, "squeeze", squeeze, 1, 1, 0, 1, 1, 1), ACT_RELU);
    int ys[2] = {b_act(b, b_conv(b, x, "expand1x1", e1, 1, 1, 0, 1, 1, 1), ACT_RELU),
                 b_act(b, b_conv(b, x, "expand3x3", e3, 3, 1, 1, 1, 1, 1), ACT_RELU)};
    return b_concat(b, 2, ys);
}

int build_squeezenet(cv_builder *b, const void *cfgp, int num_classes)
{
    const squeezenet_cfg *cfg = cfgp;
    /* the Sequential after conv+ReLU: 0 = max pool (ceil_mode), else a Fire's squeeze planes
     * (its expand planes are 4x) */
    static const int v10[] = {0, 16, 16, 32, 0, 32, 48, 48, 64, 0, 64, -1};
    static const int v11[] = {0, 16, 16, 0, 32, 32, 0, 48, 48, 64, 64, -1};
    int x = b_input(b, 3), i = 2;
    b_push(b, "features");
    x = cfg->version == 10 ? b_conv(b, x, "0", 96, 7, 2, 0, 1, 1, 1)
                           : b_conv(b, x, "0", 64, 3, 2, 0, 1, 1, 1);
    x = b_act(b, x, ACT_RELU);
    for (const int *v = cfg->version == 10 ? v10 : v11; *v >= 0; v++, i++) {
        if (!*v) {
            x = b_maxpool(b, x, 3, 2, 0, 1);
            continue;
        }
        b_pushi(b, i);
        x = fire(b, x, *v, 4 * *v, 4 * *v);
        b_pop(b);
    }
    b_pop(b);
    b_push(b, "classifier");
    x = b_act(b, b_conv(b, b_dropout(b, x, 0.5f), "1", num_classes, 1, 1, 0, 1, 1, 1), ACT_RELU);
    b_pop(b);
    return b_flatten(b, b_adaptive_avgpool(b, x, 1, 1));
}
