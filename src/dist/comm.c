/* cv_comm: the environment picks the implementation; every call goes through its vtable. */
#include <stdlib.h>

#include "dist/comm.h"

cv_status cv_comm_init(cv_ctx *ctx, cv_comm **out)
{
    /* Only a process started by an MPI launcher initialises MPI: mpirun sets OMPI_COMM_WORLD_SIZE,
     * Slurm's srun --mpi=pmix or pmi2 sets PMIX_RANK or PMI_RANK. A plain run stays a single
     * process with no MPI runtime at all. */
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++) {
        const char *v = getenv(vars[i]);
        if (v && *v) return comm_mpi_new(ctx, out);
    }
    return comm_single_new(ctx, out);
}

cv_status cv_comm_single(cv_ctx *ctx, cv_comm **out)
{
    return comm_single_new(ctx, out);
}

int cv_comm_rank(const cv_comm *c)
{
    return c->rank;
}

int cv_comm_size(const cv_comm *c)
{
    return c->size;
}

const char *cv_comm_name(const cv_comm *c)
{
    return c->ops->name;
}

static cv_status check_dtype(cv_ctx *ctx, cv_dtype dtype)
{
    if (dtype != CV_F32 && dtype != CV_F64)
        return cv_fail(ctx, CV_ERR_UNSUPPORTED, "allreduce: only float32 and float64 sums");
    return CV_OK;
}

cv_status cv_comm_allreduce_sum(cv_ctx *ctx, cv_comm *c, void *buf, size_t count, cv_dtype dtype)
{
    cv_status s = check_dtype(ctx, dtype);
    return s ? s : c->ops->allreduce(ctx, c, buf, count, dtype);
}

cv_status cv_comm_iallreduce_sum(cv_ctx *ctx, cv_comm *c, void *buf, size_t count, cv_dtype dtype,
                                 cv_comm_req **req)
{
    *req = NULL;
    cv_status s = check_dtype(ctx, dtype);
    return s ? s : c->ops->iallreduce(ctx, c, buf, count, dtype, req);
}

void cv_comm_progress(cv_comm *c)
{
    c->ops->progress(c);
}

cv_status cv_comm_wait(cv_ctx *ctx, cv_comm *c, cv_comm_req *req)
{
    return c->ops->wait(ctx, c, req);
}

cv_status cv_comm_bcast(cv_ctx *ctx, cv_comm *c, void *buf, size_t bytes, int root)
{
    if (root < 0 || root >= c->size)
        return cv_fail(ctx, CV_ERR_INVALID, "broadcast: root %d outside 0..%d", root, c->size - 1);
    return c->ops->bcast(ctx, c, buf, bytes, root);
}

cv_status cv_comm_allgather(cv_ctx *ctx, cv_comm *c, const void *send, size_t bytes, void *recv)
{
    return c->ops->allgather(ctx, c, send, bytes, recv);
}

cv_status cv_comm_gatherv(cv_ctx *ctx, cv_comm *c, const void *send, size_t bytes, int root,
                          void **recv, size_t *recv_bytes)
{
    *recv = NULL;
    *recv_bytes = 0;
    if (root < 0 || root >= c->size)
        return cv_fail(ctx, CV_ERR_INVALID, "gather: root %d outside 0..%d", root, c->size - 1);
    return c->ops->gatherv(ctx, c, send, bytes, root, recv, recv_bytes);
}

cv_status cv_comm_barrier(cv_ctx *ctx, cv_comm *c)
{
    return c->ops->barrier(ctx, c);
}

cv_status cv_comm_finalize(cv_ctx *ctx, cv_comm *c)
{
    if (c->finalized) return CV_OK;
    c->finalized = 1;
    return c->ops->finalize(ctx, c);
}

void cv_comm_free(cv_comm *c)
{
    if (c) c->ops->free(c);
}
