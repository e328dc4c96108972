/* Instantiates the reference kernels for float (the reference backend, the fallback of the fast
 * ones) and for double (finite-difference gradient checks). */
#include "backend/ref/kernels.h"

#include <stdlib.h>
#include <string.h>
#include <tgmath.h>

#define REAL     float
#define FN(name) name
#include "backend/ref/kernels_impl.h"
#undef REAL
#undef FN

#define REAL     double
#define FN(name) name##_f64
#include "backend/ref/kernels_impl.h"
#undef REAL
#undef FN

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

void ref_concat_backward(const float *dy, float *const *dxs, const cv_shape4 *shapes, int n)
{
    int64_t N = shapes[0].d[0], hw = shapes[0].d[2] * shapes[0].d[3];
    for (int64_t b = 0; b < N; b++)
        for (int k = 0; k < n; k++) {
            int64_t len = shapes[k].d[1] * hw;
            if (dxs[k])
                for (int64_t i = 0; i < len; i++) dxs[k][b * len + i] += dy[i];
            dy += len;
        }
}

void attn_window_tokens(int64_t H, int64_t W, int w, int sh, int sw, int grid, int64_t wy,
                        int64_t wx, int64_t *pos, int *label)
{
    window_tokens(H, W, w, sh, sw, grid, wy, wx, pos, label);
}
