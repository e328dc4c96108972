/* Transform pipelines: parsing "op(args),op,..." strings and applying them per sample. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cvision/transforms.h"
#include "data/image_internal.h"
#include "data/transforms_internal.h"

#define MAX_ARGS 12

typedef struct {
    char key[24]; /* "" for a positional argument */
    char val[64];
} targ;

typedef struct {
    const char *text; /* the whole token, for messages */
    char name[32];
    int nargs;
    targ args[MAX_ARGS];
} token;

struct cv_transform_pipeline {
    int nops;
    tf_op *ops;
};

/* ---- argument helpers ---- */

static cv_status arg_error(cv_ctx *ctx, const token *t, const char *what)
{
    return cv_fail(ctx, CV_ERR_INVALID, "transform '%s': %s", t->text, what);
}

static const targ *named(const token *t, const char *key)
{
    for (int i = 0; i < t->nargs; i++)
        if (!strcmp(t->args[i].key, key)) return &t->args[i];
    return NULL;
}

/* Positional arguments, not counting an interpolation name (which may sit anywhere). */
static int is_interp_name(const targ *a)
{
    return !a->key[0] && cv_interp_from_name(a->val) >= 0;
}

static const targ *positional(const token *t, int k)
{
    for (int i = 0; i < t->nargs; i++)
        if (!t->args[i].key[0] && !is_interp_name(&t->args[i]) && k-- == 0) return &t->args[i];
    return NULL;
}

static int npositional(const token *t)
{
    int n = 0;
    for (int i = 0; i < t->nargs; i++) n += !t->args[i].key[0] && !is_interp_name(&t->args[i]);
    return n;
}

static int is_number(const char *s)
{
    char *end;
    if (!*s) return 0;
    strtod(s, &end);
    return *end == 0;
}

static int to_double(const char *s, double *v)
{
    char *end;
    *v = strtod(s, &end);
    return *s && *end == 0 && isfinite(*v);
}

/* A number argument: named `key` or the k-th positional (if k >= 0); `def` when absent. */
static cv_status num_arg(cv_ctx *ctx, const token *t, const char *key, int k, double def, double lo,
                         double hi, double *v)
{
    const targ *a = key ? named(t, key) : NULL;
    if (!a && k >= 0) a = positional(t, k);
    *v = def;
    if (!a) return CV_OK;
    char msg[160];
    if (!to_double(a->val, v)) {
        snprintf(msg, sizeof msg, "'%s' is not a number", a->val);
        return arg_error(ctx, t, msg);
    }
    if (*v < lo || *v > hi) {
        snprintf(msg, sizeof msg, "%s = %g is outside [%g, %g]", key ? key : "argument", *v, lo,
                 hi);
        return arg_error(ctx, t, msg);
    }
    return CV_OK;
}

static cv_status int_arg(cv_ctx *ctx, const token *t, const char *key, int k, int def, int lo,
                         int hi, int *v)
{
    double d;
    cv_status s = num_arg(ctx, t, key, k, def, lo, hi, &d);
    if (s) return s;
    if (d != floor(d)) return arg_error(ctx, t, "expected an integer");
    *v = (int)d;
    return CV_OK;
}

/* A range "a:b" (or one number x meaning [def_lo(x), def_hi(x)] as the op defines). */
static cv_status range_arg(cv_ctx *ctx, const token *t, const char *key, double *lo, double *hi)
{
    const targ *a = named(t, key);
    if (!a) return CV_OK;
    char buf[64];
    snprintf(buf, sizeof buf, "%s", a->val);
    char *colon = strchr(buf, ':');
    if (!colon) return arg_error(ctx, t, "a range is written lo:hi");
    *colon = 0;
    if (!to_double(buf, lo) || !to_double(colon + 1, hi) || *lo > *hi)
        return arg_error(ctx, t, "bad range (lo:hi with lo <= hi)");
    return CV_OK;
}

/* The interpolation among the arguments (positional identifier or interp=...). */
static cv_status interp_arg(cv_ctx *ctx, const token *t, int def, int *interp)
{
    *interp = def;
    for (int i = 0; i < t->nargs; i++) {
        const targ *a = &t->args[i];
        if ((a->key[0] && strcmp(a->key, "interp")) || (!a->key[0] && is_number(a->val))) continue;
        int v = cv_interp_from_name(a->val);
        if (v < 0) {
            char msg[200];
            snprintf(
                msg, sizeof msg,
                "unknown interpolation '%s' (nearest, bilinear, bicubic, box, hamming, lanczos)",
                a->val);
            return arg_error(ctx, t, msg);
        }
        *interp = v;
    }
    return CV_OK;
}

/* Every argument must be one the op knows: positional count <= max_pos, keys from `keys`. */
static cv_status check_args(cv_ctx *ctx, const token *t, int max_pos, int allow_interp,
                            const char *const *keys)
{
    int pos = 0;
    char msg[160];
    for (int i = 0; i < t->nargs; i++) {
        const targ *a = &t->args[i];
        if (!a->key[0]) {
            if (allow_interp && !is_number(a->val)) continue;
            if (++pos > max_pos) {
                snprintf(msg, sizeof msg, "too many arguments (at most %d)", max_pos);
                return arg_error(ctx, t, msg);
            }
            continue;
        }
        if (allow_interp && !strcmp(a->key, "interp")) continue;
        int ok = 0;
        for (int k = 0; keys && keys[k]; k++) ok |= !strcmp(a->key, keys[k]);
        if (!ok) {
            snprintf(msg, sizeof msg, "unknown argument '%s'", a->key);
            return arg_error(ctx, t, msg);
        }
    }
    return CV_OK;
}

