/* Applying one parsed pipeline op to a sample, with torchvision's parameter sampling.
 *
 * Parameter layout in tf_op (set by pipeline.c):
 *   crop: n = {top, left}, h, w          pad: n = {l, t, r, b}, pad_mode, fill
 *   grayscale / random_grayscale: n[0] = output channels (0 = same as input)
 *   brightness..sharpness: a[0] = factor  posterize: n[0] = bits  solarize: a[0] = threshold
 *   rotate: a[0] = angle, n[0] = expand   affine: a = {angle, tx, ty, scale, shear_x, shear_y}
 *   rrc: h, w, a = {scale lo, hi, ratio lo, hi}
 *   random_crop: h, w, n = {padding, pad_if_needed}, pad_mode, fill
 *   color_jitter: a = {b, c, s, h}       random_rotation: a = {lo, hi}, n[0] = expand
 *   random_affine: a = {deg lo, hi, translate x, y, scale lo, hi, shear lo, hi}, n[0] = has scale
 *   randaugment: n = {num_ops, magnitude, bins}   trivialaugment: n[0] = bins
 *   augmix: n = {severity, width, depth}, a[0] = alpha
 *   random_erasing: a = {scale lo, hi, ratio lo, hi}, n[0] = random value, fill = value
 *
 * Traced parameters (tf_trace, tests only), per op in draw order:
 *   color_jitter: order[4], brightness, contrast, saturation, hue factors
 *   random_affine: angle, tx, ty, scale, shear_x
 *   random_erasing: applied (0/1), then if erased: h, w, top, left
 *   autoaugment: policy, then per sub-policy op: applied (0/1), signed magnitude
 *   randaugment / trivialaugment: per op: op index, bin, signed magnitude
 *   augmix: m0, chain weights[width], then per chain: depth, then per op: index, bin, magnitude */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/tf_kernels.h"
#include "data/transforms_internal.h"

static void trace(tf_sample *smp, double v)
{
    if (smp->trace && smp->trace->n < (int)(sizeof smp->trace->v / sizeof *smp->trace->v))
        smp->trace->v[smp->trace->n++] = v;
}

int tf_op_is_random(const tf_op *op)
{
    return op->kind >= TF_HFLIP;
}

cv_status tf_to_planes(cv_ctx *ctx, tf_sample *smp)
{
    if (!smp->img) return CV_OK;
    cv_status s = cv_planes_from_image(ctx, smp->img, 255.0f, &smp->pl);
    if (s) return s;
    cv_image_free(smp->img);
    smp->img = NULL;
    return CV_OK;
}

/* The sample as planes to work on: the float planes, or the image's uint8 values as floats. */
static cv_status get_planes(cv_ctx *ctx, tf_sample *smp, cv_planes **pl, int *u8)
{
    *u8 = smp->img != NULL;
    if (!*u8) {
        *pl = smp->pl;
        return CV_OK;
    }
    return cv_planes_from_image(ctx, smp->img, 1.0f, pl);
}

/* Stores `pl` back into the sample (as an image again if it came from one). */
static cv_status put_planes(cv_ctx *ctx, tf_sample *smp, cv_planes *pl, int u8)
{
    if (!u8) {
        if (smp->pl != pl) cv_planes_free(smp->pl);
        smp->pl = pl;
        return CV_OK;
    }
    cv_image *img;
    cv_status s = cv_image_new(ctx, pl->w, pl->h, pl->c, &img);
    if (!s) {
        size_t n = (size_t)pl->h * pl->w;
        for (int c = 0; c < pl->c; c++)
            for (size_t i = 0; i < n; i++) {
                float v = pl->data[c * n + i];
                img->data[i * pl->c + c] = (uint8_t)(v <= 0 ? 0 : v >= 255 ? 255 : v);
            }
        cv_image_free(smp->img);
        smp->img = img;
    }
    cv_planes_free(pl);
    return s;
}

static void drop_planes(tf_sample *smp, cv_planes *pl, int u8)
{
    if (u8 || pl != smp->pl) cv_planes_free(pl);
}

/* Replaces the sample with `out`, computed from `in` as get_planes returned it. */
static cv_status replace(cv_ctx *ctx, tf_sample *smp, cv_planes *in, cv_planes *out, int u8)
{
    cv_planes_free(in); /* the temporary, or the sample's own planes */
    if (!u8) smp->pl = NULL;
    return put_planes(ctx, smp, out, u8);
}

static int center_offset(int size, int crop)
{
    if (crop > size) return -((crop - size) / 2);
    return (int)nearbyint((size - crop) / 2.0);
}

/* ---- geometry shared by both representations ---- */

static cv_status do_crop(cv_ctx *ctx, tf_sample *smp, int top, int left, int h, int w)
{
    if (smp->img) {
        cv_image *img;
        cv_status s = cv_image_crop(ctx, smp->img, top, left, h, w, &img);
        if (!s) {
            cv_image_free(smp->img);
            smp->img = img;
        }
        return s;
    }
    cv_planes *pl;
    cv_status s = tfk_crop(ctx, smp->pl, top, left, h, w, &pl);
    if (!s) {
        cv_planes_free(smp->pl);
        smp->pl = pl;
    }
    return s;
}

