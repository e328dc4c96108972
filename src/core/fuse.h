/* Inference fusion, shared by the fast backends: a convolution absorbs the batch norm after it
 * (folded into its weights) or a channel scale (ConvNeXt's layer_scale, likewise), a residual add
 * (as an accumulate-into-destination post-op) and the activation after that; linear, add, mul and
 * batch norm absorb a following activation; dropout disappears. A node is absorbed only when its
 * input has no other consumer. */
#ifndef CV_FUSE_H
#define CV_FUSE_H

#include "core/graph.h"

typedef struct {
    int node;  /* the primary node: its op and inputs define the step */
    int bn;    /* batch norm folded into a conv, or -1 */
    int scale; /* channel_scale folded into a conv (its weights and bias scaled), or -1 */
    int sum;   /* value (node id) added to the result before `act`, or -1 */
    cv_act act;
    int out; /* node id of the value this step produces */
} cv_step;

typedef struct {
    cv_step *steps;
    int n;
    int *value; /* node id -> node id of the value that holds it (through absorbed/alias nodes) */
    int *last_use; /* node id of a step output -> index of the last step reading it (n: the output)
                    */
} cv_fused;

cv_status fuse_graph(cv_ctx *ctx, const cv_graph *g, cv_fused *f);
void fuse_free(cv_fused *f);

#endif
