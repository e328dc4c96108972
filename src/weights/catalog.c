/* Lookups over the generated catalog of torchvision's ImageNet weights (catalog_data.c). */
#include <string.h>
#include <strings.h>

#include "weights/catalog.h"

int cv_catalog_count(void)
{
    return cv_catalog_data_count;
}

const cv_weights_info *cv_catalog_entry(int i)
{
    return i >= 0 && i < cv_catalog_data_count ? &cv_catalog_data[i] : NULL;
}

const char *const *cv_imagenet_categories(void)
{
    return cv_imagenet_category_names;
}

const cv_weights_info *cv_catalog_find(const char *arch, const char *name)
{
    if (!name) return NULL;
    /* "ResNet18_Weights.IMAGENET1K_V1": the enum's name, then the member */
    const char *dot = strchr(name, '.');
    size_t elen = dot ? (size_t)(dot - name) : 0;
    const char *member = dot ? dot + 1 : name;
    for (int i = 0; i < cv_catalog_data_count; i++) {
        const cv_weights_info *w = &cv_catalog_data[i];
        if (arch && strcmp(w->arch, arch)) continue;
        if (dot && (strlen(w->enum_name) != elen || strncmp(w->enum_name, name, elen))) continue;
        if (!dot && !arch) continue; /* a bare member name is ambiguous without the arch */
        if (!strcasecmp(member, "DEFAULT") ? w->is_default : !strcasecmp(member, w->name)) return w;
    }
    return NULL;
}