/* Images resize with Pillow's filters (always antialiased), planes with interpolate(). */
static cv_status do_resize(cv_ctx *ctx, tf_sample *smp, int oh, int ow, int interp, int antialias)
{
    if (smp->img) {
        cv_image *img;
        cv_status s = cv_image_resize(ctx, smp->img, ow, oh, (cv_interp)interp, &img);
        if (!s) {
            cv_image_free(smp->img);
            smp->img = img;
        }
        return s;
    }
    cv_planes *pl;
    cv_status s = tfk_resize(ctx, smp->pl, oh, ow, (cv_interp)interp, antialias, 0, &pl);
    if (!s) {
        cv_planes_free(smp->pl);
        smp->pl = pl;
    }
    return s;
}

static void sample_dims(const tf_sample *smp, int *c, int *h, int *w)
{
    *c = smp->img ? smp->img->c : smp->pl->c;
    *h = smp->img ? smp->img->h : smp->pl->h;
    *w = smp->img ? smp->img->w : smp->pl->w;
}

static cv_status do_flip(cv_ctx *ctx, tf_sample *smp, int horizontal)
{
    cv_planes *pl;
    int u8;
    cv_status s = get_planes(ctx, smp, &pl, &u8);
    if (s) return s;
    if (horizontal)
        tfk_hflip(pl);
    else
        tfk_vflip(pl);
    return put_planes(ctx, smp, pl, u8);
}

static cv_status do_pad(cv_ctx *ctx, tf_sample *smp, const int pad[4], int mode, float fill)
{
    cv_planes *pl, *out;
    int u8;
    cv_status s = get_planes(ctx, smp, &pl, &u8);
    if (s) return s;
    s = tfk_pad(ctx, pl, pad, mode, fill, &out);
    if (s) {
        drop_planes(smp, pl, u8);
        return s;
    }
    return replace(ctx, smp, pl, out, u8);
}

/* F.affine / F.rotate on tensors; center NULL = the image centre. */
static cv_status do_affine(cv_ctx *ctx, tf_sample *smp, double angle, const double translate[2],
                           double scale, const double shear[2], const double *center, int bilinear,
                           int expand, const float *fill_value)
{
    cv_planes *pl, *out;
    int u8;
    cv_status s = get_planes(ctx, smp, &pl, &u8);
    if (s) return s;
    double cf[2] = {0, 0}, m[6];
    if (center) {
        cf[0] = center[0] - pl->w * 0.5;
        cf[1] = center[1] - pl->h * 0.5;
    }
    tfk_inverse_affine(cf, angle, translate, scale, shear, m);
    int ow = pl->w, oh = pl->h;
    if (expand) tfk_affine_output_size(m, pl->w, pl->h, &ow, &oh);
    float fill[3];
    for (int c = 0; c < 3; c++) fill[c] = fill_value ? *fill_value : 0;
    if (ow <= 0 || oh <= 0)
        s = cv_fail(ctx, CV_ERR_INVALID, "affine: empty output");
    else
        s = tfk_affine(ctx, pl, m, ow, oh, bilinear, fill_value ? fill : NULL, u8, &out);
    if (s) {
        drop_planes(smp, pl, u8);
        return s;
    }
    return replace(ctx, smp, pl, out, u8);
}

static cv_status do_rotate(cv_ctx *ctx, tf_sample *smp, double angle, int bilinear, int expand,
                           const float *fill)
{
    const double zero[2] = {0, 0};
    return do_affine(ctx, smp, -angle, zero, 1.0, zero, NULL, bilinear, expand, fill);
}

/* The colour ops by name, as torchvision's _apply_op uses them. */
typedef enum {
    CO_BRIGHTNESS,
    CO_CONTRAST,
    CO_SATURATION,
    CO_HUE,
    CO_POSTERIZE,
    CO_SOLARIZE,
    CO_AUTOCONTRAST,
    CO_EQUALIZE,
    CO_SHARPNESS,
    CO_INVERT,
    CO_GRAYSCALE
} color_op;

