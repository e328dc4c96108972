/* Deterministic transforms on uint8 images and float planes, and torchvision's classification
 * preset. Resizing of images is in resample.c (Pillow-exact). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cvision/transforms.h"

static const char *interp_names[] = {"nearest", "bilinear", "bicubic", "box", "hamming", "lanczos"};

int cv_interp_from_name(const char *name)
{
    for (int i = 0; i < (int)(sizeof interp_names / sizeof interp_names[0]); i++)
        if (!strcmp(name, interp_names[i])) return i;
    return -1;
}

const char *cv_interp_name(cv_interp interp)
{
    return (unsigned)interp <= CV_INTERP_LANCZOS ? interp_names[interp] : "invalid";
}

void cv_resize_output_size(int w, int h, int size, int max_size, int *ow, int *oh)
{
    int s = w <= h ? w : h, l = w <= h ? h : w;
    /* Python: int(size * long / short), a correctly rounded double division then truncation. */
    int ns = size, nl = (int)((double)size * l / s);
    if (max_size > 0 && nl > max_size) {
        ns = (int)((double)max_size * ns / nl);
        nl = max_size;
    }
    *ow = w <= h ? ns : nl;
    *oh = w <= h ? nl : ns;
}

cv_status cv_image_crop(cv_ctx *ctx, const cv_image *in, int top, int left, int h, int w,
                        cv_image **out)
{
    cv_status s = cv_image_new(ctx, w, h, in->c, out);
    if (s) return s;
    int c = in->c;
    for (int y = 0; y < h; y++) {
        int sy = y + top;
        if (sy < 0 || sy >= in->h) continue;
        int x0 = left < 0 ? -left : 0, x1 = in->w - left < w ? in->w - left : w;
        if (x1 > x0)
            memcpy((*out)->data + ((size_t)y * w + x0) * c,
                   in->data + ((size_t)sy * in->w + x0 + left) * c, (size_t)(x1 - x0) * c);
    }
    return CV_OK;
}

/* torchvision's center_crop offset along one axis, in the unpadded image's coordinates. */
static int center_offset(int size, int crop)
{
    if (crop > size) return -((crop - size) / 2);
    return (int)nearbyint((size - crop) / 2.0); /* Python round(): half to even */
}

cv_status cv_image_center_crop(cv_ctx *ctx, const cv_image *in, int h, int w, cv_image **out)
{
    return cv_image_crop(ctx, in, center_offset(in->h, h), center_offset(in->w, w), h, w, out);
}

cv_status cv_image_convert(cv_ctx *ctx, const cv_image *in, int c, cv_image **out)
{
    cv_status s = cv_image_new(ctx, in->w, in->h, c, out);
    if (s) return s;
    size_t n = (size_t)in->w * in->h;
    uint8_t *d = (*out)->data;
    const uint8_t *p = in->data;
    if (c == in->c)
        memcpy(d, p, n * c);
    else if (c == 3)
        for (size_t i = 0; i < n; i++) d[i * 3] = d[i * 3 + 1] = d[i * 3 + 2] = p[i];
    else
        for (size_t i = 0; i < n; i++, p += 3)
            d[i] = (uint8_t)((p[0] * 19595 + p[1] * 38470 + p[2] * 7471 + 0x8000) >> 16);
    return CV_OK;
}

cv_status cv_preprocess_classification(cv_ctx *ctx, const cv_image *img, int resize, int crop,
                                       const char *interpolation, const float mean[3],
                                       const float std[3], float *out_chw)
{
    int interp = cv_interp_from_name(interpolation ? interpolation : "bilinear");
    if (interp != CV_INTERP_BILINEAR && interp != CV_INTERP_BICUBIC && interp != CV_INTERP_NEAREST)
        return cv_fail(ctx, CV_ERR_INVALID,
                       "preprocess: interpolation '%s' (bilinear, bicubic or nearest)",
                       interpolation);
    if (resize <= 0 || crop <= 0 || resize > 65536 || crop > 65536)
        return cv_fail(ctx, CV_ERR_INVALID, "preprocess: bad resize %d or crop %d", resize, crop);
    cv_image *rgb = NULL, *rs = NULL, *cc = NULL;
    cv_status s = CV_OK;
    /* Converting gray to RGB before resizing gives the same pixels as after: channels resize alike.
     */
    if (img->c != 3 && (s = cv_image_convert(ctx, img, 3, &rgb))) return s;
    const cv_image *src = rgb ? rgb : img;
    int ow, oh;
    cv_resize_output_size(src->w, src->h, resize, 0, &ow, &oh);
    if (!(s = cv_image_resize(ctx, src, ow, oh, (cv_interp)interp, &rs)) &&
        !(s = cv_image_center_crop(ctx, rs, crop, crop, &cc))) {
        size_t n = (size_t)crop * crop;
        for (int c = 0; c < 3; c++)
            for (size_t i = 0; i < n; i++)
                out_chw[c * n + i] = ((float)cc->data[i * 3 + c] / 255.0f - mean[c]) / std[c];
    }
    cv_image_free(rgb);
    cv_image_free(rs);
    cv_image_free(cc);
    return s;
}

cv_status cv_planes_new(cv_ctx *ctx, int c, int h, int w, cv_planes **out)
{
    *out = NULL;
    if (c <= 0 || h <= 0 || w <= 0 || (int64_t)c * h * w > (1LL << 31))
        return cv_fail(ctx, CV_ERR_INVALID, "planes: bad size %dx%dx%d", c, h, w);
    cv_planes *p = calloc(1, sizeof *p);
    if (p) p->data = cv_aligned_alloc((size_t)c * h * w * sizeof(float));
    if (!p || !p->data) {
        free(p);
        return cv_fail(ctx, CV_ERR_NOMEM, "planes: cannot allocate %dx%dx%d", c, h, w);
    }
    memset(p->data, 0, (size_t)c * h * w * sizeof(float));
    p->c = c;
    p->h = h;
    p->w = w;
    *out = p;
    return CV_OK;
}

void cv_planes_free(cv_planes *p)
{
    if (!p) return;
    cv_aligned_free(p->data);
    free(p);
}

cv_status cv_planes_from_image(cv_ctx *ctx, const cv_image *img, float divisor, cv_planes **out)
{
    cv_status s = cv_planes_new(ctx, img->c, img->h, img->w, out);
    if (s) return s;
    size_t n = (size_t)img->w * img->h;
    for (int c = 0; c < img->c; c++) {
        float *d = (*out)->data + c * n;
        const uint8_t *p = img->data + c;
        /* ToTensor divides by 255 (rather than multiplying by 1/255): so do we. */
        for (size_t i = 0; i < n; i++) d[i] = (float)p[i * img->c] / divisor;
    }
    return CV_OK;
}
