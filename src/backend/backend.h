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
 * convolutions and inner products in bf16 (mixed precision; fp32 everything else). grad_ready
 * (optional) is called during backward, once per trainable parameter, as soon as nothing more
 * accumulates into its gradient, so that data-parallel training can start averaging it while
 * backward goes on. */
typedef struct {
    cv_tensor **grad;
    uint64_t seed;
    int bf16;
    void (*grad_ready)(void *user, int param);
    void *user;
    /* Synchronised batch norm (optional; the reference backend): sums n doubles in place over
     * the data-parallel ranks (0 on success). Training-mode batch norms then normalise with the
     * statistics of all ranks' batches together. */
    int (*sum)(void *user, double *buf, int n);
} cv_train_io;

/* For each parameter, the node after whose backward its gradient is final: the first node that
 * uses it (backward runs in reverse node order); -1 for parameters no node uses. Returns a
 * malloc'ed array of cv_state_count(params) entries, or NULL when out of memory. */
int *grad_final_node(const cv_graph *g, const cv_state *params);

/* Per op type of the graph node a step belongs to: time and calls of its primitives, of the
 * reorders planned for it, of a backend's own kernels, and of reference-kernel fallbacks
 * (cv_model_profile). */
enum { PROF_PRIM, PROF_REORDER, PROF_CL, PROF_REF, PROF_KINDS };
typedef struct {
    double seconds[OP_COUNT][PROF_KINDS];
    int64_t calls[OP_COUNT][PROF_KINDS];
} cv_profile;

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
    /* Optional: accumulate every step's time into p from now on (NULL stops). */
    void (*set_profile)(cv_exec *e, cv_profile *p);
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
