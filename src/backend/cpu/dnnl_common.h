/* Shared plumbing of the oneDNN backend's two planners (eval: dnnl.c, training: dnnl_train.c):
 * values (a memory descriptor and object in an arena slot), step lists, reorders. */
#ifndef CV_DNNL_COMMON_H
#define CV_DNNL_COMMON_H

#include <dnnl.h>

#include "backend/backend.h"

/* A value: one memory descriptor and object, living in a slot of the activation arena. */
typedef struct {
    dnnl_memory_desc_t md;
    dnnl_memory_t mem;
    int slot; /* -1: not in the arena (the caller's input, weights, gradients) */
    int cl;   /* channels-last by choice (transformer values): its consumers keep NHWC */
} value;

typedef enum {
    X_PRIM,      /* a oneDNN primitive */
    X_REF,       /* a node's forward by a reference kernel on plain layouts */
    X_REF_BWD,   /* its backward: zero the input-gradient temporaries, then the kernel */
    X_BN_UPDATE, /* running statistics from a training batch norm's batch mean and variance */
    X_DROPOUT,   /* dropout mask, forward (ref backend's counter-based masks) */
    X_DROPOUT_BWD,
    X_ZERO,       /* clear a value */
    X_GRAD_READY, /* parameter `node`'s gradient is final: io->grad_ready (data parallelism) */
    X_CL,         /* a node's forward (phase `phase`) by a channels-last kernel (dnnl_cl.c) */
    X_CL_BWD,     /* attention's backward (phase `phase`) by a channels-last kernel */
    /* synchronised batch norm (io->sum): the batch statistics over all ranks from the plain input
     * in_val[0] into in_val[1] (mean) and in_val[2] (variance), and the running ones updated */
    X_BN_SYNC_STATS,
    /* its backward: from this rank's sums of dy (in_val[0]) and dy * x̂ (in_val[1]) and the
     * variance (in_val[2]), the per-channel factors din_val[0] and din_val[1] of the input
     * gradient's correction (dnnl_train.c, bwd_bn) */
    X_BN_SYNC_BWD,
} xkind;

/* The parts of an op on channels-last values (dnnl_cl.c): attention is CL_OP (its scores), oneDNN's
 * softmax, then CL_APPLY (the product with v); Swin V2's attention starts with CL_V2_TABLE (the
 * position-bias table from its MLP) and CL_V2_PREPARE (normalised q and k, biases). */
typedef enum { CL_OP, CL_APPLY, CL_V2_TABLE, CL_V2_PREPARE } cl_phase;

typedef struct {
    xkind kind;
    dnnl_primitive_t prim;
    int nargs;
    int arg_kind[10];
    int arg_val[10]; /* value indices */
    /* the other kinds: a node, its (plain) inputs and output, and for backward their gradients */
    int node, nin, in_val[CV_MAX_INPUTS], out_val, din_val[CV_MAX_INPUTS], dout_val;
    int phase; /* X_CL, X_CL_BWD: a cl_phase */
    int prof;  /* PROF_* kind for cv_profile (X_PRIM steps: node is the node planned, or -1) */
} xstep;

typedef struct {
    xstep *v;
    int n, cap;
} xlist;

typedef struct {
    size_t size;
    int free; /* 1 free, 0 in use, 2 taken over by an in-place result this step */
    void *ptr;
} slot;

struct cv_exec {
    const cv_graph *g;
    cv_state *params;
    const cv_shape4 *shapes;
    cv_plan_mode mode;
    dnnl_engine_t eng;
    dnnl_stream_t stream;
    value *vals;
    int nvals, capvals;
    xlist fwd, bwd;
    slot *slots;
    int nslots;
    int *node_val; /* node id -> value index of its output */
    int input_val, output_val, dout_val;
    void **owned; /* weight buffers owned by the plan */
    int nowned, capowned;
    int threads;
    int cur_node;     /* the node being planned: recorded in its primitive steps for profiling */
    cv_profile *prof; /* NULL unless profiling */
};

