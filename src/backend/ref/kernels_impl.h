/* Reference kernels, forward and backward, written once over `real` (included by kernels.c for
 * float and for double: the double instances serve the finite-difference gradient checks).
 * Semantics are PyTorch's, including the edges: pooling windows, ceil_mode, ties in max pooling
 * (first maximum in scan order), activation derivatives at their kinks. Backward kernels
 * accumulate (+=) into their outputs, so that a value read by several nodes sums its gradients. */
#ifndef REAL
#error "define REAL and FN before including kernels_impl.h"
#endif

void FN(ref_conv2d)(const REAL *x, const REAL *w, const REAL *bias, REAL *y, const cv_shape4 *xs,
                    const cv_shape4 *ys, int kh, int kw, const cv_attrs *a)
{
    int64_t N = xs->d[0], C = xs->d[1], H = xs->d[2], W = xs->d[3];
    int64_t O = ys->d[1], OH = ys->d[2], OW = ys->d[3];
    int64_t cg = C / a->groups, og = O / a->groups;
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t n = 0; n < N; n++)
        for (int64_t o = 0; o < O; o++) {
            REAL *yp = y + (n * O + o) * OH * OW;
            REAL b0 = bias ? bias[o] : 0;
            for (int64_t i = 0; i < OH * OW; i++) yp[i] = b0;
            int64_t g = o / og;
            for (int64_t c = 0; c < cg; c++) {
                const REAL *xp = x + (n * C + g * cg + c) * H * W;
                for (int i = 0; i < kh; i++)
                    for (int j = 0; j < kw; j++) {
                        REAL wv = w[((o * cg + c) * kh + i) * kw + j];
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

/* dx += conv_transpose(dy, w); dw += correlate(x, dy); db += sum(dy). Any output may be NULL. */
void FN(ref_conv2d_backward)(const REAL *x, const REAL *w, const REAL *dy, REAL *dx, REAL *dw,
                             REAL *db, const cv_shape4 *xs, const cv_shape4 *ys, int kh, int kw,
                             const cv_attrs *a)
{
    int64_t N = xs->d[0], C = xs->d[1], H = xs->d[2], W = xs->d[3];
    int64_t O = ys->d[1], OH = ys->d[2], OW = ys->d[3];
    int64_t cg = C / a->groups, og = O / a->groups;
    if (dx) {
#pragma omp parallel for collapse(2) schedule(static)
        for (int64_t n = 0; n < N; n++)
            for (int64_t ci = 0; ci < C; ci++) {
                int64_t g = ci / cg, c = ci % cg;
                REAL *xp = dx + (n * C + ci) * H * W;
                for (int64_t o = g * og; o < (g + 1) * og; o++) {
                    const REAL *dyp = dy + (n * O + o) * OH * OW;
                    for (int i = 0; i < kh; i++)
                        for (int j = 0; j < kw; j++) {
                            REAL wv = w[((o * cg + c) * kh + i) * kw + j];
                            for (int64_t oh = 0; oh < OH; oh++) {
                                int64_t ih = oh * a->sh - a->ph + (int64_t)i * a->dh;
                                if (ih < 0 || ih >= H) continue;
                                for (int64_t ow = 0; ow < OW; ow++) {
                                    int64_t iw = ow * a->sw - a->pw + (int64_t)j * a->dw;
                                    if (iw >= 0 && iw < W)
                                        xp[ih * W + iw] += wv * dyp[oh * OW + ow];
                                }
                            }
                        }
                }
            }
    }
    if (dw || db) {
#pragma omp parallel for schedule(static)
        for (int64_t o = 0; o < O; o++) {
            int64_t g = o / og;
            for (int64_t n = 0; n < N; n++) {
                const REAL *dyp = dy + (n * O + o) * OH * OW;
                if (db)
                    for (int64_t k = 0; k < OH * OW; k++) db[o] += dyp[k];
                if (!dw) continue;
                for (int64_t c = 0; c < cg; c++) {
                    const REAL *xp = x + (n * C + g * cg + c) * H * W;
                    for (int i = 0; i < kh; i++)
                        for (int j = 0; j < kw; j++) {
                            REAL s = 0;
                            for (int64_t oh = 0; oh < OH; oh++) {
                                int64_t ih = oh * a->sh - a->ph + (int64_t)i * a->dh;
                                if (ih < 0 || ih >= H) continue;
                                for (int64_t ow = 0; ow < OW; ow++) {
                                    int64_t iw = ow * a->sw - a->pw + (int64_t)j * a->dw;
                                    if (iw >= 0 && iw < W) s += xp[ih * W + iw] * dyp[oh * OW + ow];
                                }
                            }
                            dw[((o * cg + c) * kh + i) * kw + j] += s;
                        }
                }
            }
        }
    }
}

/* Eval mode: normalise with the running statistics. Also the training-mode forward when given
 * the batch statistics (mean, var = biased batch variance). */
void FN(ref_batchnorm)(const REAL *x, REAL *y, const cv_shape4 *s, const REAL *weight,
                       const REAL *bias, const REAL *mean, const REAL *var, REAL eps)
{
    int64_t N = s->d[0], C = s->d[1], HW = s->rank == 4 ? s->d[2] * s->d[3] : 1;
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t n = 0; n < N; n++)
        for (int64_t c = 0; c < C; c++) {
            REAL inv = 1 / sqrt(var[c] + eps);
            const REAL *xp = x + (n * C + c) * HW;
            REAL *yp = y + (n * C + c) * HW;
            for (int64_t i = 0; i < HW; i++) yp[i] = (xp[i] - mean[c]) * inv * weight[c] + bias[c];
        }
}

/* Batch statistics per channel: mean and biased variance (two-pass, accumulated in double). */
void FN(ref_batch_stats)(const REAL *x, const cv_shape4 *s, REAL *mean, REAL *var)
{
    int64_t N = s->d[0], C = s->d[1], HW = s->rank == 4 ? s->d[2] * s->d[3] : 1;
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < C; c++) {
        double m = 0, v = 0;
        for (int64_t n = 0; n < N; n++)
            for (int64_t i = 0; i < HW; i++) m += x[(n * C + c) * HW + i];
        m /= (double)(N * HW);
        for (int64_t n = 0; n < N; n++)
            for (int64_t i = 0; i < HW; i++) {
                double d = x[(n * C + c) * HW + i] - m;
                v += d * d;
            }
        mean[c] = (REAL)m;
        var[c] = (REAL)(v / (double)(N * HW));
    }
}

/* Training-mode BN backward with batch statistics (mean, biased var):
 * dx = gamma*inv/M * (M*dy - sum(dy) - xhat*sum(dy*xhat)), dgamma = sum(dy*xhat), dbeta = sum(dy)
 */
void FN(ref_batchnorm_backward)(const REAL *x, const REAL *dy, REAL *dx, REAL *dweight, REAL *dbias,
                                const cv_shape4 *s, const REAL *weight, const REAL *mean,
                                const REAL *var, REAL eps)
{
    int64_t N = s->d[0], C = s->d[1], HW = s->rank == 4 ? s->d[2] * s->d[3] : 1;
    double M = (double)(N * HW);
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < C; c++) {
        double inv = 1 / sqrt((double)var[c] + eps), sdy = 0, sdyx = 0;
        for (int64_t n = 0; n < N; n++)
            for (int64_t i = 0; i < HW; i++) {
                int64_t k = (n * C + c) * HW + i;
                sdy += dy[k];
                sdyx += dy[k] * (x[k] - mean[c]) * inv;
            }
        if (dweight) dweight[c] += (REAL)sdyx;
        if (dbias) dbias[c] += (REAL)sdy;
        if (!dx) continue;
        for (int64_t n = 0; n < N; n++)
            for (int64_t i = 0; i < HW; i++) {
                int64_t k = (n * C + c) * HW + i;
                double xhat = (x[k] - mean[c]) * inv;
                dx[k] += (REAL)(weight[c] * inv / M * (M * dy[k] - sdy - xhat * sdyx));
            }
    }
}

