/* Reference kernels. Straightforward loops, parallel over the outermost independent dimension;
 * accumulation in float as PyTorch's CPU kernels do (double where a sum is long: none here). */
#include "backend/ref/kernels.h"

#include <math.h>
#include <string.h>

void ref_conv2d(const float *x, const float *w, const float *bias, float *y, const cv_shape4 *xs,
                const cv_shape4 *ys, int kh, int kw, const cv_attrs *a)
{
    int64_t N = xs->d[0], C = xs->d[1], H = xs->d[2], W = xs->d[3];
    int64_t O = ys->d[1], OH = ys->d[2], OW = ys->d[3];
    int64_t cg = C / a->groups, og = O / a->groups;
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t n = 0; n < N; n++)
        for (int64_t o = 0; o < O; o++) {
            float *yp = y + (n * O + o) * OH * OW;
            float b0 = bias ? bias[o] : 0.0f;
            for (int64_t i = 0; i < OH * OW; i++) yp[i] = b0;
            int64_t g = o / og;
            for (int64_t c = 0; c < cg; c++) {
                const float *xp = x + (n * C + g * cg + c) * H * W;
                for (int i = 0; i < kh; i++)
                    for (int j = 0; j < kw; j++) {
                        float wv = w[((o * cg + c) * kh + i) * kw + j];
                        for (int64_t oh = 0; oh < OH; oh++) {
                            int64_t ih = oh * a->sh - a->ph + (int64_t)i * a->dh;
                            if (ih < 0 || ih >= H) continue;
                            for (int64_t ow = 0; ow < OW; ow++) {
                                int64_t iw = ow * a->sw - a->pw + (int64_t)j * a->dw;
                                if (iw >= 0 && iw < W) yp[oh * OW + ow] += wv * xp[ih * W + iw];
                            }
                        }
                    }
            }
        }
}

void ref_batchnorm(const float *x, float *y, const cv_shape4 *s, const float *weight,
                   const float *bias, const float *mean, const float *var, float eps)
{
    int64_t N = s->d[0], C = s->d[1], HW = s->rank == 4 ? s->d[2] * s->d[3] : 1;
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t n = 0; n < N; n++)
        for (int64_t c = 0; c < C; c++) {
            float inv = 1.0f / sqrtf(var[c] + eps);
            const float *xp = x + (n * C + c) * HW;
            float *yp = y + (n * C + c) * HW;
            for (int64_t i = 0; i < HW; i++) yp[i] = (xp[i] - mean[c]) * inv * weight[c] + bias[c];
        }
}

float ref_act1(float v, cv_act act)
{
    switch (act) {
    case ACT_RELU:
        return v > 0 ? v : 0;
    case ACT_RELU6:
        return v < 0 ? 0 : v > 6 ? 6 : v;
    case ACT_HARDSWISH:
        return v <= -3 ? 0 : v >= 3 ? v : v * (v + 3) / 6;
    case ACT_HARDSIGMOID:
        return v <= -3 ? 0 : v >= 3 ? 1 : v / 6 + 0.5f;
    case ACT_SILU:
        return v / (1 + expf(-v));
    case ACT_GELU:
        return 0.5f * v * (1 + erff(v * (float)M_SQRT1_2));
    case ACT_SIGMOID:
        return 1 / (1 + expf(-v));
    default:
        return v;
    }
}

void ref_act(const float *x, float *y, int64_t n, cv_act act)
{
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) y[i] = ref_act1(x[i], act);
}

/* PyTorch's pooling windows: start may be negative (padding), end clipped to the padded size for
 * the average's divisor, then both clipped to the input. */
void ref_maxpool(const float *x, float *y, const cv_shape4 *xs, const cv_shape4 *ys,
                 const cv_attrs *a)
{
    int64_t NC = xs->d[0] * xs->d[1], H = xs->d[2], W = xs->d[3], OH = ys->d[2], OW = ys->d[3];
#pragma omp parallel for schedule(static)
    for (int64_t nc = 0; nc < NC; nc++)
        for (int64_t oh = 0; oh < OH; oh++)
            for (int64_t ow = 0; ow < OW; ow++) {
                float m = -INFINITY;
                for (int i = 0; i < a->kh; i++) {
                    int64_t ih = oh * a->sh - a->ph + (int64_t)i * a->dh;
                    if (ih < 0 || ih >= H) continue;
                    for (int j = 0; j < a->kw; j++) {
                        int64_t iw = ow * a->sw - a->pw + (int64_t)j * a->dw;
                        if (iw < 0 || iw >= W) continue;
                        float v = x[(nc * H + ih) * W + iw];
                        if (v > m || isnan(v)) m = v;
                    }
                }
                y[(nc * OH + oh) * OW + ow] = m;
            }
}

