/* The collective implementations' vtable (single.c, mpi.c; later nccl.c). */
#ifndef CV_DIST_COMM_H
#define CV_DIST_COMM_H

#include "cvision/dist.h"

typedef struct {
    const char *name;
    cv_status (*allreduce)(cv_ctx *ctx, cv_comm *c, void *buf, size_t count, cv_dtype dtype);
    cv_status (*iallreduce)(cv_ctx *ctx, cv_comm *c, void *buf, size_t count, cv_dtype dtype,
                            cv_comm_req **req);
    void (*progress)(cv_comm *c);
    cv_status (*wait)(cv_ctx *ctx, cv_comm *c, cv_comm_req *req);
    cv_status (*bcast)(cv_ctx *ctx, cv_comm *c, void *buf, size_t bytes, int root);
    cv_status (*allgather)(cv_ctx *ctx, cv_comm *c, const void *send, size_t bytes, void *recv);
    cv_status (*gatherv)(cv_ctx *ctx, cv_comm *c, const void *send, size_t bytes, int root,
                         void **recv, size_t *recv_bytes);
    cv_status (*barrier)(cv_ctx *ctx, cv_comm *c);
    cv_status (*finalize)(cv_ctx *ctx, cv_comm *c);
    void (*free)(cv_comm *c);
} cv_comm_ops;

struct cv_comm {
    const cv_comm_ops *ops;
    int rank, size;
    int finalized;
    void *impl;
};

cv_status comm_single_new(cv_ctx *ctx, cv_comm **out);
cv_status comm_mpi_new(cv_ctx *ctx, cv_comm **out);

#endif