static cv_status do_color(cv_ctx *ctx, tf_sample *smp, color_op op, double v, int out_c)
{
    cv_planes *pl, *g = NULL;
    int u8;
    cv_status s = get_planes(ctx, smp, &pl, &u8);
    if (s) return s;
    switch (op) {
    case CO_BRIGHTNESS:
        tfk_brightness(pl, v, u8);
        break;
    case CO_CONTRAST:
        tfk_contrast(pl, v, u8);
        break;
    case CO_SATURATION:
        s = tfk_saturation(ctx, pl, v, u8);
        break;
    case CO_HUE:
        tfk_hue(pl, v, u8);
        break;
    case CO_POSTERIZE:
        tfk_posterize(pl, (int)v);
        break;
    case CO_SOLARIZE:
        tfk_solarize(pl, v, u8);
        break;
    case CO_AUTOCONTRAST:
        tfk_autocontrast(pl, u8);
        break;
    case CO_EQUALIZE:
        tfk_equalize(pl);
        break;
    case CO_SHARPNESS:
        s = tfk_sharpness(ctx, pl, v, u8);
        break;
    case CO_INVERT:
        tfk_invert(pl, u8);
        break;
    case CO_GRAYSCALE:
        s = tfk_grayscale(ctx, pl, out_c ? out_c : pl->c, u8, &g);
        if (s) break;
        return replace(ctx, smp, pl, g, u8);
    }
    if (s) {
        drop_planes(smp, pl, u8);
        return s;
    }
    return put_planes(ctx, smp, pl, u8);
}

/* ---- AutoAugment family (torchvision/transforms/autoaugment.py) ---- */

typedef enum {
    AA_IDENTITY,
    AA_SHEARX,
    AA_SHEARY,
    AA_TRANSLATEX,
    AA_TRANSLATEY,
    AA_ROTATE,
    AA_BRIGHTNESS,
    AA_COLOR,
    AA_CONTRAST,
    AA_SHARPNESS,
    AA_POSTERIZE,
    AA_SOLARIZE,
    AA_AUTOCONTRAST,
    AA_EQUALIZE,
    AA_INVERT
} aa_op;

static cv_status aa_apply(cv_ctx *ctx, tf_sample *smp, aa_op op, double mag)
{
    const double zero[2] = {0, 0}, origin[2] = {0, 0};
    switch (op) {
    case AA_IDENTITY:
        return CV_OK;
    case AA_SHEARX:
    case AA_SHEARY: {
        double deg = atan(mag) * 180.0 / M_PI,
               shear[2] = {op == AA_SHEARX ? deg : 0.0, op == AA_SHEARY ? deg : 0.0};
        return do_affine(ctx, smp, 0.0, zero, 1.0, shear, origin, 0, 0, NULL);
    }
    case AA_TRANSLATEX:
    case AA_TRANSLATEY: {
        double t[2] = {op == AA_TRANSLATEX ? (double)(int)mag : 0,
                       op == AA_TRANSLATEY ? (double)(int)mag : 0};
        return do_affine(ctx, smp, 0.0, t, 1.0, zero, NULL, 0, 0, NULL);
    }
    case AA_ROTATE:
        return do_rotate(ctx, smp, mag, 0, 0, NULL);
    case AA_BRIGHTNESS:
        return do_color(ctx, smp, CO_BRIGHTNESS, 1.0 + mag, 0);
    case AA_COLOR:
        return do_color(ctx, smp, CO_SATURATION, 1.0 + mag, 0);
    case AA_CONTRAST:
        return do_color(ctx, smp, CO_CONTRAST, 1.0 + mag, 0);
    case AA_SHARPNESS:
        return do_color(ctx, smp, CO_SHARPNESS, 1.0 + mag, 0);
    case AA_POSTERIZE:
        return do_color(ctx, smp, CO_POSTERIZE, (double)(int)mag, 0);
    case AA_SOLARIZE:
        return do_color(ctx, smp, CO_SOLARIZE, mag, 0);
    case AA_AUTOCONTRAST:
        return do_color(ctx, smp, CO_AUTOCONTRAST, 0, 0);
    case AA_EQUALIZE:
        return do_color(ctx, smp, CO_EQUALIZE, 0, 0);
    case AA_INVERT:
        return do_color(ctx, smp, CO_INVERT, 0, 0);
    }
    return CV_OK;
}

typedef enum { SPACE_AUTOAUGMENT, SPACE_RANDAUGMENT, SPACE_WIDE, SPACE_AUGMIX } aa_space;

/* Magnitude of bin `bin` of `bins` for an op in a space, and whether it is signed; the magnitude
 * tables are float32 (torch.linspace / arange), as in torchvision. */
static double aa_magnitude(aa_space sp, aa_op op, int bin, int bins, int h, int w, int *is_signed)
{
    int wide = sp == SPACE_WIDE;
    *is_signed = 1;
    switch (op) {
    case AA_SHEARX:
    case AA_SHEARY:
        return tfk_linspace(0.0f, wide ? 0.99f : 0.3f, bins, bin);
    case AA_TRANSLATEX:
    case AA_TRANSLATEY: {
        int size = op == AA_TRANSLATEX ? w : h;
        float end = wide                 ? 32.0f
                    : sp == SPACE_AUGMIX ? (float)(size / 3.0)
                                         : (float)(150.0 / 331.0 * size);
        return tfk_linspace(0.0f, end, bins, bin);
    }
    case AA_ROTATE:
        return tfk_linspace(0.0f, wide ? 135.0f : 30.0f, bins, bin);
    case AA_BRIGHTNESS:
    case AA_COLOR:
    case AA_CONTRAST:
    case AA_SHARPNESS:
        return tfk_linspace(0.0f, wide ? 0.99f : 0.9f, bins, bin);
    case AA_POSTERIZE: {
        *is_signed = 0;
        float div = (float)((bins - 1) / (wide ? 6.0 : 4.0));
        return (sp == SPACE_AUGMIX ? 4 : 8) - (int)nearbyintf((float)bin / div);
    }
    case AA_SOLARIZE:
        *is_signed = 0;
        return tfk_linspace(255.0f, 0.0f, bins, bin);
    default:
        *is_signed = 0;
        return 0.0;
    }
}