/* ---- op parsing ---- */

static const float imagenet_mean[3] = {0.485f, 0.456f, 0.406f};
static const float imagenet_std[3] = {0.229f, 0.224f, 0.225f};

/* "imagenet" or six numbers m0,m1,m2,s0,s1,s2 (or two, m,s, for every channel). */
static cv_status parse_normalize(cv_ctx *ctx, const token *t, tf_op *op)
{
    int n = npositional(t);
    if (check_args(ctx, t, 6, 0, NULL)) return CV_ERR_INVALID;
    op->nmean = n == 2 ? 1 : 3;
    if (n == 0 || (n == 1 && !strcmp(positional(t, 0)->val, "imagenet"))) {
        memcpy(op->mean, imagenet_mean, sizeof op->mean);
        memcpy(op->std, imagenet_std, sizeof op->std);
        return CV_OK;
    }
    if (n != 2 && n != 6) return arg_error(ctx, t, "expected 'imagenet', m,s or m0,m1,m2,s0,s1,s2");
    for (int c = 0; c < 3; c++) {
        double m, s;
        if (num_arg(ctx, t, NULL, n == 2 ? 0 : c, 0, -1e9, 1e9, &m) ||
            num_arg(ctx, t, NULL, n == 2 ? 1 : 3 + c, 1, -1e9, 1e9, &s))
            return CV_ERR_INVALID;
        if (s == 0) return arg_error(ctx, t, "std must not be 0");
        op->mean[c] = (float)m;
        op->std[c] = (float)s;
    }
    return CV_OK;
}

/* One size "s" or two "h,w" (positional). */
static cv_status parse_size(cv_ctx *ctx, const token *t, int required, tf_op *op)
{
    int n = 0;
    for (int i = 0; i < t->nargs; i++) n += !t->args[i].key[0] && is_number(t->args[i].val);
    if (n < required || n > 2) return arg_error(ctx, t, "expected a size (s or h,w)");
    if (n == 0) return CV_OK;
    if (int_arg(ctx, t, NULL, 0, 0, 1, 65536, &op->h)) return CV_ERR_INVALID;
    op->w = op->h;
    if (n == 2 && int_arg(ctx, t, NULL, 1, 0, 1, 65536, &op->w)) return CV_ERR_INVALID;
    op->two_sizes = n == 2;
    return CV_OK;
}

typedef struct {
    const char *name;
    tf_kind kind;
} op_name;

static const op_name op_names[] = {
    {"resize", TF_RESIZE},
    {"center_crop", TF_CENTER_CROP},
    {"centercrop", TF_CENTER_CROP},
    {"crop", TF_CROP},
    {"pad", TF_PAD},
    {"to_tensor", TF_TO_TENSOR},
    {"totensor", TF_TO_TENSOR},
    {"normalize", TF_NORMALIZE},
    {"classification", TF_CLASSIFICATION},
    {"grayscale", TF_GRAYSCALE},
    {"brightness", TF_BRIGHTNESS},
    {"adjust_brightness", TF_BRIGHTNESS},
    {"contrast", TF_CONTRAST},
    {"adjust_contrast", TF_CONTRAST},
    {"saturation", TF_SATURATION},
    {"adjust_saturation", TF_SATURATION},
    {"hue", TF_HUE},
    {"adjust_hue", TF_HUE},
    {"rotate", TF_ROTATE},
    {"affine", TF_AFFINE},
    {"posterize", TF_POSTERIZE},
    {"solarize", TF_SOLARIZE},
    {"autocontrast", TF_AUTOCONTRAST},
    {"equalize", TF_EQUALIZE},
    {"sharpness", TF_SHARPNESS},
    {"adjust_sharpness", TF_SHARPNESS},
    {"invert", TF_INVERT},
    {"hflip", TF_HFLIP},
    {"vflip", TF_VFLIP},
    {"random_grayscale", TF_RANDOM_GRAYSCALE},
    {"rrc", TF_RRC},
    {"random_resized_crop", TF_RRC},
    {"random_crop", TF_RANDOM_CROP},
    {"color_jitter", TF_COLOR_JITTER},
    {"jitter", TF_COLOR_JITTER},
    {"random_rotation", TF_RANDOM_ROTATION},
    {"random_affine", TF_RANDOM_AFFINE},
    {"autoaugment", TF_AUTOAUGMENT},
    {"auto_augment", TF_AUTOAUGMENT},
    {"randaugment", TF_RANDAUGMENT},
    {"rand_augment", TF_RANDAUGMENT},
    {"trivialaugment", TF_TRIVIALAUGMENT},
    {"trivial_augment", TF_TRIVIALAUGMENT},
    {"augmix", TF_AUGMIX},
    {"random_erasing", TF_RANDOM_ERASING},
    {"erasing", TF_RANDOM_ERASING},
};

static const char *const pad_modes[] = {"constant", "edge", "reflect", "symmetric", NULL};

