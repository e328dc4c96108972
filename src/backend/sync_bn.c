/* Synchronised batch norm's forward statistics (sync_bn.h). */
#include "backend/sync_bn.h"

#include <stdlib.h>

double sync_bn_stats(const cv_train_io *io, const float *x, const cv_shape4 *s, float *mean,
                     float *var)
{
    int64_t N = s->d[0], C = s->d[1], HW = s->rank == 4 ? s->d[2] * s->d[3] : 1;
    double *b = calloc((size_t)C + 1, sizeof *b), M;
    if (!b) return -1;
        /* channels in parallel: each channel's sums keep their order */
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < C; c++)
        for (int64_t n = 0; n < N; n++)
            for (int64_t k = 0; k < HW; k++) b[c] += x[(n * C + c) * HW + k];
    b[C] = (double)(N * HW);
    if (io->sum(io->user, b, (int)C + 1) || (M = b[C]) <= 0) {
        free(b);
        return -1;
    }
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < C; c++) {
        double m = b[c] / M, d = 0;
        mean[c] = (float)m;
        for (int64_t n = 0; n < N; n++)
            for (int64_t k = 0; k < HW; k++) {
                double v = x[(n * C + c) * HW + k] - m;
                d += v * v;
            }
        b[c] = d;
    }
    if (io->sum(io->user, b, (int)C)) M = -1;
    for (int64_t c = 0; M > 0 && c < C; c++) var[c] = (float)(b[c] / M);
    free(b);
    return M;
}
