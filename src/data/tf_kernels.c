/* torchvision 0.14's tensor transforms (transforms/functional_tensor.py) on float CHW planes.
 *
 * Arithmetic is done in float32 in the order PyTorch evaluates the Python expressions, with Python
 * scalars rounded to float32 as PyTorch does, so results match to the last bit in most cases; the
 * exceptions (reductions and matrix products whose summation order PyTorch leaves to its kernels)
 * are noted where they occur. */
#include "data/tf_kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PLANE(p) ((size_t)(p)->h * (p)->w)

static inline float clampf(float v, float lo, float hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* torch's .to(uint8) from float truncates toward zero. */
static inline float trunc_u8(float v)
{
    return (float)(int)v;
}

float tfk_linspace(float start, float end, int steps, int i)
{
    if (steps == 1) return start;
    float step = (end - start) / (float)(steps - 1);
    return i < steps / 2 ? start + step * (float)i : end - step * (float)(steps - i - 1);
}

/* _blend(img1, img2, ratio) = (ratio * img1 + (1 - ratio) * img2).clamp(0, bound).to(dtype) */
static inline float blend(float a, float b, float r, float r1, float bound, int u8)
{
    float v = clampf(r * a + r1 * b, 0.0f, bound);
    return u8 ? trunc_u8(v) : v;
}

void tfk_brightness(cv_planes *p, double f, int u8)
{
    float r = (float)f, r1 = (float)(1.0 - f), bound = u8 ? 255.0f : 1.0f;
    size_t n = PLANE(p) * p->c;
    for (size_t i = 0; i < n; i++) p->data[i] = blend(p->data[i], 0.0f, r, r1, bound, u8);
}

/* rgb_to_grayscale: (0.2989 r + 0.587 g + 0.114 b), truncated for uint8. */
static inline float gray_of(float r, float g, float b, int u8)
{
    float l = 0.2989f * r + 0.587f * g + 0.114f * b;
    return u8 ? trunc_u8(l) : l;
}

cv_status tfk_grayscale(cv_ctx *ctx, const cv_planes *in, int out_c, int u8, cv_planes **out)
{
    cv_status s = cv_planes_new(ctx, out_c, in->h, in->w, out);
    if (s) return s;
    size_t n = PLANE(in);
    for (size_t i = 0; i < n; i++) {
        float l = in->c == 3 ? gray_of(in->data[i], in->data[n + i], in->data[2 * n + i], u8)
                             : in->data[i];
        for (int c = 0; c < out_c; c++) (*out)->data[c * n + i] = l;
    }
    return CV_OK;
}

void tfk_contrast(cv_planes *p, double f, int u8)
{
    size_t n = PLANE(p);
    /* torch.mean in float32 sums in its own blocked order; a double sum rounded to float can differ
     * from it in the last bit. */
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += p->c == 3 ? gray_of(p->data[i], p->data[n + i], p->data[2 * n + i], u8) : p->data[i];
    float mean = (float)(sum / (double)n);
    float r = (float)f, r1 = (float)(1.0 - f), bound = u8 ? 255.0f : 1.0f;
    for (size_t i = 0; i < n * p->c; i++) p->data[i] = blend(p->data[i], mean, r, r1, bound, u8);
}

cv_status tfk_saturation(cv_ctx *ctx, cv_planes *p, double f, int u8)
{
    if (p->c == 1) return CV_OK; /* torchvision: matches PIL, a gray image is unchanged */
    cv_planes *g;
    cv_status s = tfk_grayscale(ctx, p, 1, u8, &g);
    if (s) return s;
    size_t n = PLANE(p);
    float r = (float)f, r1 = (float)(1.0 - f), bound = u8 ? 255.0f : 1.0f;
    for (int c = 0; c < p->c; c++)
        for (size_t i = 0; i < n; i++)
            p->data[c * n + i] = blend(p->data[c * n + i], g->data[i], r, r1, bound, u8);
    cv_planes_free(g);
    return CV_OK;
}

/* _rgb2hsv / _hsv2rgb, element by element in float32. */
static void rgb2hsv(float r, float g, float b, float *h, float *s, float *v)
{
    float maxc = fmaxf(r, fmaxf(g, b)), minc = fminf(r, fminf(g, b));
    int eqc = maxc == minc;
    float cr = maxc - minc;
    *s = cr / (eqc ? 1.0f : maxc);
    float crd = eqc ? 1.0f : cr;
    float rc = (maxc - r) / crd, gc = (maxc - g) / crd, bc = (maxc - b) / crd;
    float hr = maxc == r ? bc - gc : 0.0f;
    float hg = (maxc == g && maxc != r) ? (2.0f + rc) - bc : 0.0f;
    float hb = (maxc != g && maxc != r) ? (4.0f + gc) - rc : 0.0f;
    float hh = hr + hg + hb;
    *h = fmodf(hh / 6.0f + 1.0f, 1.0f);
    *v = maxc;
}

static void hsv2rgb(float h, float s, float v, float *r, float *g, float *b)
{
    float i = floorf(h * 6.0f), f = h * 6.0f - i;
    int ii = ((int)i % 6 + 6) % 6;
    float p = clampf(v * (1.0f - s), 0.0f, 1.0f);
    float q = clampf(v * (1.0f - s * f), 0.0f, 1.0f);
    float t = clampf(v * (1.0f - s * (1.0f - f)), 0.0f, 1.0f);
    const float rs[6] = {v, q, p, p, t, v}, gs[6] = {t, v, v, q, p, p}, bs[6] = {p, p, t, v, v, q};
    *r = rs[ii];
    *g = gs[ii];
    *b = bs[ii];
}

void tfk_hue(cv_planes *p, double f, int u8)
{
    if (p->c == 1) return;
    size_t n = PLANE(p);
    float hf = (float)f;
    for (size_t i = 0; i < n; i++) {
        float r = p->data[i], g = p->data[n + i], b = p->data[2 * n + i], h, s, v;
        if (u8) {
            r /= 255.0f;
            g /= 255.0f;
            b /= 255.0f;
        }
        rgb2hsv(r, g, b, &h, &s, &v);
        /* (h + hue_factor) % 1.0: torch.remainder = fmod, shifted into the divisor's sign */
        h = fmodf(h + hf, 1.0f);
        if (h != 0 && h < 0) h += 1.0f;
        hsv2rgb(h, s, v, &r, &g, &b);
        if (u8) {
            r = trunc_u8(r * 255.0f);
            g = trunc_u8(g * 255.0f);
            b = trunc_u8(b * 255.0f);
        }
        p->data[i] = r;
        p->data[n + i] = g;
        p->data[2 * n + i] = b;
    }
}

void tfk_invert(cv_planes *p, int u8)
{
    float bound = u8 ? 255.0f : 1.0f;
    for (size_t i = 0; i < PLANE(p) * p->c; i++) p->data[i] = bound - p->data[i];
}

void tfk_posterize(cv_planes *p, int bits)
{
    int mask = -(1 << (8 - bits));
    for (size_t i = 0; i < PLANE(p) * p->c; i++) p->data[i] = (float)((int)p->data[i] & mask);
}

void tfk_solarize(cv_planes *p, double threshold, int u8)
{
    float bound = u8 ? 255.0f : 1.0f;
    for (size_t i = 0; i < PLANE(p) * p->c; i++)
        if ((double)p->data[i] >= threshold) p->data[i] = bound - p->data[i];
}

void tfk_autocontrast(cv_planes *p, int u8)
{
    size_t n = PLANE(p);
    float bound = u8 ? 255.0f : 1.0f;
    for (int c = 0; c < p->c; c++) {
        float *d = p->data + c * n, mn = d[0], mx = d[0];
        for (size_t i = 1; i < n; i++) {
            mn = fminf(mn, d[i]);
            mx = fmaxf(mx, d[i]);
        }
        /* Python's bound / tensor is tensor.reciprocal() * bound */
        float scale = (1.0f / (mx - mn)) * bound;
        if (!isfinite(scale)) {
            mn = 0.0f;
            scale = 1.0f;
        }
        for (size_t i = 0; i < n; i++) {
            float v = clampf((d[i] - mn) * scale, 0.0f, bound);
            d[i] = u8 ? trunc_u8(v) : v;
        }
    }
}

/* _scale_channel: integer histogram equalisation (uint8 only). */
void tfk_equalize(cv_planes *p)
{
    size_t n = PLANE(p);
    for (int c = 0; c < p->c; c++) {
        float *d = p->data + c * n;
        int64_t hist[256] = {0}, lut[256];
        for (size_t i = 0; i < n; i++) hist[(int)d[i] & 255]++;
        int64_t last = 0, total = 0;
        for (int k = 0; k < 256; k++)
            if (hist[k]) {
                total += hist[k];
                last = hist[k];
            }
        int64_t step = (total - last) / 255; /* sum of the non-zero bins but the last */
        if (step == 0) continue;
        int64_t cum = 0;
        for (int k = 0; k < 256; k++) {
            int64_t v =
                (cum + step / 2) / step; /* lut shifted right by one: uses cumsum up to k-1 */
            lut[k] = v > 255 ? 255 : v;
            cum += hist[k];
        }
        for (size_t i = 0; i < n; i++) d[i] = (float)lut[(int)d[i] & 255];
    }
}

cv_status tfk_sharpness(cv_ctx *ctx, cv_planes *p, double f, int u8)
{
    int h = p->h, w = p->w;
    if (w <= 2 || h <= 2) return CV_OK;
    cv_planes *bl;
    cv_status s = cv_planes_new(ctx, p->c, h, w, &bl);
    if (s) return s;
    memcpy(bl->data, p->data, PLANE(p) * p->c * sizeof(float));
    /* kernel [[1,1,1],[1,5,1],[1,1,1]] / 13 in float32; conv2d's summation order is oneDNN's, so
     * float results can differ in the last bits (uint8 results are rounded, and a blurred value is
     * never within 1/26 of a rounding tie, so those are exact). */
    const float k1 = 1.0f / 13.0f, k5 = 5.0f / 13.0f;
    for (int c = 0; c < p->c; c++) {
        const float *d = p->data + c * PLANE(p);
        float *o = bl->data + c * PLANE(p);
        for (int y = 1; y < h - 1; y++)
            for (int x = 1; x < w - 1; x++) {
                float acc = 0;
                for (int dy = -1; dy <= 1; dy++)
                    for (int dx = -1; dx <= 1; dx++)
                        acc += d[(y + dy) * w + x + dx] * (dx || dy ? k1 : k5);
                o[y * w + x] = u8 ? nearbyintf(acc) : acc;
            }
    }
    float r = (float)f, r1 = (float)(1.0 - f), bound = u8 ? 255.0f : 1.0f;
    for (size_t i = 0; i < PLANE(p) * p->c; i++)
        p->data[i] = blend(p->data[i], bl->data[i], r, r1, bound, u8);
    cv_planes_free(bl);
    return CV_OK;
}

void tfk_hflip(cv_planes *p)
{
    for (int c = 0; c < p->c; c++)
        for (int y = 0; y < p->h; y++) {
            float *row = p->data + ((size_t)c * p->h + y) * p->w;
            for (int a = 0, b = p->w - 1; a < b; a++, b--) {
                float t = row[a];
                row[a] = row[b];
                row[b] = t;
            }
        }
}

void tfk_vflip(cv_planes *p)
{
    for (int c = 0; c < p->c; c++)
        for (int a = 0, b = p->h - 1; a < b; a++, b--) {
            float *ra = p->data + ((size_t)c * p->h + a) * p->w,
                  *rb = p->data + ((size_t)c * p->h + b) * p->w;
            for (int x = 0; x < p->w; x++) {
                float t = ra[x];
                ra[x] = rb[x];
                rb[x] = t;
            }
        }
}

/* Source index for padded index i in [-pad, n + pad): -1 means "fill". */
static int pad_index(int i, int n, int mode)
{
    if (i >= 0 && i < n) return i;
    switch (mode) {
    case 1:
        return i < 0 ? 0 : n - 1;
    case 2: /* reflect, edge not repeated: period 2n - 2 */
        if (n == 1) return 0;
        for (;;) {
            if (i < 0)
                i = -i;
            else if (i >= n)
                i = 2 * n - 2 - i;
            else
                return i;
        }
    case 3: /* symmetric, edge repeated: period 2n */
        for (;;) {
            if (i < 0)
                i = -i - 1;
            else if (i >= n)
                i = 2 * n - 1 - i;
            else
                return i;
        }
    default:
        return -1;
    }
}

cv_status tfk_pad(cv_ctx *ctx, const cv_planes *in, const int pad[4], int mode, float fill,
                  cv_planes **out)
{
    int oh = in->h + pad[1] + pad[3], ow = in->w + pad[0] + pad[2];
    if (mode == 2 && (pad[0] >= in->w || pad[2] >= in->w || pad[1] >= in->h || pad[3] >= in->h))
        return cv_fail(ctx, CV_ERR_INVALID, "pad: reflect padding must be smaller than the image");
    cv_status s = cv_planes_new(ctx, in->c, oh, ow, out);
    if (s) return s;
    for (int c = 0; c < in->c; c++)
        for (int y = 0; y < oh; y++) {
            int sy = pad_index(y - pad[1], in->h, mode);
            for (int x = 0; x < ow; x++) {
                int sx = pad_index(x - pad[0], in->w, mode);
                (*out)->data[((size_t)c * oh + y) * ow + x] =
                    sy < 0 || sx < 0 ? fill : in->data[((size_t)c * in->h + sy) * in->w + sx];
            }
        }
    return CV_OK;
}

cv_status tfk_crop(cv_ctx *ctx, const cv_planes *in, int top, int left, int h, int w,
                   cv_planes **out)
{
    cv_status s = cv_planes_new(ctx, in->c, h, w, out);
    if (s) return s;
    for (int c = 0; c < in->c; c++)
        for (int y = 0; y < h; y++) {
            int sy = y + top;
            if (sy < 0 || sy >= in->h) continue;
            int x0 = left < 0 ? -left : 0, x1 = in->w - left < w ? in->w - left : w;
            if (x1 > x0)
                memcpy((*out)->data + ((size_t)c * h + y) * w + x0,
                       in->data + ((size_t)c * in->h + sy) * in->w + x0 + left,
                       (size_t)(x1 - x0) * sizeof(float));
        }
    return CV_OK;
}

/* ---- affine / rotate ---- */

void tfk_inverse_affine(const double center[2], double angle, const double translate[2],
                        double scale, const double shear[2], double m[6])
{
    double rot = angle * M_PI / 180.0, sx = shear[0] * M_PI / 180.0, sy = shear[1] * M_PI / 180.0;
    double cx = center[0], cy = center[1], tx = translate[0], ty = translate[1];
    double a = cos(rot - sy) / cos(sy);
    double b = -cos(rot - sy) * tan(sx) / cos(sy) - sin(rot);
    double c = sin(rot - sy) / cos(sy);
    double d = -sin(rot - sy) * tan(sx) / cos(sy) + cos(rot);
    double mm[6] = {d, -b, 0.0, -c, a, 0.0};
    for (int i = 0; i < 6; i++) m[i] = mm[i] / scale;
    m[2] += m[0] * (-cx - tx) + m[1] * (-cy - ty);
    m[5] += m[3] * (-cx - tx) + m[4] * (-cy - ty);
    m[2] += cx;
    m[5] += cy;
}

void tfk_affine_output_size(const double m[6], int w, int h, int *ow, int *oh)
{
    float pts[4][2] = {
        {-0.5f * w, -0.5f * h}, {-0.5f * w, 0.5f * h}, {0.5f * w, 0.5f * h}, {0.5f * w, -0.5f * h}};
    float th[6];
    for (int i = 0; i < 6; i++) th[i] = (float)m[i];
    float mn[2] = {INFINITY, INFINITY}, mx[2] = {-INFINITY, -INFINITY};
    for (int k = 0; k < 4; k++)
        for (int j = 0; j < 2; j++) {
            float v = pts[k][0] * th[j * 3] + pts[k][1] * th[j * 3 + 1] + th[j * 3 + 2];
            mn[j] = fminf(mn[j], v);
            mx[j] = fmaxf(mx[j], v);
        }
    float half[2] = {(float)(w * 0.5), (float)(h * 0.5)}, size[2];
    const float tol = 1e-4f;
    for (int j = 0; j < 2; j++) {
        /* "Truncate precision to 1e-4 to avoid ceil of Xe-15 to 1.0" */
        float cmax = ceilf(truncf((mx[j] + half[j]) / tol) * tol);
        float cmin = floorf(truncf((mn[j] + half[j]) / tol) * tol);
        size[j] = cmax - cmin;
    }
    *ow = (int)size[0];
    *oh = (int)size[1];
}

cv_status tfk_affine(cv_ctx *ctx, const cv_planes *in, const double m[6], int ow, int oh,
                     int bilinear, const float *fill, int u8, cv_planes **out)
{
    cv_status s = cv_planes_new(ctx, in->c, oh, ow, out);
    if (s) return s;
    int w = in->w, h = in->h;
    /* _gen_affine_grid: theta^T / [w/2, h/2], applied to pixel centres relative to the centre.
     * The product is a bmm in PyTorch (BLAS summation order); here it is evaluated left to right.
     */
    float R[3][2], dw = (float)(0.5 * w), dh = (float)(0.5 * h);
    for (int k = 0; k < 3; k++) {
        R[k][0] = (float)m[k] / dw;
        R[k][1] = (float)m[3 + k] / dh;
    }
    float sw = (float)w * 0.5f, sh = (float)h * 0.5f;
    size_t n = (size_t)h * w, on = (size_t)oh * ow;
    for (int y = 0; y < oh; y++) {
        float by = tfk_linspace(-oh * 0.5f + 0.5f, oh * 0.5f + 0.5f - 1, oh, y);
        for (int x = 0; x < ow; x++) {
            float bx = tfk_linspace(-ow * 0.5f + 0.5f, ow * 0.5f + 0.5f - 1, ow, x);
            float gx = bx * R[0][0] + by * R[1][0] + R[2][0];
            float gy = bx * R[0][1] + by * R[1][1] + R[2][1];
            /* grid_sample, align_corners=False, zeros padding (ATen's vectorised CPU kernel) */
            float ix = (gx + 1.0f) * sw - 0.5f, iy = (gy + 1.0f) * sh - 0.5f;
            size_t o = (size_t)y * ow + x;
            if (!bilinear) {
                int xi = (int)nearbyintf(ix), yi = (int)nearbyintf(iy);
                int inside = xi >= 0 && xi < w && yi >= 0 && yi < h && isfinite(ix) && isfinite(iy);
                for (int c = 0; c < in->c; c++) {
                    float v = inside ? in->data[c * n + (size_t)yi * w + xi] : 0.0f;
                    if (fill && !inside) v = fill[c]; /* mask < 0.5 */
                    (*out)->data[c * on + o] = v;
                }
                continue;
            }
            float x0 = floorf(ix), y0 = floorf(iy);
            float we = ix - x0, ww = 1.0f - we, ns = iy - y0, nn = 1.0f - ns;
            float wts[4] = {nn * ww, nn * we, ns * ww, ns * we};
            int xs[4] = {(int)x0, (int)x0 + 1, (int)x0, (int)x0 + 1};
            int ys[4] = {(int)y0, (int)y0, (int)y0 + 1, (int)y0 + 1};
            int ok[4];
            float mask = 0.0f;
            for (int k = 0; k < 4; k++) {
                ok[k] = isfinite(ix) && isfinite(iy) && xs[k] >= 0 && xs[k] < w && ys[k] >= 0 &&
                        ys[k] < h;
                mask += ok[k] ? wts[k] : 0.0f;
            }
            for (int c = 0; c < in->c; c++) {
                const float *d = in->data + c * n;
                float v = 0.0f;
                for (int k = 0; k < 4; k++)
                    v += (ok[k] ? d[(size_t)ys[k] * w + xs[k]] : 0.0f) * wts[k];
                if (fill) v = v * mask + (1.0f - mask) * fill[c];
                (*out)->data[c * on + o] = v;
            }
        }
    }
    if (u8)
        for (size_t i = 0; i < on * in->c; i++) (*out)->data[i] = nearbyintf((*out)->data[i]);
    return CV_OK;
}

/* ---- resize (torch.nn.functional.interpolate) ---- */

static double aa_linear(double x)
{
    x = fabs(x);
    return x < 1.0 ? 1.0 - x : 0.0;
}

static double aa_cubic(double x) /* Keys a = -0.5, as Pillow */
{
    const double a = -0.5;
    x = fabs(x);
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

static float cubic1(float x, float A)
{
    return ((A + 2) * x - (A + 3)) * x * x + 1;
}

static float cubic2(float x, float A)
{
    return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A;
}

/* Per output index: `taps` source indices (clamped) and weights. */
typedef struct {
    int taps;
    int *idx;
    float *wt;
} taps1d;

static int make_taps(int in, int out, cv_interp interp, int antialias, taps1d *t)
{
    float scale = (float)in / (float)out;
    if (interp == CV_INTERP_NEAREST)
        t->taps = 1;
    else if (antialias) {
        float support =
            (interp == CV_INTERP_BILINEAR ? 1.0f : 2.0f) * (scale >= 1.0f ? scale : 1.0f);
        t->taps = (int)ceilf(support) * 2 + 1;
    } else
        t->taps = interp == CV_INTERP_BILINEAR ? 2 : 4;
    t->idx = calloc((size_t)out * t->taps, sizeof *t->idx);
    t->wt = calloc((size_t)out * t->taps, sizeof *t->wt);
    if (!t->idx || !t->wt) return 0;
    for (int o = 0; o < out; o++) {
        int *ix = t->idx + (size_t)o * t->taps;
        float *w = t->wt + (size_t)o * t->taps;
        if (interp == CV_INTERP_NEAREST) {
            int64_t v = in == out ? o : out == 2 * in ? o >> 1 : (int64_t)floorf((float)o * scale);
            ix[0] = (int)(v < in - 1 ? v : in - 1);
            w[0] = 1.0f;
        } else if (antialias) {
            float interp_size = interp == CV_INTERP_BILINEAR ? 2.0f : 4.0f;
            float support = scale >= 1.0f ? interp_size * 0.5f * scale : interp_size * 0.5f;
            float center = scale * ((float)o + 0.5f), total = 0.0f;
            float invscale = scale >= 1.0f ? 1.0f / scale : 1.0f;
            int xmin = (int)(center - support + 0.5f);
            if (xmin < 0) xmin = 0;
            int xmax = (int)(center + support + 0.5f);
            if (xmax > in) xmax = in;
            int xs = xmax - xmin;
            for (int j = 0; j < xs && j < t->taps; j++) {
                float x = ((float)(j + xmin) - center + 0.5f) * invscale;
                w[j] = (float)(interp == CV_INTERP_BILINEAR ? aa_linear(x) : aa_cubic(x));
                ix[j] = xmin + j;
                total += w[j];
            }
            for (int j = 0; j < xs && j < t->taps; j++)
                if (total != 0.0f) w[j] /= total;
            for (int j = xs; j < t->taps; j++) ix[j] = xmin; /* weight 0 */
        } else if (interp == CV_INTERP_BILINEAR) {
            float real = scale * ((float)o + 0.5f) - 0.5f;
            if (real < 0) real = 0;
            int i0 = (int)real;
            float lambda = clampf(real - (float)i0, 0.0f, 1.0f);
            ix[0] = i0;
            ix[1] = i0 + (i0 < in - 1 ? 1 : 0);
            w[0] = 1.0f - lambda;
            w[1] = lambda;
        } else {
            float real = scale * ((float)o + 0.5f) - 0.5f, fl = floorf(real), x1 = real - fl;
            int i0 = (int)fl;
            const float A = -0.75f; /* PyTorch's bicubic without antialias */
            w[0] = cubic2(x1 + 1.0f, A);
            w[1] = cubic1(x1, A);
            w[2] = cubic1(1.0f - x1, A);
            w[3] = cubic2(1.0f - x1 + 1.0f, A);
            for (int k = 0; k < 4; k++) {
                int v = i0 - 1 + k;
                ix[k] = v < 0 ? 0 : v >= in ? in - 1 : v;
            }
        }
    }
    return 1;
}

cv_status tfk_resize(cv_ctx *ctx, const cv_planes *in, int oh, int ow, cv_interp interp,
                     int antialias, int u8, cv_planes **out)
{
    if (interp != CV_INTERP_NEAREST && interp != CV_INTERP_BILINEAR && interp != CV_INTERP_BICUBIC)
        return cv_fail(ctx, CV_ERR_INVALID, "resize: tensors support nearest, bilinear, bicubic");
    if (interp == CV_INTERP_NEAREST) antialias = 0;
    cv_status s = cv_planes_new(ctx, in->c, oh, ow, out);
    if (s) return s;
    taps1d tx = {0}, ty = {0};
    cv_planes *tmp = NULL;
    if (!make_taps(in->w, ow, interp, antialias, &tx) ||
        !make_taps(in->h, oh, interp, antialias, &ty)) {
        s = cv_fail(ctx, CV_ERR_NOMEM, "resize: out of memory");
        goto done;
    }
    size_t n = PLANE(in), on = (size_t)oh * ow;
    if (antialias) {
        /* separable: width first into a float buffer, then height (ATen's _aa kernels) */
        if ((s = cv_planes_new(ctx, in->c, in->h, ow, &tmp))) goto done;
        for (int c = 0; c < in->c; c++)
            for (int y = 0; y < in->h; y++) {
                const float *src = in->data + c * n + (size_t)y * in->w;
                float *dst = tmp->data + ((size_t)c * in->h + y) * ow;
                for (int x = 0; x < ow; x++) {
                    const int *ix = tx.idx + (size_t)x * tx.taps;
                    const float *w = tx.wt + (size_t)x * tx.taps;
                    float acc = src[ix[0]] * w[0];
                    for (int k = 1; k < tx.taps; k++) acc += src[ix[k]] * w[k];
                    dst[x] = acc;
                }
            }
        for (int c = 0; c < in->c; c++)
            for (int y = 0; y < oh; y++) {
                const int *iy = ty.idx + (size_t)y * ty.taps;
                const float *w = ty.wt + (size_t)y * ty.taps;
                float *dst = (*out)->data + c * on + (size_t)y * ow;
                const float *base = tmp->data + (size_t)c * in->h * ow;
                for (int x = 0; x < ow; x++) {
                    float acc = base[(size_t)iy[0] * ow + x] * w[0];
                    for (int k = 1; k < ty.taps; k++) acc += base[(size_t)iy[k] * ow + x] * w[k];
                    dst[x] = acc;
                }
            }
    } else {
        /* ATen's generic upsample loop: out = sum_i (sum_j x_ij * wx_j) * wy_i, left to right */
        for (int c = 0; c < in->c; c++)
            for (int y = 0; y < oh; y++) {
                const int *iy = ty.idx + (size_t)y * ty.taps;
                const float *wy = ty.wt + (size_t)y * ty.taps;
                float *dst = (*out)->data + c * on + (size_t)y * ow;
                for (int x = 0; x < ow; x++) {
                    const int *ix = tx.idx + (size_t)x * tx.taps;
                    const float *wx = tx.wt + (size_t)x * tx.taps;
                    float acc = 0.0f;
                    for (int i = 0; i < ty.taps; i++) {
                        const float *row = in->data + c * n + (size_t)iy[i] * in->w;
                        float t = row[ix[0]] * wx[0];
                        for (int j = 1; j < tx.taps; j++) t += row[ix[j]] * wx[j];
                        acc = i ? acc + t * wy[i] : t * wy[i];
                    }
                    dst[x] = acc;
                }
            }
    }
    if (u8)
        for (size_t i = 0; i < on * in->c; i++) {
            float v = (*out)->data[i];
            if (interp == CV_INTERP_BICUBIC) v = clampf(v, 0.0f, 255.0f);
            (*out)->data[i] = nearbyintf(v);
        }
done:
    free(tx.idx);
    free(tx.wt);
    free(ty.idx);
    free(ty.wt);
    cv_planes_free(tmp);
    if (s) {
        cv_planes_free(*out);
        *out = NULL;
    }
    return s;
}