#define DNNL(ctx, call)                                                                            \
    do {                                                                                           \
        dnnl_status_t st_ = (call);                                                                \
        if (st_ != dnnl_success)                                                                   \
            return cv_fail(ctx, CV_ERR_INTERNAL, "oneDNN: %s failed (status %d)", #call,           \
                           (int)st_);                                                              \
    } while (0)

int slot_get(cv_exec *e, size_t size);
cv_status new_value(cv_ctx *ctx, cv_exec *e, const dnnl_memory_desc_t *md, int in_arena, int *out);
/* A value over memory the caller owns (parameters, gradients, the plan's own buffers). */
cv_status bound_value(cv_ctx *ctx, cv_exec *e, const dnnl_memory_desc_t *md, void *data, int *out);
cv_status add_xstep(cv_ctx *ctx, xlist *l, const xstep *x);
cv_status own(cv_ctx *ctx, cv_exec *e, void *p);
cv_status prim_step(cv_ctx *ctx, cv_exec *e, xlist *l, const_dnnl_primitive_desc_t pd, int nargs,
                    const int *kinds, const int *vals);
/* src -> dst in dst's layout; with `accumulate`, dst += src. */
cv_status reorder_step(cv_ctx *ctx, cv_exec *e, xlist *l, int src, int dst, int accumulate);
void md_plain(dnnl_memory_desc_t *md, const cv_shape4 *s);
/* Channels-last (NHWC; [N, F] for rank 2): the layout of the transformer ops. */
void md_cl(dnnl_memory_desc_t *md, const cv_shape4 *s);
/* Another view (`md`, same size) of value v's arena buffer. */
cv_status alias_value(cv_ctx *ctx, cv_exec *e, int v, const dnnl_memory_desc_t *md, int *out);
/* Value v in layout `want`: v itself, or a reorder into a new arena value (listed in temps). */
cv_status as_layout(cv_ctx *ctx, cv_exec *e, xlist *l, int v, const dnnl_memory_desc_t *want,
                    int *out, int *temps, int *ntemps);
/* A plan-owned copy of `data` (in layout `user`) in layout `want`, reordered once now. */
cv_status weights_value(cv_ctx *ctx, cv_exec *e, const float *data, const dnnl_memory_desc_t *user,
                        const dnnl_memory_desc_t *want, int *out);

/* PyTorch activations as oneDNN eltwise algorithms; hardsigmoid needs two (linear, then clip). */
typedef struct {
    int n;
    dnnl_alg_kind_t alg[2];
    float alpha[2], beta[2];
} act_algs;

act_algs act_to_dnnl(cv_act act);
/* Attributes with post-ops: an accumulate into the destination, then the activation. */
cv_status post_ops(cv_ctx *ctx, cv_act act, int sum, dnnl_primitive_attr_t *attr);
/* Convolution geometry as oneDNN wants it (dilation - 1, explicit right padding). */
void conv_geometry(const cv_node *nd, const cv_shape4 *xs, const cv_shape4 *ys, int64_t kh,
                   int64_t kw, dnnl_dims_t strides, dnnl_dims_t dil, dnnl_dims_t pl,
                   dnnl_dims_t pr);
/* Convolution algorithms in order of preference. oneDNN offers Winograd only for 3x3 stride-1
 * convolutions on AVX-512; there it is 1.2-2.3x faster than direct (docs/performance.md) and stays
 * within ~1e-5 relative of it. Every other convolution falls through to direct. */
#define CONV_ALGS 2
extern const dnnl_alg_kind_t conv_algs[CONV_ALGS];
/* Index into conv_algs of the first algorithm worth trying for output shape `ys`. */
int conv_first_alg(const cv_shape4 *ys);
/* Destroys *pd and returns dnnl_unimplemented when oneDNN gave its reference kernel (or says
 * nothing of its implementation), so the caller tries other layouts; else dnnl_success. */
dnnl_status_t reject_ref_impl(dnnl_primitive_desc_t *pd);
/* Pooling geometry; adaptive pooling with uniform windows becomes a plain average pool. */
void pool_geometry(const cv_node *nd, const cv_shape4 *xs, const cv_shape4 *ys,
                   dnnl_alg_kind_t *alg, dnnl_dims_t strides, dnnl_dims_t kernel, dnnl_dims_t dil,
                   dnnl_dims_t pl, dnnl_dims_t pr);
