/* Gradient averaging for data-parallel training, as PyTorch's DDP does it: the gradients, taken in
 * reverse parameter order (the order backward finishes them), are packed into buckets of about
 * 25 MB; each bucket's allreduce starts as soon as its last gradient is final and runs while
 * backward goes on; before the optimizer step every bucket is waited for and its sum, divided by
 * the number of ranks, copied back. */
#ifndef CV_TRAIN_DDP_H
#define CV_TRAIN_DDP_H

#include "cvision/core.h"
#include "cvision/dist.h"

#define DDP_BUCKET_BYTES ((size_t)25 << 20)

typedef struct ddp ddp;

cv_status ddp_new(cv_ctx *ctx, cv_comm *comm, size_t bucket_bytes, ddp **out);
void ddp_free(ddp *d);
/* Before a step's backward: `grads` is the model's gradient table (buckets are rebuilt when it
 * changes, e.g. after unfreezing). */
cv_status ddp_begin(cv_ctx *ctx, ddp *d, cv_state *grads);
/* The gradient tensor `g` is final for this step: may start an allreduce. `d` is the ddp; the
 * signature is cv_model_set_grad_hook's. */
void ddp_grad_ready(void *d, const cv_tensor *g);
/* After backward: starts what is left, waits for everything and writes the averages back. */
cv_status ddp_finish(cv_ctx *ctx, ddp *d);
/* Seconds spent waiting in ddp_finish since ddp_new (the allreduce time not hidden by backward). */
double ddp_wait_seconds(const ddp *d);

/* cv_model_set_sync_bn's sum over the ranks of `comm` (a cv_comm *). */
int ddp_sum(void *comm, double *buf, int n);

/* Every tensor of `st` (in order) from `root` to all ranks. */
cv_status ddp_bcast_state(cv_ctx *ctx, cv_comm *comm, cv_state *st, int root);

#endif
