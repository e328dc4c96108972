/* Collectives for data-parallel training: one small interface over a single process, MPI (and,
 * later, NCCL). Buffers are plain pointers with an element count and a dtype (CV_F32, CV_F64, or
 * CV_U8 for bytes), so a device backend can take device pointers behind the same calls.
 *
 * cv_comm_init picks the implementation from the environment: MPI when the process was started by
 * an MPI launcher (mpirun sets OMPI_COMM_WORLD_SIZE; srun --mpi=pmix|pmi2 sets PMIX_RANK or
 * PMI_RANK; MPI_Init_thread is called only then), otherwise a single process whose collectives are
 * copies. Every collective must be called by all ranks in
 * the same order. */
#ifndef CVISION_DIST_H
#define CVISION_DIST_H

#include <stddef.h>
#include <stdint.h>

#include "cvision/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cv_comm cv_comm;
typedef struct cv_comm_req cv_comm_req; /* an allreduce in flight */

cv_status cv_comm_init(cv_ctx *ctx, cv_comm **out);
/* The single-process communicator, whatever the environment says. */
cv_status cv_comm_single(cv_ctx *ctx, cv_comm **out);
int cv_comm_rank(const cv_comm *c);
int cv_comm_size(const cv_comm *c);
const char *cv_comm_name(const cv_comm *c); /* "single" | "mpi" */

/* In-place sum over all ranks; dtype CV_F32 or CV_F64. */
cv_status cv_comm_allreduce_sum(cv_ctx *ctx, cv_comm *c, void *buf, size_t count, cv_dtype dtype);
/* The same, started asynchronously; `buf` must stay untouched until cv_comm_wait returns. */
cv_status cv_comm_iallreduce_sum(cv_ctx *ctx, cv_comm *c, void *buf, size_t count, cv_dtype dtype,
                                 cv_comm_req **req);
/* Lets requests in flight progress without waiting (MPI progresses them only inside calls). */
void cv_comm_progress(cv_comm *c);
/* Completes and frees `req`. */
cv_status cv_comm_wait(cv_ctx *ctx, cv_comm *c, cv_comm_req *req);
/* `bytes` bytes of `buf` from `root` to every rank. */
cv_status cv_comm_bcast(cv_ctx *ctx, cv_comm *c, void *buf, size_t bytes, int root);
/* Every rank sends `bytes` bytes; `recv` gets size * bytes, in rank order. */
cv_status cv_comm_allgather(cv_ctx *ctx, cv_comm *c, const void *send, size_t bytes, void *recv);
/* Every rank sends its own number of bytes; on `root`, *recv becomes a malloc'ed concatenation in
 * rank order (*recv_bytes its length; free it); elsewhere *recv is NULL. */
cv_status cv_comm_gatherv(cv_ctx *ctx, cv_comm *c, const void *send, size_t bytes, int root,
                          void **recv, size_t *recv_bytes);
cv_status cv_comm_barrier(cv_ctx *ctx, cv_comm *c);
/* Distributed evaluation, as the trainer's validation and `cvision eval` do it: every rank
 * evaluates its own unpadded shard (CV_SHARD_EXACT) and passes each sample's row (its index in
 * the dataset, `nl` int labels and `k` float32 scores) to cv_eval_gather_add. In one process the
 * rows go straight on to `sink`, batch by batch. With several ranks they are kept until
 * cv_eval_gather_finish sends them to rank 0, which puts them back in index order (what one
 * process sees with an unshuffled loader) and hands them all to its sink: what the sink computes
 * (metrics, a predictions file) covers every sample once, as in one process, and no ratio is
 * ever averaged across ranks. Only rank 0's sink is called. */
typedef cv_status (*cv_eval_sink)(cv_ctx *ctx, void *user, const int64_t *index, const int *labels,
                                  const float *scores, size_t n);
typedef struct cv_eval_gather cv_eval_gather;

cv_status cv_eval_gather_new(cv_ctx *ctx, cv_comm *c, int nl, int k, cv_eval_sink sink, void *user,
                             cv_eval_gather **out);
cv_status cv_eval_gather_add(cv_ctx *ctx, cv_eval_gather *g, const int64_t *index,
                             const int *labels, const float *scores, size_t n);
/* A collective: every rank calls it once, after its last row. */
cv_status cv_eval_gather_finish(cv_ctx *ctx, cv_eval_gather *g);
void cv_eval_gather_free(cv_eval_gather *g);
/* Ends a run that succeeded on every rank (MPI_Finalize). After a failure call only cv_comm_free:
 * the process then exits without finalizing, and mpirun ends the other ranks. */
cv_status cv_comm_finalize(cv_ctx *ctx, cv_comm *c);
void cv_comm_free(cv_comm *c);

#ifdef __cplusplus
}
#endif
#endif
