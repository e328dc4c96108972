/* Channels-last kernels of the oneDNN eval planner for the transformer ops oneDNN has no
 * primitive for. Values are NHWC ([N, L, D] for token sequences), the layout in which LayerNorm,
 * the linear layers (1x1 convolutions) and oneDNN's softmax need no reorders. Attention runs in
 * three steps: these scores (q k^T by sgemm, per sample and head, or per window and head), oneDNN's
 * softmax over the score rows in place, then these products with v. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/dnnl_common.h"
#include "backend/ref/kernels.h"

/* ---- global multi-head attention: qkv [N, L, 3D], scores [N, heads, L, L], y [N, L, D] ---- */

void cl_attention_scores(const float *qkv, float *S, const cv_shape4 *xs, int heads)
{
    int64_t N = xs->d[0], D = xs->d[1] / 3, L = xs->d[2], hd = D / heads;
    float s = (float)(1 / sqrt((double)hd));
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t n = 0; n < N; n++)
        for (int64_t h = 0; h < heads; h++) {
            const float *q = qkv + n * L * 3 * D + h * hd;
            dnnl_sgemm('N', 'T', L, L, hd, s, q, 3 * D, q + D, 3 * D, 0,
                       S + (n * heads + h) * L * L, L);
        }
}

void cl_attention_apply(const float *qkv, const float *P, float *y, const cv_shape4 *xs, int heads)
{
    int64_t N = xs->d[0], D = xs->d[1] / 3, L = xs->d[2], hd = D / heads;
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t n = 0; n < N; n++)
        for (int64_t h = 0; h < heads; h++)
            dnnl_sgemm('N', 'N', L, hd, L, 1, P + (n * heads + h) * L * L, L,
                       qkv + n * L * 3 * D + 2 * D + h * hd, 3 * D, 0, y + n * L * D + h * hd, D);
}

/* Attention's backward (training), around oneDNN's softmax backward: dP = dy v^T per sample and
 * head into [N, heads, L, L]; then from dS (the scores' gradient) and P: dq = s dS k,
 * dk = s dS^T q, dv = P^T dy, written whole into dqkv [N, L, 3D]. */
void cl_attention_dprobs(const float *qkv, const float *dy, float *dP, const cv_shape4 *xs,
                         int heads)
{
    int64_t N = xs->d[0], D = xs->d[1] / 3, L = xs->d[2], hd = D / heads;
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t n = 0; n < N; n++)
        for (int64_t h = 0; h < heads; h++)
            dnnl_sgemm('N', 'T', L, L, hd, 1, dy + n * L * D + h * hd, D,
                       qkv + n * L * 3 * D + 2 * D + h * hd, 3 * D, 0, dP + (n * heads + h) * L * L,
                       L);
}

void cl_attention_grads(const float *qkv, const float *dy, const float *P, const float *dS,
                        float *dqkv, const cv_shape4 *xs, int heads)
{
    int64_t N = xs->d[0], D = xs->d[1] / 3, L = xs->d[2], hd = D / heads;
    float s = (float)(1 / sqrt((double)hd));
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t n = 0; n < N; n++)
        for (int64_t h = 0; h < heads; h++) {
            const float *q = qkv + n * L * 3 * D + h * hd, *ds = dS + (n * heads + h) * L * L;
            float *dq = dqkv + n * L * 3 * D + h * hd;
            dnnl_sgemm('N', 'N', L, hd, L, s, ds, L, q + D, 3 * D, 0, dq, 3 * D);
            dnnl_sgemm('T', 'N', L, hd, L, s, ds, L, q, 3 * D, 0, dq + D, 3 * D);
            dnnl_sgemm('T', 'N', L, hd, L, 1, P + (n * heads + h) * L * L, L,
                       dy + n * L * D + h * hd, D, 0, dq + 2 * D, 3 * D);
        }
}

/* ---- Swin's shifted-window attention: qkv [N, H, W, 3C], scores [N, windows, heads, T, T] ---- */

typedef struct {
    int64_t N, C, H, W, hd, T, nwin;
    int w, heads, sh, sw;
} win_geom;

