/* Architecture names -> builders, in the order `cvision models` lists them. */
#include <string.h>

#include "models/models.h"

/* an architecture whose classifier head is the parameters <head>.weight and <head>.bias */
#define ARCH(n, fn, cfgv, h, ...)                                                                  \
    {                                                                                              \
        .name = n, .build = fn, .cfg = cfgv, .head = {h ".weight", h ".bias"}, __VA_ARGS__         \
    }
#define RESNET(n, bott, l0, l1, l2, l3, g, w)                                                      \
    ARCH(n, build_resnet, (&(const resnet_cfg){bott, {l0, l1, l2, l3}, g, w}), "fc")
#define VGG(n, layout, bn)                                                                         \
    ARCH(n, build_vgg, (&(const vgg_cfg){layout, bn}), "classifier.6", .init = &init_vgg)
#define DENSENET(n, g, f, b0, b1, b2, b3)                                                          \
    ARCH(n, build_densenet, (&(const densenet_cfg){g, f, {b0, b1, b2, b3}}), "classifier",         \
         .rename = densenet_rename, .init = &init_densenet)
#define SHUFFLENET(n, c0, c1, c2, c3, c4)                                                          \
    ARCH(n, build_shufflenet_v2, (&(const shufflenet_cfg){{c0, c1, c2, c3, c4}}), "fc",            \
         .init = &init_torch_default)
#define MNASNET(n, a)                                                                              \
    ARCH(n, build_mnasnet, (&(const mnasnet_cfg){a, 0, &(const mnasnet_cfg){a, 1, NULL}}),         \
         "classifier.1", .cfg_for = mnasnet_cfg_for, .init = &init_mnasnet)
#define INCEPTION(n, fn, ...)                                                                      \
    ARCH(n, fn, (&(const inception_cfg){0, &(const inception_cfg){1, NULL}}), "fc",                \
         .cfg_for = inception_cfg_for, __VA_ARGS__)
#define EFFNET(n, v, w, d, drop, eps, mom)                                                         \
    ARCH(n, build_efficientnet, (&(const efficientnet_cfg){v, w, d, drop, eps, mom}),              \
         "classifier.1", .init = &init_effnet, .rename = (v) == 1 ? efficientnet_rename : NULL)
#define REGNET(n, d0, d1, d2, d3, w0, w1, w2, w3, g0, g1, g2, g3, se)                              \
    ARCH(n, build_regnet,                                                                          \
         (&(const regnet_cfg){{d0, d1, d2, d3}, {w0, w1, w2, w3}, {g0, g1, g2, g3}, se}), "fc",    \
         .init = &init_regnet)
#define CONVNEXT(n, d0, d1, d2, d3, c0, c1, c2, c3, sd)                                            \
    ARCH(n, build_convnext, (&(const convnext_cfg){{d0, d1, d2, d3}, {c0, c1, c2, c3}, sd}),       \
         "classifier.2", .rename = convnext_rename, .adapt = convnext_adapt,                       \
         .init = &init_convnext)
#define VIT(n, p, l, h, d, m)                                                                      \
    ARCH(n, build_vit, (&(const vit_cfg){p, l, h, d, m, 224}), "heads.head",                       \
         .cfg_for = vit_cfg_for, .rename = vit_rename, .adapt = vit_adapt, .init = &init_vit)
#define SWIN(n, e, d0, d1, d2, d3, h0, h1, h2, h3, sd, v2)                                         \
    ARCH(n, build_swin, (&(const swin_cfg){e, {d0, d1, d2, d3}, {h0, h1, h2, h3}, sd, v2}),        \
         "head", .init = &init_swin)

/* torchvision's initialisations (init.c); ResNet's (kaiming normal fan_out convolutions, default
 * Linear) is the NULL spec. */
#define Z                                                                                          \
    {                                                                                              \
        INIT_CONST, 0                                                                              \
    }
#define N(s)                                                                                       \
    {                                                                                              \
        INIT_NORMAL, s                                                                             \
    }
#define T(s)                                                                                       \
    {                                                                                              \
        INIT_TRUNC, s                                                                              \
    }
/* VGG, MobileNet V2/V3 */
static const init_spec init_vgg = {{INIT_KAIMING_NORMAL_OUT, 0}, Z, N(0.01f), Z, {{0}}};
static const init_spec init_torch_default = {
    {INIT_DEFAULT, 0}, {INIT_DEFAULT, 0}, {INIT_DEFAULT, 0}, {INIT_DEFAULT, 0}, {{0}}};