REAL FN(ref_act1)(REAL v, cv_act act)
{
    switch (act) {
    case ACT_RELU:
        return v > 0 ? v : 0;
    case ACT_RELU6:
        return v < 0 ? 0 : v > 6 ? 6 : v;
    case ACT_HARDSWISH:
        return v <= -3 ? 0 : v >= 3 ? v : v * (v + 3) / 6;
    case ACT_HARDSIGMOID:
        return v <= -3 ? 0 : v >= 3 ? 1 : v / 6 + (REAL)0.5;
    case ACT_SILU:
        return v / (1 + exp(-v));
    case ACT_GELU:
        return (REAL)0.5 * v * (1 + erf(v * (REAL)M_SQRT1_2));
    case ACT_SIGMOID:
        return 1 / (1 + exp(-v));
    case ACT_TANH:
        return tanh(v);
    default:
        return v;
    }
}

/* d act / d x at x, with PyTorch's choices at the kinks (relu'(0) = 0, relu6'(0) = relu6'(6) = 0,
 * hardswish'(3) = 1.5, hardsigmoid'(+-3) = 0). */
REAL FN(ref_act_grad1)(REAL v, cv_act act)
{
    switch (act) {
    case ACT_RELU:
        return v > 0;
    case ACT_RELU6:
        return v > 0 && v < 6;
    case ACT_HARDSWISH:
        return v < -3 ? 0 : v <= 3 ? v / 3 + (REAL)0.5 : 1;
    case ACT_HARDSIGMOID:
        return v > -3 && v < 3 ? (REAL)1 / 6 : 0;
    case ACT_SILU: {
        REAL s = 1 / (1 + exp(-v));
        return s * (1 + v * (1 - s));
    }
    case ACT_GELU:
        return (REAL)0.5 * (1 + erf(v * (REAL)M_SQRT1_2)) +
               v * exp(-v * v / 2) * (REAL)(0.5 * M_2_SQRTPI * M_SQRT1_2);
    case ACT_SIGMOID: {
        REAL s = 1 / (1 + exp(-v));
        return s * (1 - s);
    }
    case ACT_TANH: {
        REAL t = tanh(v);
        return 1 - t * t;
    }
    default:
        return 1;
    }
}

void FN(ref_act)(const REAL *x, REAL *y, int64_t n, cv_act act)
{
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) y[i] = FN(ref_act1)(x[i], act);
}

void FN(ref_act_backward)(const REAL *x, const REAL *dy, REAL *dx, int64_t n, cv_act act)
{
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) dx[i] += dy[i] * FN(ref_act_grad1)(x[i], act);
}

/* The index (into the plane) of each max-pool window's first maximum, or -1 for an empty window.
 * Shared by the forward and the backward so that ties route the gradient as PyTorch does. */
static int64_t FN(maxpool_argmax)(const REAL *xp, int64_t H, int64_t W, int64_t oh, int64_t ow,
                                  const cv_attrs *a)
{
    int64_t best = -1;
    REAL m = 0;
    for (int i = 0; i < a->kh; i++) {
        int64_t ih = oh * a->sh - a->ph + (int64_t)i * a->dh;
        if (ih < 0 || ih >= H) continue;
        for (int j = 0; j < a->kw; j++) {
            int64_t iw = ow * a->sw - a->pw + (int64_t)j * a->dw;
            if (iw < 0 || iw >= W) continue;
            REAL v = xp[ih * W + iw];
            if (best < 0 || v > m || isnan(v)) best = ih * W + iw, m = v;
            if (isnan(v)) return best;
        }
    }
    return best;
}

void FN(ref_maxpool)(const REAL *x, REAL *y, const cv_shape4 *xs, const cv_shape4 *ys,
                     const cv_attrs *a)
{
    int64_t NC = xs->d[0] * xs->d[1], H = xs->d[2], W = xs->d[3], OH = ys->d[2], OW = ys->d[3];
#pragma omp parallel for schedule(static)
    for (int64_t nc = 0; nc < NC; nc++)
        for (int64_t oh = 0; oh < OH; oh++)
            for (int64_t ow = 0; ow < OW; ow++) {
                int64_t k = FN(maxpool_argmax)(x + nc * H * W, H, W, oh, ow, a);
                y[(nc * OH + oh) * OW + ow] = k < 0 ? -INFINITY : x[nc * H * W + k];
            }
}

void FN(ref_maxpool_backward)(const REAL *x, const REAL *dy, REAL *dx, const cv_shape4 *xs,
                              const cv_shape4 *ys, const cv_attrs *a)
{
    int64_t NC = xs->d[0] * xs->d[1], H = xs->d[2], W = xs->d[3], OH = ys->d[2], OW = ys->d[3];
#pragma omp parallel for schedule(static)
    for (int64_t nc = 0; nc < NC; nc++)
        for (int64_t oh = 0; oh < OH; oh++)
            for (int64_t ow = 0; ow < OW; ow++) {
                int64_t k = FN(maxpool_argmax)(x + nc * H * W, H, W, oh, ow, a);
                if (k >= 0) dx[nc * H * W + k] += dy[(nc * OH + oh) * OW + ow];
            }
}

/* PyTorch's average-pool window: start may be negative (padding); the divisor with
 * count_include_pad counts the window clipped to the padded input; then clipped to the input. */
static int64_t FN(avg_window)(int64_t o, int s, int p, int k, int64_t in, int64_t *lo, int64_t *hi)
{
    int64_t a = o * s - p, b = a + k < in + p ? a + k : in + p, padded = b - a;
    *lo = a < 0 ? 0 : a;
    *hi = b > in ? in : b;
    return padded;
}

void FN(ref_avgpool)(const REAL *x, REAL *y, const cv_shape4 *xs, const cv_shape4 *ys,
                     const cv_attrs *a)
{
    int64_t NC = xs->d[0] * xs->d[1], H = xs->d[2], W = xs->d[3], OH = ys->d[2], OW = ys->d[3];
#pragma omp parallel for schedule(static)
    for (int64_t nc = 0; nc < NC; nc++)
        for (int64_t oh = 0; oh < OH; oh++)
            for (int64_t ow = 0; ow < OW; ow++) {
                int64_t h0, h1, w0, w1;
                int64_t ph = FN(avg_window)(oh, a->sh, a->ph, a->kh, H, &h0, &h1);
                int64_t pw = FN(avg_window)(ow, a->sw, a->pw, a->kw, W, &w0, &w1);
                REAL s = 0;
                for (int64_t ih = h0; ih < h1; ih++)
                    for (int64_t iw = w0; iw < w1; iw++) s += x[(nc * H + ih) * W + iw];
                int64_t div = a->count_include_pad ? ph * pw : (h1 - h0) * (w1 - w0);
                y[(nc * OH + oh) * OW + ow] = s / (REAL)div;
            }
}