static win_geom win_geometry(const cv_shape4 *xs, int w, int shift, int heads)
{
    win_geom g = {.N = xs->d[0], .C = xs->d[1] / 3, .H = xs->d[2], .W = xs->d[3], .w = w};
    g.heads = heads, g.hd = g.C / heads, g.T = (int64_t)w * w;
    g.nwin = (g.H / w) * (g.W / w);
    g.sh = w >= g.H ? 0 : shift, g.sw = w >= g.W ? 0 : shift; /* as torchvision zeroes it */
    return g;
}

/* Copies channels [off, off + hd) of the window's tokens into a dense [T, hd] block. */
static void gather(const float *x, int64_t stride, const int64_t *pos, int64_t T, int64_t hd,
                   float *out)
{
    for (int64_t t = 0; t < T; t++) memcpy(out + t * hd, x + pos[t] * stride, (size_t)hd * 4);
}

void cl_window_scores(const float *qkv, float *S, const cv_shape4 *xs, int w, int shift, int heads,
                      const float *table)
{
    win_geom g = win_geometry(xs, w, shift, heads);
    float s = (float)(1 / sqrt((double)g.hd));
    int masked = g.sh + g.sw > 0;
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t n = 0; n < g.N; n++)
        for (int64_t win = 0; win < g.nwin; win++) {
            int64_t *pos = malloc((size_t)g.T * sizeof *pos);
            int *label = malloc((size_t)g.T * sizeof *label);
            float *qk = malloc((size_t)(2 * g.T * g.hd) * sizeof *qk);
            if (pos && label && qk) {
                swin_window_tokens(g.H, g.W, w, g.sh, g.sw, win / (g.W / w), win % (g.W / w), pos,
                                   label);
                const float *base = qkv + n * g.H * g.W * 3 * g.C;
                for (int h = 0; h < heads; h++) {
                    float *sp = S + ((n * g.nwin + win) * heads + h) * g.T * g.T;
                    gather(base + h * g.hd, 3 * g.C, pos, g.T, g.hd, qk);
                    gather(base + g.C + h * g.hd, 3 * g.C, pos, g.T, g.hd, qk + g.T * g.hd);
                    dnnl_sgemm('N', 'T', g.T, g.T, g.hd, s, qk, g.hd, qk + g.T * g.hd, g.hd, 0, sp,
                               g.T);
                    for (int64_t i = 0; i < g.T; i++)
                        for (int64_t j = 0; j < g.T; j++) {
                            int64_t r =
                                (i / w - j / w + w - 1) * (2 * w - 1) + i % w - j % w + w - 1;
                            sp[i * g.T + j] += table[r * heads + h];
                            if (masked && label[i] != label[j]) sp[i * g.T + j] -= 100;
                        }
                }
            }
            free(pos), free(label), free(qk);
        }
}

void cl_window_apply(const float *qkv, const float *P, float *y, const cv_shape4 *xs, int w,
                     int shift, int heads)
{
    win_geom g = win_geometry(xs, w, shift, heads);
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t n = 0; n < g.N; n++)
        for (int64_t win = 0; win < g.nwin; win++) {
            int64_t *pos = malloc((size_t)g.T * sizeof *pos);
            int *label = malloc((size_t)g.T * sizeof *label);
            float *vo = malloc((size_t)(2 * g.T * g.hd) * sizeof *vo);
            if (pos && label && vo) {
                swin_window_tokens(g.H, g.W, w, g.sh, g.sw, win / (g.W / w), win % (g.W / w), pos,
                                   label);
                const float *base = qkv + n * g.H * g.W * 3 * g.C;
                float *yb = y + n * g.H * g.W * g.C, *o = vo + g.T * g.hd;
                for (int h = 0; h < heads; h++) {
                    gather(base + 2 * g.C + h * g.hd, 3 * g.C, pos, g.T, g.hd, vo);
                    dnnl_sgemm('N', 'N', g.T, g.hd, g.T, 1,
                               P + ((n * g.nwin + win) * heads + h) * g.T * g.T, g.T, vo, g.hd, 0,
                               o, g.hd);
                    for (int64_t t = 0; t < g.T; t++)
                        memcpy(yb + pos[t] * g.C + h * g.hd, o + t * g.hd, (size_t)g.hd * 4);
                }
            }
            free(pos), free(label), free(vo);
        }
}

