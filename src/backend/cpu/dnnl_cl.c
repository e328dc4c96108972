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

/* ---- windowed attention (Swin's shifted windows, MaxViT's blocks and grids): qkv [N, H, W, 3C],
 * scores [N, windows, heads, T, T] with T = w * w tokens per window ---- */

cl_win cl_win_of(const cv_node *nd, const cv_shape4 *xs)
{
    int64_t C = xs->d[1] / 3;
    cl_win cw = {.w = nd->a.kh, .heads = nd->a.groups};
    if (nd->op == OP_PARTITION_ATTENTION) {
        cw.grid = nd->a.grid;
        cw.scale = (float)(1 / sqrt((double)C)); /* torchvision's MaxViT: feat_dim^-0.5 */
    } else if (nd->op == OP_WINDOW_ATTENTION_V2) {
        cw.shift = nd->a.sh;
        cw.scale = 1; /* on q and k as ref_v2_prepare leaves them */
    } else {
        cw.shift = nd->a.sh;
        cw.scale = (float)(1 / sqrt((double)(C / cw.heads)));
    }
    return cw;
}

/* The partition of one sample's map into windows, the same for every sample: each window's
 * tokens' pixel indices (pos) and shift-mask regions (label), [nwin, T] each. */
typedef struct {
    int64_t N, C, H, W, hd, T, nwin;
    int w, heads, masked;
    int64_t *pos;
    int *label;
} win_geom;

static void win_free(win_geom *g)
{
    free(g->pos), free(g->label);
}

/* 0 when out of memory (the kernels then leave their output alone, as the reference's do). */
static int win_geometry(win_geom *g, const cv_shape4 *xs, const cl_win *cw)
{
    int w = cw->w;
    *g = (win_geom){.N = xs->d[0], .C = xs->d[1] / 3, .H = xs->d[2], .W = xs->d[3], .w = w};
    g->heads = cw->heads, g->hd = g->C / cw->heads, g->T = (int64_t)w * w;
    g->nwin = (g->H / w) * (g->W / w);
    int sh = w >= g->H ? 0 : cw->shift, sw = w >= g->W ? 0 : cw->shift; /* as torchvision */
    g->masked = sh + sw > 0;
    g->pos = malloc((size_t)(g->nwin * g->T) * sizeof *g->pos);
    g->label = malloc((size_t)(g->nwin * g->T) * sizeof *g->label);
    if (!g->pos || !g->label) {
        win_free(g);
        return 0;
    }
    for (int64_t win = 0; win < g->nwin; win++)
        attn_window_tokens(g->H, g->W, w, sh, sw, cw->grid, win / (g->W / w), win % (g->W / w),
                           g->pos + win * g->T, g->label + win * g->T);
    return 1;
}

/* Copies channels [off, off + hd) of the window's tokens into a dense [T, hd] block. */
static void gather(const float *x, int64_t stride, const int64_t *pos, int64_t T, int64_t hd,
                   float *out)
{
    for (int64_t t = 0; t < T; t++) memcpy(out + t * hd, x + pos[t] * stride, (size_t)hd * 4);
}

/* Writes the [T, hd] block b to channels [off, off + hd) of the window's pixels. */
static void scatter(const float *b, float *x, int64_t stride, const int64_t *pos, int64_t T,
                    int64_t hd)
{
    for (int64_t t = 0; t < T; t++) memcpy(x + pos[t] * stride, b + t * hd, (size_t)hd * 4);
}

void cl_window_scores(const float *qkv, float *S, const cv_shape4 *xs, const cl_win *cw,
                      const float *table)
{
    win_geom g;
    if (!win_geometry(&g, xs, cw)) return;
    int w = g.w, heads = g.heads;
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t n = 0; n < g.N; n++)
        for (int64_t win = 0; win < g.nwin; win++) {
            float *qk = malloc((size_t)(2 * g.T * g.hd) * sizeof *qk);
            const int64_t *pos = g.pos + win * g.T;
            const int *label = g.label + win * g.T;
            const float *base = qkv + n * g.H * g.W * 3 * g.C;
            for (int h = 0; qk && h < heads; h++) {
                float *sp = S + ((n * g.nwin + win) * heads + h) * g.T * g.T;
                gather(base + h * g.hd, 3 * g.C, pos, g.T, g.hd, qk);
                gather(base + g.C + h * g.hd, 3 * g.C, pos, g.T, g.hd, qk + g.T * g.hd);
                dnnl_sgemm('N', 'T', g.T, g.T, g.hd, cw->scale, qk, g.hd, qk + g.T * g.hd, g.hd, 0,
                           sp, g.T);
                for (int64_t i = 0; i < g.T; i++)
                    for (int64_t j = 0; j < g.T; j++) {
                        int64_t r = (i / w - j / w + w - 1) * (2 * w - 1) + i % w - j % w + w - 1;
                        sp[i * g.T + j] += table[r * heads + h];
                        if (g.masked && label[i] != label[j]) sp[i * g.T + j] -= 100;
                    }
            }
            free(qk);
        }
    win_free(&g);
}

