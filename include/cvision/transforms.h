/* Image transforms with torchvision 0.14's semantics.
 *
 * Two representations, as in torchvision:
 *  - cv_image (uint8 HWC): resizing follows Pillow's Resample.c bit for bit (torchvision's PIL
 *    path); the other ops follow torchvision's tensor ops on uint8 tensors (compute in float, then
 *    truncate or round back to uint8 exactly where torchvision does).
 *  - float CHW planes (c x h x w floats): torchvision's tensor ops on float tensors.
 * Pipelines (a short string, see docs/transforms.md) chain them with per-sample random state. */
#ifndef CVISION_TRANSFORMS_H
#define CVISION_TRANSFORMS_H

#include "cvision/core.h"
#include "cvision/image.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    CV_INTERP_NEAREST = 0,
    CV_INTERP_BILINEAR,
    CV_INTERP_BICUBIC,
    CV_INTERP_BOX,
    CV_INTERP_HAMMING,
    CV_INTERP_LANCZOS,
} cv_interp;

/* "nearest", "bilinear", "bicubic", "box", "hamming", "lanczos" -> enum; -1 if unknown. */
int cv_interp_from_name(const char *name);
const char *cv_interp_name(cv_interp interp);

/* ---- counter-based random numbers: a sample's stream depends only on (seed, stream) ---- */
typedef struct cv_rng {
    uint64_t state;
} cv_rng;

void cv_rng_init(cv_rng *rng, uint64_t seed, uint64_t stream);
uint64_t cv_rng_next(cv_rng *rng);
double cv_rng_uniform(cv_rng *rng);                          /* [0, 1) with 53 random bits */
double cv_rng_range(cv_rng *rng, double lo, double hi);      /* U[lo, hi) */
int64_t cv_rng_randint(cv_rng *rng, int64_t lo, int64_t hi); /* [lo, hi), unbiased */
double cv_rng_normal(cv_rng *rng);
double cv_rng_gamma(cv_rng *rng, double shape);
double cv_rng_beta(cv_rng *rng, double a, double b);

/* ---- uint8 images: Pillow-exact geometry ---- */

/* Image.resize((w, h), filter) exactly: Pillow's separable fixed-point resampling (antialiased,
 * support scaled by the downscale factor) or its nearest-neighbour scaling. */
cv_status cv_image_resize(cv_ctx *ctx, const cv_image *in, int w, int h, cv_interp interp,
                          cv_image **out);
/* torchvision's Resize(size) output size for an int size: shorter side -> size, longer side ->
 * int(size * long / short); max_size (0 = none) caps the longer side as torchvision does. */
void cv_resize_output_size(int w, int h, int size, int max_size, int *ow, int *oh);
/* A crop at (top, left) of size h x w; parts outside the image are zero (as F.crop pads). */
cv_status cv_image_crop(cv_ctx *ctx, const cv_image *in, int top, int left, int h, int w,
                        cv_image **out);
/* torchvision's center_crop: zero padding when the crop is larger, round-half-even offsets. */
cv_status cv_image_center_crop(cv_ctx *ctx, const cv_image *in, int h, int w, cv_image **out);
/* Gray -> RGB (replicate) or RGB -> gray (Pillow's L conversion); c = 1 or 3. */
cv_status cv_image_convert(cv_ctx *ctx, const cv_image *in, int c, cv_image **out);

/* torchvision's ImageClassification preset on a PIL image, bit-exact: Resize(resize) with
 * `interpolation` ("bilinear" | "bicubic" | "nearest"), CenterCrop(crop), /255, Normalize(mean,
 * std) in float32. A gray image is treated as its RGB conversion. out_chw holds 3*crop*crop floats.
 */
cv_status cv_preprocess_classification(cv_ctx *ctx, const cv_image *img, int resize, int crop,
                                       const char *interpolation, const float mean[3],
                                       const float std[3], float *out_chw);

/* ---- float CHW planes: torchvision tensor semantics ----
 * A plane set is c x h x w floats, C-contiguous. `bound` is the value range's top (1 for float
 * images, 255 for uint8 data held in floats). */
typedef struct cv_planes {
    int c, h, w;
    float *data;
} cv_planes;

cv_status cv_planes_new(cv_ctx *ctx, int c, int h, int w, cv_planes **out);
void cv_planes_free(cv_planes *p);
/* HWC uint8 -> CHW float divided by `divisor`: 255 for ToTensor, 1 to keep 0..255. */
cv_status cv_planes_from_image(cv_ctx *ctx, const cv_image *img, float divisor, cv_planes **out);

