/* Bucketed gradient allreduce (see ddp.h). */
#include "train/ddp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    int first, last; /* gradient indices last..first, walked downwards */
    size_t numel;
    float *buf;
    int pending; /* gradients not yet final this step */
    cv_comm_req *req;
} bucket;

struct ddp {
    cv_comm *comm;
    size_t bucket_bytes;
    cv_state *grads; /* the table the buckets were built for */
    int ngrads;
    const cv_tensor **g; /* gradient tensors by index */
    int *bucket_of;      /* gradient index -> bucket */
    char *ready;         /* gradient index -> final this step */
    bucket *b;
    int nb;
    cv_status err; /* the first failure in the hook (which cannot return one) */
    char msg[1024];
    double waited;
};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

cv_status ddp_new(cv_ctx *ctx, cv_comm *comm, size_t bucket_bytes, ddp **out)
{
    ddp *d = calloc(1, sizeof *d);
    if (!d) return cv_fail(ctx, CV_ERR_NOMEM, "out of memory");
    d->comm = comm;
    d->bucket_bytes = bucket_bytes;
    *out = d;
    return CV_OK;
}

static void drop_buckets(ddp *d)
{
    for (int i = 0; i < d->nb; i++) free(d->b[i].buf);
    free(d->b);
    free(d->g);
    free(d->bucket_of);
    free(d->ready);
    d->b = NULL, d->g = NULL, d->bucket_of = NULL, d->ready = NULL;
    d->nb = d->ngrads = 0;
    d->grads = NULL;
}

void ddp_free(ddp *d)
{
    if (!d) return;
    drop_buckets(d);
    free(d);
}

static cv_status build(cv_ctx *ctx, ddp *d, cv_state *grads)
{
    drop_buckets(d);
    int n = cv_state_count(grads);
    d->g = calloc((size_t)n + 1, sizeof *d->g);
    d->bucket_of = calloc((size_t)n + 1, sizeof *d->bucket_of);
    d->ready = calloc((size_t)n + 1, 1);
    d->b = calloc((size_t)n + 1, sizeof *d->b);
    if (!d->g || !d->bucket_of || !d->ready || !d->b) {
        drop_buckets(d);
        return cv_fail(ctx, CV_ERR_NOMEM, "out of memory");
    }
    d->ngrads = n;
    size_t bytes = 0;
    for (int i = n - 1; i >= 0; i--) {
        const cv_tensor *g = cv_state_tensor(grads, i);
        if (g->dtype != CV_F32) {
            drop_buckets(d);
            return cv_fail(ctx, CV_ERR_INTERNAL, "gradient %s is not float32",
                           cv_state_name(grads, i));
        }
        d->g[i] = g;
        if (d->nb == 0 || bytes >= d->bucket_bytes) {
            d->b[d->nb++] = (bucket){.first = i, .last = i};
            bytes = 0;
        }
        bucket *b = &d->b[d->nb - 1];
        b->last = i;
        b->numel += (size_t)cv_tensor_numel(g);
        bytes += g->nbytes;
        d->bucket_of[i] = d->nb - 1;
    }
    for (int k = 0; k < d->nb; k++)
        if (!(d->b[k].buf = malloc(d->b[k].numel * sizeof(float) + 1))) {
            drop_buckets(d);
            return cv_fail(ctx, CV_ERR_NOMEM, "out of memory for the gradient buckets");
        }
    d->grads = grads;
    return CV_OK;
}

cv_status ddp_begin(cv_ctx *ctx, ddp *d, cv_state *grads)
{
    if (!grads) return cv_fail(ctx, CV_ERR_NOMEM, "out of memory for the gradients");
    /* A new table may sit at a freed one's address: compare its tensors too. */
    int same = grads == d->grads && cv_state_count(grads) == d->ngrads;
    for (int i = 0; same && i < d->ngrads; i++) same = d->g[i] == cv_state_tensor(grads, i);
    if (!same) {
        cv_status s = build(ctx, d, grads);
        if (s) return s;
    }
    memset(d->ready, 0, (size_t)d->ngrads);
    for (int k = 0; k < d->nb; k++) {
        d->b[k].pending = d->b[k].first - d->b[k].last + 1;
        d->b[k].req = NULL;
    }
    d->err = CV_OK;
    return CV_OK;
}

static void start(ddp *d, bucket *b)
{
    size_t off = 0;
    for (int i = b->first; i >= b->last; i--) {
        size_t n = (size_t)cv_tensor_numel(d->g[i]);
        memcpy(b->buf + off, d->g[i]->data, n * sizeof(float));
        off += n;
    }
    if (d->err) return;
    cv_ctx *ctx = cv_ctx_new();
    if (!ctx) {
        d->err = CV_ERR_NOMEM;
        snprintf(d->msg, sizeof d->msg, "out of memory");
        return;
    }
    cv_status s = cv_comm_iallreduce_sum(ctx, d->comm, b->buf, b->numel, CV_F32, &b->req);
    if (s) {
        d->err = s;
        snprintf(d->msg, sizeof d->msg, "%s", cv_ctx_error(ctx));
    }
    cv_ctx_free(ctx);
}

void ddp_grad_ready(void *user, const cv_tensor *g)
{
    ddp *d = user;
    int i = 0;
    while (i < d->ngrads && d->g[i] != g) i++;
    if (i == d->ngrads || d->ready[i]) return; /* not a gradient of ours, or already counted */
    d->ready[i] = 1;
    bucket *b = &d->b[d->bucket_of[i]];
    if (--b->pending == 0) start(d, b);
    cv_comm_progress(d->comm);
}

cv_status ddp_finish(cv_ctx *ctx, ddp *d)
{
    /* Buckets start in the same order on every rank: by index, whatever the hook reported. */
    for (int i = d->ngrads - 1; i >= 0; i--) ddp_grad_ready(d, d->g[i]);
    double t0 = now();
    cv_status s = CV_OK;
    for (int k = 0; k < d->nb; k++) {
        bucket *b = &d->b[k];
        if (b->req) {
            cv_status w = cv_comm_wait(ctx, d->comm, b->req);
            b->req = NULL;
            if (!s) s = w;
        }
        if (s || d->err) continue;
        float world = (float)cv_comm_size(d->comm);
        size_t off = 0;
        for (int i = b->first; i >= b->last; i--) {
            float *g = d->g[i]->data;
            size_t n = (size_t)cv_tensor_numel(d->g[i]);
            for (size_t j = 0; j < n; j++) g[j] = b->buf[off + j] / world;
            off += n;
        }
    }
    d->waited += now() - t0;
    if (!s && d->err) s = cv_fail(ctx, d->err, "%s", d->msg);
    return s;
}

double ddp_wait_seconds(const ddp *d)
{
    return d->waited;
}

int ddp_sum(void *comm, double *buf, int n)
{
    cv_ctx *ctx = cv_ctx_new();
    int bad = !ctx || cv_comm_allreduce_sum(ctx, comm, buf, (size_t)n, CV_F64);
    cv_ctx_free(ctx);
    return bad;
}

cv_status ddp_bcast_state(cv_ctx *ctx, cv_comm *comm, cv_state *st, int root)
{
    cv_status s = CV_OK;
    for (int i = 0; !s && i < cv_state_count(st); i++) {
        cv_tensor *t = cv_state_tensor(st, i);
        s = cv_comm_bcast(ctx, comm, t->data, t->nbytes, root);
    }
    return s;
}