void FN(ref_avgpool_backward)(const REAL *dy, REAL *dx, const cv_shape4 *xs, const cv_shape4 *ys,
                              const cv_attrs *a)
{
    int64_t NC = xs->d[0] * xs->d[1], H = xs->d[2], W = xs->d[3], OH = ys->d[2], OW = ys->d[3];
#pragma omp parallel for schedule(static)
    for (int64_t nc = 0; nc < NC; nc++)
        for (int64_t oh = 0; oh < OH; oh++)
            for (int64_t ow = 0; ow < OW; ow++) {
                int64_t h0, h1, w0, w1;
                int64_t ph = FN(avg_window)(oh, a->sh, a->ph, a->kh, H, &h0, &h1);
                int64_t pw = FN(avg_window)(ow, a->sw, a->pw, a->kw, W, &w0, &w1);
                int64_t div = a->count_include_pad ? ph * pw : (h1 - h0) * (w1 - w0);
                REAL g = dy[(nc * OH + oh) * OW + ow] / (REAL)div;
                for (int64_t ih = h0; ih < h1; ih++)
                    for (int64_t iw = w0; iw < w1; iw++) dx[(nc * H + ih) * W + iw] += g;
            }
}

/* Adaptive pooling windows: [floor(i*in/out), ceil((i+1)*in/out)). */
void FN(ref_adaptive_avgpool)(const REAL *x, REAL *y, const cv_shape4 *xs, const cv_shape4 *ys)
{
    int64_t NC = xs->d[0] * xs->d[1], H = xs->d[2], W = xs->d[3], OH = ys->d[2], OW = ys->d[3];
#pragma omp parallel for schedule(static)
    for (int64_t nc = 0; nc < NC; nc++)
        for (int64_t oh = 0; oh < OH; oh++) {
            int64_t h0 = oh * H / OH, h1 = ((oh + 1) * H + OH - 1) / OH;
            for (int64_t ow = 0; ow < OW; ow++) {
                int64_t w0 = ow * W / OW, w1 = ((ow + 1) * W + OW - 1) / OW;
                REAL s = 0;
                for (int64_t ih = h0; ih < h1; ih++)
                    for (int64_t iw = w0; iw < w1; iw++) s += x[(nc * H + ih) * W + iw];
                y[(nc * OH + oh) * OW + ow] = s / (REAL)((h1 - h0) * (w1 - w0));
            }
        }
}

void FN(ref_adaptive_avgpool_backward)(const REAL *dy, REAL *dx, const cv_shape4 *xs,
                                       const cv_shape4 *ys)
{
    int64_t NC = xs->d[0] * xs->d[1], H = xs->d[2], W = xs->d[3], OH = ys->d[2], OW = ys->d[3];
#pragma omp parallel for schedule(static)
    for (int64_t nc = 0; nc < NC; nc++)
        for (int64_t oh = 0; oh < OH; oh++) {
            int64_t h0 = oh * H / OH, h1 = ((oh + 1) * H + OH - 1) / OH;
            for (int64_t ow = 0; ow < OW; ow++) {
                int64_t w0 = ow * W / OW, w1 = ((ow + 1) * W + OW - 1) / OW;
                REAL g = dy[(nc * OH + oh) * OW + ow] / (REAL)((h1 - h0) * (w1 - w0));
                for (int64_t ih = h0; ih < h1; ih++)
                    for (int64_t iw = w0; iw < w1; iw++) dx[(nc * H + ih) * W + iw] += g;
            }
        }
}

void FN(ref_linear)(const REAL *x, const REAL *w, const REAL *bias, REAL *y, int64_t n, int64_t in,
                    int64_t out)
{
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t i = 0; i < n; i++)
        for (int64_t o = 0; o < out; o++) {
            REAL s = bias ? bias[o] : 0;
            for (int64_t k = 0; k < in; k++) s += x[i * in + k] * w[o * in + k];
            y[i * out + o] = s;
        }
}

void FN(ref_linear_backward)(const REAL *x, const REAL *w, const REAL *dy, REAL *dx, REAL *dw,
                             REAL *db, int64_t n, int64_t in, int64_t out)
{
    if (dx) {
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < n; i++)
            for (int64_t o = 0; o < out; o++)
                for (int64_t k = 0; k < in; k++) dx[i * in + k] += dy[i * out + o] * w[o * in + k];
    }
#pragma omp parallel for schedule(static)
    for (int64_t o = 0; o < out; o++)
        for (int64_t i = 0; i < n; i++) {
            if (db) db[o] += dy[i * out + o];
            if (dw)
                for (int64_t k = 0; k < in; k++) dw[o * in + k] += dy[i * out + o] * x[i * in + k];
        }
}

void FN(ref_binary)(cv_op op, const REAL *a, const REAL *b, REAL *y, const cv_shape4 *as,
                    const cv_shape4 *bs)
{
    int64_t n = shape_numel(as);
    int64_t hw = as->rank == 4 ? as->d[2] * as->d[3] : 1;
    int bcast = shape_numel(bs) != n; /* b is [N, C, 1, 1] */
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) {
        REAL bv = b[bcast ? i / hw : i];
        y[i] = op == OP_ADD ? a[i] + bv : a[i] * bv;
    }
}

/* da += dy (add) or dy*b (mul); db += dy or dy*a, summed over H, W when b was broadcast. */
void FN(ref_binary_backward)(cv_op op, const REAL *a, const REAL *b, const REAL *dy, REAL *da,
                             REAL *db, const cv_shape4 *as, const cv_shape4 *bs)
{
    int64_t n = shape_numel(as), hw = as->rank == 4 ? as->d[2] * as->d[3] : 1;
    int bcast = shape_numel(bs) != n;
    if (da)
        for (int64_t i = 0; i < n; i++)
            da[i] += op == OP_ADD ? dy[i] : dy[i] * b[bcast ? i / hw : i];
    if (db && !bcast)
        for (int64_t i = 0; i < n; i++) db[i] += op == OP_ADD ? dy[i] : dy[i] * a[i];
    if (db && bcast)
        for (int64_t j = 0; j < n / hw; j++) {
            REAL s = 0;
            for (int64_t k = 0; k < hw; k++)
                s += op == OP_ADD ? dy[j * hw + k] : dy[j * hw + k] * a[j * hw + k];
            db[j] += s;
        }
}

void FN(ref_softmax)(const REAL *x, REAL *y, int64_t rows, int64_t cols)
{
    for (int64_t r = 0; r < rows; r++) {
        const REAL *xp = x + r * cols;
        REAL *yp = y + r * cols, m = -INFINITY, s = 0;
        for (int64_t i = 0; i < cols; i++) m = xp[i] > m ? xp[i] : m;
        for (int64_t i = 0; i < cols; i++) s += yp[i] = exp(xp[i] - m);
        for (int64_t i = 0; i < cols; i++) yp[i] /= s;
    }
}

void FN(ref_softmax_backward)(const REAL *y, const REAL *dy, REAL *dx, int64_t rows, int64_t cols)
{
    for (int64_t r = 0; r < rows; r++) {
        REAL s = 0;
        for (int64_t i = 0; i < cols; i++) s += dy[r * cols + i] * y[r * cols + i];
        for (int64_t i = 0; i < cols; i++)
            dx[r * cols + i] += y[r * cols + i] * (dy[r * cols + i] - s);
    }
}

/* Channels [c0, c0 + ys.C) of x. */
void FN(ref_slice)(const REAL *x, REAL *y, const cv_shape4 *xs, const cv_shape4 *ys, int c0)
{
    int64_t hw = xs->d[2] * xs->d[3], C = xs->d[1], K = ys->d[1];
    for (int64_t n = 0; n < xs->d[0]; n++)
        memcpy(y + n * K * hw, x + (n * C + c0) * hw, (size_t)(K * hw) * sizeof *y);
}