/* AutoAugmentPolicy.IMAGENET: 25 sub-policies of two (op, probability, magnitude bin or -1). */
static const struct {
    aa_op op;
    float p;
    int bin;
} imagenet_policy[25][2] = {
    {{AA_POSTERIZE, 0.4f, 8}, {AA_ROTATE, 0.6f, 9}},
    {{AA_SOLARIZE, 0.6f, 5}, {AA_AUTOCONTRAST, 0.6f, -1}},
    {{AA_EQUALIZE, 0.8f, -1}, {AA_EQUALIZE, 0.6f, -1}},
    {{AA_POSTERIZE, 0.6f, 7}, {AA_POSTERIZE, 0.6f, 6}},
    {{AA_EQUALIZE, 0.4f, -1}, {AA_SOLARIZE, 0.2f, 4}},
    {{AA_EQUALIZE, 0.4f, -1}, {AA_ROTATE, 0.8f, 8}},
    {{AA_SOLARIZE, 0.6f, 3}, {AA_EQUALIZE, 0.6f, -1}},
    {{AA_POSTERIZE, 0.8f, 5}, {AA_EQUALIZE, 1.0f, -1}},
    {{AA_ROTATE, 0.2f, 3}, {AA_SOLARIZE, 0.6f, 8}},
    {{AA_EQUALIZE, 0.6f, -1}, {AA_POSTERIZE, 0.4f, 6}},
    {{AA_ROTATE, 0.8f, 8}, {AA_COLOR, 0.4f, 0}},
    {{AA_ROTATE, 0.4f, 9}, {AA_EQUALIZE, 0.6f, -1}},
    {{AA_EQUALIZE, 0.0f, -1}, {AA_EQUALIZE, 0.8f, -1}},
    {{AA_INVERT, 0.6f, -1}, {AA_EQUALIZE, 1.0f, -1}},
    {{AA_COLOR, 0.6f, 4}, {AA_CONTRAST, 1.0f, 8}},
    {{AA_ROTATE, 0.8f, 8}, {AA_COLOR, 1.0f, 2}},
    {{AA_COLOR, 0.8f, 8}, {AA_SOLARIZE, 0.8f, 7}},
    {{AA_SHARPNESS, 0.4f, 7}, {AA_INVERT, 0.6f, -1}},
    {{AA_SHEARX, 0.6f, 5}, {AA_EQUALIZE, 1.0f, -1}},
    {{AA_COLOR, 0.4f, 0}, {AA_EQUALIZE, 0.6f, -1}},
    {{AA_EQUALIZE, 0.4f, -1}, {AA_SOLARIZE, 0.2f, 4}},
    {{AA_SOLARIZE, 0.6f, 5}, {AA_AUTOCONTRAST, 0.6f, -1}},
    {{AA_INVERT, 0.6f, -1}, {AA_EQUALIZE, 1.0f, -1}},
    {{AA_COLOR, 0.6f, 4}, {AA_CONTRAST, 1.0f, 8}},
    {{AA_EQUALIZE, 0.8f, -1}, {AA_EQUALIZE, 0.6f, -1}},
};

/* Op lists in the order of torchvision's _augmentation_space dicts. */
static const aa_op randaugment_ops[] = {AA_IDENTITY,     AA_SHEARX,    AA_SHEARY,     AA_TRANSLATEX,
                                        AA_TRANSLATEY,   AA_ROTATE,    AA_BRIGHTNESS, AA_COLOR,
                                        AA_CONTRAST,     AA_SHARPNESS, AA_POSTERIZE,  AA_SOLARIZE,
                                        AA_AUTOCONTRAST, AA_EQUALIZE};
static const aa_op augmix_ops[] = {AA_SHEARX,   AA_SHEARY,     AA_TRANSLATEX, AA_TRANSLATEY,
                                   AA_ROTATE,   AA_POSTERIZE,  AA_SOLARIZE,   AA_AUTOCONTRAST,
                                   AA_EQUALIZE, AA_BRIGHTNESS, AA_COLOR,      AA_CONTRAST,
                                   AA_SHARPNESS};

