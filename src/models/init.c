/* Weight initialisation as torchvision's constructors do it when built without weights: each
 * family's rules (its _init_weights / constructor loops) for convolution and Linear weights and
 * biases, named special cases (ViT's token and position embeddings, layer scales, relative
 * position tables), normalisation layers at weight 1, bias 0, running mean 0, variance 1.
 * Random values come from a seeded splitmix64 stream (not PyTorch's generator: the same
 * distributions, not the same numbers). */
#include <math.h>
#include <string.h>

#include "cvision/transforms.h"
#include "models/models.h"

static double uniform01(cv_rng *r) /* (0, 1) */
{
    return ((cv_rng_next(r) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

static double normal(cv_rng *r)
{
    return sqrt(-2 * log(uniform01(r))) * cos(2 * M_PI * uniform01(r));
}

/* torch's fans: fan_in = size(1) * receptive field, fan_out = size(0) * receptive field */
static void fans(const cv_tensor *w, double *fan_in, double *fan_out)
{
    double rf = 1;
    for (int i = 2; i < w->ndim; i++) rf *= (double)w->shape[i];
    *fan_in = (w->ndim > 1 ? (double)w->shape[1] : 1) * rf;
    *fan_out = (double)w->shape[0] * rf;
}

/* Fills t by rule; `fan_w` is the weight whose fans a bias's default bound uses. */
static void fill(cv_tensor *t, init_rule rule, const cv_tensor *fan_w, cv_rng *r)
{
    float *d = t->data;
    int64_t n = cv_tensor_numel(t);
    double fi = 1, fo = 1, b;
    if (fan_w) fans(fan_w, &fi, &fo);
    switch (rule.kind) {
    case INIT_KEEP:
        return;
    case INIT_CONST:
        for (int64_t i = 0; i < n; i++) d[i] = rule.v;
        return;
    case INIT_NORMAL:
        for (int64_t i = 0; i < n; i++) d[i] = (float)(rule.v * normal(r));
        return;
    case INIT_TRUNC: /* trunc_normal_(std, a=-2, b=2): absolute bounds, by rejection */
    case INIT_TRUNC_FAN_IN:
        b = rule.kind == INIT_TRUNC ? rule.v : sqrt(1 / fi);
        for (int64_t i = 0; i < n; i++) {
            double v;
            do v = b * normal(r);
            while (v < -2 || v > 2);
            d[i] = (float)v;
        }
        return;
    case INIT_KAIMING_NORMAL_OUT:
    case INIT_KAIMING_NORMAL_IN:
        b = sqrt(2 / (rule.kind == INIT_KAIMING_NORMAL_OUT ? fo : fi));
        for (int64_t i = 0; i < n; i++) d[i] = (float)(b * normal(r));
        return;
    case INIT_DEFAULT: /* nn.Conv2d / nn.Linear reset_parameters: weight and bias alike */
        b = 1 / sqrt(fi);
        break;
    case INIT_UNIFORM_OUT: /* EfficientNet's classifier: 1 / sqrt(out_features) */
        b = 1 / sqrt(fo);
        break;
    case INIT_XAVIER:
        b = sqrt(6 / (fi + fo));
        break;
    case INIT_KAIMING_UNIFORM_OUT: /* MNASNet's Linear: fan_out, gain 1 (sigmoid) */
        b = sqrt(3 / fo);
        break;
    case INIT_KAIMING_UNIFORM_IN: /* SqueezeNet's convs: fan_in, gain sqrt(2) */
        b = sqrt(6 / fi);
        break;
    default:
        return;
    }
    for (int64_t i = 0; i < n; i++) d[i] = (float)(b * (2 * uniform01(r) - 1));
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

void init_params(const cv_graph *g, cv_state *params, const init_spec *spec, uint64_t seed)
{
    static const init_spec resnet = {
        {INIT_KAIMING_NORMAL_OUT, 0}, {INIT_CONST, 0}, {INIT_DEFAULT, 0}, {INIT_DEFAULT, 0}, {{0}}};
    cv_rng r = {seed}; /* the seed is the raw state (cv_rng_init would mix it): same values */
    if (!spec) spec = &resnet;
    for (int i = 0; i < g->n; i++) {
        const cv_node *nd = &g->nodes[i];
        cv_tensor *w = nd->param[0] >= 0 ? cv_state_tensor(params, nd->param[0]) : NULL;
        cv_tensor *b =
            nd->nparam > 1 && nd->param[1] >= 0 ? cv_state_tensor(params, nd->param[1]) : NULL;
        if (nd->op == OP_BN || nd->op == OP_LAYERNORM) {
            fill(w, (init_rule){INIT_CONST, 1}, NULL, &r);
            fill(b, (init_rule){INIT_CONST, 0}, NULL, &r);
            if (nd->op == OP_BN) {
                fill(cv_state_tensor(params, nd->param[2]), (init_rule){INIT_CONST, 0}, NULL, &r);
                fill(cv_state_tensor(params, nd->param[3]), (init_rule){INIT_CONST, 1}, NULL, &r);
            }
        } else if (nd->op == OP_CONV || nd->op == OP_LINEAR) {
            int lin = nd->op == OP_LINEAR || w->ndim == 2; /* pointwise convs keep Linear's shape */
            fill(w, lin ? spec->linear : spec->conv, w, &r);
            init_rule br = lin ? spec->linear_bias : spec->conv_bias;
            if (b) fill(b, br, w, &r);
        }
    }
    /* named parameters: the first matching suffix; fans are the tensor's own */
    for (int i = 0; i < cv_state_count(params); i++) {
        const char *name = cv_state_name(params, i);
        for (int k = 0; k < 16 && spec->special[k].suffix; k++) {
            if (!ends_with(name, spec->special[k].suffix)) continue;
            cv_tensor *t = cv_state_tensor(params, i);
            fill(t, spec->special[k].rule, t, &r);
            break;
        }
    }
}