/* mode=constant|edge|reflect|symmetric into pad_mode; fill=v into fill. */
static cv_status pad_options(cv_ctx *ctx, const token *t, tf_op *op)
{
    const targ *m = named(t, "mode");
    if (m) {
        int k = 0;
        while (pad_modes[k] && strcmp(pad_modes[k], m->val)) k++;
        if (!pad_modes[k])
            return arg_error(ctx, t, "mode must be constant, edge, reflect or symmetric");
        op->pad_mode = k;
    }
    double f;
    if (num_arg(ctx, t, "fill", -1, 0, -1e9, 1e9, &f)) return CV_ERR_INVALID;
    op->fill = (float)f;
    op->has_fill = named(t, "fill") != NULL;
    return CV_OK;
}

static cv_status bool_arg(cv_ctx *ctx, const token *t, const char *key, int def, int *v)
{
    const targ *a = named(t, key);
    *v = def;
    if (!a) return CV_OK;
    if (!strcmp(a->val, "1") || !strcmp(a->val, "true"))
        *v = 1;
    else if (!strcmp(a->val, "0") || !strcmp(a->val, "false"))
        *v = 0;
    else
        return arg_error(ctx, t, "a flag must be true or false");
    return CV_OK;
}

/* p=... (or the first positional) for the ops that apply with a probability. */
static cv_status prob_arg(cv_ctx *ctx, const token *t, double def, tf_op *op)
{
    return num_arg(ctx, t, "p", npositional(t) ? 0 : -1, def, 0, 1, &op->p);
}

#define KEYS(...) ((const char *const[]){__VA_ARGS__, NULL})
#define TRY(x)                                                                                     \
    do {                                                                                           \
        if (x) return CV_ERR_INVALID;                                                              \
    } while (0)