void cl_window_apply(const float *qkv, const float *P, float *y, const cv_shape4 *xs,
                     const cl_win *cw)
{
    win_geom g;
    if (!win_geometry(&g, xs, cw)) return;
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t n = 0; n < g.N; n++)
        for (int64_t win = 0; win < g.nwin; win++) {
            float *vo = malloc((size_t)(2 * g.T * g.hd) * sizeof *vo);
            const int64_t *pos = g.pos + win * g.T;
            const float *base = qkv + n * g.H * g.W * 3 * g.C;
            for (int h = 0; vo && h < g.heads; h++) {
                float *o = vo + g.T * g.hd;
                gather(base + 2 * g.C + h * g.hd, 3 * g.C, pos, g.T, g.hd, vo);
                dnnl_sgemm('N', 'N', g.T, g.hd, g.T, 1,
                           P + ((n * g.nwin + win) * g.heads + h) * g.T * g.T, g.T, vo, g.hd, 0, o,
                           g.hd);
                scatter(o, y + n * g.H * g.W * g.C + h * g.hd, g.C, pos, g.T, g.hd);
            }
            free(vo);
        }
    win_free(&g);
}

/* The windowed attention's backward (training), as cl_attention_dprobs and cl_attention_grads per
 * window and head on gathered [T, hd] blocks, the gradients scattered back to the windows'
 * pixels (every pixel is in exactly one window, so dqkv is written whole); the relative position
 * bias table's gradient, the sum of dS over the windows, accumulates into dtable (optional). */
void cl_window_dprobs(const float *qkv, const float *dy, float *dP, const cv_shape4 *xs,
                      const cl_win *cw)
{
    win_geom g;
    if (!win_geometry(&g, xs, cw)) return;
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t n = 0; n < g.N; n++)
        for (int64_t win = 0; win < g.nwin; win++) {
            float *vg = malloc((size_t)(2 * g.T * g.hd) * sizeof *vg);
            const int64_t *pos = g.pos + win * g.T;
            const float *base = qkv + n * g.H * g.W * 3 * g.C, *dyb = dy + n * g.H * g.W * g.C;
            for (int h = 0; vg && h < g.heads; h++) {
                gather(base + 2 * g.C + h * g.hd, 3 * g.C, pos, g.T, g.hd, vg);
                gather(dyb + h * g.hd, g.C, pos, g.T, g.hd, vg + g.T * g.hd);
                dnnl_sgemm('N', 'T', g.T, g.T, g.hd, 1, vg + g.T * g.hd, g.hd, vg, g.hd, 0,
                           dP + ((n * g.nwin + win) * g.heads + h) * g.T * g.T, g.T);
            }
            free(vg);
        }
    win_free(&g);
}

void cl_window_grads(const float *qkv, const float *dy, const float *P, const float *dS,
                     float *dqkv, float *dtable, const cv_shape4 *xs, const cl_win *cw)
{
    win_geom g;
    if (!win_geometry(&g, xs, cw)) return;
    int64_t T = g.T, hd = g.hd, C = g.C;
    int w = g.w, heads = g.heads;
    float s = cw->scale;
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t n = 0; n < g.N; n++)
        for (int64_t win = 0; win < g.nwin; win++) {
            float *b = malloc((size_t)(4 * T * hd) * sizeof *b); /* q, k, dy, and a result */
            float *dbase = dqkv + n * g.H * g.W * 3 * C;
            const int64_t *pos = g.pos + win * T;
            const float *base = qkv + n * g.H * g.W * 3 * C;
            for (int h = 0; b && h < heads; h++) {
                float *o = b + 3 * T * hd;
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
            free(b);
        }
    win_free(&g);
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

size_t cl_v2_table_size(const cl_win *cw)
{
    return (size_t)(2 * cw->w - 1) * (size_t)(2 * cw->w - 1) * (size_t)cw->heads;
}

int cl_windowed(const cv_node *nd)
{
    return nd->op == OP_WINDOW_ATTENTION || nd->op == OP_WINDOW_ATTENTION_V2 ||
           nd->op == OP_PARTITION_ATTENTION;
}

void cl_score_shape(const cv_node *nd, const cv_shape4 *xs, int64_t sd[2])
{
    if (!cl_windowed(nd)) { /* [N, heads, tokens] rows of all tokens */
        sd[0] = xs->d[0] * nd->a.groups * xs->d[2], sd[1] = xs->d[2];
        return;
    }
    int64_t w = nd->a.kh, T = w * w;
    sd[0] = xs->d[0] * (xs->d[2] / w) * (xs->d[3] / w) * nd->a.groups * T, sd[1] = T;
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