/* ---- pipelines ----
 * A pipeline string is a comma-separated list of ops with optional arguments, e.g.
 * "resize(256),center_crop(224),to_tensor,normalize(imagenet)" or
 * "rrc(224),hflip,randaugment(2,9),to_tensor,normalize(imagenet)". docs/transforms.md lists the
 * ops. Ops before to_tensor work on the uint8 image, ops after it on float CHW in [0, 1]; to_tensor
 * is implied at the end (and before the first op that needs floats). */
typedef struct cv_transform_pipeline cv_transform_pipeline;

/* A malformed string is an error naming the offending token. */
cv_status cv_transform_pipeline_parse(cv_ctx *ctx, const char *spec, cv_transform_pipeline **out);
void cv_transform_pipeline_free(cv_transform_pipeline *pipe);
/* Whether any op draws random numbers. */
int cv_transform_pipeline_is_random(const cv_transform_pipeline *pipe);
/* The evaluation counterpart of a training pipeline, as torchvision's reference scripts pair them:
 * random_resized_crop(s) becomes resize(s / 0.875), center_crop(s) (256 for 224), random_crop(s)
 * becomes center_crop(s), the other random ops are dropped and the deterministic ones kept as
 * written. Written into out (n bytes); too long a result is an error. */
cv_status cv_transform_pipeline_eval_spec(cv_ctx *ctx, const cv_transform_pipeline *train,
                                          char *out, size_t n);
/* Applies the pipeline to one image; the result is a new float32 tensor [C, H, W]. All randomness
 * comes from a generator seeded with `seed` alone: use a per-sample seed (e.g. from
 * cv_transform_sample_seed) to get the same augmentation whatever the thread count. */
cv_status cv_transform_apply(cv_ctx *ctx, const cv_transform_pipeline *pipe, const cv_image *img,
                             uint64_t seed, cv_tensor **out);
/* As cv_transform_apply, but writes the result into out_chw (c x h x w floats); a result of another
 * shape is an error. */
cv_status cv_transform_apply_into(cv_ctx *ctx, const cv_transform_pipeline *pipe,
                                  const cv_image *img, uint64_t seed, float *out_chw, int c, int h,
                                  int w);
/* The pipeline applied to an encoded image file (decoded as RGB). When the pipeline starts with
 * rrc and the file is a JPEG, the crop is drawn from the header's size (the same crop as after a
 * full decode) and only the crop's rows and columns are decoded, at the smallest DCT scale n/8
 * whose scaled crop still covers the rrc output in both directions, then resampled from the scaled
 * crop's (fractional) box: fast, but not pixel-identical to decode-then-transform. Any other
 * pipeline or file gives exactly cv_image_decode + cv_transform_apply_into. */
cv_status cv_transform_apply_encoded(cv_ctx *ctx, const cv_transform_pipeline *pipe,
                                     const void *buf, size_t n, const char *name, uint64_t seed,
                                     float *out_chw, int c, int h, int w);
/* A sample's seed from the run's seed, the epoch and the sample index (a hash, not a sum). */
uint64_t cv_transform_sample_seed(uint64_t seed, uint64_t epoch, uint64_t index);

/* ---- batch-level mixing (torchvision.transforms.v2 MixUp / CutMix) ----
 * x: float32 [N, C, H, W], mixed in place with its partner batch x.roll(1, 0) (sample i with
 * sample i-1, sample 0 with N-1); labels: N class indices in [0, num_classes). targets receives a
 * new float32 [N, num_classes] tensor of mixed one-hot labels. lam ~ Beta(alpha, alpha) from
 * `seed`. MixUp: x = lam x + (1 - lam) partner. CutMix: a box of area ~ (1 - lam) around a uniform
 * centre is pasted from the partner; the labels use the box's actual area. *lam_out (may be NULL)
 * receives the label weight of the sample's own class. */
cv_status cv_mixup(cv_ctx *ctx, cv_tensor *x, const int64_t *labels, int num_classes, double alpha,
                   uint64_t seed, cv_tensor **targets, double *lam_out);
cv_status cv_cutmix(cv_ctx *ctx, cv_tensor *x, const int64_t *labels, int num_classes, double alpha,
                    uint64_t seed, cv_tensor **targets, double *lam_out);

#ifdef __cplusplus
}
#endif
#endif
