/* Named tensors in insertion order (a state_dict), with a hash index and string metadata. */
#include "cvision/core.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    char *name;
    cv_tensor *t;
} entry;

typedef struct {
    char *key, *value;
} meta;

struct cv_state {
    entry *e;
    int n, cap;
    int *index; /* open addressing over e[], -1 = empty; size index_cap (power of two) */
    int index_cap;
    meta *m;
    int nm;
};

static uint64_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

cv_state *cv_state_new(void)
{
    return calloc(1, sizeof(cv_state));
}

void cv_state_free(cv_state *st)
{
    if (!st) return;
    for (int i = 0; i < st->n; i++) {
        free(st->e[i].name);
        cv_tensor_free(st->e[i].t);
    }
    for (int i = 0; i < st->nm; i++) {
        free(st->m[i].key);
        free(st->m[i].value);
    }
    free(st->e);
    free(st->index);
    free(st->m);
    free(st);
}

static int find(const cv_state *st, const char *name)
{
    if (!st->index_cap) return -1;
    size_t mask = (size_t)st->index_cap - 1;
    for (size_t i = hash(name) & mask;; i = (i + 1) & mask) {
        int k = st->index[i];
        if (k < 0) return -1;
        if (strcmp(st->e[k].name, name) == 0) return k;
    }
}

static int reindex(cv_state *st, int cap)
{
    int *idx = cap == st->index_cap ? st->index : malloc((size_t)cap * sizeof *idx);
    if (!idx) return -1;
    for (int i = 0; i < cap; i++) idx[i] = -1;
    size_t mask = (size_t)cap - 1;
    for (int k = 0; k < st->n; k++) {
        size_t i = hash(st->e[k].name) & mask;
        while (idx[i] >= 0) i = (i + 1) & mask;
        idx[i] = k;
    }
    if (idx != st->index) free(st->index);
    st->index = idx;
    st->index_cap = cap;
    return 0;
}

cv_status cv_state_put(cv_ctx *ctx, cv_state *st, const char *name, cv_tensor *t)
{
    int k = find(st, name);
    if (k >= 0) {
        cv_tensor_free(st->e[k].t);
        st->e[k].t = t;
        return CV_OK;
    }
    if (st->n == st->cap) {
        int cap = st->cap ? st->cap * 2 : 64;
        entry *e = realloc(st->e, (size_t)cap * sizeof *e);
        if (!e) goto nomem;
        st->e = e;
        st->cap = cap;
    }
    char *copy = strdup(name);
    if (!copy) goto nomem;
    st->e[st->n].name = copy;
    st->e[st->n].t = t;
    st->n++;
    if (st->n * 2 > st->index_cap) {
        if (reindex(st, st->index_cap ? st->index_cap * 2 : 128)) {
            st->n--;
            free(copy);
            goto nomem;
        }
    } else {
        size_t mask = (size_t)st->index_cap - 1, i = hash(name) & mask;
        while (st->index[i] >= 0) i = (i + 1) & mask;
        st->index[i] = st->n - 1;
    }
    return CV_OK;
nomem:
    cv_tensor_free(t);
    return cv_fail(ctx, CV_ERR_NOMEM, "state: out of memory adding '%s'", name);
}

cv_tensor *cv_state_get(const cv_state *st, const char *name)
{
    int k = find(st, name);
    return k < 0 ? NULL : st->e[k].t;
}

cv_tensor *cv_state_take(cv_state *st, const char *name)
{
    int k = find(st, name);
    if (k < 0) return NULL;
    cv_tensor *t = st->e[k].t;
    free(st->e[k].name);
    memmove(st->e + k, st->e + k + 1, (size_t)(st->n - k - 1) * sizeof *st->e);
    st->n--;
    reindex(st, st->index_cap); /* same size: rebuilt in place, cannot fail */
    return t;
}

int cv_state_count(const cv_state *st)
{
    return st->n;
}

const char *cv_state_name(const cv_state *st, int i)
{
    return i >= 0 && i < st->n ? st->e[i].name : NULL;
}

cv_tensor *cv_state_tensor(const cv_state *st, int i)
{
    return i >= 0 && i < st->n ? st->e[i].t : NULL;
}

cv_status cv_state_set_meta(cv_ctx *ctx, cv_state *st, const char *key, const char *value)
{
    for (int i = 0; i < st->nm; i++)
        if (strcmp(st->m[i].key, key) == 0) {
            char *v = strdup(value);
            if (!v) return cv_fail(ctx, CV_ERR_NOMEM, "state: out of memory");
            free(st->m[i].value);
            st->m[i].value = v;
            return CV_OK;
        }
    meta *m = realloc(st->m, (size_t)(st->nm + 1) * sizeof *m);
    if (!m) return cv_fail(ctx, CV_ERR_NOMEM, "state: out of memory");
    st->m = m;
    m[st->nm].key = strdup(key);
    m[st->nm].value = strdup(value);
    if (!m[st->nm].key || !m[st->nm].value) {
        free(m[st->nm].key);
        free(m[st->nm].value);
        return cv_fail(ctx, CV_ERR_NOMEM, "state: out of memory");
    }
    st->nm++;
    return CV_OK;
}

const char *cv_state_get_meta(const cv_state *st, const char *key)
{
    for (int i = 0; i < st->nm; i++)
        if (strcmp(st->m[i].key, key) == 0) return st->m[i].value;
    return NULL;
}

int cv_state_meta_count(const cv_state *st)
{
    return st->nm;
}

const char *cv_state_meta_key(const cv_state *st, int i)
{
    return i >= 0 && i < st->nm ? st->m[i].key : NULL;
}