static const init_spec init_regnet = {
    {INIT_KAIMING_NORMAL_OUT, 0}, {INIT_DEFAULT, 0}, N(0.01f), Z, {{0}}};
static const init_spec init_densenet = {
    {INIT_KAIMING_NORMAL_IN, 0}, Z, {INIT_DEFAULT, 0}, Z, {{0}}};
static const init_spec init_squeezenet = {
    {INIT_KAIMING_UNIFORM_IN, 0}, Z, {INIT_DEFAULT, 0}, Z, {{"classifier.1.weight", N(0.01f)}}};
static const init_spec init_mnasnet = {
    {INIT_KAIMING_NORMAL_OUT, 0}, Z, {INIT_KAIMING_UNIFORM_OUT, 0}, Z, {{0}}};
static const init_spec init_effnet = {
    {INIT_KAIMING_NORMAL_OUT, 0}, Z, {INIT_UNIFORM_OUT, 0}, Z, {{0}}};
static const init_spec init_googlenet = {
    T(0.01f), {INIT_DEFAULT, 0}, T(0.01f), {INIT_DEFAULT, 0}, {{0}}};
static const init_spec init_inception = {
    T(0.1f), {INIT_DEFAULT, 0}, T(0.1f), {INIT_DEFAULT, 0}, {{0}}};
static const init_spec init_convnext = {
    T(0.02f), Z, T(0.02f), Z, {{"layer_scale", {INIT_CONST, 1e-6f}}}};
/* ViT: MultiheadAttention's xavier in_proj and zero biases (out_proj keeps Linear's default
 * weight), MLPBlock's xavier weights with N(0, 1e-6) biases, a zero head */
static const init_spec init_vit = {{INIT_TRUNC_FAN_IN, 0},
                                   Z,
                                   {INIT_DEFAULT, 0},
                                   Z,
                                   {{"class_token", Z},
                                    {"pos_embedding", N(0.02f)},
                                    {"in_proj_weight", {INIT_XAVIER, 0}},
                                    {"mlp.0.weight", {INIT_XAVIER, 0}},
                                    {"mlp.3.weight", {INIT_XAVIER, 0}},
                                    {"mlp.0.bias", N(1e-6f)},
                                    {"mlp.3.bias", N(1e-6f)},
                                    {"heads.head.weight", Z},
                                    {"heads.head.bias", Z}}};
/* Swin: every Linear (cpb_mlp too) trunc_normal(0.02) with zero biases; the patch embedding
 * keeps Conv2d's default; logit_scale stays log(10) */
static const init_spec init_swin = {{INIT_DEFAULT, 0},
                                    {INIT_DEFAULT, 0},
                                    T(0.02f),
                                    Z,
                                    {{"relative_position_bias_table", T(0.02f)},
                                     {"cpb_mlp.0.weight", T(0.02f)},
                                     {"cpb_mlp.0.bias", Z},
                                     {"cpb_mlp.2.weight", T(0.02f)},
                                     {"attn.qkv.bias", Z}}};
static const init_spec init_maxvit = {
    N(0.02f), Z, N(0.02f), Z, {{"relative_position_bias_table", T(0.02f)}}};
#undef Z
#undef N
#undef T