static cv_status autoaugment(cv_ctx *ctx, tf_sample *smp, cv_rng *rng)
{
    int c, h, w;
    sample_dims(smp, &c, &h, &w);
    int id = (int)cv_rng_randint(rng, 0, 25);
    double probs[2] = {cv_rng_uniform(rng), cv_rng_uniform(rng)};
    int signs[2] = {(int)cv_rng_randint(rng, 0, 2), (int)cv_rng_randint(rng, 0, 2)};
    trace(smp, id);
    for (int i = 0; i < 2; i++) {
        int on = probs[i] <= imagenet_policy[id][i].p;
        trace(smp, on);
        if (!on) continue;
        int sg, bin = imagenet_policy[id][i].bin;
        double mag = aa_magnitude(SPACE_AUTOAUGMENT, imagenet_policy[id][i].op, bin < 0 ? 0 : bin,
                                  10, h, w, &sg);
        if (bin < 0) mag = 0.0;
        if (sg && signs[i] == 0) mag = -mag;
        trace(smp, mag);
        cv_status s = aa_apply(ctx, smp, imagenet_policy[id][i].op, mag);
        if (s) return s;
    }
    return CV_OK;
}

static cv_status randaugment(cv_ctx *ctx, tf_sample *smp, const tf_op *op, cv_rng *rng, int wide)
{
    int c, h, w, nops = wide ? 1 : op->n[0], bins = wide ? op->n[0] : op->n[2];
    sample_dims(smp, &c, &h, &w);
    for (int k = 0; k < nops; k++) {
        int oi = (int)cv_rng_randint(rng, 0, 14);
        aa_op o = randaugment_ops[oi];
        int sg, bin = wide ? (int)cv_rng_randint(rng, 0, bins) : op->n[1];
        double mag = aa_magnitude(wide ? SPACE_WIDE : SPACE_RANDAUGMENT, o, bin, bins, h, w, &sg);
        if (sg && cv_rng_randint(rng, 0, 2)) mag = -mag;
        trace(smp, oi);
        trace(smp, bin);
        trace(smp, mag);
        cv_status s = aa_apply(ctx, smp, o, mag);
        if (s) return s;
    }
    return CV_OK;
}

static cv_status augmix(cv_ctx *ctx, tf_sample *smp, const tf_op *op, cv_rng *rng)
{
    int c, h, w, severity = op->n[0], width = op->n[1], depth = op->n[2];
    double alpha = op->a[0];
    sample_dims(smp, &c, &h, &w);
    /* m ~ Dirichlet(alpha, alpha); chain weights ~ Dirichlet(alpha * width) * m[1] (float32) */
    double g0 = cv_rng_gamma(rng, alpha), g1 = cv_rng_gamma(rng, alpha);
    float m0 = (float)(g0 / (g0 + g1)), m1 = (float)(g1 / (g0 + g1));
    double gs[16], gsum = 0;
    for (int i = 0; i < width; i++) gsum += gs[i] = cv_rng_gamma(rng, alpha);
    trace(smp, m0);
    for (int i = 0; i < width; i++) trace(smp, (float)(gs[i] / gsum));
    cv_planes *orig, *mix;
    int u8;
    cv_status s = get_planes(ctx, smp, &orig, &u8);
    if (s) return s;
    if ((s = cv_planes_new(ctx, c, h, w, &mix))) {
        drop_planes(smp, orig, u8);
        return s;
    }
    size_t n = (size_t)c * h * w;
    for (size_t i = 0; i < n; i++) mix->data[i] = m0 * orig->data[i];
    for (int k = 0; k < width && !s; k++) {
        /* each chain starts from the original image */
        tf_sample chain = {0};
        if (u8)
            s = cv_image_convert(ctx, smp->img, smp->img->c, &chain.img);
        else if (!(s = cv_planes_new(ctx, c, h, w, &chain.pl)))
            memcpy(chain.pl->data, orig->data, n * sizeof(float));
        int d = depth > 0 ? depth : (int)cv_rng_randint(rng, 1, 4);
        trace(smp, d);
        for (int j = 0; j < d && !s; j++) {
            int oi = (int)cv_rng_randint(rng, 0, 13), sg,
                bin = (int)cv_rng_randint(rng, 0, severity);
            aa_op o = augmix_ops[oi];
            double mag = aa_magnitude(SPACE_AUGMIX, o, bin, 10, h, w, &sg);
            if (sg && cv_rng_randint(rng, 0, 2)) mag = -mag;
            trace(smp, oi);
            trace(smp, bin);
            trace(smp, mag);
            s = aa_apply(ctx, &chain, o, mag);
        }
        float wk = (float)(gs[k] / gsum) * m1;
        if (!s) {
            cv_planes *cp = chain.pl;
            int cu8 = 0;
            if (!(s = get_planes(ctx, &chain, &cp, &cu8))) {
                for (size_t i = 0; i < n; i++) mix->data[i] += wk * cp->data[i];
                drop_planes(&chain, cp, cu8);
            }
        }
        cv_image_free(chain.img);
        cv_planes_free(chain.pl);
    }
    if (s) {
        drop_planes(smp, orig, u8);
        cv_planes_free(mix);
        return s;
    }
    if (u8)
        for (size_t i = 0; i < n; i++) mix->data[i] = (float)(int)mix->data[i]; /* .to(uint8) */
    return replace(ctx, smp, orig, mix, u8);
}

