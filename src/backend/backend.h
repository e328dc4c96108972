/* The backend interface: a backend turns a graph, its parameters and the inferred shapes into an
 * executable plan for one input size, and runs it. Backends share the graph, shape inference and
 * the fusion pass (core/fuse.h); everything else is theirs. */
#ifndef CV_BACKEND_H
#define CV_BACKEND_H

#include "core/graph.h"

typedef struct cv_exec cv_exec;

typedef struct {
    const char *name;
    cv_status (*plan)(cv_ctx *ctx, const cv_graph *g, const cv_state *params,
                      const cv_shape4 *shapes, cv_exec **out);
    /* in: NCHW float32 of shapes[input]; out: the output node's values, row-major */
    cv_status (*run)(cv_ctx *ctx, cv_exec *e, const float *in, float *out);
    void (*free)(cv_exec *e);
} cv_backend_ops;

extern const cv_backend_ops cv_backend_ref;
extern const cv_backend_ops cv_backend_dnnl;

#endif
