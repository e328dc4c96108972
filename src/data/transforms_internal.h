/* Internal to src/data: the parsed form of a pipeline op and the per-sample state it acts on. */
#ifndef CV_DATA_TRANSFORMS_INTERNAL_H
#define CV_DATA_TRANSFORMS_INTERNAL_H

#include "cvision/transforms.h"

typedef enum {
    /* deterministic */
    TF_RESIZE,
    TF_CENTER_CROP,
    TF_CROP,
    TF_PAD,
    TF_TO_TENSOR,
    TF_NORMALIZE,
    TF_CLASSIFICATION,
    TF_GRAYSCALE,
    TF_BRIGHTNESS,
    TF_CONTRAST,
    TF_SATURATION,
    TF_HUE,
    TF_ROTATE,
    TF_AFFINE,
    TF_POSTERIZE,
    TF_SOLARIZE,
    TF_AUTOCONTRAST,
    TF_EQUALIZE,
    TF_SHARPNESS,
    TF_INVERT,
    /* random */
    TF_HFLIP,
    TF_VFLIP,
    TF_RANDOM_GRAYSCALE,
    TF_RRC,
    TF_RANDOM_CROP,
    TF_COLOR_JITTER,
    TF_RANDOM_ROTATION,
    TF_RANDOM_AFFINE,
    TF_AUTOAUGMENT,
    TF_RANDAUGMENT,
    TF_TRIVIALAUGMENT,
    TF_AUGMIX,
    TF_RANDOM_ERASING,
    TF_KIND_COUNT
} tf_kind;

typedef struct {
    tf_kind kind;
    char text[96]; /* the op as written, for messages */
    int h, w, two_sizes, interp, max_size, antialias;
    int nmean; /* normalize: 1 (same for all channels) or 3 */
    float mean[3], std[3];
    double p;               /* probability of applying a random op */
    double a[8];            /* op-specific numbers */
    int n[4];               /* op-specific integers */
    int has_fill, pad_mode; /* pad_mode: 0 constant, 1 edge, 2 reflect, 3 symmetric */
    float fill;
} tf_op;

/* Test-only record of the parameters the random ops draw (tests/tools/tfparams_tool.c), in the
 * order they are drawn; see tf_ops.c for each op's layout. */
typedef struct {
    double v[256];
    int n;
} tf_trace;

/* A sample is a uint8 image until to_tensor, then float planes in [0, 1]. */
typedef struct {
    cv_image *img;
    cv_planes *pl;
    tf_trace *trace; /* NULL except in tests */
} tf_sample;

/* Applies every op of pipe to (a copy of) img with the sample seed, recording drawn parameters. */
cv_status tf_pipeline_trace(cv_ctx *ctx, const cv_transform_pipeline *pipe, const cv_image *img,
                            uint64_t seed, tf_trace *trace);

/* Resizes the region [x0, x1) x [y0, y1) of `in` (fractional pixel coordinates) to w x h with
 * Pillow's resampling, taps confined to the region's whole-pixel hull: an integer box is exactly
 * crop-then-resize (resample.c). */
cv_status tf_resize_box(cv_ctx *ctx, const cv_image *in, double x0, double y0, double x1, double y1,
                        int w, int h, cv_interp interp, cv_image **out);

/* RandomResizedCrop.get_params on an H x W image: the crop's top, left, height and width. */
void tf_rrc_params(const tf_op *op, int H, int W, cv_rng *rng, int *top, int *left, int *ch,
                   int *cw);

cv_status tf_apply_op(cv_ctx *ctx, const tf_op *op, tf_sample *smp, cv_rng *rng);
cv_status tf_to_planes(cv_ctx *ctx, tf_sample *smp);
int tf_op_is_random(const tf_op *op);

#endif