void FN(ref_slice_backward)(const REAL *dy, REAL *dx, const cv_shape4 *xs, const cv_shape4 *ys,
                            int c0)
{
    int64_t hw = xs->d[2] * xs->d[3], C = xs->d[1], K = ys->d[1];
    for (int64_t n = 0; n < xs->d[0]; n++)
        for (int64_t i = 0; i < K * hw; i++) dx[(n * C + c0) * hw + i] += dy[n * K * hw + i];
}

/* y channel j*g + i = x channel i*(C/g) + j: view(N, g, C/g, H, W).transpose(1, 2). */
void FN(ref_shuffle)(const REAL *x, REAL *y, const cv_shape4 *s, int groups)
{
    int64_t hw = s->d[2] * s->d[3], C = s->d[1], cpg = C / groups;
    for (int64_t n = 0; n < s->d[0]; n++)
        for (int64_t i = 0; i < groups; i++)
            for (int64_t j = 0; j < cpg; j++)
                memcpy(y + (n * C + j * groups + i) * hw, x + (n * C + i * cpg + j) * hw,
                       (size_t)hw * sizeof *y);
}

void FN(ref_shuffle_backward)(const REAL *dy, REAL *dx, const cv_shape4 *s, int groups)
{
    int64_t hw = s->d[2] * s->d[3], C = s->d[1], cpg = C / groups;
    for (int64_t n = 0; n < s->d[0]; n++)
        for (int64_t i = 0; i < groups; i++)
            for (int64_t j = 0; j < cpg; j++)
                for (int64_t k = 0; k < hw; k++)
                    dx[(n * C + i * cpg + j) * hw + k] += dy[(n * C + j * groups + i) * hw + k];
}

/* y = x * scale[c] + shift[c] (constants); backward dx += dy * scale[c]. */
void FN(ref_affine)(const REAL *x, REAL *y, const cv_shape4 *s, const float *scale,
                    const float *shift)
{
    int64_t hw = s->d[2] * s->d[3], C = s->d[1];
    for (int64_t n = 0; n < s->d[0]; n++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t k = 0; k < hw; k++)
                y[(n * C + c) * hw + k] = x[(n * C + c) * hw + k] * (REAL)scale[c] + (REAL)shift[c];
}

void FN(ref_affine_backward)(const REAL *dy, REAL *dx, const cv_shape4 *s, const float *scale)
{
    int64_t hw = s->d[2] * s->d[3], C = s->d[1];
    for (int64_t n = 0; n < s->d[0]; n++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t k = 0; k < hw; k++)
                dx[(n * C + c) * hw + k] += dy[(n * C + c) * hw + k] * (REAL)scale[c];
}

/* Mean and 1 / sqrt(biased variance + eps) of the C values xp[c * HW]. */
static inline double FN(ln_stats)(const REAL *xp, int64_t C, int64_t HW, float eps, double *mean)
{
    double m = 0, v = 0;
    for (int64_t c = 0; c < C; c++) m += xp[c * HW];
    m /= (double)C;
    for (int64_t c = 0; c < C; c++) v += (xp[c * HW] - m) * (xp[c * HW] - m);
    *mean = m;
    return 1 / sqrt(v / (double)C + eps);
}

/* LayerNorm over the C channels at each position of [N, C, H, W] (or the features of [N, C]),
 * biased variance, as F.layer_norm on the channels-last view. */
void FN(ref_layernorm)(const REAL *x, REAL *y, const cv_shape4 *s, const REAL *weight,
                       const REAL *bias, float eps)
{
    int64_t N = s->d[0], C = s->d[1], HW = s->rank == 4 ? s->d[2] * s->d[3] : 1;
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t n = 0; n < N; n++)
        for (int64_t p = 0; p < HW; p++) {
            const REAL *xp = x + n * C * HW + p;
            REAL *yp = y + n * C * HW + p;
            double m, inv = FN(ln_stats)(xp, C, HW, eps, &m);
            for (int64_t c = 0; c < C; c++)
                yp[c * HW] = (REAL)((xp[c * HW] - m) * inv * weight[c] + bias[c]);
        }
}

/* dx = inv/C * (C*g - sum(g) - xhat*sum(g*xhat)) with g = dy*weight; dweight += dy*xhat,
 * dbias += dy. Any output may be NULL. */
void FN(ref_layernorm_backward)(const REAL *x, const REAL *dy, REAL *dx, REAL *dweight, REAL *dbias,
                                const cv_shape4 *s, const REAL *weight, float eps)
{
    int64_t N = s->d[0], C = s->d[1], HW = s->rank == 4 ? s->d[2] * s->d[3] : 1;
    for (int64_t n = 0; n < N; n++)
        for (int64_t p = 0; p < HW; p++) {
            const REAL *xp = x + n * C * HW + p, *gp = dy + n * C * HW + p;
            double m, inv = FN(ln_stats)(xp, C, HW, eps, &m), sg = 0, sgx = 0;
            for (int64_t c = 0; c < C; c++) {
                double xhat = (xp[c * HW] - m) * inv, g = gp[c * HW] * (double)weight[c];
                sg += g, sgx += g * xhat;
                if (dweight) dweight[c] += (REAL)(gp[c * HW] * xhat);
                if (dbias) dbias[c] += gp[c * HW];
            }
            if (!dx) continue;
            for (int64_t c = 0; c < C; c++) {
                double xhat = (xp[c * HW] - m) * inv, g = gp[c * HW] * (double)weight[c];
                dx[n * C * HW + p + c * HW] +=
                    (REAL)(inv / (double)C * ((double)C * g - sg - xhat * sgx));
            }
        }
}

/* y = x * scale[c]; backward dx += dy * scale[c], dscale[c] += sum(dy * x). */
void FN(ref_channel_scale)(const REAL *x, REAL *y, const cv_shape4 *s, const REAL *scale)
{
    int64_t hw = s->rank == 4 ? s->d[2] * s->d[3] : 1, C = s->d[1];
    for (int64_t n = 0; n < s->d[0]; n++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t k = 0; k < hw; k++)
                y[(n * C + c) * hw + k] = x[(n * C + c) * hw + k] * scale[c];
}

void FN(ref_channel_scale_backward)(const REAL *x, const REAL *dy, REAL *dx, REAL *dscale,
                                    const cv_shape4 *s, const REAL *scale)
{
    int64_t hw = s->rank == 4 ? s->d[2] * s->d[3] : 1, C = s->d[1];
    for (int64_t n = 0; n < s->d[0]; n++)
        for (int64_t c = 0; c < C; c++) {
            REAL acc = 0;
            for (int64_t k = 0; k < hw; k++) {
                int64_t i = (n * C + c) * hw + k;
                if (dx) dx[i] += dy[i] * scale[c];
                acc += dy[i] * x[i];
            }
            if (dscale) dscale[c] += acc;
        }
}

/* ViT's token sequence: y[n, :, 0] = cls + pos[0], y[n, :, 1 + l] = x[n, :, l] + pos[1 + l] with
 * x's h*w patches in row-major order; pos is [tokens, D] (token-major), y is [N, D, tokens]. */
void FN(ref_tokens)(const REAL *x, REAL *y, const cv_shape4 *xs, const REAL *cls, const REAL *pos)
{
    int64_t N = xs->d[0], D = xs->d[1], L = xs->d[2] * xs->d[3], T = L + 1;
    for (int64_t n = 0; n < N; n++)
        for (int64_t d = 0; d < D; d++) {
            REAL *yp = y + (n * D + d) * T;
            yp[0] = cls[d] + pos[d];
            for (int64_t l = 0; l < L; l++)
                yp[1 + l] = x[(n * D + d) * L + l] + pos[(1 + l) * D + d];
        }
}