static const cv_arch archs[] = {
    ARCH("alexnet", build_alexnet, NULL, "classifier.6", .init = &init_torch_default),
    CONVNEXT("convnext_base", 3, 3, 27, 3, 128, 256, 512, 1024, 0.5f),
    CONVNEXT("convnext_large", 3, 3, 27, 3, 192, 384, 768, 1536, 0.5f),
    CONVNEXT("convnext_small", 3, 3, 27, 3, 96, 192, 384, 768, 0.4f),
    CONVNEXT("convnext_tiny", 3, 3, 9, 3, 96, 192, 384, 768, 0.1f),
    VIT("deit_base_patch16_224", 16, 12, 12, 768, 3072), /* timm's DeiT: ViTs of other widths */
    VIT("deit_small_patch16_224", 16, 12, 6, 384, 1536),
    VIT("deit_tiny_patch16_224", 16, 12, 3, 192, 768),
    DENSENET("densenet121", 32, 64, 6, 12, 24, 16),
    DENSENET("densenet161", 48, 96, 6, 12, 36, 24),
    DENSENET("densenet169", 32, 64, 6, 12, 32, 32),
    DENSENET("densenet201", 32, 64, 6, 12, 48, 32),
    EFFNET("efficientnet_b0", 1, 1.0, 1.0, 0.2f, 1e-5f, 0.1f),
    EFFNET("efficientnet_b1", 1, 1.0, 1.1, 0.2f, 1e-5f, 0.1f),
    EFFNET("efficientnet_b2", 1, 1.1, 1.2, 0.3f, 1e-5f, 0.1f),
    EFFNET("efficientnet_b3", 1, 1.2, 1.4, 0.3f, 1e-5f, 0.1f),
    EFFNET("efficientnet_b4", 1, 1.4, 1.8, 0.4f, 1e-5f, 0.1f),
    EFFNET("efficientnet_b5", 1, 1.6, 2.2, 0.4f, 1e-3f, 0.01f),
    EFFNET("efficientnet_b6", 1, 1.8, 2.6, 0.5f, 1e-3f, 0.01f),
    EFFNET("efficientnet_b7", 1, 2.0, 3.1, 0.5f, 1e-3f, 0.01f),
    EFFNET("efficientnet_v2_l", 4, 1, 1, 0.4f, 1e-3f, 0.1f),
    EFFNET("efficientnet_v2_m", 3, 1, 1, 0.3f, 1e-3f, 0.1f),
    EFFNET("efficientnet_v2_s", 2, 1, 1, 0.2f, 1e-3f, 0.1f),
    INCEPTION("googlenet", build_googlenet, .ignore = {"aux1.", "aux2."}, .init = &init_googlenet),
    INCEPTION("inception_v3", build_inception_v3, .ignore = {"AuxLogits."},
              .init = &init_inception),
    {.name = "maxvit_t",
     .build = build_maxvit,
     .head = {"classifier.5.weight"},
     .init = &init_maxvit},
    MNASNET("mnasnet0_5", 0.5),
    MNASNET("mnasnet0_75", 0.75),
    ARCH("mnasnet1_0", build_mnasnet, (&(const mnasnet_cfg){1.0, 0, NULL}), "classifier.1",
         .init = &init_mnasnet),
    MNASNET("mnasnet1_3", 1.3),
    ARCH("mobilenet_v2", build_mobilenet_v2, NULL, "classifier.1", .init = &init_vgg),
    ARCH("mobilenet_v3_large", build_mobilenet_v3, (&(const mobilenet_v3_cfg){1}), "classifier.3",
         .init = &init_vgg),
    ARCH("mobilenet_v3_small", build_mobilenet_v3, (&(const mobilenet_v3_cfg){0}), "classifier.3",
         .init = &init_vgg),
    REGNET("regnet_x_16gf", 2, 6, 13, 1, 256, 512, 896, 2048, 128, 128, 128, 128, 0),
    REGNET("regnet_x_1_6gf", 2, 4, 10, 2, 72, 168, 408, 912, 24, 24, 24, 24, 0),
    REGNET("regnet_x_32gf", 2, 7, 13, 1, 336, 672, 1344, 2520, 168, 168, 168, 168, 0),
    REGNET("regnet_x_3_2gf", 2, 6, 15, 2, 96, 192, 432, 1008, 48, 48, 48, 48, 0),
    REGNET("regnet_x_400mf", 1, 2, 7, 12, 32, 64, 160, 400, 16, 16, 16, 16, 0),
    REGNET("regnet_x_800mf", 1, 3, 7, 5, 64, 128, 288, 672, 16, 16, 16, 16, 0),
    REGNET("regnet_x_8gf", 2, 5, 15, 1, 80, 240, 720, 1920, 80, 120, 120, 120, 0),
    REGNET("regnet_y_128gf", 2, 7, 17, 1, 528, 1056, 2904, 7392, 264, 264, 264, 264, 1),
    REGNET("regnet_y_16gf", 2, 4, 11, 1, 224, 448, 1232, 3024, 112, 112, 112, 112, 1),
    REGNET("regnet_y_1_6gf", 2, 6, 17, 2, 48, 120, 336, 888, 24, 24, 24, 24, 1),
    REGNET("regnet_y_32gf", 2, 5, 12, 1, 232, 696, 1392, 3712, 232, 232, 232, 232, 1),
    REGNET("regnet_y_3_2gf", 2, 5, 13, 1, 72, 216, 576, 1512, 24, 24, 24, 24, 1),
    REGNET("regnet_y_400mf", 1, 3, 6, 6, 48, 104, 208, 440, 8, 8, 8, 8, 1),
    REGNET("regnet_y_800mf", 1, 3, 8, 2, 64, 144, 320, 784, 16, 16, 16, 16, 1),
    REGNET("regnet_y_8gf", 2, 4, 10, 1, 224, 448, 896, 2016, 56, 56, 56, 56, 1),
    RESNET("resnet18", 0, 2, 2, 2, 2, 1, 64),
    RESNET("resnet34", 0, 3, 4, 6, 3, 1, 64),
    RESNET("resnet50", 1, 3, 4, 6, 3, 1, 64),
    RESNET("resnet101", 1, 3, 4, 23, 3, 1, 64),
    RESNET("resnet152", 1, 3, 8, 36, 3, 1, 64),
    RESNET("resnext50_32x4d", 1, 3, 4, 6, 3, 32, 4),
    RESNET("resnext101_32x8d", 1, 3, 4, 23, 3, 32, 8),
    RESNET("resnext101_64x4d", 1, 3, 4, 23, 3, 64, 4),
    SHUFFLENET("shufflenet_v2_x0_5", 24, 48, 96, 192, 1024),
    SHUFFLENET("shufflenet_v2_x1_0", 24, 116, 232, 464, 1024),
    SHUFFLENET("shufflenet_v2_x1_5", 24, 176, 352, 704, 1024),
    SHUFFLENET("shufflenet_v2_x2_0", 24, 244, 488, 976, 2048),
    ARCH("squeezenet1_0", build_squeezenet, (&(const squeezenet_cfg){10}), "classifier.1",
         .init = &init_squeezenet),
    ARCH("squeezenet1_1", build_squeezenet, (&(const squeezenet_cfg){11}), "classifier.1",
         .init = &init_squeezenet),
    SWIN("swin_b", 128, 2, 2, 18, 2, 4, 8, 16, 32, 0.5f, 0),
    SWIN("swin_s", 96, 2, 2, 18, 2, 3, 6, 12, 24, 0.3f, 0),
    SWIN("swin_t", 96, 2, 2, 6, 2, 3, 6, 12, 24, 0.2f, 0),
    SWIN("swin_v2_b", 128, 2, 2, 18, 2, 4, 8, 16, 32, 0.5f, 1),
    SWIN("swin_v2_s", 96, 2, 2, 18, 2, 3, 6, 12, 24, 0.3f, 1),
    SWIN("swin_v2_t", 96, 2, 2, 6, 2, 3, 6, 12, 24, 0.2f, 1),
    VGG("vgg11", vgg_cfg_a, 0),
    VGG("vgg11_bn", vgg_cfg_a, 1),
    VGG("vgg13", vgg_cfg_b, 0),
    VGG("vgg13_bn", vgg_cfg_b, 1),
    VGG("vgg16", vgg_cfg_d, 0),
    VGG("vgg16_bn", vgg_cfg_d, 1),
    VGG("vgg19", vgg_cfg_e, 0),
    VGG("vgg19_bn", vgg_cfg_e, 1),
    VIT("vit_b_16", 16, 12, 12, 768, 3072),
    VIT("vit_b_32", 32, 12, 12, 768, 3072),
    VIT("vit_h_14", 14, 32, 16, 1280, 5120),
    VIT("vit_l_16", 16, 24, 16, 1024, 4096),
    VIT("vit_l_32", 32, 24, 16, 1024, 4096),
    RESNET("wide_resnet50_2", 1, 3, 4, 6, 3, 1, 128),
    RESNET("wide_resnet101_2", 1, 3, 4, 23, 3, 1, 128),
};

int cv_arch_count(void)
{
    return (int)(sizeof archs / sizeof archs[0]);
}

const char *cv_arch_name(int i)
{
    return i >= 0 && i < cv_arch_count() ? archs[i].name : NULL;
}

const cv_arch *arch_find(const char *name)
{
    for (int i = 0; i < cv_arch_count(); i++)
        if (!strcmp(archs[i].name, name)) return &archs[i];
    return NULL;
}
