/* oneDNN's own sgemm on this machine: the FLOP/s ceiling the engine benchmark compares against.
 * usage: bench_sgemm [M N K] [threads] -> prints GFLOP/s (median of timed runs) */
#include <dnnl.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    long m = argc > 3 ? atol(argv[1]) : 2048, n = argc > 3 ? atol(argv[2]) : 2048,
         k = argc > 3 ? atol(argv[3]) : 2048;
    int threads = argc > 4 ? atoi(argv[4]) : argc == 2 ? atoi(argv[1]) : 0;
    if (threads > 0) omp_set_num_threads(threads);
    float *a = malloc(sizeof(float) * m * k), *b = malloc(sizeof(float) * k * n),
          *c = malloc(sizeof(float) * m * n);
    if (!a || !b || !c) return 1;
    for (long i = 0; i < m * k; i++) a[i] = (float)(i % 13) * 0.01f;
    for (long i = 0; i < k * n; i++) b[i] = (float)(i % 7) * 0.01f;
    double t[9];
    for (int r = -2; r < 9; r++) {
        double t0 = now();
        if (dnnl_sgemm('N', 'N', m, n, k, 1.0f, a, k, b, n, 0.0f, c, n) != dnnl_success) return 1;
        if (r >= 0) t[r] = now() - t0;
    }
    qsort(t, 9, sizeof *t, cmp);
    printf("%.2f\n", 2.0 * m * n * k / t[4] * 1e-9);
    free(a), free(b), free(c);
    return 0;
}