void ref_avgpool(const float *x, float *y, const cv_shape4 *xs, const cv_shape4 *ys,
                 const cv_attrs *a)
{
    int64_t NC = xs->d[0] * xs->d[1], H = xs->d[2], W = xs->d[3], OH = ys->d[2], OW = ys->d[3];
#pragma omp parallel for schedule(static)
    for (int64_t nc = 0; nc < NC; nc++)
        for (int64_t oh = 0; oh < OH; oh++)
            for (int64_t ow = 0; ow < OW; ow++) {
                int64_t h0 = oh * a->sh - a->ph, w0 = ow * a->sw - a->pw;
                int64_t h1 = h0 + a->kh < H + a->ph ? h0 + a->kh : H + a->ph;
                int64_t w1 = w0 + a->kw < W + a->pw ? w0 + a->kw : W + a->pw;
                int64_t padded = (h1 - h0) * (w1 - w0);
                if (h0 < 0) h0 = 0;
                if (w0 < 0) w0 = 0;
                if (h1 > H) h1 = H;
                if (w1 > W) w1 = W;
                float s = 0;
                for (int64_t ih = h0; ih < h1; ih++)
                    for (int64_t iw = w0; iw < w1; iw++) s += x[(nc * H + ih) * W + iw];
                int64_t div = a->count_include_pad ? padded : (h1 - h0) * (w1 - w0);
                y[(nc * OH + oh) * OW + ow] = s / (float)div;
            }
}

void ref_adaptive_avgpool(const float *x, float *y, const cv_shape4 *xs, const cv_shape4 *ys)
{
    int64_t NC = xs->d[0] * xs->d[1], H = xs->d[2], W = xs->d[3], OH = ys->d[2], OW = ys->d[3];
#pragma omp parallel for schedule(static)
    for (int64_t nc = 0; nc < NC; nc++)
        for (int64_t oh = 0; oh < OH; oh++) {
            int64_t h0 = oh * H / OH, h1 = ((oh + 1) * H + OH - 1) / OH;
            for (int64_t ow = 0; ow < OW; ow++) {
                int64_t w0 = ow * W / OW, w1 = ((ow + 1) * W + OW - 1) / OW;
                float s = 0;
                for (int64_t ih = h0; ih < h1; ih++)
                    for (int64_t iw = w0; iw < w1; iw++) s += x[(nc * H + ih) * W + iw];
                y[(nc * OH + oh) * OW + ow] = s / (float)((h1 - h0) * (w1 - w0));
            }
        }
}

void ref_linear(const float *x, const float *w, const float *bias, float *y, int64_t n, int64_t in,
                int64_t out)
{
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t i = 0; i < n; i++)
        for (int64_t o = 0; o < out; o++) {
            float s = bias ? bias[o] : 0.0f;
            for (int64_t k = 0; k < in; k++) s += x[i * in + k] * w[o * in + k];
            y[i * out + o] = s;
        }
}

void ref_binary(cv_op op, const float *a, const float *b, float *y, const cv_shape4 *as,
                const cv_shape4 *bs)
{
    int64_t n = shape_numel(as);
    int64_t hw = as->rank == 4 ? as->d[2] * as->d[3] : 1;
    int bcast = shape_numel(bs) != n; /* b is [N, C, 1, 1] */
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) {
        float bv = b[bcast ? i / hw : i];
        y[i] = op == OP_ADD ? a[i] + bv : a[i] * bv;
    }
}

void ref_concat(const float *const *xs, const cv_shape4 *shapes, int n, float *y)
{
    int64_t N = shapes[0].d[0], hw = shapes[0].d[2] * shapes[0].d[3];
    for (int64_t b = 0; b < N; b++)
        for (int k = 0; k < n; k++) {
            int64_t len = shapes[k].d[1] * hw;
            memcpy(y, xs[k] + b * len, (size_t)len * sizeof *y);
            y += len;
        }
}

void ref_softmax(const float *x, float *y, int64_t rows, int64_t cols)
{
    for (int64_t r = 0; r < rows; r++) {
        const float *xp = x + r * cols;
        float *yp = y + r * cols, m = -INFINITY, s = 0;
        for (int64_t i = 0; i < cols; i++) m = xp[i] > m ? xp[i] : m;
        for (int64_t i = 0; i < cols; i++) s += yp[i] = expf(xp[i] - m);
        for (int64_t i = 0; i < cols; i++) yp[i] /= s;
    }
}
