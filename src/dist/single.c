/* One process: every collective is the identity (a gather is a copy). */
#include <stdlib.h>
#include <string.h>

#include "dist/comm.h"

static cv_status s_allreduce(cv_ctx *ctx, cv_comm *c, void *buf, size_t count, cv_dtype dtype)
{
    return CV_OK;
}

/* The only request there is: a finished one. */
static char done_req;

static cv_status s_iallreduce(cv_ctx *ctx, cv_comm *c, void *buf, size_t count, cv_dtype dtype,
                              cv_comm_req **req)
{
    *req = (cv_comm_req *)&done_req;
    return CV_OK;
}

static void s_progress(cv_comm *c) {}

static cv_status s_wait(cv_ctx *ctx, cv_comm *c, cv_comm_req *req)
{
    return CV_OK;
}

static cv_status s_bcast(cv_ctx *ctx, cv_comm *c, void *buf, size_t bytes, int root)
{
    return CV_OK;
}

static cv_status s_allgather(cv_ctx *ctx, cv_comm *c, const void *send, size_t bytes, void *recv)
{
    if (bytes && recv != send) memmove(recv, send, bytes);
    return CV_OK;
}

static cv_status s_gatherv(cv_ctx *ctx, cv_comm *c, const void *send, size_t bytes, int root,
                           void **recv, size_t *recv_bytes)
{
    void *p = malloc(bytes ? bytes : 1);
    if (!p) return cv_fail(ctx, CV_ERR_NOMEM, "gather: out of memory for %zu bytes", bytes);
    if (bytes) memcpy(p, send, bytes);
    *recv = p;
    *recv_bytes = bytes;
    return CV_OK;
}

static cv_status s_barrier(cv_ctx *ctx, cv_comm *c)
{
    return CV_OK;
}

static void s_free(cv_comm *c)
{
    free(c);
}

static const cv_comm_ops single_ops = {.name = "single",
                                       .allreduce = s_allreduce,
                                       .iallreduce = s_iallreduce,
                                       .progress = s_progress,
                                       .wait = s_wait,
                                       .bcast = s_bcast,
                                       .allgather = s_allgather,
                                       .gatherv = s_gatherv,
                                       .barrier = s_barrier,
                                       .finalize = s_barrier, /* nothing to end either */
                                       .free = s_free};

cv_status comm_single_new(cv_ctx *ctx, cv_comm **out)
{
    cv_comm *c = calloc(1, sizeof *c);
    if (!c) return cv_fail(ctx, CV_ERR_NOMEM, "out of memory");
    c->ops = &single_ops;
    c->size = 1;
    *out = c;
    return CV_OK;
}
