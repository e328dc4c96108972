/* MPI collectives (OpenMPI). MPI_COMM_WORLD keeps MPI's default error handler, errors-are-fatal:
 * a failed or dead peer ends the whole job through mpirun instead of leaving ranks waiting. Only
 * the thread that called cv_comm_init makes MPI calls (MPI_THREAD_FUNNELED). */
#include <limits.h>
#include <mpi.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dist/comm.h"

struct cv_comm_req {
    MPI_Request r;
};

/* Large buffers go in pieces whose counts fit MPI's int. */
#define CHUNK ((size_t)1 << 30)

static cv_status mpi_err(cv_ctx *ctx, int rc, const char *what)
{
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(rc, msg, &len) != MPI_SUCCESS) len = 0;
    msg[len < MPI_MAX_ERROR_STRING ? len : MPI_MAX_ERROR_STRING - 1] = 0;
    return cv_fail(ctx, CV_ERR_IO, "MPI %s failed: %s", what, msg);
}

static MPI_Datatype mpi_type(cv_dtype t)
{
    return t == CV_F64 ? MPI_DOUBLE : MPI_FLOAT;
}

static size_t elem_size(cv_dtype t)
{
    return t == CV_F64 ? 8 : 4;
}

static cv_status m_allreduce(cv_ctx *ctx, cv_comm *c, void *buf, size_t count, cv_dtype dtype)
{
    for (size_t off = 0; off < count; off += CHUNK) {
        size_t n = count - off < CHUNK ? count - off : CHUNK;
        int rc = MPI_Allreduce(MPI_IN_PLACE, (char *)buf + off * elem_size(dtype), (int)n,
                               mpi_type(dtype), MPI_SUM, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) return mpi_err(ctx, rc, "allreduce");
    }
    return CV_OK;
}

static cv_status m_iallreduce(cv_ctx *ctx, cv_comm *c, void *buf, size_t count, cv_dtype dtype,
                              cv_comm_req **req)
{
    if (count > INT_MAX)
        return cv_fail(ctx, CV_ERR_INVALID, "allreduce: %zu elements in one request (max %d)",
                       count, INT_MAX);
    cv_comm_req *q = malloc(sizeof *q);
    if (!q) return cv_fail(ctx, CV_ERR_NOMEM, "out of memory");
    int rc = MPI_Iallreduce(MPI_IN_PLACE, buf, (int)count, mpi_type(dtype), MPI_SUM, MPI_COMM_WORLD,
                            &q->r);
    if (rc != MPI_SUCCESS) {
        free(q);
        return mpi_err(ctx, rc, "iallreduce");
    }
    *req = q;
    return CV_OK;
}

static void m_progress(cv_comm *c)
{
    int flag;
    /* Any MPI call drives OpenMPI's progress engine; MPI_Iprobe is the cheapest that does. */
    MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, MPI_STATUS_IGNORE);
}

static cv_status m_wait(cv_ctx *ctx, cv_comm *c, cv_comm_req *req)
{
    int rc = MPI_Wait(&req->r, MPI_STATUS_IGNORE);
    free(req);
    return rc == MPI_SUCCESS ? CV_OK : mpi_err(ctx, rc, "wait");
}

static cv_status m_bcast(cv_ctx *ctx, cv_comm *c, void *buf, size_t bytes, int root)
{
    for (size_t off = 0; off < bytes; off += CHUNK) {
        size_t n = bytes - off < CHUNK ? bytes - off : CHUNK;
        int rc = MPI_Bcast((char *)buf + off, (int)n, MPI_BYTE, root, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) return mpi_err(ctx, rc, "broadcast");
    }
    return CV_OK;
}

static cv_status m_allgather(cv_ctx *ctx, cv_comm *c, const void *send, size_t bytes, void *recv)
{
    if (bytes > INT_MAX)
        return cv_fail(ctx, CV_ERR_INVALID, "allgather: %zu bytes per rank (max %d)", bytes,
                       INT_MAX);
    int rc = MPI_Allgather(send, (int)bytes, MPI_BYTE, recv, (int)bytes, MPI_BYTE, MPI_COMM_WORLD);
    return rc == MPI_SUCCESS ? CV_OK : mpi_err(ctx, rc, "allgather");
}