void FN(ref_tokens_backward)(const REAL *dy, REAL *dx, REAL *dcls, REAL *dpos, const cv_shape4 *xs)
{
    int64_t N = xs->d[0], D = xs->d[1], L = xs->d[2] * xs->d[3], T = L + 1;
    for (int64_t n = 0; n < N; n++)
        for (int64_t d = 0; d < D; d++) {
            const REAL *gp = dy + (n * D + d) * T;
            if (dcls) dcls[d] += gp[0];
            for (int64_t t = 0; dpos && t < T; t++) dpos[t * D + d] += gp[t];
            for (int64_t l = 0; dx && l < L; l++) dx[(n * D + d) * L + l] += gp[1 + l];
        }
}

/* Row i of softmax((q s) k^T) before normalisation, for q and k [hd, L]: p[j] = exp(a_ij - max
 * a_i); returns the sum of p. */
static inline REAL FN(attention_row)(const REAL *q, const REAL *k, int64_t i, int64_t L, int64_t hd,
                                     REAL s, REAL *p)
{
    REAL m = -INFINITY, sum = 0;
    for (int64_t j = 0; j < L; j++) {
        REAL a = 0;
        for (int64_t c = 0; c < hd; c++) a += q[c * L + i] * s * k[c * L + j];
        p[j] = a;
        m = a > m ? a : m;
    }
    for (int64_t j = 0; j < L; j++) sum += p[j] = exp(p[j] - m);
    return sum;
}

/* Multi-head self-attention core on qkv [N, 3D, L] (q, k, v stacked along channels; head h owns
 * channels [h*hd, (h+1)*hd) of each): y[N, D, L] = softmax((q / sqrt(hd)) k^T) v per head, as
 * torch's multi_head_attention_forward computes it. */
void FN(ref_attention)(const REAL *qkv, REAL *y, const cv_shape4 *xs, int heads)
{
    int64_t N = xs->d[0], D = xs->d[1] / 3, L = xs->d[2], hd = D / heads;
    REAL s = (REAL)(1 / sqrt((double)hd));
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t n = 0; n < N; n++)
        for (int64_t h = 0; h < heads; h++) {
            const REAL *q = qkv + (n * 3 * D + h * hd) * L, *k = q + D * L, *v = k + D * L;
            REAL *yp = y + (n * D + h * hd) * L, *p = malloc((size_t)L * sizeof *p);
            for (int64_t i = 0; p && i < L; i++) {
                REAL sum = FN(attention_row)(q, k, i, L, hd, s, p);
                for (int64_t c = 0; c < hd; c++) {
                    REAL o = 0;
                    for (int64_t j = 0; j < L; j++) o += p[j] * v[c * L + j];
                    yp[c * L + i] = o / sum;
                }
            }
            free(p);
        }
}

/* With P = softmax(S), S = (q s) k^T: dv = P^T dy, dP = dy v^T, dS = P (dP - rowsum(dP P)),
 * dq = s dS k, dk = s dS^T q. Recomputes P row by row. */
void FN(ref_attention_backward)(const REAL *qkv, const REAL *dy, REAL *dqkv, const cv_shape4 *xs,
                                int heads)
{
    int64_t N = xs->d[0], D = xs->d[1] / 3, L = xs->d[2], hd = D / heads;
    REAL s = (REAL)(1 / sqrt((double)hd));
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t n = 0; n < N; n++)
        for (int64_t h = 0; h < heads; h++) {
            const REAL *q = qkv + (n * 3 * D + h * hd) * L, *k = q + D * L, *v = k + D * L;
            const REAL *g = dy + (n * D + h * hd) * L;
            REAL *dq = dqkv + (n * 3 * D + h * hd) * L, *dk = dq + D * L, *dv = dk + D * L;
            REAL *p = malloc((size_t)L * sizeof *p), *dp = malloc((size_t)L * sizeof *dp);
            for (int64_t i = 0; p && dp && i < L; i++) {
                REAL sum = FN(attention_row)(q, k, i, L, hd, s, p), dot = 0;
                for (int64_t j = 0; j < L; j++) {
                    p[j] /= sum;
                    REAL a = 0;
                    for (int64_t c = 0; c < hd; c++) a += g[c * L + i] * v[c * L + j];
                    dp[j] = a;
                    dot += a * p[j];
                }
                for (int64_t j = 0; j < L; j++) {
                    REAL ds = p[j] * (dp[j] - dot) * s;
                    for (int64_t c = 0; c < hd; c++) {
                        dv[c * L + j] += p[j] * g[c * L + i];
                        dq[c * L + i] += ds * k[c * L + j];
                        dk[c * L + j] += ds * q[c * L + i];
                    }
                }
            }
            free(p), free(dp);
        }
}

void FN(ref_take)(const REAL *x, REAL *y, const cv_shape4 *xs, int token)
{
    int64_t ND = xs->d[0] * xs->d[1], L = xs->d[2];
    for (int64_t i = 0; i < ND; i++) y[i] = x[i * L + token];
}

void FN(ref_take_backward)(const REAL *dy, REAL *dx, const cv_shape4 *xs, int token)
{
    int64_t ND = xs->d[0] * xs->d[1], L = xs->d[2];
    for (int64_t i = 0; i < ND; i++) dx[i * L + token] += dy[i];
}

/* Zero padding at the bottom/right (pad) and its inverse (crop): y is the top-left part of the
 * larger of the two. */
void FN(ref_pad)(const REAL *x, REAL *y, const cv_shape4 *xs, const cv_shape4 *ys)
{
    int64_t NC = xs->d[0] * xs->d[1], H = xs->d[2], W = xs->d[3], OH = ys->d[2], OW = ys->d[3];
    for (int64_t i = 0; i < NC; i++)
        for (int64_t h = 0; h < OH; h++)
            for (int64_t w = 0; w < OW; w++)
                y[(i * OH + h) * OW + w] = h < H && w < W ? x[(i * H + h) * W + w] : 0;
}

void FN(ref_pad_backward)(const REAL *dy, REAL *dx, const cv_shape4 *xs, const cv_shape4 *ys)
{
    int64_t NC = xs->d[0] * xs->d[1], H = xs->d[2], W = xs->d[3], OH = ys->d[2], OW = ys->d[3];
    for (int64_t i = 0; i < NC; i++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t w = 0; w < W; w++) dx[(i * H + h) * W + w] += dy[(i * OH + h) * OW + w];
}

void FN(ref_crop)(const REAL *x, REAL *y, const cv_shape4 *xs, const cv_shape4 *ys)
{
    int64_t NC = xs->d[0] * xs->d[1], W = xs->d[3], H = xs->d[2], OH = ys->d[2], OW = ys->d[3];
    for (int64_t i = 0; i < NC; i++)
        for (int64_t h = 0; h < OH; h++)
            for (int64_t w = 0; w < OW; w++) y[(i * OH + h) * OW + w] = x[(i * H + h) * W + w];
}

void FN(ref_crop_backward)(const REAL *dy, REAL *dx, const cv_shape4 *xs, const cv_shape4 *ys)
{
    int64_t NC = xs->d[0] * xs->d[1], W = xs->d[3], H = xs->d[2], OH = ys->d[2], OW = ys->d[3];
    for (int64_t i = 0; i < NC; i++)
        for (int64_t h = 0; h < OH; h++)
            for (int64_t w = 0; w < OW; w++) dx[(i * H + h) * W + w] += dy[(i * OH + h) * OW + w];
}

/* Patch merging: channel block k of y holds pixel (2i + dy_k, 2j + dx_k) with (dy, dx) =
 * (0,0), (1,0), (0,1), (1,1), zero outside x (odd sizes). */
