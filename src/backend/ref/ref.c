/* The reference backend: every node's value gets its own buffer and every op runs as written in
 * the graph, unfused. Slow and obviously right; the fast backends are tested against it. */
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "backend/ref/kernels.h"

struct cv_exec {
    const cv_graph *g;
    const cv_state *params;
    const cv_shape4 *shapes;
    float **val; /* one buffer per node (the input node's points at the caller's input) */
};

static void ref_free(cv_exec *e)
{
    if (!e) return;
    if (e->val)
        for (int i = 0; i < e->g->n; i++)
            if (e->g->nodes[i].op != OP_INPUT) cv_aligned_free(e->val[i]);
    free(e->val);
    free(e);
}

static cv_status ref_plan(cv_ctx *ctx, const cv_graph *g, const cv_state *params,
                          const cv_shape4 *shapes, cv_exec **out)
{
    cv_exec *e = calloc(1, sizeof *e);
    if (!e || !(e->val = calloc((size_t)g->n, sizeof *e->val))) {
        free(e);
        return cv_fail(ctx, CV_ERR_NOMEM, "ref backend: out of memory");
    }
    e->g = g, e->params = params, e->shapes = shapes;
    for (int i = 0; i < g->n; i++) {
        if (g->nodes[i].op == OP_INPUT) continue;
        if (!(e->val[i] = cv_aligned_alloc((size_t)shape_numel(&shapes[i]) * sizeof(float)))) {
            ref_free(e);
            return cv_fail(ctx, CV_ERR_NOMEM, "ref backend: out of memory for activations");
        }
    }
    *out = e;
    return CV_OK;
}

static const float *param(const cv_exec *e, const cv_node *nd, int k)
{
    return nd->param[k] < 0 ? NULL : cv_state_tensor(e->params, nd->param[k])->data;
}

static cv_status ref_run(cv_ctx *ctx, cv_exec *e, const float *in, float *out)
{
    const cv_graph *g = e->g;
    for (int i = 0; i < g->n; i++) {
        const cv_node *nd = &g->nodes[i];
        const cv_shape4 *s = &e->shapes[i], *xs = nd->nin ? &e->shapes[nd->in[0]] : NULL;
        float *y = e->val[i];
        const float *x = nd->nin ? e->val[nd->in[0]] : NULL;
        switch (nd->op) {
        case OP_INPUT:
            e->val[i] = (float *)in;
            break;
        case OP_CONV: {
            const cv_tensor *w = cv_state_tensor(e->params, nd->param[0]);
            ref_conv2d(x, w->data, param(e, nd, 1), y, xs, s, (int)w->shape[2], (int)w->shape[3],
                       &nd->a);
            break;
        }
        case OP_BN:
            ref_batchnorm(x, y, s, param(e, nd, 0), param(e, nd, 1), param(e, nd, 2),
                          param(e, nd, 3), nd->a.eps);
            break;
        case OP_ACT:
            ref_act(x, y, shape_numel(s), nd->a.act);
            break;
        case OP_MAXPOOL:
            ref_maxpool(x, y, xs, s, &nd->a);
            break;
        case OP_AVGPOOL:
            ref_avgpool(x, y, xs, s, &nd->a);
            break;
        case OP_ADAPTIVE_AVGPOOL:
            ref_adaptive_avgpool(x, y, xs, s);
            break;
        case OP_LINEAR:
            ref_linear(x, param(e, nd, 0), param(e, nd, 1), y, s->d[0], xs->d[1], s->d[1]);
            break;
        case OP_ADD:
        case OP_MUL:
            ref_binary(nd->op, x, e->val[nd->in[1]], y, xs, &e->shapes[nd->in[1]]);
            break;
        case OP_CONCAT: {
            const float *xsrc[CV_MAX_INPUTS];
            cv_shape4 shp[CV_MAX_INPUTS];
            for (int k = 0; k < nd->nin; k++)
                xsrc[k] = e->val[nd->in[k]], shp[k] = e->shapes[nd->in[k]];
            ref_concat(xsrc, shp, nd->nin, y);
            break;
        }
        case OP_FLATTEN:
        case OP_DROPOUT:
            memcpy(y, x, (size_t)shape_numel(s) * sizeof *y);
            break;
        case OP_SOFTMAX:
            ref_softmax(x, y, s->d[0], s->d[1]);
            break;
        default:
            return cv_fail(ctx, CV_ERR_INTERNAL, "ref backend: op %s", op_name(nd->op));
        }
    }
    memcpy(out, e->val[g->output], (size_t)shape_numel(&e->shapes[g->output]) * sizeof *out);
    return CV_OK;
}

const cv_backend_ops cv_backend_ref = {"ref", ref_plan, ref_run, ref_free};