/* ---- the rest of the random ops ---- */

void tf_rrc_params(const tf_op *op, int H, int W, cv_rng *rng, int *top, int *left, int *ch,
                   int *cw)
{
    double area = (double)H * W, lr0 = log(op->a[2]), lr1 = log(op->a[3]);
    for (int t = 0; t < 10; t++) {
        double target = area * cv_rng_range(rng, op->a[0], op->a[1]);
        double aspect = exp(cv_rng_range(rng, lr0, lr1));
        int w = (int)nearbyint(sqrt(target * aspect)), h = (int)nearbyint(sqrt(target / aspect));
        if (0 < w && w <= W && 0 < h && h <= H) {
            *top = (int)cv_rng_randint(rng, 0, H - h + 1);
            *left = (int)cv_rng_randint(rng, 0, W - w + 1);
            *ch = h;
            *cw = w;
            return;
        }
    }
    /* central crop clamped to the ratio range */
    int w = W, h = H;
    double in_ratio = (double)W / H;
    if (in_ratio < op->a[2])
        h = (int)nearbyint(w / op->a[2]);
    else if (in_ratio > op->a[3])
        w = (int)nearbyint(h * op->a[3]);
    *top = (H - h) / 2;
    *left = (W - w) / 2;
    *ch = h;
    *cw = w;
}

static cv_status rrc(cv_ctx *ctx, tf_sample *smp, const tf_op *op, cv_rng *rng)
{
    int c, H, W, i, j, h, w;
    sample_dims(smp, &c, &H, &W);
    tf_rrc_params(op, H, W, rng, &i, &j, &h, &w);
    if (smp->img) { /* resampled straight from the crop's box: the same pixels, no copy */
        cv_image *img;
        cv_status s = tf_resize_box(ctx, smp->img, j, i, j + w, i + h, op->w, op->h,
                                    (cv_interp)op->interp, &img);
        if (!s) {
            cv_image_free(smp->img);
            smp->img = img;
        }
        return s;
    }
    cv_status s = do_crop(ctx, smp, i, j, h, w);
    return s ? s : do_resize(ctx, smp, op->h, op->w, op->interp, op->antialias);
}

static cv_status random_crop(cv_ctx *ctx, tf_sample *smp, const tf_op *op, cv_rng *rng)
{
    int c, H, W;
    cv_status s;
    if (op->n[0] > 0) {
        int pad[4] = {op->n[0], op->n[0], op->n[0], op->n[0]};
        if ((s = do_pad(ctx, smp, pad, op->pad_mode, op->fill))) return s;
    }
    sample_dims(smp, &c, &H, &W);
    if (op->n[1] && (W < op->w || H < op->h)) {
        int pw = W < op->w ? op->w - W : 0, ph = H < op->h ? op->h - H : 0;
        int pad[4] = {pw, ph, pw, ph};
        if ((s = do_pad(ctx, smp, pad, op->pad_mode, op->fill))) return s;
        sample_dims(smp, &c, &H, &W);
    }
    if (H < op->h || W < op->w)
        return cv_fail(ctx, CV_ERR_INVALID, "crop size %dx%d is larger than the %dx%d image", op->h,
                       op->w, H, W);
    int i = 0, j = 0;
    if (!(H == op->h && W == op->w)) {
        i = (int)cv_rng_randint(rng, 0, H - op->h + 1);
        j = (int)cv_rng_randint(rng, 0, W - op->w + 1);
    }
    return do_crop(ctx, smp, i, j, op->h, op->w);
}

static cv_status color_jitter(cv_ctx *ctx, tf_sample *smp, const tf_op *op, cv_rng *rng)
{
    int order[4] = {0, 1, 2, 3};
    for (int k = 3; k > 0; k--) { /* randperm(4) */
        int r = (int)cv_rng_randint(rng, 0, k + 1), t = order[k];
        order[k] = order[r];
        order[r] = t;
    }
    double f[4];
    int on[4];
    for (int k = 0; k < 4; k++) trace(smp, order[k]);
    for (int k = 0; k < 4; k++) {
        double v = op->a[k];
        on[k] = v > 0;
        f[k] = k == 3 ? cv_rng_range(rng, -v, v) : cv_rng_range(rng, fmax(0.0, 1.0 - v), 1.0 + v);
        trace(smp, f[k]);
    }
    static const color_op ops[4] = {CO_BRIGHTNESS, CO_CONTRAST, CO_SATURATION, CO_HUE};
    for (int k = 0; k < 4; k++) {
        int id = order[k];
        if (!on[id]) continue;
        cv_status s = do_color(ctx, smp, ops[id], f[id], 0);
        if (s) return s;
    }
    return CV_OK;
}

