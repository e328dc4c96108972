/* Semantic segmentation metrics: a streaming confusion matrix over label maps, with
 * torchvision's references/segmentation ConfusionMatrix definitions, and the label-map readers
 * (PNG palette/gray indices, .npy integer arrays). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cvision/image.h"
#include "cvision/npy.h"
#include "data/image_internal.h"
#include "metrics/metrics_internal.h"

/* K×K uint64 counts: 4096 classes is 128 MiB, far beyond any segmentation label set. */
#define SEG_MAX_CLASSES 4096

struct cv_seg {
    int K;     /* classes so far */
    int fixed; /* K was given: values >= K are errors, not growth */
    int ignore;
    uint64_t *cm; /* K×K [true][pred] */
    uint64_t pixels, ignored, maps;
};

cv_status cv_seg_new(cv_ctx *ctx, int num_classes, int ignore_index, cv_seg **out)
{
    *out = NULL;
    if (num_classes < 0 || num_classes > SEG_MAX_CLASSES)
        return cv_fail(ctx, CV_ERR_INVALID, "segmentation: %d classes (expected 1..%d)",
                       num_classes, SEG_MAX_CLASSES);
    cv_seg *s = calloc(1, sizeof *s);
    if (!s) return cv_fail(ctx, CV_ERR_NOMEM, "segmentation: out of memory");
    s->K = num_classes;
    s->fixed = num_classes > 0;
    s->ignore = ignore_index;
    if (s->K) {
        s->cm = calloc((size_t)s->K * (size_t)s->K, sizeof *s->cm);
        if (!s->cm) {
            free(s);
            return cv_fail(ctx, CV_ERR_NOMEM, "segmentation: out of memory");
        }
    }
    *out = s;
    return CV_OK;
}

void cv_seg_free(cv_seg *s)
{
    if (!s) return;
    free(s->cm);
    free(s);
}

static cv_status grow(cv_ctx *ctx, cv_seg *s, int K)
{
    uint64_t *cm = calloc((size_t)K * (size_t)K, sizeof *cm);
    if (!cm) return cv_fail(ctx, CV_ERR_NOMEM, "segmentation: out of memory for %d classes", K);
    for (int t = 0; t < s->K; t++)
        memcpy(cm + (size_t)t * K, s->cm + (size_t)t * s->K, (size_t)s->K * sizeof *cm);
    free(s->cm);
    s->cm = cm;
    s->K = K;
    return CV_OK;
}

cv_status cv_seg_add(cv_ctx *ctx, cv_seg *s, const int32_t *gt, const int32_t *pred, size_t n,
                     const char *what)
{
    /* validate the whole batch first, so that a bad one leaves the counts unchanged */
    int32_t mx = -1;
    for (size_t i = 0; i < n; i++) {
        if (gt[i] == s->ignore) continue;
        if (gt[i] < 0 || pred[i] < 0)
            return cv_fail(ctx, CV_ERR_FORMAT, "%s: pixel %zu: %s class %d is negative", what, i,
                           gt[i] < 0 ? "ground-truth" : "predicted", gt[i] < 0 ? gt[i] : pred[i]);
        int32_t v = gt[i] > pred[i] ? gt[i] : pred[i];
        if (v > mx) mx = v;
    }
    if (mx >= s->K) {
        if (s->fixed || mx >= SEG_MAX_CLASSES) {
            int K = s->fixed ? s->K : SEG_MAX_CLASSES;
            for (size_t i = 0; i < n; i++)
                if (gt[i] != s->ignore && (gt[i] >= K || pred[i] >= K))
                    return cv_fail(ctx, CV_ERR_FORMAT,
                                   "%s: pixel %zu: %s class %d is outside 0..%d "
                                   "(ignore index %d)",
                                   what, i, gt[i] >= K ? "ground-truth" : "predicted",
                                   gt[i] >= K ? gt[i] : pred[i], K - 1, s->ignore);
        }
        cv_status st = grow(ctx, s, mx + 1);
        if (st) return st;
    }
    const size_t K = (size_t)s->K;
    uint64_t ign = 0;
    for (size_t i = 0; i < n; i++) {
        if (gt[i] == s->ignore) {
            ign++;
            continue;
        }
        s->cm[(size_t)gt[i] * K + (size_t)pred[i]]++;
    }
    s->pixels += n - ign;
    s->ignored += ign;
    s->maps++;
    return CV_OK;
}

