/* The backend interface: a backend turns a graph, its parameters and the inferred shapes into an
 * executable plan for one input size, and runs it. Backends share the graph, shape inference and
 * the fusion pass (core/fuse.h); everything else is theirs. */
#ifndef CV_BACKEND_H
#define CV_BACKEND_H

#include "core/graph.h"

typedef struct cv_exec cv_exec;

typedef enum {
    PLAN_EVAL = 0, /* inference: running statistics, dropout off, fusion allowed */
    PLAN_TRAIN,    /* training: batch statistics (running ones updated), dropout on, backward */
} cv_plan_mode;

/* What a training step needs besides the graph: per parameter index, its gradient tensor (NULL
 * when it does not train), the seed of this step's dropout masks, and whether training plans run
 * convolutions and inner products in bf16 (mixed precision; fp32 everything else). */
typedef struct {
    cv_tensor **grad;
    uint64_t seed;
    int bf16;
} cv_train_io;

typedef struct {
    const char *name;
    /* io (training plans): the gradient tensors are known, and stay put, while the plan lives */
    cv_status (*plan)(cv_ctx *ctx, const cv_graph *g, cv_state *params, const cv_shape4 *shapes,
                      cv_plan_mode mode, const cv_train_io *io, cv_exec **out);
    /* in: NCHW float32 of shapes[input]; out: the output node's values, row-major. In training
     * mode this also updates the batch-norm running statistics in `params`. */
    cv_status (*run)(cv_ctx *ctx, cv_exec *e, const float *in, float *out, const cv_train_io *io);
    /* Training mode, after run: back-propagates dout (the output's gradient) and accumulates
     * parameter gradients into io->grad. */
    cv_status (*backward)(cv_ctx *ctx, cv_exec *e, const float *dout, const cv_train_io *io);
    void (*free)(cv_exec *e);
} cv_backend_ops;

/* The dropout mask decision for element i of node `node` under `seed`: counter-based, so the
 * same on every backend and thread count. Returns 1 to keep. */
int dropout_keep(uint64_t seed, int node, int64_t i, float p);

/* The mask index of element k of a dropout node's value `s`: k itself, or its sample for a
 * per-sample (stochastic depth) mask. */
static inline int64_t dropout_index(const cv_node *nd, const cv_shape4 *s, int64_t k)
{
    return nd->a.rows ? k / (shape_numel(s) / s->d[0]) : k;
}

extern const cv_backend_ops cv_backend_ref;
extern const cv_backend_ops cv_backend_dnnl;

#endif
