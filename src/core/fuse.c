/* The fusion pass. Nodes are in topological order, so one forward walk suffices. */
#include "core/fuse.h"

#include <stdlib.h>

void fuse_free(cv_fused *f)
{
    free(f->steps);
    free(f->value);
    free(f->last_use);
    f->steps = NULL, f->value = f->last_use = NULL;
}

static int fusable_act_host(cv_op op)
{
    return op == OP_CONV || op == OP_LINEAR || op == OP_ADD || op == OP_MUL || op == OP_BN;
}

cv_status fuse_graph(cv_ctx *ctx, const cv_graph *g, cv_fused *f)
{
    int n = g->n;
    int *uses = calloc((size_t)n, sizeof *uses), *consumer = calloc((size_t)n, sizeof *consumer);
    int *step_of = malloc((size_t)n * sizeof *step_of);
    f->steps = malloc((size_t)n * sizeof *f->steps);
    f->value = malloc((size_t)n * sizeof *f->value);
    f->last_use = malloc((size_t)n * sizeof *f->last_use);
    f->n = 0;
    if (!uses || !consumer || !step_of || !f->steps || !f->value || !f->last_use) {
        free(uses), free(consumer), free(step_of);
        fuse_free(f);
        return cv_fail(ctx, CV_ERR_NOMEM, "fusion: out of memory");
    }
    for (int i = 0; i < n; i++) {
        f->value[i] = i, step_of[i] = -1, f->last_use[i] = -1;
        for (int k = 0; k < g->nodes[i].nin; k++) {
            uses[g->nodes[i].in[k]]++;
            consumer[g->nodes[i].in[k]] = i;
        }
    }
    uses[g->output]++;
    consumer[g->output] = -1;
    char *absorbed = calloc((size_t)n, 1);
    if (!absorbed) {
        free(uses), free(consumer), free(step_of);
        fuse_free(f);
        return cv_fail(ctx, CV_ERR_NOMEM, "fusion: out of memory");
    }
/* the single consumer of node v's value, if it has exactly one */
#define ONLY(v) (uses[v] == 1 && consumer[v] >= 0 ? consumer[v] : -1)
    for (int i = 0; i < n; i++) {
        const cv_node *nd = &g->nodes[i];
        if (absorbed[i]) continue;
        if (nd->op == OP_DROPOUT) {
            f->value[i] = f->value[nd->in[0]];
            continue;
        }
        cv_step st = {.node = i, .bn = -1, .scale = -1, .sum = -1, .act = ACT_NONE, .out = i};
        if (nd->op == OP_ADD) {
            /* Accumulate into the conv that produced the operand computed last, if it is free. */
            int a = f->value[nd->in[0]], b = f->value[nd->in[1]];
            int sa = step_of[a], sb = step_of[b];
            int pick = sa > sb ? a : b, other = pick == a ? b : a, sp = step_of[pick];
            if (sp >= 0 && f->steps[sp].out == pick && g->nodes[f->steps[sp].node].op == OP_CONV &&
                f->steps[sp].sum < 0 && f->steps[sp].act == ACT_NONE && uses[pick] == 1 &&
                step_of[other] < sp) {
                cv_step *c = &f->steps[sp];
                c->sum = other;
                c->out = i;
                step_of[i] = sp;
                int j = ONLY(i);
                if (j >= 0 && g->nodes[j].op == OP_ACT) {
                    c->act = g->nodes[j].a.act, c->out = j, absorbed[j] = 1, step_of[j] = sp;
                }
                for (int v = 0; v < n; v++)
                    if (step_of[v] == sp) f->value[v] = c->out;
                continue;
            }
        }
        if (nd->op == OP_CONV) {
            int j = ONLY(st.out);
            if (j >= 0 && g->nodes[j].op == OP_BN) st.bn = j, st.out = j, absorbed[j] = 1;
            j = ONLY(st.out);
            if (j >= 0 && g->nodes[j].op == OP_CHANNEL_SCALE)
                st.scale = j, st.out = j, absorbed[j] = 1;
        }
        if (fusable_act_host(nd->op)) {
            int j = ONLY(st.out);
            if (j >= 0 && g->nodes[j].op == OP_ACT)
                st.act = g->nodes[j].a.act, st.out = j, absorbed[j] = 1;
        }
        int s = f->n++;
        f->steps[s] = st;
        step_of[i] = s;
        if (st.bn >= 0) step_of[st.bn] = s, f->value[st.bn] = st.out;
        if (st.scale >= 0) step_of[st.scale] = s, f->value[st.scale] = st.out;
        step_of[st.out] = s;
        f->value[i] = f->value[st.out] = st.out;
    }
#undef ONLY
    /* last readers of each value */
    for (int s = 0; s < f->n; s++) {
        const cv_step *st = &f->steps[s];
        const cv_node *nd = &g->nodes[st->node];
        for (int k = 0; k < nd->nin; k++) f->last_use[f->value[nd->in[k]]] = s;
        if (st->sum >= 0) f->last_use[f->value[st->sum]] = s;
    }
    f->last_use[f->value[g->output]] = f->n;
    free(uses), free(consumer), free(step_of), free(absorbed);
    return CV_OK;
}
