/* ResNet, ResNeXt and Wide ResNet (torchvision/models/resnet.py). */
#include "models/models.h"

/* BasicBlock: conv3x3 -> bn -> relu -> conv3x3 -> bn, plus identity or downsample, then relu. */
static int basic_block(cv_builder *b, int x, int planes, int stride, int downsample)
{
    int out = b_conv(b, x, "conv1", planes, 3, stride, 1, 1, 1, 0);
    out = b_act(b, b_bn(b, out, "bn1", 1e-5f), ACT_RELU);
    out = b_conv(b, out, "conv2", planes, 3, 1, 1, 1, 1, 0);
    out = b_bn(b, out, "bn2", 1e-5f);
    int identity = x;
    if (downsample) {
        b_push(b, "downsample");
        identity = b_bn(b, b_conv(b, x, "0", planes, 1, stride, 0, 1, 1, 0), "1", 1e-5f);
        b_pop(b);
    }
    return b_act(b, b_add(b, out, identity), ACT_RELU);
}

/* Bottleneck: 1x1 reduce -> 3x3 (grouped, strided) -> 1x1 expand (x4). */
static int bottleneck(cv_builder *b, int x, int planes, int stride, int downsample,
                      const resnet_cfg *cfg)
{
    int width = (int)(planes * (cfg->width_per_group / 64.0)) * cfg->groups;
    int out = b_conv(b, x, "conv1", width, 1, 1, 0, 1, 1, 0);
    out = b_act(b, b_bn(b, out, "bn1", 1e-5f), ACT_RELU);
    out = b_conv(b, out, "conv2", width, 3, stride, 1, 1, cfg->groups, 0);
    out = b_act(b, b_bn(b, out, "bn2", 1e-5f), ACT_RELU);
    out = b_conv(b, out, "conv3", planes * 4, 1, 1, 0, 1, 1, 0);
    out = b_bn(b, out, "bn3", 1e-5f);
    int identity = x;
    if (downsample) {
        b_push(b, "downsample");
        identity = b_bn(b, b_conv(b, x, "0", planes * 4, 1, stride, 0, 1, 1, 0), "1", 1e-5f);
        b_pop(b);
    }
    return b_act(b, b_add(b, out, identity), ACT_RELU);
}

int build_resnet(cv_builder *b, const void *cfgp, int num_classes)
{
    const resnet_cfg *cfg = cfgp;
    int expansion = cfg->bottleneck ? 4 : 1, inplanes = 64;
    int x = b_input(b, 3);
    x = b_conv(b, x, "conv1", 64, 7, 2, 3, 1, 1, 0);
    x = b_act(b, b_bn(b, x, "bn1", 1e-5f), ACT_RELU);
    x = b_maxpool(b, x, 3, 2, 1, 0);
    for (int l = 0; l < 4; l++) {
        char name[16];
        snprintf(name, sizeof name, "layer%d", l + 1);
        b_push(b, name);
        int planes = 64 << l;
        for (int i = 0; i < cfg->layers[l]; i++) {
            int stride = i == 0 && l > 0 ? 2 : 1;
            int downsample = i == 0 && (stride != 1 || inplanes != planes * expansion);
            b_pushi(b, i);
            x = cfg->bottleneck ? bottleneck(b, x, planes, stride, downsample, cfg)
                                : basic_block(b, x, planes, stride, downsample);
            b_pop(b);
            inplanes = planes * expansion;
        }
        b_pop(b);
    }
    x = b_flatten(b, b_adaptive_avgpool(b, x, 1, 1));
    return b_linear(b, x, "fc", num_classes, 1);
}