/* Whether a pooling node needs the reference kernel (non-uniform adaptive windows; ceil_mode
 * average with count_include_pad, whose divisor oneDNN computes differently). */
int pool_needs_ref(const cv_exec *e, int node);
/* Runs a step list; `io` feeds the dropout steps. */
cv_status run_list(cv_ctx *ctx, cv_exec *e, const xlist *l, const cv_train_io *io);
void exec_free(cv_exec *e);
cv_status exec_new(cv_ctx *ctx, const cv_graph *g, cv_state *params, const cv_shape4 *shapes,
                   cv_plan_mode mode, cv_exec **out);
/* Re-assigns the arena slots by liveness over the forward list followed by the backward list: a
 * buffer lives from the first step that touches it to the last; dead buffers' slots are reused.
 * For plans that allocate a slot per buffer while planning (training). Before exec_bind. */
cv_status exec_pack_slots(cv_ctx *ctx, cv_exec *e);
/* Binds arena slots to memory and every arena value to its slot (after planning). */
cv_status exec_bind(cv_ctx *ctx, cv_exec *e);

/* dnnl_cl.c: kernels on channels-last values (see there) */
void cl_attention_scores(const float *qkv, float *S, const cv_shape4 *xs, int heads);
void cl_attention_apply(const float *qkv, const float *P, float *y, const cv_shape4 *xs, int heads);
/* A windowed attention: Swin's (shifted) windows or MaxViT's blocks and grids of w x w tokens,
 * `heads` heads, scores scaled by `scale`. */
typedef struct {
    int w, shift, grid, heads;
    float scale;
} cl_win;
cl_win cl_win_of(const cv_node *nd, const cv_shape4 *xs);
void cl_window_scores(const float *qkv, float *S, const cv_shape4 *xs, const cl_win *cw,
                      const float *table);
void cl_window_apply(const float *qkv, const float *P, float *y, const cv_shape4 *xs,
                     const cl_win *cw);
/* training: attention's backward (dnnl_cl.c, around oneDNN's softmax backward) */
void cl_attention_dprobs(const float *qkv, const float *dy, float *dP, const cv_shape4 *xs,
                         int heads);
void cl_attention_grads(const float *qkv, const float *dy, const float *P, const float *dS,
                        float *dqkv, const cv_shape4 *xs, int heads);
void cl_window_dprobs(const float *qkv, const float *dy, float *dP, const cv_shape4 *xs,
                      const cl_win *cw);
void cl_window_grads(const float *qkv, const float *dy, const float *P, const float *dS,
                     float *dqkv, float *dtable, const cv_shape4 *xs, const cl_win *cw);
/* Whether attention node nd is windowed (Swin V1 and V2, MaxViT), and its scores' shape
 * [rows, tokens]: a row per sample, window, head and query token. */
int cl_windowed(const cv_node *nd);
void cl_score_shape(const cv_node *nd, const cv_shape4 *xs, int64_t sd[2]);
/* Entries of a window's relative position bias table, (2w - 1)^2 x heads. */
size_t cl_v2_table_size(const cl_win *cw);
/* Swin V2: the CL_V2_TABLE and CL_V2_PREPARE steps on the channels-last qkv x of attention
 * `node`, into new values *table and *prep (channels-last, as x). */
cv_status cl_v2_steps(cv_ctx *ctx, cv_exec *e, xlist *l, int node, int x, int *table, int *prep);
void cl_tokens(const float *x, float *y, const cv_shape4 *xs, const float *cls, const float *pos);
void cl_take(const float *x, float *y, const cv_shape4 *xs, int token);
void cl_pad_crop(const float *x, float *y, const cv_shape4 *xs, const cv_shape4 *ys);
void cl_merge(const float *x, float *y, const cv_shape4 *xs, const cv_shape4 *ys);

cv_status dnnl_plan_train(cv_ctx *ctx, cv_exec *e, const cv_train_io *io);

#endif
