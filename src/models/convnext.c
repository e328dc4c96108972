/* ConvNeXt (torchvision/models/convnext.py): depthwise 7x7, channels-last LayerNorm (eps 1e-6),
 * pointwise MLP (Linear weights [out, in]) with GELU, layer scale, stochastic depth; LayerNorm2d
 * before every downsampling convolution and before the classifier. */
#include <stdio.h>
#include <string.h>

#include "models/models.h"

static int cn_block(cv_builder *b, int x, int dim, float sd)
{
    b_push(b, "block");
    int y = b_conv(b, x, "0", dim, 7, 1, 3, 1, dim, 1);
    y = b_layernorm(b, y, "2", 1e-6f);
    y = b_act(b, b_pointwise(b, y, "3", 4 * dim, 1), ACT_GELU);
    y = b_pointwise(b, y, "5", dim, 1);
    b_pop(b);
    int64_t shape[3] = {dim, 1, 1};
    y = b_channel_scale(b, y, "layer_scale", 3, shape);
    return b_add(b, b_stochastic_depth(b, y, sd), x);
}

int build_convnext(cv_builder *b, const void *cfgp, int num_classes)
{
    const convnext_cfg *cfg = cfgp;
    int x = b_input(b, 3), f = 0, total = 0, id = 0;
    for (int s = 0; s < 4; s++) total += cfg->depths[s];
    b_push(b, "features");
    b_pushi(b, f++);
    x = b_layernorm(b, b_conv(b, x, "0", cfg->dims[0], 4, 4, 0, 1, 1, 1), "1", 1e-6f);
    b_pop(b);
    for (int s = 0; s < 4; s++) {
        b_pushi(b, f++);
        for (int i = 0; i < cfg->depths[s]; i++, id++) {
            b_pushi(b, i);
            x = cn_block(b, x, cfg->dims[s], cfg->sd_prob * (float)id / (float)(total - 1));
            b_pop(b);
        }
        b_pop(b);
        if (s == 3) break;
        b_pushi(b, f++);
        x = b_layernorm(b, x, "0", 1e-6f);
        x = b_conv(b, x, "1", cfg->dims[s + 1], 2, 2, 0, 1, 1, 1);
        b_pop(b);
    }
    b_pop(b);
    x = b_adaptive_avgpool(b, x, 1, 1);
    b_push(b, "classifier");
    x = b_linear(b, b_flatten(b, b_layernorm(b, x, "0", 1e-6f)), "2", num_classes, 1);
    b_pop(b);
    return x;
}

/* timm's ConvNeXt names -> torchvision's (docs/models.md): stem.K -> features.0.K,
 * stages.N.downsample.K -> features.2N.K, stages.N.blocks.M.{conv_dw, norm, mlp.fc1, mlp.fc2}
 * -> features.(2N+1).M.block.{0, 2, 3, 5}, gamma -> layer_scale, head.{norm, fc} ->
 * classifier.{0, 2}. */
int convnext_rename(const char *key, char *out, size_t size)
{
    static const char *const blk[][2] = {
        {"conv_dw.", "block.0."}, {"norm.", "block.2."},    {"mlp.fc1.", "block.3."},
        {"mlp.fc2.", "block.5."}, {"gamma", "layer_scale"},
    };
    int n, m, used = 0;
    const char *r;
    if (!strncmp(key, "stem.", 5)) return snprintf(out, size, "features.0.%s", key + 5) < (int)size;
    if (!strncmp(key, "head.norm.", 10))
        return snprintf(out, size, "classifier.0.%s", key + 10) < (int)size;
    if (!strncmp(key, "head.fc.", 8))
        return snprintf(out, size, "classifier.2.%s", key + 8) < (int)size;
    if (sscanf(key, "stages.%d.downsample.%n", &n, &used) == 1 && used && n >= 1 && n < 4)
        return snprintf(out, size, "features.%d.%s", 2 * n, key + used) < (int)size;
    used = 0;
    if (sscanf(key, "stages.%d.blocks.%d.%n", &n, &m, &used) != 2 || !used || n < 0 || n >= 4 ||
        m < 0)
        return 0;
    r = key + used;
    for (size_t i = 0; i < sizeof blk / sizeof *blk; i++) {
        size_t k = strlen(blk[i][0]);
        if (!strncmp(r, blk[i][0], k))
            return snprintf(out, size, "features.%d.%d.%s%s", 2 * n + 1, m, blk[i][1], r + k) <
                   (int)size;
    }
    return 0;
}

/* timm keeps layer scales as [C] (gamma); torchvision as [C, 1, 1]: a view of the new shape. */
cv_status convnext_adapt(cv_ctx *ctx, const void *cfg, cv_state *view)
{
    (void)cfg;
    for (int i = 0; i < cv_state_count(view); i++) {
        const char *name = cv_state_name(view, i);
        const cv_tensor *t = cv_state_tensor(view, i);
        size_t len = strlen(name);
        if (t->ndim != 1 || len < 12 || strcmp(name + len - 12, ".layer_scale")) continue;
        int64_t shape[3] = {t->shape[0], 1, 1};
        cv_tensor *v;
        cv_status s = cv_tensor_wrap(ctx, t->dtype, 3, shape, t->data, &v);
        if (!s) s = cv_state_put(ctx, view, name, v);
        if (s) return s;
    }
    return CV_OK;
}