void cv_seg_counts(const cv_seg *s, uint64_t *maps, uint64_t *pixels, uint64_t *ignored)
{
    *maps = s->maps;
    *pixels = s->pixels;
    *ignored = s->ignored;
}

cv_status cv_seg_finalize(cv_ctx *ctx, const cv_seg *s, cv_metrics_result **out)
{
    *out = NULL;
    const int K = s->K > 0 ? s->K : 1;
    cv_metrics_result *r = cv_res_alloc(CV_TASK_SEGMENTATION, K, (size_t)s->pixels);
    double *cm = calloc((size_t)K * K, sizeof *cm), *v = calloc(3 * (size_t)K, sizeof *v);
    if (!r || !cm || !v) {
        cv_metrics_result_free(r);
        free(cm);
        free(v);
        return cv_fail(ctx, CV_ERR_NOMEM, "segmentation: out of memory");
    }
    for (int i = 0; s->cm && i < s->K * s->K; i++) cm[i] = (double)s->cm[i];
    double *iou = v, *acc = v + K, *support = v + 2 * K;
    double diag = 0, total = 0, siou = 0, sacc = 0;
    int niou = 0, nacc = 0;
    for (int c = 0; c < K; c++) {
        double row = 0, col = 0, d = cm[(size_t)c * K + c];
        for (int j = 0; j < K; j++) {
            row += cm[(size_t)c * K + j];
            col += cm[(size_t)j * K + c];
        }
        diag += d;
        total += row;
        support[c] = row;
        acc[c] = row > 0 ? d / row : NAN;
        iou[c] = row + col - d > 0 ? d / (row + col - d) : NAN;
        if (!isnan(acc[c])) sacc += acc[c], nacc++;
        if (!isnan(iou[c])) siou += iou[c], niou++;
    }
    const char *none = "undefined: no pixels besides the ignore index";
    cv_res_scalar(r, "pixel_accuracy", total > 0 ? diag / total : NAN, none);
    cv_res_scalar(r, "mean_accuracy", nacc ? sacc / nacc : NAN, none);
    cv_res_scalar(r, "mean_iou", niou ? siou / niou : NAN, none);
    cv_res_vector(r, "iou.per_class", iou, K);
    cv_res_vector(r, "accuracy.per_class", acc, K);
    cv_res_vector(r, "support.per_class", support, K);
    cv_res_add(r, CV_SECTION_METRIC, "confusion_matrix", K, K, cm, NULL);
    free(cm);
    free(v);
    if (r->oom) {
        cv_metrics_result_free(r);
        return cv_fail(ctx, CV_ERR_NOMEM, "segmentation: out of memory");
    }
    *out = r;
    return CV_OK;
}

/* ---- label maps ---- */

/* Pillow's values: palette indices as stored; 1-bit gray 0/1; 2- and 4-bit gray scaled to 0..255;
 * 8- and 16-bit gray as stored. */
static cv_status label_setup(cv_ctx *ctx, const char *name, png_structp png, png_infop info,
                             void *arg)
{
    (void)arg;
    int ct = png_get_color_type(png, info), depth = png_get_bit_depth(png, info);
    if (ct != PNG_COLOR_TYPE_PALETTE && ct != PNG_COLOR_TYPE_GRAY)
        return cv_fail(ctx, CV_ERR_FORMAT,
                       "%s: a %s PNG is not a label map (expected palette or grayscale)", name,
                       ct == PNG_COLOR_TYPE_GRAY_ALPHA ? "gray+alpha" : "colour");
    if (depth < 8 && (ct == PNG_COLOR_TYPE_PALETTE || depth == 1))
        png_set_packing(png);
    else if (depth < 8)
        png_set_expand_gray_1_2_4_to_8(png);
    return CV_OK;
}