static cv_status random_affine(cv_ctx *ctx, tf_sample *smp, const tf_op *op, cv_rng *rng)
{
    int c, H, W;
    sample_dims(smp, &c, &H, &W);
    double angle = cv_rng_range(rng, op->a[0], op->a[1]), t[2] = {0, 0}, scale = 1.0;
    if (op->a[2] > 0 || op->a[3] > 0) {
        double mdx = op->a[2] * W, mdy = op->a[3] * H;
        t[0] = nearbyint(cv_rng_range(rng, -mdx, mdx));
        t[1] = nearbyint(cv_rng_range(rng, -mdy, mdy));
    }
    if (op->n[0]) scale = cv_rng_range(rng, op->a[4], op->a[5]);
    double shear[2] = {0, 0};
    if (op->a[6] != 0 || op->a[7] != 0) shear[0] = cv_rng_range(rng, op->a[6], op->a[7]);
    double drawn[5] = {angle, t[0], t[1], scale, shear[0]};
    for (int k = 0; k < 5; k++) trace(smp, drawn[k]);
    float fill = op->fill;
    return do_affine(ctx, smp, angle, t, scale, shear, NULL, op->interp == CV_INTERP_BILINEAR, 0,
                     &fill);
}

static cv_status random_erasing(cv_ctx *ctx, tf_sample *smp, const tf_op *op, cv_rng *rng)
{
    cv_planes *p = smp->pl;
    double area = (double)p->h * p->w, lr0 = log(op->a[2]), lr1 = log(op->a[3]);
    for (int t = 0; t < 10; t++) {
        double ea = area * cv_rng_range(rng, op->a[0], op->a[1]);
        double aspect = exp(cv_rng_range(rng, lr0, lr1));
        int h = (int)nearbyint(sqrt(ea * aspect)), w = (int)nearbyint(sqrt(ea / aspect));
        if (!(h < p->h && w < p->w)) continue;
        /* torchvision draws the random values before the position */
        float *vals = NULL;
        if (op->n[0]) {
            vals = malloc((size_t)p->c * h * w * sizeof *vals);
            if (!vals) return cv_fail(ctx, CV_ERR_NOMEM, "random_erasing: out of memory");
            for (size_t k = 0; k < (size_t)p->c * h * w; k++) vals[k] = (float)cv_rng_normal(rng);
        }
        int i = (int)cv_rng_randint(rng, 0, p->h - h + 1),
            j = (int)cv_rng_randint(rng, 0, p->w - w + 1);
        double drawn[4] = {h, w, i, j};
        for (int k = 0; k < 4; k++) trace(smp, drawn[k]);
        for (int c = 0; c < p->c; c++)
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++)
                    p->data[((size_t)c * p->h + i + y) * p->w + j + x] =
                        vals ? vals[((size_t)c * h + y) * w + x] : op->fill;
        free(vals);
        return CV_OK;
    }
    return CV_OK;
}

/* ---- dispatch ---- */

static cv_status fail_op(cv_ctx *ctx, const tf_op *op, cv_status s)
{
    return cv_fail(ctx, s, "transform '%s': %s", op->text, cv_ctx_error(ctx));
}

static int needs_image(tf_kind k)
{
    return k == TF_CLASSIFICATION || k == TF_POSTERIZE || k == TF_EQUALIZE || k == TF_AUTOAUGMENT ||
           k == TF_RANDAUGMENT || k == TF_TRIVIALAUGMENT || k == TF_AUGMIX;
}

