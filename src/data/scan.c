/* A parallel pass over a dataset: workers take chunks of indices in order; each has its own
 * context. Results are reported per index, so callers can aggregate deterministically. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "data/scan.h"

#define CHUNK 64

typedef struct {
    const cv_dataset *ds;
    ds_scan_fn fn;
    void *user;
    int collect;
    atomic_llong next;
    atomic_llong stop_at; /* lowest failing index: work above it is pointless */
    pthread_mutex_t lock;
    ds_bad *bad;
    int64_t nbad, capbad;
    cv_status err;
    int64_t err_index;
    char err_msg[1024];
} scan_state;

typedef struct {
    scan_state *s;
    int worker;
} scan_arg;

/* A bad sample is collected (when asked); anything else stops the scan. */
static void record(scan_state *s, int64_t i, cv_status st, const char *msg, int is_sample)
{
    pthread_mutex_lock(&s->lock);
    int collect = s->collect && is_sample && st != CV_ERR_NOMEM && st != CV_ERR_INTERNAL;
    if (collect) {
        if (s->nbad == s->capbad) {
            int64_t nc = s->capbad ? s->capbad * 2 : 16;
            ds_bad *nb = realloc(s->bad, (size_t)nc * sizeof *nb);
            if (nb) s->bad = nb, s->capbad = nc;
        }
        char *m = strdup(msg);
        if (s->nbad < s->capbad && m) {
            s->bad[s->nbad].index = i;
            s->bad[s->nbad++].message = m;
        } else {
            free(m);
            st = CV_ERR_NOMEM, msg = "out of memory";
            collect = 0;
        }
    }
    if (!collect && (s->err == CV_OK || i < s->err_index)) {
        s->err = st;
        s->err_index = i;
        strncpy(s->err_msg, msg, sizeof s->err_msg - 1);
        atomic_store(&s->stop_at, i);
    }
    pthread_mutex_unlock(&s->lock);
}

static void *scan_worker(void *p)
{
    scan_arg *a = p;
    scan_state *s = a->s;
    cv_ctx *ctx = cv_ctx_new();
    if (!ctx) {
        record(s, 0, CV_ERR_NOMEM, "out of memory", 0);
        return NULL;
    }
    int64_t n = cv_dataset_len(s->ds);
    for (;;) {
        int64_t start = atomic_fetch_add(&s->next, CHUNK);
        if (start >= n) break;
        int64_t end = start + CHUNK < n ? start + CHUNK : n;
        for (int64_t i = start; i < end && i < atomic_load(&s->stop_at); i++) {
            cv_image *img;
            cv_status st = cv_dataset_get(ctx, s->ds, i, &img, NULL);
            if (st) {
                record(s, i, st, cv_ctx_error(ctx), 1);
                continue;
            }
            st = s->fn(s->user, ctx, a->worker, i, img);
            cv_image_free(img);
            /* The callback's own failure is never a "bad sample". */
            if (st) record(s, i, st, cv_ctx_error(ctx), 0);
        }
    }
    cv_ctx_free(ctx);
    return NULL;
}

static int cmp_bad(const void *a, const void *b)
{
    int64_t x = ((const ds_bad *)a)->index, y = ((const ds_bad *)b)->index;
    return (x > y) - (x < y);
}

int ds_scan_threads(cv_ctx *ctx, const cv_dataset *ds, int threads)
{
    if (threads <= 0) threads = cv_ctx_threads(ctx);
    int64_t chunks = (cv_dataset_len(ds) + CHUNK - 1) / CHUNK;
    if (threads > chunks) threads = chunks > 0 ? (int)chunks : 1;
    return threads > 64 ? 64 : threads;
}

cv_status ds_scan(cv_ctx *ctx, const cv_dataset *ds, int threads, ds_scan_fn fn, void *user,
                  ds_bad **bad, int64_t *nbad)
{
    if (bad) *bad = NULL, *nbad = 0;
    threads = ds_scan_threads(ctx, ds, threads);
    scan_state s = {.ds = ds, .fn = fn, .user = user, .collect = bad != NULL};
    atomic_init(&s.next, 0);
    atomic_init(&s.stop_at, INT64_MAX);
    pthread_mutex_init(&s.lock, NULL);
    pthread_t tid[64];
    scan_arg args[64];
    int started = 0;
    for (int t = 0; t < threads; t++) {
        args[t] = (scan_arg){&s, t};
        if (pthread_create(&tid[t], NULL, scan_worker, &args[t])) break;
        started++;
    }
    if (!started) scan_worker(&(scan_arg){&s, 0});
    for (int t = 0; t < started; t++) pthread_join(tid[t], NULL);
    pthread_mutex_destroy(&s.lock);
    if (s.err) {
        ds_bad_free(s.bad, s.nbad);
        return cv_fail(ctx, s.err, "%s", s.err_msg);
    }
    if (bad) {
        if (s.nbad > 1) qsort(s.bad, (size_t)s.nbad, sizeof *s.bad, cmp_bad);
        *bad = s.bad;
        *nbad = s.nbad;
    }
    return CV_OK;
}

void ds_bad_free(ds_bad *bad, int64_t n)
{
    for (int64_t i = 0; i < n; i++) free(bad[i].message);
    free(bad);
}
