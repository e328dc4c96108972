/* Model definitions: one builder per architecture family, registered by name in registry.c. */
#ifndef CV_MODELS_H
#define CV_MODELS_H

#include <stdio.h>

#include "core/graph.h"

/* Builds the architecture on `b` and returns the output node (or -1 with b->err set). */
typedef int (*cv_build_fn)(cv_builder *b, const void *cfg, int num_classes);

typedef struct {
    const char *name;
    cv_build_fn build;
    const void *cfg;
    const char *head[4]; /* state_dict names of the classifier head, NULL-terminated */
} cv_arch;

const cv_arch *arch_find(const char *name);

int build_resnet(cv_builder *b, const void *cfg, int num_classes);
int build_vgg(cv_builder *b, const void *cfg, int num_classes);
int build_alexnet(cv_builder *b, const void *cfg, int num_classes);
int build_mobilenet_v2(cv_builder *b, const void *cfg, int num_classes);

typedef struct {
    int bottleneck, layers[4], groups, width_per_group;
} resnet_cfg;

typedef struct {
    const int *layout; /* channels, 0 = max pool, terminated by -1 */
    int batch_norm;
} vgg_cfg;

extern const int vgg_cfg_a[], vgg_cfg_b[], vgg_cfg_d[], vgg_cfg_e[];

#endif
