/* VGG (torchvision/models/vgg.py) and AlexNet (torchvision/models/alexnet.py). */
#include "models/models.h"

const int vgg_cfg_a[] = {64, 0, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0, -1};
const int vgg_cfg_b[] = {64, 64, 0, 128, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0, -1};
const int vgg_cfg_d[] = {64,  64,  0,   128, 128, 0,   256, 256, 256, 0,
                         512, 512, 512, 0,   512, 512, 512, 0,   -1};
const int vgg_cfg_e[] = {64,  64,  0,   128, 128, 0,   256, 256, 256, 256, 0,
                         512, 512, 512, 512, 0,   512, 512, 512, 512, 0,   -1};

/* features: a Sequential whose indices count every conv, BN, ReLU and pool. */
static int vgg_features(cv_builder *b, int x, const vgg_cfg *cfg)
{
    char idx[16];
    int i = 0;
    b_push(b, "features");
    for (const int *v = cfg->layout; *v >= 0; v++) {
        if (*v == 0) {
            x = b_maxpool(b, x, 2, 2, 0, 0);
            i++;
            continue;
        }
        snprintf(idx, sizeof idx, "%d", i++);
        x = b_conv(b, x, idx, *v, 3, 1, 1, 1, 1, 1);
        if (cfg->batch_norm) {
            snprintf(idx, sizeof idx, "%d", i++);
            x = b_bn(b, x, idx, 1e-5f);
        }
        x = b_act(b, x, ACT_RELU);
        i++;
    }
    b_pop(b);
    return x;
}

/* classifier: Linear -> ReLU -> Dropout -> Linear -> ReLU -> Dropout -> Linear. */
int build_vgg(cv_builder *b, const void *cfg, int num_classes)
{
    int x = vgg_features(b, b_input(b, 3), cfg);
    x = b_flatten(b, b_adaptive_avgpool(b, x, 7, 7));
    b_push(b, "classifier");
    x = b_dropout(b, b_act(b, b_linear(b, x, "0", 4096, 1), ACT_RELU), 0.5f);
    x = b_dropout(b, b_act(b, b_linear(b, x, "3", 4096, 1), ACT_RELU), 0.5f);
    x = b_linear(b, x, "6", num_classes, 1);
    b_pop(b);
    return x;
}

int build_alexnet(cv_builder *b, const void *cfg, int num_classes)
{
    int x = b_input(b, 3);
    b_push(b, "features");
    x = b_act(b, b_conv(b, x, "0", 64, 11, 4, 2, 1, 1, 1), ACT_RELU);
    x = b_maxpool(b, x, 3, 2, 0, 0);
    x = b_act(b, b_conv(b, x, "3", 192, 5, 1, 2, 1, 1, 1), ACT_RELU);
    x = b_maxpool(b, x, 3, 2, 0, 0);
    x = b_act(b, b_conv(b, x, "6", 384, 3, 1, 1, 1, 1, 1), ACT_RELU);
    x = b_act(b, b_conv(b, x, "8", 256, 3, 1, 1, 1, 1, 1), ACT_RELU);
    x = b_act(b, b_conv(b, x, "10", 256, 3, 1, 1, 1, 1, 1), ACT_RELU);
    x = b_maxpool(b, x, 3, 2, 0, 0);
    b_pop(b);
    x = b_flatten(b, b_adaptive_avgpool(b, x, 6, 6));
    b_push(b, "classifier");
    x = b_act(b, b_linear(b, b_dropout(b, x, 0.5f), "1", 4096, 1), ACT_RELU);
    x = b_act(b, b_linear(b, b_dropout(b, x, 0.5f), "4", 4096, 1), ACT_RELU);
    x = b_linear(b, x, "6", num_classes, 1);
    b_pop(b);
    return x;
}