cv_status tf_apply_op(cv_ctx *ctx, const tf_op *op, tf_sample *smp, cv_rng *rng)
{
    if (needs_image(op->kind) && !smp->img)
        return cv_fail(ctx, CV_ERR_INVALID,
                       "transform '%s': works on uint8 images: put it before to_tensor", op->text);
    if ((op->kind == TF_NORMALIZE || op->kind == TF_RANDOM_ERASING) && smp->img) {
        cv_status s = tf_to_planes(ctx, smp);
        if (s) return s;
    }
    int c, h, w;
    sample_dims(smp, &c, &h, &w);
    cv_status s = CV_OK;
    switch (op->kind) {
    case TF_RESIZE: {
        int ow = op->w, oh = op->h;
        if (!op->two_sizes) cv_resize_output_size(w, h, op->h, op->max_size, &ow, &oh);
        s = do_resize(ctx, smp, oh, ow, op->interp, op->antialias);
        break;
    }
    case TF_CENTER_CROP:
        s = do_crop(ctx, smp, center_offset(h, op->h), center_offset(w, op->w), op->h, op->w);
        break;
    case TF_CROP:
        s = do_crop(ctx, smp, op->n[0], op->n[1], op->h, op->w);
        break;
    case TF_PAD:
        s = do_pad(ctx, smp, op->n, op->pad_mode, op->fill);
        break;
    case TF_TO_TENSOR:
        s = tf_to_planes(ctx, smp);
        break;
    case TF_NORMALIZE: {
        cv_planes *p = smp->pl;
        if (op->nmean == 3 && p->c != 3)
            return cv_fail(ctx, CV_ERR_SHAPE, "transform '%s': the image has %d channel(s), not 3",
                           op->text, p->c);
        size_t n = (size_t)p->h * p->w;
        for (int ch = 0; ch < p->c; ch++) {
            float m = op->mean[op->nmean == 3 ? ch : 0], sd = op->std[op->nmean == 3 ? ch : 0];
            float *d = p->data + ch * n;
            for (size_t i = 0; i < n; i++) d[i] = (d[i] - m) / sd;
        }
        break;
    }
    case TF_CLASSIFICATION: {
        cv_planes *pl;
        if ((s = cv_planes_new(ctx, 3, op->h, op->h, &pl))) break;
        s = cv_preprocess_classification(ctx, smp->img, op->max_size, op->h,
                                         cv_interp_name((cv_interp)op->interp), op->mean, op->std,
                                         pl->data);
        if (s) {
            cv_planes_free(pl);
            break;
        }
        cv_image_free(smp->img);
        smp->img = NULL;
        smp->pl = pl;
        break;
    }
    case TF_GRAYSCALE:
        s = do_color(ctx, smp, CO_GRAYSCALE, 0, op->n[0]);
        break;
    case TF_BRIGHTNESS:
        s = do_color(ctx, smp, CO_BRIGHTNESS, op->a[0], 0);
        break;
    case TF_CONTRAST:
        s = do_color(ctx, smp, CO_CONTRAST, op->a[0], 0);
        break;
    case TF_SATURATION:
        s = do_color(ctx, smp, CO_SATURATION, op->a[0], 0);
        break;
    case TF_HUE:
        s = do_color(ctx, smp, CO_HUE, op->a[0], 0);
        break;
    case TF_POSTERIZE:
        s = do_color(ctx, smp, CO_POSTERIZE, op->n[0], 0);
        break;
    case TF_SOLARIZE:
        s = do_color(ctx, smp, CO_SOLARIZE, op->a[0], 0);
        break;
    case TF_AUTOCONTRAST:
        s = do_color(ctx, smp, CO_AUTOCONTRAST, 0, 0);
        break;
    case TF_EQUALIZE:
        s = do_color(ctx, smp, CO_EQUALIZE, 0, 0);
        break;
    case TF_SHARPNESS:
        s = do_color(ctx, smp, CO_SHARPNESS, op->a[0], 0);
        break;
    case TF_INVERT:
        s = do_color(ctx, smp, CO_INVERT, 0, 0);
        break;
    case TF_ROTATE:
        s = do_rotate(ctx, smp, op->a[0], op->interp == CV_INTERP_BILINEAR, op->n[0],
                      op->has_fill ? &op->fill : NULL);
        break;
    case TF_AFFINE: {
        double t[2] = {op->a[1], op->a[2]}, sh[2] = {op->a[4], op->a[5]};
        s = do_affine(ctx, smp, op->a[0], t, op->a[3], sh, NULL, op->interp == CV_INTERP_BILINEAR,
                      0, op->has_fill ? &op->fill : NULL);
        break;
    }
    case TF_HFLIP:
    case TF_VFLIP:
        if (cv_rng_uniform(rng) < op->p) s = do_flip(ctx, smp, op->kind == TF_HFLIP);
        break;
    case TF_RANDOM_GRAYSCALE:
        if (cv_rng_uniform(rng) < op->p) s = do_color(ctx, smp, CO_GRAYSCALE, 0, c);
        break;
    case TF_RRC:
        s = rrc(ctx, smp, op, rng);
        break;
    case TF_RANDOM_CROP:
        s = random_crop(ctx, smp, op, rng);
        break;
    case TF_COLOR_JITTER:
        s = color_jitter(ctx, smp, op, rng);
        break;
    case TF_RANDOM_ROTATION: {
        float fill = op->fill;
        double angle = cv_rng_range(rng, op->a[0], op->a[1]);
        s = do_rotate(ctx, smp, angle, op->interp == CV_INTERP_BILINEAR, op->n[0], &fill);
        break;
    }
    case TF_RANDOM_AFFINE:
        s = random_affine(ctx, smp, op, rng);
        break;
    case TF_AUTOAUGMENT:
        s = autoaugment(ctx, smp, rng);
        break;
    case TF_RANDAUGMENT:
        s = randaugment(ctx, smp, op, rng, 0);
        break;
    case TF_TRIVIALAUGMENT:
        s = randaugment(ctx, smp, op, rng, 1);
        break;
    case TF_AUGMIX:
        s = augmix(ctx, smp, op, rng);
        break;
    case TF_RANDOM_ERASING: {
        int on = cv_rng_uniform(rng) < op->p;
        trace(smp, on);
        if (on) s = random_erasing(ctx, smp, op, rng);
        break;
    }
    default:
        return cv_fail(ctx, CV_ERR_INTERNAL, "transform '%s': op not implemented", op->text);
    }
    return s ? fail_op(ctx, op, s) : CV_OK;
}
