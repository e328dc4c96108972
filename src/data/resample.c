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
#include "data/image_internal.h"

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

/* Pillow's precompute_coeffs: output pixel xx samples the input around in0 + (xx + 0.5) * scale,
 * taps clamped to [0, in_size). */
static int precompute(int in_size, double in0, double in1, int out_size, const filter *f, coeffs *c)
{
    double scale = (in1 - in0) / out_size, filterscale = scale < 1.0 ? 1.0 : scale;
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
        double center = in0 + (xx + 0.5) * scale, ww = 0.0, ss = 1.0 / filterscale;
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

/* dst[i] = clip8(2^21 + sum_t k[t] * rows[t][i]) for i < n: the kernel of both passes. Integer
 * sums, so any order (and any vector width) gives Pillow's result. Cloned for AVX2 where the
 * compiler can (GCC's function multiversioning picks the clone at load time). */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
__attribute__((target_clones("avx2", "default"), optimize("O3")))
#endif
static void
accumulate(uint8_t *restrict dst, const uint8_t *const *rows, const int32_t *k, int taps, size_t n,
           int32_t *restrict acc)
{
    for (size_t i = 0; i < n; i++) acc[i] = 1 << (PRECISION_BITS - 1);
    for (int t = 0; t < taps; t++) {
        const uint8_t *restrict src = rows[t];
        const int32_t kt = k[t];
        for (size_t i = 0; i < n; i++) acc[i] += src[i] * kt;
    }
    for (size_t i = 0; i < n; i++) dst[i] = clip8(acc[i]);
}

/* out = the rows of `in` selected by `c` (line yy from rows bounds - shift ...), each line `n`
 * bytes starting at byte x0 of its row; rows are `stride` bytes apart. */
static int resample_lines(const uint8_t *in, size_t stride, size_t n, int nout, uint8_t *out,
                          const coeffs *c, int shift)
{
    int32_t *acc = malloc(n * sizeof *acc);
    const uint8_t **rows = malloc((size_t)c->ksize * sizeof *rows);
    if (!acc || !rows) {
        free(acc);
        free(rows);
        return 0;
    }
    for (int yy = 0; yy < nout; yy++) {
        int ymin = c->bounds[yy * 2] - shift, ymax = c->bounds[yy * 2 + 1];
        for (int t = 0; t < ymax; t++) rows[t] = in + (size_t)(ymin + t) * stride;
        accumulate(out + (size_t)yy * n, rows, c->kk + (size_t)yy * c->ksize, ymax, n, acc);
    }
    free(acc);
    free(rows);
    return 1;
}

/* Pixel transpose: dst (w rows of h pixels) = src (h rows of w pixels, `stride` bytes apart),
 * in blocks of 16 source rows so that both sides stay in cache. RGB pixels move as 4-byte words:
 * the extra byte read is the next pixel's (so not in the last column), the extra byte written
 * is the next destination pixel's, written later (so not in the last row). */
static void transpose(uint8_t *restrict dst, const uint8_t *restrict src, size_t stride, int w,
                      int h, int ch)
{
    for (int y0 = 0; y0 < h; y0 += 16) {
        int y1 = y0 + 16 < h ? y0 + 16 : h;
        for (int x = 0; x < w; x++) {
            uint8_t *d = dst + ((size_t)x * h + y0) * ch;
            const uint8_t *p = src + (size_t)y0 * stride + (size_t)x * ch;
            int y = y0;
            if (ch == 3 && x + 1 < w)
                for (int yw = y1 < h ? y1 : h - 1; y < yw; y++, d += 3, p += stride)
                    memcpy(d, p, 4);
            for (; y < y1; y++, d += ch, p += stride)
                for (int b = 0; b < ch; b++) d[b] = p[b];
        }
    }
}

/* Rows [y0, y0 + out->h) of `in`, columns from x0 on (`hw` of them), resampled horizontally into
 * `out`: transposed, resampled as lines (vectorised, as the vertical pass), transposed back. */
static int horizontal(const cv_image *in, int x0, int y0, int hw, cv_image *out, const coeffs *c)
{
    int ch = in->c, h = out->h;
    size_t stride = (size_t)in->w * ch, line = (size_t)h * ch;
    uint8_t *t = malloc((size_t)hw * line), *u = malloc((size_t)out->w * line);
    int ok = t && u;
    if (ok) {
        transpose(t, in->data + (size_t)y0 * stride + (size_t)x0 * ch, stride, hw, h, ch);
        ok = resample_lines(t, line, line, out->w, u, c, 0);
    }
    if (ok) transpose(out->data, u, line, h, out->w, ch);
    free(t);
    free(u);
    return ok;
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

/* Resizes the region [x0, x1) x [y0, y1) of `in` (fractional, in pixels) to w x h, as Pillow's
 * Image.resize(size, box=...) on the region's whole-pixel hull: taps never leave the hull, so an
 * integer box gives exactly crop-then-resize. */
cv_status tf_resize_box(cv_ctx *ctx, const cv_image *in, double x0, double y0, double x1, double y1,
                        int w, int h, cv_interp interp, cv_image **out)
{
    *out = NULL;
    if ((unsigned)interp > CV_INTERP_LANCZOS)
        return cv_fail(ctx, CV_ERR_INVALID, "resize: unknown interpolation %d", (int)interp);
    int hx = (int)floor(x0), hy = (int)floor(y0), hw = (int)ceil(x1) - hx, hh = (int)ceil(y1) - hy;
    if (!(x0 < x1 && y0 < y1) || hx < 0 || hy < 0 || hx + hw > in->w || hy + hh > in->h)
        return cv_fail(ctx, CV_ERR_INVALID, "resize: box outside the %dx%d image", in->w, in->h);
    double bx0 = x0 - hx, bx1 = x1 - hx, by0 = y0 - hy, by1 = y1 - hy;
    cv_status s = img_new_uninit(ctx, w, h, in->c, out);
    if (s) return s;
    /* ImagingResample's test: a box other than the whole (hull) image always resamples. */
    int need_h = w != hw || bx0 != 0 || bx1 != hw, need_v = h != hh || by0 != 0 || by1 != hh;
    if (!need_h && !need_v) { /* Pillow returns a copy */
        for (int y = 0; y < h; y++)
            memcpy((*out)->data + (size_t)y * w * in->c,
                   in->data + ((size_t)(hy + y) * in->w + hx) * in->c, (size_t)w * in->c);
        return CV_OK;
    }
    if (interp == CV_INTERP_NEAREST) {
        cv_image *view = NULL;
        int *xtab = malloc((size_t)w * sizeof *xtab);
        if (!xtab || (s = cv_image_crop(ctx, in, hy, hx, hh, hw, &view))) {
            free(xtab);
            cv_image_free(*out);
            *out = NULL;
            return s ? s : cv_fail(ctx, CV_ERR_NOMEM, "resize: out of memory");
        }
        nearest(view, *out, xtab);
        free(xtab);
        cv_image_free(view);
        return CV_OK;
    }
    const filter *f = &filters[interp];
    coeffs cv = {0}, chz = {0};
    cv_image *tmp = NULL;
    if (!precompute(hh, by0, by1, h, f, &cv) || (need_h && !precompute(hw, bx0, bx1, w, f, &chz))) {
        s = cv_fail(ctx, CV_ERR_NOMEM, "resize: out of memory");
        goto done;
    }
    /* Only the input rows the vertical pass reads are resampled horizontally. */
    int y_first = cv.bounds[0], y_last = cv.bounds[h * 2 - 2] + cv.bounds[h * 2 - 1];
    const cv_image *src = in;
    int shift = -hy, sx = hx, ok = 1;
    if (need_h && !need_v) {
        ok = horizontal(in, hx, hy, hw, *out, &chz);
    } else if (need_h) {
        s = img_new_uninit(ctx, w, y_last - y_first, in->c, &tmp);
        if (s) goto done;
        ok = horizontal(in, hx, hy + y_first, hw, tmp, &chz);
        src = tmp;
        shift = y_first;
        sx = 0;
    }
    if (ok && need_v)
        ok = resample_lines(src->data + (size_t)sx * in->c, (size_t)src->w * in->c,
                            (size_t)w * in->c, h, (*out)->data, &cv, shift);
    if (!ok) s = cv_fail(ctx, CV_ERR_NOMEM, "resize: out of memory");
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

cv_status cv_image_resize(cv_ctx *ctx, const cv_image *in, int w, int h, cv_interp interp,
                          cv_image **out)
{
    return tf_resize_box(ctx, in, 0, 0, in->w, in->h, w, h, interp, out);
}
