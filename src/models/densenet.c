/* DenseNet-121/161/169/201 (torchvision/models/densenet.py): pre-activation BN-ReLU-conv layers
 * whose inputs are the concatenation of every earlier feature map of their block. */
#include <regex.h>
#include <string.h>

#include "models/models.h"

/* _DenseLayer: norm1 -> relu -> conv1 (1x1, 4*growth) -> norm2 -> relu -> conv2 (3x3, growth) */
static int dense_layer(cv_builder *b, int x, int growth)
{
    x = b_act(b, b_bn(b, x, "norm1", 1e-5f), ACT_RELU);
    x = b_conv(b, x, "conv1", 4 * growth, 1, 1, 0, 1, 1, 0);
    x = b_act(b, b_bn(b, x, "norm2", 1e-5f), ACT_RELU);
    return b_conv(b, x, "conv2", growth, 3, 1, 1, 1, 1, 0);
}

int build_densenet(cv_builder *b, const void *cfgp, int num_classes)
{
    const densenet_cfg *cfg = cfgp;
    char name[32];
    int x = b_input(b, 3), c = cfg->init_features;
    b_push(b, "features");
    x = b_conv(b, x, "conv0", c, 7, 2, 3, 1, 1, 0);
    x = b_act(b, b_bn(b, x, "norm0", 1e-5f), ACT_RELU);
    x = b_maxpool(b, x, 3, 2, 1, 0);
    for (int k = 0; k < 4; k++) {
        snprintf(name, sizeof name, "denseblock%d", k + 1);
        b_push(b, name);
        /* torch.cat(features) before every layer equals growing one concatenation */
        for (int l = 0; l < cfg->blocks[k]; l++) {
            snprintf(name, sizeof name, "denselayer%d", l + 1);
            b_push(b, name);
            int xs[2] = {x, dense_layer(b, x, cfg->growth)};
            x = b_concat(b, 2, xs);
            b_pop(b);
            c += cfg->growth;
        }
        b_pop(b);
        if (k == 3) break;
        snprintf(name, sizeof name, "transition%d", k + 1);
        b_push(b, name);
        x = b_act(b, b_bn(b, x, "norm", 1e-5f), ACT_RELU);
        x = b_conv(b, x, "conv", c / 2, 1, 1, 0, 1, 1, 0);
        x = b_avgpool(b, x, 2, 2, 0, 0, 1);
        b_pop(b);
        c /= 2;
    }
    x = b_act(b, b_bn(b, x, "norm5", 1e-5f), ACT_RELU);
    b_pop(b);
    x = b_flatten(b, b_adaptive_avgpool(b, x, 1, 1));
    return b_linear(b, x, "classifier", num_classes, 1);
}

/* The published checkpoints name a layer's parameters "norm.1.weight" where the modules are now
 * "norm1" (torchvision's _load_state_dict applies the same pattern). */
int densenet_rename(const char *key, char *out, size_t size)
{
    regex_t re;
    regmatch_t m[3];
    if (regcomp(&re,
                "^(.*denselayer[0-9]+\\.(norm|relu|conv))\\.([12]\\.(weight|bias|running_mean|"
                "running_var))$",
                REG_EXTENDED))
        return 0;
    int hit = !regexec(&re, key, 3, m, 0) && strlen(key) < size;
    regfree(&re);
    if (!hit) return 0;
    /* drop the '.' between the module name and its index */
    size_t dot = (size_t)m[1].rm_eo;
    memcpy(out, key, dot);
    strcpy(out + dot, key + dot + 1);
    return 1;
}
