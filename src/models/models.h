/* Model definitions: one builder per architecture family, registered by name in registry.c. */
#ifndef CV_MODELS_H
#define CV_MODELS_H

#include <stdio.h>

#include "core/graph.h"

#define CV_CFG_MAX 128

/* Weight initialisation rules (init.c), as torchvision's constructors apply them. */
typedef enum {
    INIT_KEEP = 0,            /* leave as built */
    INIT_CONST,               /* v */
    INIT_NORMAL,              /* N(0, v) */
    INIT_TRUNC,               /* trunc_normal_(std=v, a=-2, b=2) */
    INIT_TRUNC_FAN_IN,        /* trunc_normal_(std=sqrt(1/fan_in)) (ViT's conv_proj) */
    INIT_KAIMING_NORMAL_OUT,  /* N(0, sqrt(2/fan_out)) */
    INIT_KAIMING_NORMAL_IN,   /* N(0, sqrt(2/fan_in)) */
    INIT_DEFAULT,             /* nn.Conv2d/nn.Linear default: U(+-1/sqrt(fan_in)) */
    INIT_UNIFORM_OUT,         /* U(+-1/sqrt(fan_out)) */
    INIT_XAVIER,              /* U(+-sqrt(6/(fan_in+fan_out))) */
    INIT_KAIMING_UNIFORM_OUT, /* U(+-sqrt(3/fan_out)) */
    INIT_KAIMING_UNIFORM_IN,  /* U(+-sqrt(6/fan_in)) */
} init_kind;

typedef struct {
    init_kind kind;
    float v;
} init_rule;

typedef struct {
    init_rule conv, conv_bias;     /* 4-D convolution weights and their biases */
    init_rule linear, linear_bias; /* [out, in] weights (Linear, pointwise) and their biases */
    struct {
        const char *suffix; /* parameter name suffix; the first match wins */
        init_rule rule;
    } special[16];
} init_spec;

/* Initialises `params` by `spec` (NULL: ResNet's rules); norms at 1/0, running stats 0/1. */
void init_params(const cv_graph *g, cv_state *params, const init_spec *spec, uint64_t seed);

/* Builds the architecture on `b` and returns the output node (or -1 with b->err set). */
typedef int (*cv_build_fn)(cv_builder *b, const void *cfg, int num_classes);

typedef struct {
    const char *name;
    cv_build_fn build;
    const void *cfg;
    const char *head[4]; /* state_dict names of the classifier head, NULL-terminated */
    /* Optional: rewrites a checkpoint key into this builder's name (keys of old checkpoints, such
     * as DenseNet's "norm.1"); returns 1 and fills `out` when it did. */
    int (*rename)(const char *key, char *out, size_t size);
    /* Optional: the configuration a checkpoint needs when it is not `cfg` (MNASNet's version-1
     * stem, ViT's image size); the model is rebuilt for it before loading. The hook returns a
     * static configuration, or `buf` (CV_CFG_MAX bytes) after writing one there. */
    const void *(*cfg_for)(const void *cfg, const cv_state *st, void *buf);
    /* Optional: adapts a checkpoint's tensors to configuration `cfg` in `view` (a state of views
     * of the checkpoint, after renaming), replacing tensors with new ones where needed (ViT's
     * position embeddings interpolated for another image size). */
    cv_status (*adapt)(cv_ctx *ctx, const void *cfg, cv_state *view);
    /* Checkpoint key prefixes this builder has no modules for and loading skips: the auxiliary
     * classifiers of GoogLeNet and Inception v3, which torchvision runs only for the extra
     * training outputs (its eval forward ignores them; its pretrained models drop them). */
    const char *ignore[3];
    const init_spec *init; /* the family's initialisation (NULL: ResNet's) */
} cv_arch;

const cv_arch *arch_find(const char *name);