static const int FN(merge_dy)[4] = {0, 1, 0, 1}, FN(merge_dx)[4] = {0, 0, 1, 1};

void FN(ref_merge)(const REAL *x, REAL *y, const cv_shape4 *xs, const cv_shape4 *ys)
{
    int64_t N = xs->d[0], C = xs->d[1], H = xs->d[2], W = xs->d[3], OH = ys->d[2], OW = ys->d[3];
    for (int64_t n = 0; n < N; n++)
        for (int k = 0; k < 4; k++)
            for (int64_t c = 0; c < C; c++)
                for (int64_t i = 0; i < OH; i++)
                    for (int64_t j = 0; j < OW; j++) {
                        int64_t h = 2 * i + FN(merge_dy)[k], w = 2 * j + FN(merge_dx)[k];
                        y[((n * 4 * C + k * C + c) * OH + i) * OW + j] =
                            h < H && w < W ? x[((n * C + c) * H + h) * W + w] : 0;
                    }
}

void FN(ref_merge_backward)(const REAL *dy, REAL *dx, const cv_shape4 *xs, const cv_shape4 *ys)
{
    int64_t N = xs->d[0], C = xs->d[1], H = xs->d[2], W = xs->d[3], OH = ys->d[2], OW = ys->d[3];
    for (int64_t n = 0; n < N; n++)
        for (int k = 0; k < 4; k++)
            for (int64_t c = 0; c < C; c++)
                for (int64_t i = 0; i < OH; i++)
                    for (int64_t j = 0; j < OW; j++) {
                        int64_t h = 2 * i + FN(merge_dy)[k], w = 2 * j + FN(merge_dx)[k];
                        if (h < H && w < W)
                            dx[((n * C + c) * H + h) * W + w] +=
                                dy[((n * 4 * C + k * C + c) * OH + i) * OW + j];
                    }
}

/* Swin's shifted-window attention on qkv [N, 3C, H, W]. The map is rolled up/left by the shift
 * (zeroed along a side no larger than the window), cut into w x w windows; within a window,
 * token i attends to token j with score (q_i / sqrt(hd)) . k_j + table[rel(i, j), head], minus
 * 100 when the shift brought i and j from different regions; the result goes back to token i's
 * unrolled position. `pos` gets each window token's pixel offset (plane index), `label` its
 * region (scratch of w*w entries each). */
static void FN(window_tokens)(int64_t H, int64_t W, int w, int sh, int sw, int grid, int64_t wy,
                              int64_t wx, int64_t *pos, int *label)
{
    for (int t = 0; t < w * w && grid; t++) { /* MaxViT's grid: w x w pixels (H/w, W/w) apart */
        pos[t] = ((t / w) * (H / w) + wy) * W + (t % w) * (W / w) + wx;
        label[t] = 0;
    }
    for (int t = 0; t < w * w && !grid; t++) {
        int64_t r = wy * w + t / w, c = wx * w + t % w; /* rolled coordinates */
        int lh = !sh ? 2 : r < H - w ? 0 : r < H - sh ? 1 : 2;
        int lw = !sw ? 2 : c < W - w ? 0 : c < W - sw ? 1 : 2;
        label[t] = lh * 3 + lw;
        pos[t] = ((r + sh) % H) * W + (c + sw) % W;
    }
}

/* The row of the (2w - 1)^2 relative position bias table that token pair (i, j) of a window
 * reads. */
static inline int64_t FN(rel_bias)(int64_t i, int64_t j, int w)
{
    return (i / w - j / w + w - 1) * (2 * w - 1) + i % w - j % w + w - 1;
}

/* Row i of a window's softmax before normalisation: a_ij = s q_i.k_j + the relative position bias
 * (- 100 between shifted regions), p[j] = exp(a_ij - max a_i); returns the sum of p. */
static inline REAL FN(window_row)(const REAL *q, const REAL *k, const int64_t *pos,
                                  const int *label, int masked, int64_t i, int64_t T, int w,
                                  int64_t hd, int64_t HW, const REAL *table, int h, int heads,
                                  REAL s, REAL *p)
{
    REAL m = -INFINITY, sum = 0;
    for (int64_t j = 0; j < T; j++) {
        REAL a = 0;
        for (int64_t c = 0; c < hd; c++) a += q[c * HW + pos[i]] * s * k[c * HW + pos[j]];
        a += table[FN(rel_bias)(i, j, w) * heads + h];
        if (masked && label[i] != label[j]) a -= 100;
        p[j] = a;
        m = a > m ? a : m;
    }
    for (int64_t j = 0; j < T; j++) sum += p[j] = exp(p[j] - m);
    return sum;
}

/* The attention itself, with q scaled by `s` (Swin V2 passes pre-scaled queries and s = 1). */
static void FN(window_attention_core)(const REAL *qkv, REAL *y, const cv_shape4 *xs, int w,
                                      int shift, int grid, int heads, const REAL *table, REAL s)
{
    int64_t N = xs->d[0], C = xs->d[1] / 3, H = xs->d[2], W = xs->d[3], HW = H * W, hd = C / heads,
            T = (int64_t)w * w;
    int sh = w >= H ? 0 : shift, sw = w >= W ? 0 : shift, masked = sh + sw > 0;
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t n = 0; n < N; n++)
        for (int64_t win = 0; win < (H / w) * (W / w); win++) {
            int64_t *pos = malloc((size_t)T * sizeof *pos);
            int *label = malloc((size_t)T * sizeof *label);
            REAL *p = malloc((size_t)T * sizeof *p);
            if (pos && label && p) {
                FN(window_tokens)(H, W, w, sh, sw, grid, win / (W / w), win % (W / w), pos, label);
                for (int h = 0; h < heads; h++) {
                    const REAL *q = qkv + (n * 3 * C + h * hd) * HW, *k = q + C * HW,
                               *v = k + C * HW;
                    REAL *yp = y + (n * C + h * hd) * HW;
                    for (int64_t i = 0; i < T; i++) {
                        REAL sum = FN(window_row)(q, k, pos, label, masked, i, T, w, hd, HW, table,
                                                  h, heads, s, p);
                        for (int64_t c = 0; c < hd; c++) {
                            REAL o = 0;
                            for (int64_t j = 0; j < T; j++) o += p[j] * v[c * HW + pos[j]];
                            yp[c * HW + pos[i]] = o / sum;
                        }
                    }
                }
            }
            free(pos), free(label), free(p);
        }
}

void FN(ref_window_attention)(const REAL *qkv, REAL *y, const cv_shape4 *xs, int w, int shift,
                              int heads, const REAL *table)
{
    FN(window_attention_core)
    (qkv, y, xs, w, shift, 0, heads, table, (REAL)(1 / sqrt((double)(xs->d[1] / 3 / heads))));
}

/* As ref_attention_backward, plus dtable[rel(i, j), head] += dS_ij. Sequential: windows share
 * the table's gradient. */