/* The window attention's backward (training), as cl_attention_dprobs and cl_attention_grads per
 * window and head on gathered [T, hd] blocks, the gradients scattered back to the windows'
 * pixels (every pixel is in exactly one window, so dqkv is written whole); the relative position
 * bias table's gradient, the sum of dS over the windows, accumulates into dtable (optional). */
void cl_window_dprobs(const float *qkv, const float *dy, float *dP, const cv_shape4 *xs, int w,
                      int shift, int heads)
{
    win_geom g = win_geometry(xs, w, shift, heads);
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t n = 0; n < g.N; n++)
        for (int64_t win = 0; win < g.nwin; win++) {
            int64_t *pos = malloc((size_t)g.T * sizeof *pos);
            int *label = malloc((size_t)g.T * sizeof *label);
            float *vg = malloc((size_t)(2 * g.T * g.hd) * sizeof *vg);
            if (pos && label && vg) {
                swin_window_tokens(g.H, g.W, w, g.sh, g.sw, win / (g.W / w), win % (g.W / w), pos,
                                   label);
                const float *base = qkv + n * g.H * g.W * 3 * g.C, *dyb = dy + n * g.H * g.W * g.C;
                for (int h = 0; h < heads; h++) {
                    gather(base + 2 * g.C + h * g.hd, 3 * g.C, pos, g.T, g.hd, vg);
                    gather(dyb + h * g.hd, g.C, pos, g.T, g.hd, vg + g.T * g.hd);
                    dnnl_sgemm('N', 'T', g.T, g.T, g.hd, 1, vg + g.T * g.hd, g.hd, vg, g.hd, 0,
                               dP + ((n * g.nwin + win) * heads + h) * g.T * g.T, g.T);
                }
            }
            free(pos), free(label), free(vg);
        }
}

/* Writes the [T, hd] block b to channels [off, off + hd) of the window's pixels. */
static void scatter(const float *b, float *x, int64_t stride, const int64_t *pos, int64_t T,
                    int64_t hd)
{
    for (int64_t t = 0; t < T; t++) memcpy(x + pos[t] * stride, b + t * hd, (size_t)hd * 4);
}

void cl_window_grads(const float *qkv, const float *dy, const float *P, const float *dS,
                     float *dqkv, float *dtable, const cv_shape4 *xs, int w, int shift, int heads)
{
    win_geom g = win_geometry(xs, w, shift, heads);
    float s = (float)(1 / sqrt((double)g.hd));
    int64_t T = g.T, hd = g.hd, C = g.C;
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t n = 0; n < g.N; n++)
        for (int64_t win = 0; win < g.nwin; win++) {
            int64_t *pos = malloc((size_t)T * sizeof *pos);
            int *label = malloc((size_t)T * sizeof *label);
            float *b = malloc((size_t)(4 * T * hd) * sizeof *b); /* q, k, dy, and a result */
            if (pos && label && b) {
                swin_window_tokens(g.H, g.W, w, g.sh, g.sw, win / (g.W / w), win % (g.W / w), pos,
                                   label);
                const float *base = qkv + n * g.H * g.W * 3 * C;
                float *dbase = dqkv + n * g.H * g.W * 3 * C, *o = b + 3 * T * hd;
                for (int h = 0; h < heads; h++) {
                    int64_t k0 = ((n * g.nwin + win) * heads + h) * T * T;
                    gather(base + h * hd, 3 * C, pos, T, hd, b);
                    gather(base + C + h * hd, 3 * C, pos, T, hd, b + T * hd);
                    gather(dy + n * g.H * g.W * C + h * hd, C, pos, T, hd, b + 2 * T * hd);
                    dnnl_sgemm('N', 'N', T, hd, T, s, dS + k0, T, b + T * hd, hd, 0, o, hd);
                    scatter(o, dbase + h * hd, 3 * C, pos, T, hd);
                    dnnl_sgemm('T', 'N', T, hd, T, s, dS + k0, T, b, hd, 0, o, hd);
                    scatter(o, dbase + C + h * hd, 3 * C, pos, T, hd);
                    dnnl_sgemm('T', 'N', T, hd, T, 1, P + k0, T, b + 2 * T * hd, hd, 0, o, hd);
                    scatter(o, dbase + 2 * C + h * hd, 3 * C, pos, T, hd);
                }
            }
            free(pos), free(label), free(b);
        }
    if (!dtable) return;