static cv_status parse_op(cv_ctx *ctx, const token *t, tf_op *op)
{
    int kind = -1;
    for (size_t i = 0; i < sizeof op_names / sizeof op_names[0]; i++)
        if (!strcmp(t->name, op_names[i].name)) kind = (int)op_names[i].kind;
    if (kind < 0) {
        char msg[200];
        snprintf(msg, sizeof msg, "unknown op '%s' (see docs/transforms.md)", t->name);
        return arg_error(ctx, t, msg);
    }
    memset(op, 0, sizeof *op);
    op->kind = (tf_kind)kind;
    op->p = 1.0;
    op->antialias = 1;
    snprintf(op->text, sizeof op->text, "%s", t->text);
    double lo, hi, v;
    switch (op->kind) {
    case TF_RESIZE: {
        TRY(check_args(ctx, t, 2, 1, KEYS("max_size", "antialias")));
        TRY(parse_size(ctx, t, 1, op));
        TRY(interp_arg(ctx, t, CV_INTERP_BILINEAR, &op->interp));
        TRY(int_arg(ctx, t, "max_size", -1, 0, 0, 65536, &op->max_size));
        return bool_arg(ctx, t, "antialias", 1, &op->antialias);
    }
    case TF_CENTER_CROP:
        TRY(check_args(ctx, t, 2, 0, NULL));
        return parse_size(ctx, t, 1, op);
    case TF_CROP:
        TRY(check_args(ctx, t, 4, 0, NULL));
        if (npositional(t) != 4) return arg_error(ctx, t, "expected top,left,height,width");
        TRY(int_arg(ctx, t, NULL, 0, 0, -65536, 65536, &op->n[0]));
        TRY(int_arg(ctx, t, NULL, 1, 0, -65536, 65536, &op->n[1]));
        TRY(int_arg(ctx, t, NULL, 2, 0, 1, 65536, &op->h));
        return int_arg(ctx, t, NULL, 3, 0, 1, 65536, &op->w);
    case TF_PAD: {
        TRY(check_args(ctx, t, 4, 0, KEYS("fill", "mode")));
        int n = npositional(t);
        if (n != 1 && n != 2 && n != 4)
            return arg_error(ctx, t, "expected p, or lr,tb, or l,t,r,b");
        for (int k = 0; k < 4; k++)
            TRY(int_arg(ctx, t, NULL, n == 1 ? 0 : n == 2 ? k % 2 : k, 0, 0, 4096, &op->n[k]));
        return pad_options(ctx, t, op);
    }
    case TF_TO_TENSOR:
    case TF_AUTOCONTRAST:
    case TF_EQUALIZE:
    case TF_INVERT:
    case TF_AUTOAUGMENT:
        return check_args(ctx, t, 0, 0, NULL);
    case TF_NORMALIZE:
        return parse_normalize(ctx, t, op);
    case TF_CLASSIFICATION:
        /* classification(resize, crop[, interp]) = torchvision's ImageClassification preset. */
        TRY(check_args(ctx, t, 2, 1, NULL));
        TRY(interp_arg(ctx, t, CV_INTERP_BILINEAR, &op->interp));
        if (op->interp > CV_INTERP_BICUBIC)
            return arg_error(ctx, t, "nearest, bilinear or bicubic");
        TRY(int_arg(ctx, t, NULL, 0, 256, 1, 65536, &op->max_size));
        TRY(int_arg(ctx, t, NULL, 1, 224, 1, 65536, &op->h));
        op->w = op->h;
        memcpy(op->mean, imagenet_mean, sizeof op->mean);
        memcpy(op->std, imagenet_std, sizeof op->std);
        return CV_OK;
    case TF_GRAYSCALE:
        TRY(check_args(ctx, t, 1, 0, NULL));
        TRY(int_arg(ctx, t, NULL, 0, 1, 1, 3, &op->n[0]));
        if (op->n[0] == 2) return arg_error(ctx, t, "output channels must be 1 or 3");
        return CV_OK;
    case TF_BRIGHTNESS:
    case TF_CONTRAST:
    case TF_SATURATION:
    case TF_SHARPNESS:
        TRY(check_args(ctx, t, 1, 0, NULL));
        if (npositional(t) != 1) return arg_error(ctx, t, "expected a factor");
        return num_arg(ctx, t, NULL, 0, 1, 0, 1e6, &op->a[0]);
    case TF_HUE:
        TRY(check_args(ctx, t, 1, 0, NULL));
        if (npositional(t) != 1) return arg_error(ctx, t, "expected a hue shift in [-0.5, 0.5]");
        return num_arg(ctx, t, NULL, 0, 0, -0.5, 0.5, &op->a[0]);
    case TF_POSTERIZE:
        TRY(check_args(ctx, t, 1, 0, NULL));
        if (npositional(t) != 1) return arg_error(ctx, t, "expected bits (0..8)");
        return int_arg(ctx, t, NULL, 0, 8, 0, 8, &op->n[0]);
    case TF_SOLARIZE:
        TRY(check_args(ctx, t, 1, 0, NULL));
        if (npositional(t) != 1) return arg_error(ctx, t, "expected a threshold");
        return num_arg(ctx, t, NULL, 0, 0, -1e9, 1e9, &op->a[0]);
    case TF_ROTATE:
        TRY(check_args(ctx, t, 1, 1, KEYS("expand", "fill")));
        if (npositional(t) != 1) return arg_error(ctx, t, "expected an angle in degrees");
        TRY(num_arg(ctx, t, NULL, 0, 0, -1e6, 1e6, &op->a[0]));
        TRY(interp_arg(ctx, t, CV_INTERP_NEAREST, &op->interp));
        if (op->interp > CV_INTERP_BILINEAR) return arg_error(ctx, t, "nearest or bilinear");
        TRY(bool_arg(ctx, t, "expand", 0, &op->n[0]));
        return pad_options(ctx, t, op);
    case TF_AFFINE: {
        /* affine(angle, tx, ty, scale, shear_x[, shear_y]) */
        TRY(check_args(ctx, t, 6, 1, KEYS("fill")));
        int n = npositional(t);
        if (n < 5) return arg_error(ctx, t, "expected angle,tx,ty,scale,shear_x[,shear_y]");
        for (int k = 0; k < n; k++) TRY(num_arg(ctx, t, NULL, k, 0, -1e6, 1e6, &op->a[k]));
        if (op->a[3] <= 0) return arg_error(ctx, t, "scale must be positive");
        TRY(interp_arg(ctx, t, CV_INTERP_NEAREST, &op->interp));
        if (op->interp > CV_INTERP_BILINEAR) return arg_error(ctx, t, "nearest or bilinear");
        return pad_options(ctx, t, op);
    }
    case TF_HFLIP:
    case TF_VFLIP:
        TRY(check_args(ctx, t, 1, 0, KEYS("p")));
        return prob_arg(ctx, t, 0.5, op);
    case TF_RANDOM_GRAYSCALE:
        TRY(check_args(ctx, t, 1, 0, KEYS("p")));
        return prob_arg(ctx, t, 0.1, op);
    case TF_RRC:
        TRY(check_args(ctx, t, 2, 1, KEYS("scale", "ratio", "antialias")));
        TRY(parse_size(ctx, t, 1, op));
        TRY(interp_arg(ctx, t, CV_INTERP_BILINEAR, &op->interp));
        op->a[0] = 0.08, op->a[1] = 1.0, op->a[2] = 3.0 / 4.0, op->a[3] = 4.0 / 3.0;
        TRY(range_arg(ctx, t, "scale", &op->a[0], &op->a[1]));
        TRY(range_arg(ctx, t, "ratio", &op->a[2], &op->a[3]));
        if (op->a[0] <= 0 || op->a[2] <= 0)
            return arg_error(ctx, t, "scale and ratio must be positive");
        return bool_arg(ctx, t, "antialias", 1, &op->antialias);
    case TF_RANDOM_CROP:
        TRY(check_args(ctx, t, 2, 0, KEYS("padding", "pad_if_needed", "fill", "mode")));
        TRY(parse_size(ctx, t, 1, op));
        TRY(int_arg(ctx, t, "padding", -1, 0, 0, 4096, &op->n[0]));
        TRY(bool_arg(ctx, t, "pad_if_needed", 0, &op->n[1]));
        return pad_options(ctx, t, op);
    case TF_COLOR_JITTER:
        TRY(check_args(ctx, t, 4, 0, KEYS("brightness", "contrast", "saturation", "hue")));
        {
            static const char *const keys[4] = {"brightness", "contrast", "saturation", "hue"};
            for (int k = 0; k < 4; k++)
                TRY(num_arg(ctx, t, keys[k], k, 0, 0, k == 3 ? 0.5 : 1e6, &op->a[k]));
        }
        return CV_OK;
    case TF_RANDOM_ROTATION:
        TRY(check_args(ctx, t, 1, 1, KEYS("expand", "fill")));
        if (npositional(t) != 1) return arg_error(ctx, t, "expected degrees");
        TRY(num_arg(ctx, t, NULL, 0, 0, 0, 1e6, &v));
        op->a[0] = -v, op->a[1] = v;
        TRY(interp_arg(ctx, t, CV_INTERP_NEAREST, &op->interp));
        if (op->interp > CV_INTERP_BILINEAR) return arg_error(ctx, t, "nearest or bilinear");
        TRY(bool_arg(ctx, t, "expand", 0, &op->n[0]));
        return pad_options(ctx, t, op);
    case TF_RANDOM_AFFINE:
        TRY(check_args(ctx, t, 1, 1, KEYS("translate", "scale", "shear", "fill")));
        if (npositional(t) != 1) return arg_error(ctx, t, "expected degrees");
        TRY(num_arg(ctx, t, NULL, 0, 0, 0, 1e6, &v));
        op->a[0] = -v, op->a[1] = v;
        lo = hi = 0;
        TRY(range_arg(ctx, t, "translate", &lo, &hi)); /* "tx:ty", fractions of width and height */
        if (lo < 0 || lo > 1 || hi < 0 || hi > 1)
            return arg_error(ctx, t, "translate fractions must be in [0, 1]");
        op->a[2] = lo, op->a[3] = hi;
        op->n[0] = named(t, "scale") != NULL;
        TRY(range_arg(ctx, t, "scale", &op->a[4], &op->a[5]));
        if (op->n[0] && op->a[4] <= 0) return arg_error(ctx, t, "scale must be positive");
        if (named(t, "shear")) {
            if (strchr(named(t, "shear")->val, ':'))
                TRY(range_arg(ctx, t, "shear", &op->a[6], &op->a[7]));
            else {
                TRY(num_arg(ctx, t, "shear", -1, 0, 0, 1e6, &v));
                op->a[6] = -v, op->a[7] = v;
            }
        }
        TRY(interp_arg(ctx, t, CV_INTERP_NEAREST, &op->interp));
        if (op->interp > CV_INTERP_BILINEAR) return arg_error(ctx, t, "nearest or bilinear");
        return pad_options(ctx, t, op);
    case TF_RANDAUGMENT:
        TRY(check_args(ctx, t, 2, 0, KEYS("bins")));
        TRY(int_arg(ctx, t, "bins", -1, 31, 2, 1000, &op->n[2]));
        TRY(int_arg(ctx, t, NULL, 0, 2, 0, 100, &op->n[0]));
        TRY(int_arg(ctx, t, NULL, 1, 9, 0, op->n[2] - 1, &op->n[1]));
        return CV_OK;
    case TF_TRIVIALAUGMENT:
        TRY(check_args(ctx, t, 1, 0, KEYS("bins")));
        return int_arg(ctx, t, "bins", 0, 31, 2, 1000, &op->n[0]);
    case TF_AUGMIX:
        TRY(check_args(ctx, t, 4, 0, KEYS("severity", "width", "depth", "alpha")));
        TRY(int_arg(ctx, t, "severity", 0, 3, 1, 10, &op->n[0]));
        TRY(int_arg(ctx, t, "width", 1, 3, 1, 16, &op->n[1]));
        TRY(int_arg(ctx, t, "depth", 2, -1, -1, 16, &op->n[2]));
        TRY(num_arg(ctx, t, "alpha", 3, 1.0, 1e-3, 1e3, &op->a[0]));
        return CV_OK;
    case TF_RANDOM_ERASING: {
        TRY(check_args(ctx, t, 1, 0, KEYS("p", "scale", "ratio", "value")));
        TRY(prob_arg(ctx, t, 0.5, op));
        op->a[0] = 0.02, op->a[1] = 0.33, op->a[2] = 0.3, op->a[3] = 3.3;
        TRY(range_arg(ctx, t, "scale", &op->a[0], &op->a[1]));
        TRY(range_arg(ctx, t, "ratio", &op->a[2], &op->a[3]));
        if (op->a[0] < 0 || op->a[1] > 1 || op->a[2] <= 0)
            return arg_error(ctx, t, "scale must be within [0, 1] and ratio positive");
        const targ *val = named(t, "value");
        if (val && !strcmp(val->val, "random"))
            op->n[0] = 1;
        else {
            TRY(num_arg(ctx, t, "value", -1, 0, -1e9, 1e9, &v));
            op->fill = (float)v;
        }
        return CV_OK;
    }
    default:
        return arg_error(ctx, t, "internal: op without a parser");
    }
}