static void FN(window_attention_core_backward)(const REAL *qkv, const REAL *dy, REAL *dqkv,
                                               REAL *dtable, const cv_shape4 *xs, int w, int shift,
                                               int grid, int heads, const REAL *table, REAL s)
{
    int64_t N = xs->d[0], C = xs->d[1] / 3, H = xs->d[2], W = xs->d[3], HW = H * W, hd = C / heads,
            T = (int64_t)w * w;
    int sh = w >= H ? 0 : shift, sw = w >= W ? 0 : shift, masked = sh + sw > 0;
    int64_t *pos = malloc((size_t)T * sizeof *pos);
    int *label = malloc((size_t)T * sizeof *label);
    REAL *p = malloc((size_t)T * sizeof *p), *dp = malloc((size_t)T * sizeof *dp);
    for (int64_t n = 0; pos && label && p && dp && n < N; n++)
        for (int64_t win = 0; win < (H / w) * (W / w); win++) {
            FN(window_tokens)(H, W, w, sh, sw, grid, win / (W / w), win % (W / w), pos, label);
            for (int h = 0; h < heads; h++) {
                const REAL *q = qkv + (n * 3 * C + h * hd) * HW, *k = q + C * HW, *v = k + C * HW;
                const REAL *g = dy + (n * C + h * hd) * HW;
                REAL *dq = dqkv ? dqkv + (n * 3 * C + h * hd) * HW : NULL;
                REAL *dk = dq ? dq + C * HW : NULL, *dv = dk ? dk + C * HW : NULL;
                for (int64_t i = 0; i < T; i++) {
                    REAL sum = FN(window_row)(q, k, pos, label, masked, i, T, w, hd, HW, table, h,
                                              heads, s, p),
                         dot = 0;
                    for (int64_t j = 0; j < T; j++) {
                        p[j] /= sum;
                        REAL a = 0;
                        for (int64_t c = 0; c < hd; c++)
                            a += g[c * HW + pos[i]] * v[c * HW + pos[j]];
                        dp[j] = a;
                        dot += a * p[j];
                    }
                    for (int64_t j = 0; j < T; j++) {
                        REAL ds = p[j] * (dp[j] - dot);
                        if (dtable) dtable[FN(rel_bias)(i, j, w) * heads + h] += ds;
                        for (int64_t c = 0; dq && c < hd; c++) {
                            dv[c * HW + pos[j]] += p[j] * g[c * HW + pos[i]];
                            dq[c * HW + pos[i]] += ds * s * k[c * HW + pos[j]];
                            dk[c * HW + pos[j]] += ds * s * q[c * HW + pos[i]];
                        }
                    }
                }
            }
        }
    free(pos), free(label), free(p), free(dp);
}

void FN(ref_window_attention_backward)(const REAL *qkv, const REAL *dy, REAL *dqkv, REAL *dtable,
                                       const cv_shape4 *xs, int w, int shift, int heads,
                                       const REAL *table)
{
    FN(window_attention_core_backward)
    (qkv, dy, dqkv, dtable, xs, w, shift, 0, heads, table,
     (REAL)(1 / sqrt((double)(xs->d[1] / 3 / heads))));
}

/* Swin V2's continuous position bias: table[t, h] = 16 sigmoid(cpb_mlp(coords_t))_h over the
 * (2w-1)^2 relative offsets t, coords = sign(c) log2(8|c|/(w-1) + 1) / 3 per axis as
 * torchvision's relative_coords_table (computed here in REAL, the buffer is not read);
 * cpb_mlp = Linear(2, hidden) -> ReLU -> Linear(hidden, heads, no bias). `hid` (optional) gets
 * the hidden activations. */
static void FN(cpb_coords)(int w, int64_t t, REAL *c)
{
    int64_t dy = t / (2 * w - 1) - (w - 1), dx = t % (2 * w - 1) - (w - 1);
    REAL v[2] = {(REAL)dy, (REAL)dx};
    for (int k = 0; k < 2; k++) {
        REAL a = v[k] / (REAL)(w - 1) * 8;
        c[k] = (a > 0 ? 1 : a < 0 ? -1 : 0) * log2(fabs(a) + 1) / 3;
    }
}

void FN(ref_cpb_table)(int w, int heads, int hidden, const REAL *const *prm, REAL *table, REAL *hid)
{
    int64_t nt = (int64_t)(2 * w - 1) * (2 * w - 1);
    const REAL *w0 = prm[1], *b0 = prm[2], *w2 = prm[3];
    REAL *hbuf = hid ? NULL : malloc((size_t)hidden * sizeof *hbuf);
    for (int64_t t = 0; t < nt; t++) {
        REAL c[2], *hp = hid ? hid + t * hidden : hbuf;
        if (!hp) return;
        FN(cpb_coords)(w, t, c);
        for (int j = 0; j < hidden; j++) {
            REAL a = w0[2 * j] * c[0] + w0[2 * j + 1] * c[1] + b0[j];
            hp[j] = a > 0 ? a : 0;
        }
        for (int h = 0; h < heads; h++) {
            REAL a = 0;
            for (int j = 0; j < hidden; j++) a += w2[(int64_t)h * hidden + j] * hp[j];
            table[t * heads + h] = 16 / (1 + exp(-a));
        }
    }
    free(hbuf);
}

/* The position-bias MLP's parameter gradients (grad[1..3], each optional) from the table's
 * gradient dtab. */
void FN(ref_cpb_table_backward)(int w, int heads, int hidden, const REAL *const *prm,
                                const REAL *dtab, REAL *const *grad)
{
    int64_t nt = (int64_t)(2 * w - 1) * (2 * w - 1);
    REAL *table = malloc((size_t)(nt * heads) * sizeof *table);
    REAL *hid = malloc((size_t)(nt * hidden) * sizeof *hid);
    REAL *dh = malloc((size_t)hidden * sizeof *dh);
    if (table && hid && dh) {
        FN(ref_cpb_table)(w, heads, hidden, prm, table, hid);
        for (int64_t t = 0; t < nt; t++) { /* table = 16 sigmoid(pre) */
            REAL c[2];
            FN(cpb_coords)(w, t, c);
            for (int j = 0; j < hidden; j++) dh[j] = 0;
            for (int h = 0; h < heads; h++) {
                REAL sg = table[t * heads + h] / 16, da = dtab[t * heads + h] * 16 * sg * (1 - sg);
                for (int j = 0; j < hidden; j++) {
                    if (grad[3]) grad[3][(int64_t)h * hidden + j] += da * hid[t * hidden + j];
                    dh[j] += da * prm[3][(int64_t)h * hidden + j];
                }
            }
            for (int j = 0; j < hidden; j++) {
                if (hid[t * hidden + j] <= 0) continue;
                if (grad[1]) grad[1][2 * j] += dh[j] * c[0], grad[1][2 * j + 1] += dh[j] * c[1];
                if (grad[2]) grad[2][j] += dh[j];
            }
        }
    }
    free(table), free(hid), free(dh);
}

/* Swin V2's queries and keys: per head, q + q_bias and k (whose bias torchvision zeroes) are
 * L2-normalised (F.normalize, eps 1e-12) and q is scaled by exp(min(logit_scale, log 100)); v
 * gets its bias. The cosine attention is then the plain one with s = 1. qkv [N, 3C, H, W] is
 * stored NCHW, or NHWC when cl is set. prm as ref_window_attention_v2's (prm[0] logit_scale,
 * prm[4] qkv.bias, optional). */
static void FN(v2_strides)(const cv_shape4 *xs, int cl, int64_t *cs, int64_t *ps)
{
    int64_t HW = xs->d[2] * xs->d[3];
    *cs = cl ? 1 : HW, *ps = cl ? xs->d[1] : 1; /* between channels, between positions */
}

