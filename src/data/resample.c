/* Pillow's image resizing (libImaging/Resample.c and the nearest-neighbour path of Geometry.c),
 * reproduced operation for operation so that results are bit-identical to Image.resize:
 *  - separable: a horizontal pass over only the rows the vertical pass needs, then a vertical pass;
 *  - filter support scaled by max(in/out, 1) (antialiasing), centre = (x + 0.5) * scale;
 *  - weights computed in double, normalised, then rounded to 22-bit fixed point (32 - 8 - 2);
 *  - integer accumulators starting at 1 << 21 (rounding), clipped to 0..255 after >> 22. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cvision/transforms.h"

#define PRECISION_BITS (32 - 8 - 2)

static double box_filter(double x)
{
    return x > -0.5 && x <= 0.5 ? 1.0 : 0.0;
}

static double bilinear_filter(double x)
{
    x = fabs(x);
    return x < 1.0 ? 1.0 - x : 0.0;
}

static double hamming_filter(double x)
{
    x = fabs(x);
    if (x == 0.0) return 1.0;
    if (x >= 1.0) return 0.0;
    x *= M_PI;
    return sin(x) / x * (0.54f + 0.46f * cos(x)); /* float literals as in Pillow */
}

static double bicubic_filter(double x)
{
    const double a = -0.5; /* Keys' cubic, as Pillow */
    x = fabs(x);
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

static double sinc(double x)
{
    if (x == 0.0) return 1.0;
    x *= M_PI;
    return sin(x) / x;
}

static double lanczos_filter(double x)
{
    return -3.0 <= x && x < 3.0 ? sinc(x) * sinc(x / 3) : 0.0;
}

typedef struct {
    double (*fn)(double);
    double support;
} filter;

static const filter filters[] = {
    [CV_INTERP_BILINEAR] = {bilinear_filter, 1.0}, [CV_INTERP_BICUBIC] = {bicubic_filter, 2.0},
    [CV_INTERP_BOX] = {box_filter, 0.5},           [CV_INTERP_HAMMING] = {hamming_filter, 1.0},
    [CV_INTERP_LANCZOS] = {lanczos_filter, 3.0},
};

/* Per output index: first input index, tap count, and ksize fixed-point weights. */
typedef struct {
    int ksize;
    int *bounds;
    int32_t *kk;
} coeffs;

static int precompute(int in_size, int out_size, const filter *f, coeffs *c)
{
    double scale = (double)in_size / out_size, filterscale = scale < 1.0 ? 1.0 : scale;
    double support = f->support * filterscale;
    int ksize = (int)ceil(support) * 2 + 1;
    double *k = malloc((size_t)ksize * sizeof *k);
    c->ksize = ksize;
    c->bounds = malloc((size_t)out_size * 2 * sizeof *c->bounds);
    c->kk = calloc((size_t)out_size * ksize, sizeof *c->kk);
    if (!k || !c->bounds || !c->kk) {
        free(k);
        return 0;
    }
    for (int xx = 0; xx < out_size; xx++) {
        double center = (xx + 0.5) * scale, ww = 0.0, ss = 1.0 / filterscale;
        int xmin = (int)(center - support + 0.5), xmax = (int)(center + support + 0.5);
        if (xmin < 0) xmin = 0;
        if (xmax > in_size) xmax = in_size;
        xmax -= xmin;
        for (int x = 0; x < xmax; x++) {
            double w = f->fn((x + xmin - center + 0.5) * ss);
            k[x] = w;
            ww += w;
        }
        int32_t *kk = c->kk + (size_t)xx * ksize;
        for (int x = 0; x < xmax; x++) {
            double v = ww != 0.0 ? k[x] / ww : k[x];
            kk[x] = v < 0 ? (int32_t)(-0.5 + v * (1 << PRECISION_BITS))
                          : (int32_t)(0.5 + v * (1 << PRECISION_BITS));
        }
        c->bounds[xx * 2] = xmin;
        c->bounds[xx * 2 + 1] = xmax;
    }
    free(k);
    return 1;
}

static inline uint8_t clip8(int32_t v)
{
    v >>= PRECISION_BITS;
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

/* Rows [y0, y0 + out->h) of `in`, resampled horizontally into `out`. All channels of a pixel
 * are summed in one pass over the taps (as Pillow's 8bpc loop); integer sums, so the order of
 * the additions does not change the result. */
static void horizontal(const cv_image *in, int y0, cv_image *out, const coeffs *c)
{
    int ch = in->c;
    for (int yy = 0; yy < out->h; yy++) {
        const uint8_t *src = in->data + (size_t)(yy + y0) * in->w * ch;
        uint8_t *dst = out->data + (size_t)yy * out->w * ch;
        for (int xx = 0; xx < out->w; xx++) {
            int xmin = c->bounds[xx * 2], xmax = c->bounds[xx * 2 + 1];
            const int32_t *k = c->kk + (size_t)xx * c->ksize;
            const uint8_t *p = src + (size_t)xmin * ch;
            if (ch == 3) {
                int32_t s0 = 1 << (PRECISION_BITS - 1), s1 = s0, s2 = s0;
                for (int x = 0; x < xmax; x++, p += 3) {
                    s0 += p[0] * k[x];
                    s1 += p[1] * k[x];
                    s2 += p[2] * k[x];
                }
                dst[xx * 3] = clip8(s0);
                dst[xx * 3 + 1] = clip8(s1);
                dst[xx * 3 + 2] = clip8(s2);
                continue;
            }
            for (int b = 0; b < ch; b++) {
                int32_t ss = 1 << (PRECISION_BITS - 1);
                for (int x = 0; x < xmax; x++) ss += p[x * ch + b] * k[x];
                dst[xx * ch + b] = clip8(ss);
            }
        }
    }
}

/* Vertical resampling; bounds are relative to the first row of `in`. Each output row
 * accumulates whole input rows into `acc` (row-length int32), which the compiler vectorises. */
static void vertical(const cv_image *in, cv_image *out, const coeffs *c, int shift, int32_t *acc)
{
    size_t row = (size_t)in->w * in->c;
    for (int yy = 0; yy < out->h; yy++) {
        int ymin = c->bounds[yy * 2] - shift, ymax = c->bounds[yy * 2 + 1];
        const int32_t *k = c->kk + (size_t)yy * c->ksize;
        uint8_t *dst = out->data + (size_t)yy * row;
        for (size_t i = 0; i < row; i++) acc[i] = 1 << (PRECISION_BITS - 1);
        for (int y = 0; y < ymax; y++) {
            const uint8_t *src = in->data + (size_t)(ymin + y) * row;
            const int32_t ky = k[y];
            for (size_t i = 0; i < row; i++) acc[i] += src[i] * ky;
        }
        for (size_t i = 0; i < row; i++) dst[i] = clip8(acc[i]);
    }
}

/* Geometry.c's ImagingScaleAffine: source positions accumulate in double (xo += a0), which is
 * what decides ties, so they are accumulated here the same way rather than multiplied. */
static void nearest(const cv_image *in, cv_image *out, int *xtab)
{
    double a0 = (double)in->w / out->w, a4 = (double)in->h / out->h;
    double xo = a0 * 0.5, yo = a4 * 0.5;
    for (int x = 0; x < out->w; x++, xo += a0) {
        int xi = xo < 0.0 ? -1 : (int)xo;
        xtab[x] = xi < in->w ? xi : in->w - 1;
    }
    int ch = in->c;
    for (int y = 0; y < out->h; y++, yo += a4) {
        int yi = yo < 0.0 ? -1 : (int)yo;
        if (yi >= in->h) yi = in->h - 1;
        const uint8_t *src = in->data + (size_t)yi * in->w * ch;
        uint8_t *dst = out->data + (size_t)y * out->w * ch;
        for (int x = 0; x < out->w; x++) memcpy(dst + x * ch, src + xtab[x] * ch, (size_t)ch);
    }
}

cv_status cv_image_resize(cv_ctx *ctx, const cv_image *in, int w, int h, cv_interp interp,
                          cv_image **out)
{
    *out = NULL;
    if ((unsigned)interp > CV_INTERP_LANCZOS)
        return cv_fail(ctx, CV_ERR_INVALID, "resize: unknown interpolation %d", (int)interp);
    cv_status s = cv_image_new(ctx, w, h, in->c, out);
    if (s) return s;
    if (w == in->w && h == in->h) { /* Pillow returns a copy */
        memcpy((*out)->data, in->data, (size_t)w * h * in->c);
        return CV_OK;
    }
    if (interp == CV_INTERP_NEAREST) {
        int *xtab = malloc((size_t)w * sizeof *xtab);
        if (!xtab) {
            cv_image_free(*out);
            *out = NULL;
            return cv_fail(ctx, CV_ERR_NOMEM, "resize: out of memory");
        }
        nearest(in, *out, xtab);
        free(xtab);
        return CV_OK;
    }
    const filter *f = &filters[interp];
    coeffs cv = {0}, chz = {0};
    cv_image *tmp = NULL;
    int need_h = w != in->w, need_v = h != in->h;
    if (!precompute(in->h, h, f, &cv) || (need_h && !precompute(in->w, w, f, &chz))) {
        s = cv_fail(ctx, CV_ERR_NOMEM, "resize: out of memory");
        goto done;
    }
    /* Only the input rows the vertical pass reads are resampled horizontally. */
    int y_first = cv.bounds[0], y_last = cv.bounds[h * 2 - 2] + cv.bounds[h * 2 - 1];
    const cv_image *src = in;
    int shift = 0;
    if (need_h && !need_v) {
        horizontal(in, 0, *out, &chz);
    } else if (need_h) {
        s = cv_image_new(ctx, w, y_last - y_first, in->c, &tmp);
        if (s) goto done;
        horizontal(in, y_first, tmp, &chz);
        src = tmp;
        shift = y_first;
    }
    if (need_v) {
        int32_t *acc = malloc((size_t)w * in->c * sizeof *acc);
        if (!acc) {
            s = cv_fail(ctx, CV_ERR_NOMEM, "resize: out of memory");
            goto done;
        }
        vertical(src, *out, &cv, shift, acc);
        free(acc);
    }
done:
    free(cv.bounds);
    free(cv.kk);
    free(chz.bounds);
    free(chz.kk);
    cv_image_free(tmp);
    if (s) {
        cv_image_free(*out);
        *out = NULL;
    }
    return s;
}