int build_resnet(cv_builder *b, const void *cfg, int num_classes);
int build_vgg(cv_builder *b, const void *cfg, int num_classes);
int build_alexnet(cv_builder *b, const void *cfg, int num_classes);
int build_mobilenet_v2(cv_builder *b, const void *cfg, int num_classes);
int build_mobilenet_v3(cv_builder *b, const void *cfg, int num_classes);
int build_squeezenet(cv_builder *b, const void *cfg, int num_classes);
int build_densenet(cv_builder *b, const void *cfg, int num_classes);
int build_shufflenet_v2(cv_builder *b, const void *cfg, int num_classes);
int build_mnasnet(cv_builder *b, const void *cfg, int num_classes);
const void *mnasnet_cfg_for(const void *cfg, const cv_state *st, void *buf);
int build_googlenet(cv_builder *b, const void *cfg, int num_classes);
int build_inception_v3(cv_builder *b, const void *cfg, int num_classes);
const void *inception_cfg_for(const void *cfg, const cv_state *st, void *buf);
int build_efficientnet(cv_builder *b, const void *cfg, int num_classes);
int efficientnet_rename(const char *key, char *out, size_t size);
int build_regnet(cv_builder *b, const void *cfg, int num_classes);
int build_convnext(cv_builder *b, const void *cfg, int num_classes);
int convnext_rename(const char *key, char *out, size_t size);
cv_status convnext_adapt(cv_ctx *ctx, const void *cfg, cv_state *view);
int build_vit(cv_builder *b, const void *cfg, int num_classes);
const void *vit_cfg_for(const void *cfg, const cv_state *st, void *buf);
cv_status vit_adapt(cv_ctx *ctx, const void *cfg, cv_state *view);
int vit_rename(const char *key, char *out, size_t size);
int build_swin(cv_builder *b, const void *cfg, int num_classes);
int build_maxvit(cv_builder *b, const void *cfg, int num_classes);
int densenet_rename(const char *key, char *out, size_t size);

/* One value of a float or integer tensor as double (model.c). */
double tensor_value(const cv_tensor *t, int64_t i);

/* ---- shared blocks (blocks.c) ---- */
/* torchvision's _make_divisible: round to a multiple of `divisor`, never below 90% of v. */
int make_divisible(double v, int divisor);
/* Batch norm with a momentum other than PyTorch's default 0.1. */
int b_bn_m(cv_builder *b, int x, const char *name, float eps, float momentum);
/* Conv2dNormActivation: conv (no bias, "same" padding) "0" -> BN "1" -> activation (if any). */
int conv_norm_act(cv_builder *b, int x, int out, int k, int stride, int dilation, int groups,
                  float eps, float momentum, cv_act act);
/* SqueezeExcitation: x * scale_act(fc2(act(fc1(avgpool(x))))), fc1/fc2 1x1 convs with bias. */
int squeeze_excitation(cv_builder *b, int x, int squeeze, cv_act act, cv_act scale_act);

typedef struct {
    int large;
} mobilenet_v3_cfg;

typedef struct {
    int version; /* 10: 1_0, 11: 1_1 */
} squeezenet_cfg;

typedef struct {
    int channels[5];
} shufflenet_cfg;

typedef struct {
    int version; /* 1: B0-B7, 2/3/4: V2 S/M/L */
    double width, depth;
    float dropout, eps, momentum;
} efficientnet_cfg;

typedef struct {
    int depths[4], widths[4], group_widths[4], se;
} regnet_cfg;

typedef struct {
    int depths[4], dims[4];
    float sd_prob;
} convnext_cfg;

typedef struct {
    int patch, layers, heads, hidden, mlp, image_size;
} vit_cfg;

typedef struct {
    int embed, depths[4], heads[4];
    float sd_prob;
    int v2;
} swin_cfg;

typedef struct inception_cfg {
    int transform_input;
    const struct inception_cfg *transformed; /* the transform_input variant */
} inception_cfg;

typedef struct mnasnet_cfg {
    double alpha;
    int v1_stem;                  /* version-1 checkpoints: the stem is not scaled by alpha */
    const struct mnasnet_cfg *v1; /* the variant for version-1 checkpoints, if it differs */
} mnasnet_cfg;

typedef struct {
    int growth, init_features, blocks[4];
} densenet_cfg;

typedef struct {
    int bottleneck, layers[4], groups, width_per_group;
} resnet_cfg;

typedef struct {
    const int *layout; /* channels, 0 = max pool, terminated by -1 */
    int batch_norm;
} vgg_cfg;

extern const int vgg_cfg_a[], vgg_cfg_b[], vgg_cfg_d[], vgg_cfg_e[];

#endif