/* ---- tokenizer ---- */

static cv_status tokenize_one(cv_ctx *ctx, const char *text, token *t)
{
    memset(t, 0, sizeof *t);
    t->text = text;
    const char *p = text;
    size_t n = 0;
    while (*p && (isalnum((unsigned char)*p) || *p == '_')) {
        if (n + 1 >= sizeof t->name) return arg_error(ctx, t, "op name too long");
        t->name[n++] = (char)tolower((unsigned char)*p++);
    }
    if (!n) return arg_error(ctx, t, "expected an op name");
    while (*p == ' ') p++;
    if (!*p) return CV_OK;
    if (*p != '(') return arg_error(ctx, t, "expected '(' after the op name");
    p++;
    const char *close = strrchr(p, ')');
    if (!close) return arg_error(ctx, t, "missing ')'");
    if (close[1]) return arg_error(ctx, t, "unexpected text after ')'");
    while (p < close) {
        const char *e = p;
        while (e < close && *e != ',') e++;
        /* trim */
        const char *a = p, *b = e;
        while (a < b && *a == ' ') a++;
        while (b > a && b[-1] == ' ') b--;
        if (a == b) {
            if (e == close && t->nargs == 0) break; /* "op()" */
            return arg_error(ctx, t, "empty argument");
        }
        if (t->nargs >= MAX_ARGS) return arg_error(ctx, t, "too many arguments");
        targ *g = &t->args[t->nargs++];
        const char *eq = memchr(a, '=', (size_t)(b - a));
        const char *v = a;
        if (eq) {
            size_t kl = (size_t)(eq - a);
            while (kl && a[kl - 1] == ' ') kl--;
            if (!kl || kl >= sizeof g->key) return arg_error(ctx, t, "bad argument name");
            memcpy(g->key, a, kl);
            v = eq + 1;
            while (v < b && *v == ' ') v++;
        }
        if ((size_t)(b - v) >= sizeof g->val || v == b)
            return arg_error(ctx, t, "bad argument value");
        memcpy(g->val, v, (size_t)(b - v));
        for (char *c = g->val; *c; c++) *c = (char)tolower((unsigned char)*c);
        p = e < close ? e + 1 : e;
    }
    return CV_OK;
}