static cv_status png_labels(cv_ctx *ctx, const uint8_t *buf, size_t n, const char *name,
                            int32_t **out, int *w, int *h)
{
    img_png_pixels px;
    cv_status st = img_png_read(ctx, buf, n, name, 1, label_setup, NULL, &px);
    if (st) return st;
    size_t np = (size_t)px.w * px.h;
    int32_t *v = malloc(np * sizeof *v);
    if (!v) {
        free(px.pixels);
        return cv_fail(ctx, CV_ERR_NOMEM, "%s: out of memory", name);
    }
    for (size_t i = 0; i < np; i++)
        v[i] = px.bytes == 2 ? (px.pixels[2 * i] << 8 | px.pixels[2 * i + 1]) : px.pixels[i];
    free(px.pixels);
    *out = v;
    *w = px.w;
    *h = px.h;
    return CV_OK;
}

static cv_status npy_labels(cv_ctx *ctx, const void *buf, size_t n, const char *name, int32_t **out,
                            int *w, int *h)
{
    cv_tensor *t;
    cv_status st = cv_npy_parse(ctx, buf, n, name, &t);
    if (st) return st;
    const int64_t *sh = t->shape;
    int ok2 = t->ndim == 2, ok3 = t->ndim == 3 && sh[0] == 1;
    int64_t H = ok2 ? sh[0] : ok3 ? sh[1] : 0, W = ok2 ? sh[1] : ok3 ? sh[2] : 0;
    if ((!ok2 && !ok3) || W <= 0 || H <= 0 || W * H > IMG_MAX_PIXELS) {
        char s[96];
        cv_shape_str(t->ndim, sh, s, sizeof s);
        cv_tensor_free(t);
        return cv_fail(ctx, CV_ERR_FORMAT,
                       "%s: a label map must be a non-empty (H, W) or (1, H, W) array, not %s",
                       name, s);
    }
    size_t np = (size_t)W * (size_t)H;
    int32_t *v = malloc(np * sizeof *v);
    if (!v) {
        cv_tensor_free(t);
        return cv_fail(ctx, CV_ERR_NOMEM, "%s: out of memory", name);
    }
    for (size_t i = 0; i < np; i++) {
        int64_t x;
        switch (t->dtype) {
        case CV_I64:
            x = ((const int64_t *)t->data)[i];
            break;
        case CV_I32:
            x = ((const int32_t *)t->data)[i];
            break;
        case CV_I16:
            x = ((const int16_t *)t->data)[i];
            break;
        case CV_I8:
            x = ((const int8_t *)t->data)[i];
            break;
        case CV_U8:
        case CV_BOOL:
            x = ((const uint8_t *)t->data)[i];
            break;
        default:
            free(v);
            cv_tensor_free(t);
            return cv_fail(ctx, CV_ERR_FORMAT,
                           "%s: a label map must hold integers, not floating-point values", name);
        }
        if (x < INT32_MIN || x > INT32_MAX) {
            free(v);
            cv_tensor_free(t);
            return cv_fail(ctx, CV_ERR_FORMAT, "%s: element %zu: %lld is not a class index", name,
                           i, (long long)x);
        }
        v[i] = (int32_t)x;
    }
    cv_tensor_free(t);
    *out = v;
    *w = (int)W;
    *h = (int)H;
    return CV_OK;
}

cv_status cv_label_map_decode(cv_ctx *ctx, const void *buf, size_t n, const char *name,
                              int32_t **out, int *w, int *h)
{
    *out = NULL;
    *w = *h = 0;
    const uint8_t *b = buf;
    if (n >= 8 && !memcmp(b, "\x89PNG\r\n\x1a\n", 8)) return png_labels(ctx, b, n, name, out, w, h);
    if (n >= 6 && !memcmp(b, "\x93NUMPY", 6)) return npy_labels(ctx, buf, n, name, out, w, h);
    return cv_fail(ctx, CV_ERR_FORMAT, "%s: not a PNG or .npy label map", name);
}

cv_status cv_label_map_read(cv_ctx *ctx, const char *path, int32_t **out, int *w, int *h)
{
    void *buf;
    size_t n;
    *out = NULL;
    cv_status st = cv_read_file(ctx, path, &buf, &n);
    if (st) return st;
    st = cv_label_map_decode(ctx, buf, n, path, out, w, h);
    free(buf);
    return st;
}