/* A rank that fails here returns its error and its process exits without finalizing: mpirun then
 * ends the others, which are waiting in the collective (docs/distributed.md). */
static cv_status m_gatherv(cv_ctx *ctx, cv_comm *c, const void *send, size_t bytes, int root,
                           void **recv, size_t *recv_bytes)
{
    if (bytes > INT_MAX)
        return cv_fail(ctx, CV_ERR_INVALID, "gather: %zu bytes from one rank (max %d)", bytes,
                       INT_MAX);
    int mine = (int)bytes, *counts = malloc((size_t)c->size * sizeof *counts),
        *displs = malloc((size_t)c->size * sizeof *displs);
    if (!counts || !displs) {
        free(counts);
        free(displs);
        return cv_fail(ctx, CV_ERR_NOMEM, "out of memory");
    }
    cv_status s = CV_OK;
    char *buf = NULL;
    int64_t total = 0;
    int rc = MPI_Gather(&mine, 1, MPI_INT, counts, 1, MPI_INT, root, MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS) s = mpi_err(ctx, rc, "gather (sizes)");
    for (int r = 0; !s && c->rank == root && r < c->size; r++) {
        if (total + counts[r] > INT_MAX) {
            s = cv_fail(ctx, CV_ERR_INVALID, "gather: more than %d bytes in all", INT_MAX);
            break;
        }
        displs[r] = (int)total;
        total += counts[r];
    }
    if (!s && c->rank == root && !(buf = malloc(total ? (size_t)total : 1)))
        s = cv_fail(ctx, CV_ERR_NOMEM, "gather: out of memory for %lld bytes", (long long)total);
    if (!s) {
        rc = MPI_Gatherv(send, mine, MPI_BYTE, buf, counts, displs, MPI_BYTE, root, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) s = mpi_err(ctx, rc, "gatherv");
    }
    free(counts);
    free(displs);
    if (s) {
        free(buf);
        return s;
    }
    *recv = buf;
    *recv_bytes = (size_t)total;
    return CV_OK;
}

static cv_status m_barrier(cv_ctx *ctx, cv_comm *c)
{
    int rc = MPI_Barrier(MPI_COMM_WORLD);
    return rc == MPI_SUCCESS ? CV_OK : mpi_err(ctx, rc, "barrier");
}

static cv_status m_finalize(cv_ctx *ctx, cv_comm *c)
{
    int rc = MPI_Finalize();
    return rc == MPI_SUCCESS ? CV_OK : mpi_err(ctx, rc, "finalize");
}

static void m_free(cv_comm *c)
{
    free(c);
}

static const cv_comm_ops mpi_ops = {.name = "mpi",
                                    .allreduce = m_allreduce,
                                    .iallreduce = m_iallreduce,
                                    .progress = m_progress,
                                    .wait = m_wait,
                                    .bcast = m_bcast,
                                    .allgather = m_allgather,
                                    .gatherv = m_gatherv,
                                    .barrier = m_barrier,
                                    .finalize = m_finalize,
                                    .free = m_free};

cv_status comm_mpi_new(cv_ctx *ctx, cv_comm **out)
{
    int inited = 0;
    MPI_Initialized(&inited);
    if (!inited) {
        int provided = 0;
        int rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
        if (rc != MPI_SUCCESS) return mpi_err(ctx, rc, "init");
        if (provided < MPI_THREAD_FUNNELED)
            return cv_fail(ctx, CV_ERR_UNSUPPORTED,
                           "MPI: the library gives thread level %d, cvision needs FUNNELED",
                           provided);
    }
    cv_comm *c = calloc(1, sizeof *c);
    if (!c) return cv_fail(ctx, CV_ERR_NOMEM, "out of memory");
    c->ops = &mpi_ops;
    MPI_Comm_rank(MPI_COMM_WORLD, &c->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &c->size);
    *out = c;
    return CV_OK;
}