cv_status cv_transform_pipeline_parse(cv_ctx *ctx, const char *spec, cv_transform_pipeline **out)
{
    *out = NULL;
    if (!spec) return cv_fail(ctx, CV_ERR_INVALID, "transform: no pipeline string");
    size_t len = strlen(spec);
    if (len > 4096) return cv_fail(ctx, CV_ERR_INVALID, "transform: pipeline string too long");
    cv_transform_pipeline *pipe = calloc(1, sizeof *pipe);
    char *buf = malloc(len + 1);
    if (pipe) pipe->ops = calloc(len / 2 + 1, sizeof *pipe->ops);
    if (!pipe || !buf || !pipe->ops) {
        free(buf);
        cv_transform_pipeline_free(pipe);
        return cv_fail(ctx, CV_ERR_NOMEM, "transform: out of memory");
    }
    /* Split at top-level commas; commas inside parentheses separate arguments. */
    const char *p = spec;
    cv_status s = CV_OK;
    while (*p && !s) {
        while (*p == ' ' || *p == '\t') p++;
        const char *start = p;
        int depth = 0;
        while (*p && (depth > 0 || *p != ',')) {
            if (*p == '(') depth++;
            if (*p == ')' && --depth < 0) break;
            p++;
        }
        size_t n = (size_t)(p - start);
        while (n && (start[n - 1] == ' ' || start[n - 1] == '\t')) n--;
        memcpy(buf, start, n);
        buf[n] = 0;
        if (depth != 0) {
            s = cv_fail(ctx, CV_ERR_INVALID, "transform '%s': unbalanced parentheses", buf);
            break;
        }
        if (!n) {
            s = cv_fail(ctx, CV_ERR_INVALID, "transform: empty op in '%s'", spec);
            break;
        }
        token t;
        s = tokenize_one(ctx, buf, &t);
        if (!s) s = parse_op(ctx, &t, &pipe->ops[pipe->nops++]);
        if (*p == ',') {
            p++;
            if (!*p)
                s = s ? s : cv_fail(ctx, CV_ERR_INVALID, "transform: trailing ',' in '%s'", spec);
        }
    }
    free(buf);
    if (!s && pipe->nops == 0) s = cv_fail(ctx, CV_ERR_INVALID, "transform: empty pipeline");
    if (s) {
        cv_transform_pipeline_free(pipe);
        return s;
    }
    *out = pipe;
    return CV_OK;
}

void cv_transform_pipeline_free(cv_transform_pipeline *pipe)
{
    if (!pipe) return;
    free(pipe->ops);
    free(pipe);
}

int cv_transform_pipeline_is_random(const cv_transform_pipeline *pipe)
{
    for (int i = 0; i < pipe->nops; i++)
        if (tf_op_is_random(&pipe->ops[i])) return 1;
    return 0;
}

/* Appends one op to the spec being built, failing when it does not fit. */
static cv_status append_op(cv_ctx *ctx, char *out, size_t n, const char *text)
{
    size_t len = strlen(out);
    int k = snprintf(out + len, n - len, "%s%s", len ? "," : "", text);
    if (k < 0 || (size_t)k >= n - len)
        return cv_fail(ctx, CV_ERR_INVALID, "transform: derived evaluation pipeline too long");
    return CV_OK;
}

cv_status cv_transform_pipeline_eval_spec(cv_ctx *ctx, const cv_transform_pipeline *train,
                                          char *out, size_t n)
{
    if (!n) return cv_fail(ctx, CV_ERR_INVALID, "transform: no room for a pipeline string");
    out[0] = 0;
    cv_status s = CV_OK;
    for (int i = 0; i < train->nops && !s; i++) {
        const tf_op *op = &train->ops[i];
        char text[160];
        if (op->kind == TF_RRC) { /* torchvision's ImageClassification: resize 256 for crop 224 */
            int side = op->h < op->w ? op->h : op->w;
            snprintf(text, sizeof text, "resize(%ld,%s),center_crop(%d,%d)", lround(side / 0.875),
                     cv_interp_name((cv_interp)op->interp), op->h, op->w);
        } else if (op->kind == TF_RANDOM_CROP) {
            snprintf(text, sizeof text, "center_crop(%d,%d)", op->h, op->w);
        } else if (tf_op_is_random(op)) {
            continue;
        } else if (strlen(op->text) + 1 < sizeof op->text) {
            snprintf(text, sizeof text, "%s", op->text);
        } else { /* op->text holds a truncated copy */
            return cv_fail(ctx, CV_ERR_INVALID,
                           "transform '%s...': too long to copy into an evaluation pipeline",
                           op->text);
        }
        s = append_op(ctx, out, n, text);
    }
    return s;
}

