/* Building blocks shared by several model families (torchvision/ops/misc.py, models/_utils.py). */
#include "models/models.h"

int make_divisible(double v, int divisor)
{
    int nv = (int)(v + divisor / 2.0) / divisor * divisor;
    if (nv < divisor) nv = divisor;
    if (nv < 0.9 * v) nv += divisor;
    return nv;
}

int b_bn_m(cv_builder *b, int x, const char *name, float eps, float momentum)
{
    int id = b_bn(b, x, name, eps);
    if (id >= 0) b->g->nodes[id].a.momentum = momentum;
    return id;
}

int conv_norm_act(cv_builder *b, int x, int out, int k, int stride, int dilation, int groups,
                  float eps, float momentum, cv_act act)
{
    x = b_conv(b, x, "0", out, k, stride, (k - 1) / 2 * dilation, dilation, groups, 0);
    x = b_bn_m(b, x, "1", eps, momentum);
    return act ? b_act(b, x, act) : x;
}

int squeeze_excitation(cv_builder *b, int x, int squeeze, cv_act act, cv_act scale_act)
{
    int c = x >= 0 && x < b->g->n ? b->g->nodes[x].channels : 0;
    int s = b_adaptive_avgpool(b, x, 1, 1);
    s = b_act(b, b_conv(b, s, "fc1", squeeze, 1, 1, 0, 1, 1, 1), act);
    s = b_act(b, b_conv(b, s, "fc2", c, 1, 1, 0, 1, 1, 1), scale_act);
    return b_mul(b, x, s);
}