void FN(ref_v2_prepare)(const REAL *qkv, REAL *out, const cv_shape4 *xs, int heads,
                        const REAL *const *prm, int cl)
{
    int64_t N = xs->d[0], C = xs->d[1] / 3, HW = xs->d[2] * xs->d[3], hd = C / heads, cs, ps;
    FN(v2_strides)(xs, cl, &cs, &ps);
    const REAL *bias = prm[4];
    REAL lmax = (REAL)log(100.0);
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t n = 0; n < N; n++)
        for (int64_t p = 0; p < HW; p++)
            for (int part = 0; part < 3; part++)
                for (int h = 0; h < heads; h++) {
                    int64_t c0 = part * C + h * hd, off = n * 3 * C * HW + c0 * cs + p * ps;
                    const REAL *x = qkv + off;
                    REAL *o = out + off, ss = 0;
                    for (int64_t c = 0; c < hd; c++) {
                        REAL v = x[c * cs] + (part != 1 && bias ? bias[c0 + c] : 0);
                        o[c * cs] = v;
                        ss += v * v;
                    }
                    if (part == 2) continue;
                    REAL nrm = sqrt(ss), f = 1 / (nrm > (REAL)1e-12 ? nrm : (REAL)1e-12);
                    if (part == 0) f *= exp(prm[0][h] < lmax ? prm[0][h] : lmax);
                    for (int64_t c = 0; c < hd; c++) o[c * cs] *= f;
                }
}

/* Back through ref_v2_prepare: from its input qkv, its output q and q's gradient dq, into dqkv
 * (optional, accumulated) and the gradients of logit_scale (grad[0]) and qkv.bias (grad[4]),
 * each optional. */
void FN(ref_v2_prepare_backward)(const REAL *qkv, const REAL *q, const REAL *dq, REAL *dqkv,
                                 REAL *const *grad, const cv_shape4 *xs, int heads,
                                 const REAL *const *prm, int cl)
{
    int64_t N = xs->d[0], C = xs->d[1] / 3, HW = xs->d[2] * xs->d[3], hd = C / heads, cs, ps;
    FN(v2_strides)(xs, cl, &cs, &ps);
    REAL lmax = (REAL)log(100.0);
    /* the parameter gradients summed over (n, p) in per-thread sums */
    REAL *dl = calloc((size_t)heads, sizeof *dl), *db = calloc((size_t)(3 * C), sizeof *db);
    if (!dl || !db) goto done;
#pragma omp parallel for collapse(2) schedule(static) reduction(+ : dl[:heads], db[:3 * C])
    for (int64_t n = 0; n < N; n++)
        for (int64_t p = 0; p < HW; p++)
            for (int part = 0; part < 3; part++)
                for (int h = 0; h < heads; h++) {
                    int64_t c0 = part * C + h * hd, off = n * 3 * C * HW + c0 * cs + p * ps;
                    const REAL *o = q + off, *g = dq + off;
                    if (part == 2) { /* v: y = x + b */
                        for (int64_t c = 0; c < hd; c++) {
                            if (dqkv) dqkv[off + c * cs] += g[c * cs];
                            db[c0 + c] += g[c * cs];
                        }
                        continue;
                    }
                    /* o = f u with u = x/max(|x|, eps) and f = exp(clamped logit scale) for q */
                    REAL ss = 0, dot = 0, f = 1;
                    if (part == 0) f = exp(prm[0][h] < lmax ? prm[0][h] : lmax);
                    for (int64_t c = 0; c < hd; c++) {
                        REAL x = qkv[off + c * cs] + (part == 0 && prm[4] ? prm[4][c0 + c] : 0);
                        ss += x * x;
                        dot += o[c * cs] * g[c * cs]; /* u . du with du = f g */
                    }
                    if (part == 0 && prm[0][h] <= lmax) dl[h] += dot;
                    REAL nrm = sqrt(ss);
                    int big = nrm > (REAL)1e-12;
                    for (int64_t c = 0; c < hd; c++) {
                        REAL du = f * g[c * cs], u = o[c * cs] / f;
                        REAL dx = big ? (du - u * dot) / nrm : du / (REAL)1e-12;
                        if (dqkv) dqkv[off + c * cs] += dx;
                        if (part == 0) db[c0 + c] += dx;
                    }
                }
    for (int h = 0; grad[0] && h < heads; h++) grad[0][h] += dl[h];
    for (int64_t c = 0; grad[4] && c < 3 * C; c++) grad[4][c] += db[c];
done:
    free(dl), free(db);
}

/* prm: logit_scale [heads], cpb_mlp.0.weight [hidden, 2], cpb_mlp.0.bias, cpb_mlp.2.weight
 * [heads, hidden], qkv.bias [3C] (optional); qkv comes from a projection without bias. */
void FN(ref_window_attention_v2)(const REAL *qkv, REAL *y, const cv_shape4 *xs, int w, int shift,
                                 int heads, int hidden, const REAL *const *prm)
{
    int64_t nt = (int64_t)(2 * w - 1) * (2 * w - 1) * heads;
    REAL *table = malloc((size_t)nt * sizeof *table);
    REAL *q = malloc((size_t)shape_numel(xs) * sizeof *q);
    if (table && q) {
        FN(ref_cpb_table)(w, heads, hidden, prm, table, NULL);
        FN(ref_v2_prepare)(qkv, q, xs, heads, prm, 0);
        FN(window_attention_core)(q, y, xs, w, shift, 0, heads, table, 1);
    }
    free(table), free(q);
}

/* Back through the plain attention (on the prepared q, k, v), the normalisation and logit scale,
 * the biases, and the position-bias MLP. grad[k] (each optional) pairs with prm[k]. */
void FN(ref_window_attention_v2_backward)(const REAL *qkv, const REAL *dy, REAL *dqkv,
                                          REAL *const *grad, const cv_shape4 *xs, int w, int shift,
                                          int heads, int hidden, const REAL *const *prm)
{
    int64_t nt = (int64_t)(2 * w - 1) * (2 * w - 1), n_all = shape_numel(xs);
    REAL *table = malloc((size_t)(nt * heads) * sizeof *table);
    REAL *dtab = calloc((size_t)(nt * heads), sizeof *dtab);
    REAL *q = malloc((size_t)n_all * sizeof *q), *dq = calloc((size_t)n_all, sizeof *dq);
    if (table && dtab && q && dq) {
        FN(ref_cpb_table)(w, heads, hidden, prm, table, NULL);
        FN(ref_v2_prepare)(qkv, q, xs, heads, prm, 0);
        FN(window_attention_core_backward)(q, dy, dq, dtab, xs, w, shift, 0, heads, table, 1);
        FN(ref_v2_prepare_backward)(qkv, q, dq, dqkv, grad, xs, heads, prm, 0);
        FN(ref_cpb_table_backward)(w, heads, hidden, prm, dtab, grad);
    }
    free(table), free(dtab), free(q), free(dq);
}

/* MaxViT's block (grid = 0: w x w windows) and grid (grid = 1: w x w pixels H/w, W/w apart)
 * attention on qkv [N, 3C, H, W], H and W multiples of w: RelativePositionalMultiHeadAttention
 * between its to_qkv and merge projections, which scales by feat_dim^-0.5 (C, not the head
 * dimension), plus the relative position bias over the w x w token grid. */
void FN(ref_partition_attention)(const REAL *qkv, REAL *y, const cv_shape4 *xs, int w, int grid,
                                 int heads, const REAL *table)
{
    REAL s = (REAL)(1 / sqrt((double)(xs->d[1] / 3)));
    FN(window_attention_core)(qkv, y, xs, w, 0, grid, heads, table, s);
}

void FN(ref_partition_attention_backward)(const REAL *qkv, const REAL *dy, REAL *dqkv, REAL *dtable,
                                          const cv_shape4 *xs, int w, int grid, int heads,
                                          const REAL *table)
{
    REAL s = (REAL)(1 / sqrt((double)(xs->d[1] / 3)));
    FN(window_attention_core_backward)(qkv, dy, dqkv, dtable, xs, w, 0, grid, heads, table, s);
}