uint64_t cv_transform_sample_seed(uint64_t seed, uint64_t epoch, uint64_t index)
{
    cv_rng r;
    cv_rng_init(&r, seed, epoch);
    cv_rng_init(&r, cv_rng_next(&r), index);
    return cv_rng_next(&r);
}

/* Prefixes the context's message with the op (copied first: cv_fail writes that buffer). */
static cv_status op_fail(cv_ctx *ctx, const tf_op *op, cv_status s)
{
    return cv_fail(ctx, s, "transform '%s': %s", op->text, cv_ctx_error(ctx));
}

/* The fused tail: the longest suffix of flips, to_tensor and at most one normalize. On a uint8
 * image it becomes one pass writing (x / 255 - mean) / std (the same float32 operations, so the
 * same values) from a per-channel table straight into the output, flipped by index. */
static int tail_start(const cv_transform_pipeline *pipe)
{
    int k = pipe->nops, norms = 0;
    while (k > 0) {
        tf_kind kd = pipe->ops[k - 1].kind;
        if (kd == TF_NORMALIZE && norms++ == 0) {
            k--;
            continue;
        }
        if (kd != TF_HFLIP && kd != TF_VFLIP && kd != TF_TO_TENSOR) break;
        k--;
    }
    return k;
}

/* out: the caller's c x h x w buffer, or NULL to return a new tensor in *tout. */
static cv_status shape_check(cv_ctx *ctx, int c, int h, int w, float **out, int ec, int eh, int ew,
                             cv_tensor **tout)
{
    if (*out) {
        if (c == ec && h == eh && w == ew) return CV_OK;
        return cv_fail(ctx, CV_ERR_SHAPE,
                       "the transform gives [%d, %d, %d], the batch wants [%d, %d, %d]", c, h, w,
                       ec, eh, ew);
    }
    int64_t shape[3] = {c, h, w};
    cv_status s = cv_tensor_new(ctx, CV_F32, 3, shape, tout);
    if (!s) *out = (*tout)->data;
    return s;
}

static cv_status fused_tail(cv_ctx *ctx, const cv_transform_pipeline *pipe, int k,
                            const cv_image *img, cv_rng *rng, float *out, int ec, int eh, int ew,
                            cv_tensor **tout)
{
    int fx = 0, fy = 0;
    const tf_op *norm = NULL;
    for (int i = k; i < pipe->nops; i++) {
        const tf_op *op = &pipe->ops[i];
        if (op->kind == TF_HFLIP) fx ^= cv_rng_uniform(rng) < op->p;
        if (op->kind == TF_VFLIP) fy ^= cv_rng_uniform(rng) < op->p;
        if (op->kind == TF_NORMALIZE) norm = op;
    }
    int C = img->c, H = img->h, W = img->w;
    if (norm && norm->nmean == 3 && C != 3)
        return cv_fail(ctx, CV_ERR_SHAPE, "transform '%s': the image has %d channel(s), not 3",
                       norm->text, C);
    cv_status s = shape_check(ctx, C, H, W, &out, ec, eh, ew, tout);
    if (s) return s;
    float lut[3][256];
    for (int ch = 0; ch < C; ch++)
        for (int v = 0; v < 256; v++) {
            float x = (float)v / 255.0f; /* ToTensor divides by 255 */
            if (norm) {
                int m = norm->nmean == 3 ? ch : 0;
                x = (x - norm->mean[m]) / norm->std[m];
            }
            lut[ch][v] = x;
        }
    if (C == 3) { /* one pass over the pixels, three planes out */
        size_t hw = (size_t)H * W;
        ptrdiff_t step = fx ? -3 : 3;
        for (int y = 0; y < H; y++) {
            const uint8_t *p =
                img->data + (size_t)(fy ? H - 1 - y : y) * W * 3 + (fx ? (W - 1) * 3 : 0);
            float *d = out + (size_t)y * W;
            for (int x = 0; x < W; x++, p += step) {
                d[x] = lut[0][p[0]];
                d[hw + x] = lut[1][p[1]];
                d[2 * hw + x] = lut[2][p[2]];
            }
        }
        return CV_OK;
    }
    for (int ch = 0; ch < C; ch++)
        for (int y = 0; y < H; y++) {
            const uint8_t *row = img->data + (size_t)(fy ? H - 1 - y : y) * W * C + ch;
            float *d = out + ((size_t)ch * H + y) * W;
            const float *t = lut[ch];
            if (fx)
                for (int x = 0; x < W; x++) d[x] = t[row[(size_t)(W - 1 - x) * C]];
            else
                for (int x = 0; x < W; x++) d[x] = t[row[(size_t)x * C]];
        }
    return CV_OK;
}

