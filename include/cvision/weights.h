/* Weight files: torch.save checkpoints (zip and legacy pre-1.6 formats, training checkpoints that
 * wrap a state_dict), safetensors (read and write), the torch.hub cache and downloads, and the
 * catalog of torchvision's pretrained ImageNet weights.
 *
 * Reading never executes anything: the pickle inside a .pth is interpreted by a small machine that
 * knows only what a state_dict needs, and refuses files that reference code (os.system, eval...).
 */
#ifndef CVISION_WEIGHTS_H
#define CVISION_WEIGHTS_H

#include <stddef.h>

#include "cvision/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Reads a weights file of any supported format (sniffed from its bytes) into a new cv_state:
 * names in file order, tensors C-contiguous in their stored dtype (0-dim tensors such as
 * num_batches_tracked have ndim 0). Module versions from a .pth's `_metadata` become meta keys
 * "version:<module path>" (the root module is "version:"); safetensors' __metadata__ is copied. */
cv_status cv_weights_load(cv_ctx *ctx, const char *path, cv_state **out);

/* As cv_weights_load, choosing which state_dict of a training checkpoint to read: NULL picks the
 * file's top-level state_dict, else its 'model' (torchvision references), 'state_dict' (timm) or
 * 'model_state_dict' entry. Any other key may be named, e.g. "model_ema" or "state_dict_ema";
 * for "model_ema" (a torch.optim.swa_utils.AveragedModel) the "module." prefix is removed and
 * "n_averaged" dropped, giving the plain model's names. */
cv_status cv_weights_load_entry(cv_ctx *ctx, const char *path, const char *entry, cv_state **out);

/* The same on bytes in memory; `name` is used in messages. */
cv_status cv_weights_load_mem(cv_ctx *ctx, const char *name, const void *data, size_t size,
                              const char *entry, cv_state **out);

/* Writes st as safetensors, atomically (a temporary file, fsync, rename). Tensor data is laid out
 * as the reference writer does (by descending dtype alignment, then name); the header lists the
 * tensors in st's order and st's metadata as __metadata__. */
cv_status cv_safetensors_save(cv_ctx *ctx, const cv_state *st, const char *path);

/* ---- torch.hub cache and downloads ---- */

/* Lowercase hex SHA-256 of a file's contents. */
cv_status cv_sha256_file(cv_ctx *ctx, const char *path, char hex[65]);

/* The hash prefix torch.hub checks, from a file name (regex `-([a-f0-9]*)\.`, first match):
 * "resnet18-f37072fd.pth" -> "f37072fd". Returns 0 and "" when the name has none. */
int cv_hash_prefix(const char *file_name, char *buf, size_t n);

/* $TORCH_HOME/hub, else $XDG_CACHE_HOME/torch/hub, else ~/.cache/torch/hub. */
cv_status cv_hub_dir(cv_ctx *ctx, char *buf, size_t n);

/* The local path of a weights URL: <hub>/checkpoints/<file_name> (file_name NULL: the URL's last
 * path component). An existing file is used as is; otherwise it is downloaded to a .partial file
 * and renamed into place. Either way its SHA-256 must start with the prefix in the file name.
 * When the download fails the message says which URL to put at which path. */
cv_status cv_weights_fetch(cv_ctx *ctx, const char *url, const char *file_name, char *path_out,
                           size_t n);

/* ---- the catalog of torchvision's ImageNet-1K classification weights ---- */
typedef struct cv_weights_info {
    const char *arch;      /* builder name, "resnet50" */
    const char *enum_name; /* "ResNet50_Weights" */
    const char *name;      /* "IMAGENET1K_V2" */
    const char *url;
    const char *file;          /* "resnet50-11ad3fa6.pth" */
    const char *sha256_prefix; /* "11ad3fa6", "" when the file name carries none */
    double acc1, acc5; /* ImageNet-1K top-1/top-5 accuracy in percent, NAN when not published */
    double gflops;     /* torchvision's `_ops` (GMACs, documented as GFLOPS) */
    double file_mib;   /* file size in MiB */
    long long num_params;
    int resize, crop;          /* eval transform: resize shorter side, then center crop */
    const char *interpolation; /* "bilinear" or "bicubic" */
    float mean[3], std[3];
    int min_h, min_w; /* smallest input the model accepts */
    int is_default;   /* the entry torchvision's DEFAULT alias points at */
} cv_weights_info;

int cv_catalog_count(void);
const cv_weights_info *cv_catalog_entry(int i);
/* Looks up arch's weights by "IMAGENET1K_V1", "DEFAULT" or "ResNet18_Weights.IMAGENET1K_V1"
 * (arch may be NULL with the full form). NULL if there is no such entry. */
const cv_weights_info *cv_catalog_find(const char *arch, const char *name);
/* The 1000 ImageNet category names in class-index order (NULL-terminated). */
const char *const *cv_imagenet_categories(void);

#ifdef __cplusplus
}
#endif
#endif