#pragma omp parallel for schedule(static)
    for (int h = 0; h < heads; h++) /* one head per thread: no two threads share an entry */
        for (int64_t nw = 0; nw < g.N * g.nwin; nw++) {
            const float *ds = dS + (nw * heads + h) * T * T;
            for (int64_t i = 0; i < T; i++)
                for (int64_t j = 0; j < T; j++)
                    dtable[((i / w - j / w + w - 1) * (2 * w - 1) + i % w - j % w + w - 1) * heads +
                           h] += ds[i * T + j];
        }
}

int64_t cl_window_score_rows(const cv_shape4 *xs, int w, int heads)
{
    win_geom g = win_geometry(xs, w, 0, heads);
    return g.N * g.nwin * heads * g.T;
}

/* ---- data movement on NHWC ---- */

/* ViT's tokens: y[n, 0] = class token + pos[0], y[n, 1 + l] = x[n, l] + pos[1 + l] */
void cl_tokens(const float *x, float *y, const cv_shape4 *xs, const float *cls, const float *pos)
{
    int64_t N = xs->d[0], D = xs->d[1], L = xs->d[2] * xs->d[3];
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < N; n++) {
        float *yp = y + n * (L + 1) * D;
        for (int64_t d = 0; d < D; d++) yp[d] = cls[d] + pos[d];
        for (int64_t i = 0; i < L * D; i++) yp[D + i] = x[n * L * D + i] + pos[D + i];
    }
}

void cl_take(const float *x, float *y, const cv_shape4 *xs, int token)
{
    int64_t N = xs->d[0], D = xs->d[1], L = xs->d[2] * xs->d[3];
    for (int64_t n = 0; n < N; n++)
        memcpy(y + n * D, x + (n * L + token) * D, (size_t)D * sizeof *y);
}

/* The top-left min(H)xmin(W) part of x in y, zeros elsewhere in y: pad and crop alike. */
void cl_pad_crop(const float *x, float *y, const cv_shape4 *xs, const cv_shape4 *ys)
{
    int64_t N = xs->d[0], C = xs->d[1], H = xs->d[2], W = xs->d[3], OH = ys->d[2], OW = ys->d[3];
    int64_t cw = (W < OW ? W : OW) * C;
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t n = 0; n < N; n++)
        for (int64_t h = 0; h < OH; h++) {
            float *yp = y + (n * OH + h) * OW * C;
            if (h < H) {
                memcpy(yp, x + (n * H + h) * W * C, (size_t)cw * sizeof *y);
                memset(yp + cw, 0, (size_t)(OW * C - cw) * sizeof *y);
            } else {
                memset(yp, 0, (size_t)(OW * C) * sizeof *y);
            }
        }
}

/* Patch merging: channel block k of y holds pixel (2i + (k & 1), 2j + (k >> 1)) of x. */
void cl_merge(const float *x, float *y, const cv_shape4 *xs, const cv_shape4 *ys)
{
    int64_t N = xs->d[0], C = xs->d[1], H = xs->d[2], W = xs->d[3], OH = ys->d[2], OW = ys->d[3];
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t n = 0; n < N; n++)
        for (int64_t i = 0; i < OH; i++)
            for (int64_t j = 0; j < OW; j++)
                for (int k = 0; k < 4; k++) {
                    int64_t h = 2 * i + (k & 1), ww = 2 * j + (k >> 1);
                    float *yp = y + ((n * OH + i) * OW + j) * 4 * C + k * C;
                    if (h < H && ww < W)
                        memcpy(yp, x + ((n * H + h) * W + ww) * C, (size_t)C * sizeof *y);
                    else
                        memset(yp, 0, (size_t)C * sizeof *y);
                }
}