/* Runs ops [first, nops) on smp (consumed) and writes the result to out (or a new *tout). */
static cv_status run_ops(cv_ctx *ctx, const cv_transform_pipeline *pipe, int first, tf_sample *smp,
                         cv_rng *rng, float *out, int c, int h, int w, cv_tensor **tout)
{
    int k = tail_start(pipe);
    if (k < first) k = first;
    cv_status s = CV_OK;
    for (int i = first; i < k && !s; i++) s = tf_apply_op(ctx, &pipe->ops[i], smp, rng);
    if (!s && smp->img) {
        s = fused_tail(ctx, pipe, k, smp->img, rng, out, c, h, w, tout);
    } else if (!s) {
        for (int i = k; i < pipe->nops && !s; i++) s = tf_apply_op(ctx, &pipe->ops[i], smp, rng);
        if (!s) s = tf_to_planes(ctx, smp);
        if (!s) s = shape_check(ctx, smp->pl->c, smp->pl->h, smp->pl->w, &out, c, h, w, tout);
        if (!s)
            memcpy(out, smp->pl->data,
                   (size_t)smp->pl->c * smp->pl->h * smp->pl->w * sizeof(float));
    }
    cv_image_free(smp->img);
    cv_planes_free(smp->pl);
    smp->img = NULL;
    smp->pl = NULL;
    return s;
}

static cv_status apply(cv_ctx *ctx, const cv_transform_pipeline *pipe, const cv_image *img,
                       uint64_t seed, float *out, int c, int h, int w, cv_tensor **tout)
{
    cv_rng rng;
    cv_rng_init(&rng, seed, 0);
    tf_sample smp = {0};
    const tf_op *op = &pipe->ops[0];
    if (op->kind == TF_RRC) { /* as tf_apply_op's rrc, but reading img without copying it */
        int top, left, ch, cw;
        tf_rrc_params(op, img->h, img->w, &rng, &top, &left, &ch, &cw);
        cv_status s = tf_resize_box(ctx, img, left, top, left + cw, top + ch, op->w, op->h,
                                    (cv_interp)op->interp, &smp.img);
        if (s) return op_fail(ctx, op, s);
        return run_ops(ctx, pipe, 1, &smp, &rng, out, c, h, w, tout);
    }
    cv_status s = cv_image_convert(ctx, img, img->c, &smp.img);
    return s ? s : run_ops(ctx, pipe, 0, &smp, &rng, out, c, h, w, tout);
}

cv_status tf_pipeline_trace(cv_ctx *ctx, const cv_transform_pipeline *pipe, const cv_image *img,
                            uint64_t seed, tf_trace *trace)
{
    cv_rng rng;
    cv_rng_init(&rng, seed, 0);
    tf_sample smp = {.trace = trace};
    trace->n = 0;
    cv_status s = cv_image_convert(ctx, img, img->c, &smp.img);
    for (int i = 0; i < pipe->nops && !s; i++) s = tf_apply_op(ctx, &pipe->ops[i], &smp, &rng);
    cv_image_free(smp.img);
    cv_planes_free(smp.pl);
    return s;
}

cv_status cv_transform_apply(cv_ctx *ctx, const cv_transform_pipeline *pipe, const cv_image *img,
                             uint64_t seed, cv_tensor **out)
{
    *out = NULL;
    return apply(ctx, pipe, img, seed, NULL, 0, 0, 0, out);
}

cv_status cv_transform_apply_into(cv_ctx *ctx, const cv_transform_pipeline *pipe,
                                  const cv_image *img, uint64_t seed, float *out_chw, int c, int h,
                                  int w)
{
    return apply(ctx, pipe, img, seed, out_chw, c, h, w, NULL);
}

/* The smallest DCT scale n/8 at which the crop still covers the output in both directions. */
static int dct_scale(int cw, int ch, int ow, int oh)
{
    int num = 8;
    while (num > 1 && (int64_t)cw * (num - 1) >= 8LL * ow && (int64_t)ch * (num - 1) >= 8LL * oh)
        num--;
    return num;
}

cv_status cv_transform_apply_encoded(cv_ctx *ctx, const cv_transform_pipeline *pipe,
                                     const void *buf, size_t n, const char *name, uint64_t seed,
                                     float *out_chw, int c, int h, int w)
{
    const uint8_t *b = buf;
    const tf_op *op = &pipe->ops[0];
    int W, H, C;
    if (op->kind == TF_RRC && n >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF &&
        img_jpeg_complete(b, n) && cv_image_probe(ctx, buf, n, name, &W, &H, &C) == CV_OK &&
        W > 0 && H > 0) {
        cv_rng rng;
        cv_rng_init(&rng, seed, 0);
        int top, left, ch, cw, ox;
        tf_rrc_params(op, H, W, &rng, &top, &left, &ch, &cw);
        /* The crop in the scaled image: pixel u there covers [8u/num, 8(u+1)/num) here. */
        int num = dct_scale(cw, ch, op->w, op->h);
        double f = num / 8.0, x0 = left * f, x1 = (left + cw) * f, y0 = top * f,
               y1 = (top + ch) * f;
        int hx = (int)floor(x0), hy = (int)floor(y0);
        cv_image *region;
        cv_status s = img_jpeg_decode_region(ctx, b, n, name, num, hx, hy, (int)ceil(x1) - hx,
                                             (int)ceil(y1) - hy, &region, &ox);
        if (s) return s;
        tf_sample smp = {0};
        s = tf_resize_box(ctx, region, x0 - ox, y0 - hy, x1 - ox, y1 - hy, op->w, op->h,
                          (cv_interp)op->interp, &smp.img);
        cv_image_free(region);
        if (s) return op_fail(ctx, op, s);
        return run_ops(ctx, pipe, 1, &smp, &rng, out_chw, c, h, w, NULL);
    }
    cv_image *img;
    cv_status s = cv_image_decode(ctx, buf, n, name, 3, &img);
    if (s) return s;
    s = cv_transform_apply_into(ctx, pipe, img, seed, out_chw, c, h, w);
    cv_image_free(img);
    return s;
}
