/* The C side of the collective checks in tests/parity/test_dist.py, run under mpirun (or alone:
 * one rank). Checks every cv_comm call against the values each rank can compute itself and prints
 * one "ok"/"FAIL" line per check from rank 0; exits 1 on any failure.
 *
 * usage: comm_check             the checks
 *        comm_check BYTES REPS  also times a float32 allreduce of BYTES bytes (median of REPS) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cvision/cvision.h"

static int fails;

static void report(int rank, int ok, const char *what)
{
    if (!ok) fails++;
    if (rank == 0) printf("%s %s\n", ok ? "ok  " : "FAIL", what);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The eval-gather sink: rows must arrive in index order 0, 1, ... with the values rank_rows made.
 */
typedef struct {
    int64_t next;
    int ok;
} sink_state;

static cv_status sink(cv_ctx *ctx, void *user, const int64_t *index, const int *labels,
                      const float *scores, size_t n)
{
    sink_state *st = user;
    for (size_t i = 0; i < n; i++, st->next++)
        st->ok = st->ok && index[i] == st->next && labels[2 * i] == (int)index[i] &&
                 labels[2 * i + 1] == -(int)index[i] && scores[3 * i] == 0.5f * (float)index[i] &&
                 scores[3 * i + 2] == (float)index[i];
    return CV_OK;
}

int main(int argc, char **argv)
{
    cv_ctx *ctx = cv_ctx_new();
    cv_comm *c = NULL;
    if (cv_comm_init(ctx, &c)) {
        fprintf(stderr, "comm_check: %s\n", cv_ctx_error(ctx));
        return 1;
    }
    int r = cv_comm_rank(c), p = cv_comm_size(c), ok;
    /* allreduce float32 and float64: rank r contributes r + i */
    float f[1000];
    double d[3];
    for (int i = 0; i < 1000; i++) f[i] = (float)(r + i);
    for (int i = 0; i < 3; i++) d[i] = 1e-300 * (r + 1) + i;
    ok = !cv_comm_allreduce_sum(ctx, c, f, 1000, CV_F32) &&
         !cv_comm_allreduce_sum(ctx, c, d, 3, CV_F64);
    for (int i = 0; ok && i < 1000; i++) ok = f[i] == (float)(p * (p - 1) / 2 + p * i);
    ok = ok && d[0] == 1e-300 * (p * (p + 1) / 2) && d[2] == 2.0 * p;
    report(r, ok, "allreduce float32 and float64");
    /* asynchronous allreduce, two in flight */
    float a[5] = {1, 2, 3, 4, (float)r}, b[2] = {(float)r, 1};
    cv_comm_req *qa = NULL, *qb = NULL;
    ok = !cv_comm_iallreduce_sum(ctx, c, a, 5, CV_F32, &qa) &&
         !cv_comm_iallreduce_sum(ctx, c, b, 2, CV_F32, &qb);
    cv_comm_progress(c);
    ok = ok && !cv_comm_wait(ctx, c, qb) && !cv_comm_wait(ctx, c, qa);
    ok = ok && a[0] == p && a[3] == 4 * p && a[4] == p * (p - 1) / 2 && b[1] == p;
    report(r, ok, "iallreduce, two requests in flight");
    ok = cv_comm_allreduce_sum(ctx, c, f, 1, CV_I32) == CV_ERR_UNSUPPORTED;
    report(r, ok, "allreduce of int32 refused");
    /* broadcast from the last rank */
    int64_t v[3] = {r, r * 10, 7};
    ok = !cv_comm_bcast(ctx, c, v, sizeof v, p - 1) && v[0] == p - 1 && v[1] == (p - 1) * 10;
    report(r, ok, "broadcast from the last rank");
    ok = cv_comm_bcast(ctx, c, v, sizeof v, p) == CV_ERR_INVALID;
    report(r, ok, "broadcast from a rank that does not exist refused");
    /* allgather and gatherv (rank r sends r + 1 bytes of value r; rank 1 sends none) */
    int all[64] = {0};
    ok = p <= 64 && !cv_comm_allgather(ctx, c, &r, sizeof r, all);
    for (int i = 0; ok && i < p; i++) ok = all[i] == i;
    report(r, ok, "allgather");
    unsigned char send[64];
    size_t n = r == 1 ? 0 : (size_t)r + 1;
    memset(send, r, sizeof send);
    void *got = NULL;
    size_t got_n = 0;
    ok = !cv_comm_gatherv(ctx, c, send, n, 0, &got, &got_n);
    if (ok && r == 0) {
        size_t want = 0, off = 0;
        for (int i = 0; i < p; i++) want += i == 1 ? 0 : (size_t)i + 1;
        ok = got_n == want;
        for (int i = 0; ok && i < p; i++)
            for (int k = 0; ok && k < (i == 1 ? 0 : i + 1); k++)
                ok = ((unsigned char *)got)[off++] == i;
    } else if (ok) {
        ok = got == NULL;
    }
    free(got);
    report(r, ok, "gatherv of uneven (and empty) parts to rank 0, in rank order");
    /* eval gather: 11 rows of 2 labels and 3 scores, rank r holding indices r, r + p, ...
     * (an exact shard) in two calls; rank 0's sink must see all of them in index order */
    sink_state st = {0, 1};
    cv_eval_gather *g = NULL;
    ok = !cv_eval_gather_new(ctx, c, 2, 3, sink, &st, &g);
    for (int part = 0; ok && part < 2; part++) {
        int64_t index[11];
        int labels[22];
        float scores[33];
        size_t m = 0;
        for (int64_t i = r; i < 11; i += p)
            if ((i / p < 2) == (part == 0)) {
                index[m] = i;
                labels[2 * m] = (int)i, labels[2 * m + 1] = -(int)i;
                scores[3 * m] = 0.5f * (float)i, scores[3 * m + 1] = 1;
                scores[3 * m + 2] = (float)i;
                m++;
            }
        ok = !cv_eval_gather_add(ctx, g, index, labels, scores, m);
    }
    ok = ok && !cv_eval_gather_finish(ctx, g);
    cv_eval_gather_free(g);
    report(r, ok && st.ok && st.next == (r == 0 ? 11 : 0),
           "eval gather: every rank's rows to rank 0 alone, in index order");
    ok = !cv_comm_barrier(ctx, c);
    report(r, ok, "barrier");
    if (argc == 3) {
        size_t count = (size_t)atoll(argv[1]) / 4;
        int reps = atoi(argv[2]);
        float *buf = calloc(count + 1, sizeof *buf);
        double *t = calloc((size_t)reps + 1, sizeof *t);
        for (int i = 0; buf && t && i < reps; i++) {
            cv_comm_barrier(ctx, c);
            double t0 = now();
            cv_comm_allreduce_sum(ctx, c, buf, count, CV_F32);
            t[i] = now() - t0;
        }
        if (buf && t && reps > 0) {
            qsort(t, (size_t)reps, sizeof *t, cmp);
            if (r == 0)
                printf("allreduce %zu bytes over %d ranks (%s): median %.2f ms, min %.2f ms\n",
                       count * 4, p, cv_comm_name(c), t[reps / 2] * 1e3, t[0] * 1e3);
        }
        free(buf);
        free(t);
    }
    int status = fails ? 1 : 0;
    if (!fails) cv_comm_finalize(ctx, c);
    cv_comm_free(c);
    cv_ctx_free(ctx);
    return status;
}
