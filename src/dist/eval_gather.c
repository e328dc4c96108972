/* Evaluation rows from every rank to rank 0, in dataset order (cv_eval_gather in dist.h). */
#include <stdlib.h>
#include <string.h>

#include "cvision/dist.h"

struct cv_eval_gather {
    cv_comm *comm;
    size_t nl, k, rb; /* labels and scores per row; rb: bytes per packed row */
    cv_eval_sink sink;
    void *user;
    unsigned char *rows; /* packed (index, labels, scores) rows of this rank (several ranks) */
    size_t n, cap;
};

cv_status cv_eval_gather_new(cv_ctx *ctx, cv_comm *c, int nl, int k, cv_eval_sink sink, void *user,
                             cv_eval_gather **out)
{
    *out = NULL;
    if (nl < 1 || k < 1)
        return cv_fail(ctx, CV_ERR_INVALID, "evaluation gather: %d labels and %d scores per row",
                       nl, k);
    cv_eval_gather *g = calloc(1, sizeof *g);
    if (!g) return cv_fail(ctx, CV_ERR_NOMEM, "out of memory");
    g->comm = c;
    g->nl = (size_t)nl, g->k = (size_t)k;
    g->rb = sizeof(int64_t) + g->nl * sizeof(int) + g->k * sizeof(float);
    g->sink = sink, g->user = user;
    *out = g;
    return CV_OK;
}

cv_status cv_eval_gather_add(cv_ctx *ctx, cv_eval_gather *g, const int64_t *index,
                             const int *labels, const float *scores, size_t n)
{
    if (cv_comm_size(g->comm) == 1) return g->sink(ctx, g->user, index, labels, scores, n);
    if (g->n + n > g->cap) {
        size_t cap = g->cap ? g->cap : 256;
        while (cap < g->n + n) cap *= 2;
        unsigned char *r = realloc(g->rows, cap * g->rb);
        if (!r) return cv_fail(ctx, CV_ERR_NOMEM, "out of memory for %zu evaluation rows", cap);
        g->rows = r, g->cap = cap;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char *p = g->rows + (g->n + i) * g->rb;
        memcpy(p, &index[i], sizeof(int64_t));
        memcpy(p + sizeof(int64_t), labels + i * g->nl, g->nl * sizeof(int));
        memcpy(p + sizeof(int64_t) + g->nl * sizeof(int), scores + i * g->k, g->k * sizeof(float));
    }
    g->n += n;
    return CV_OK;
}

typedef struct {
    int64_t index;
    const unsigned char *p;
} row_ref;

static int row_cmp(const void *a, const void *b)
{
    int64_t x = ((const row_ref *)a)->index, y = ((const row_ref *)b)->index;
    return (x > y) - (x < y);
}

/* Rank 0: the gathered rows sorted by index and unpacked into the sink's arrays. */
static cv_status deliver(cv_ctx *ctx, cv_eval_gather *g, const unsigned char *buf, size_t bytes)
{
    size_t n = bytes / g->rb;
    if (bytes % g->rb)
        return cv_fail(ctx, CV_ERR_INTERNAL,
                       "evaluation gather: %zu bytes is not a whole number "
                       "of %zu-byte rows",
                       bytes, g->rb);
    row_ref *r = malloc((n + 1) * sizeof *r);
    int64_t *index = malloc((n + 1) * sizeof *index);
    int *labels = malloc((n * g->nl + 1) * sizeof *labels);
    float *scores = malloc((n * g->k + 1) * sizeof *scores);
    cv_status s = CV_OK;
    if (!r || !index || !labels || !scores) s = cv_fail(ctx, CV_ERR_NOMEM, "out of memory");
    for (size_t i = 0; !s && i < n; i++) {
        r[i].p = buf + i * g->rb;
        memcpy(&r[i].index, r[i].p, sizeof(int64_t));
    }
    if (!s) qsort(r, n, sizeof *r, row_cmp);
    for (size_t i = 0; !s && i < n; i++) {
        index[i] = r[i].index;
        memcpy(labels + i * g->nl, r[i].p + sizeof(int64_t), g->nl * sizeof(int));
        memcpy(scores + i * g->k, r[i].p + sizeof(int64_t) + g->nl * sizeof(int),
               g->k * sizeof(float));
    }
    if (!s) s = g->sink(ctx, g->user, index, labels, scores, n);
    free(r);
    free(index);
    free(labels);
    free(scores);
    return s;
}

cv_status cv_eval_gather_finish(cv_ctx *ctx, cv_eval_gather *g)
{
    if (cv_comm_size(g->comm) == 1) return CV_OK; /* the sink has had every row */
    void *all = NULL;
    size_t bytes = 0;
    cv_status s = cv_comm_gatherv(ctx, g->comm, g->rows, g->n * g->rb, 0, &all, &bytes);
    if (!s && cv_comm_rank(g->comm) == 0) s = deliver(ctx, g, all, bytes);
    free(all);
    return s;
}

void cv_eval_gather_free(cv_eval_gather *g)
{
    if (!g) return;
    free(g->rows);
    free(g);
}
