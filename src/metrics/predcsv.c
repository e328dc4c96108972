/* The predictions CSV: a header with `label` and score_0..score_{K-1} and/or `pred`, one row per
 * sample. Every error names the file, the line and the column. Scores are parsed to float32 by
 * a fast exact path (Clinger) with strtof as the fallback, so large files read at disk speed. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "metrics/metrics_internal.h"

#define MAX_CLASSES 100000

enum { COL_IGNORE = -3, COL_LABEL = -2, COL_PRED = -1 }; /* >= 0: score column index */

typedef struct {
    const char *name;
    size_t line;
    cv_ctx *ctx;
} where;

typedef struct {
    int *v;
    size_t n, cap;
} ivec;

static int ivec_push(ivec *a, int x)
{
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 4096;
        int *v = realloc(a->v, cap * sizeof *v);
        if (!v) return -1;
        a->v = v;
        a->cap = cap;
    }
    a->v[a->n++] = x;
    return 0;
}

void cv_csv_trim(const char **b, const char **e)
{
    while (*b < *e && (**b == ' ' || **b == '\t')) (*b)++;
    while (*e > *b && (e[0][-1] == ' ' || e[0][-1] == '\t' || e[0][-1] == '\r')) (*e)--;
    if (*e - *b >= 2 && **b == '"' && e[0][-1] == '"') (*b)++, (*e)--;
}

static const double pow10tab[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                    1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                    1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* 0: ok; 1: not a number; 2: NaN; 3: infinite. */
static int parse_float(const char *b, const char *e, float *out)
{
    const char *p = b;
    int neg = 0;
    if (p < e && (*p == '+' || *p == '-')) neg = *p++ == '-';
    uint64_t mant = 0;
    int digits = 0, exp10 = 0, any = 0, dropped = 0;
    for (; p < e && *p >= '0' && *p <= '9'; p++, any = 1) {
        if (digits < 19) {
            mant = mant * 10 + (uint64_t)(*p - '0');
            if (mant) digits++;
        } else {
            exp10++;
            dropped |= *p != '0';
        }
    }
    if (p < e && *p == '.') {
        for (p++; p < e && *p >= '0' && *p <= '9'; p++, any = 1) {
            if (digits < 19) {
                mant = mant * 10 + (uint64_t)(*p - '0');
                if (mant) digits++;
                exp10--;
            } else {
                dropped |= *p != '0';
            }
        }
    }
    if (any && p < e && (*p == 'e' || *p == 'E')) {
        p++;
        int eneg = 0, ev = 0, edig = 0;
        if (p < e && (*p == '+' || *p == '-')) eneg = *p++ == '-';
        for (; p < e && *p >= '0' && *p <= '9'; p++, edig = 1)
            if (ev < 100000) ev = ev * 10 + (*p - '0');
        if (!edig) return 1;
        exp10 += eneg ? -ev : ev;
    }
    if (p == e && any && !dropped && mant <= (1ull << 53) && exp10 >= -22 && exp10 <= 22) {
        double d = (double)mant;
        d = exp10 < 0 ? d / pow10tab[-exp10] : d * pow10tab[exp10];
        float f = (float)d;
        /* a double exactly halfway between two floats may round differently from the decimal */
        float g = nextafterf(f, d > f ? INFINITY : -INFINITY);
        if ((double)f == d || d != ((double)f + (double)g) / 2) {
            *out = neg ? -f : f;
            return 0;
        }
    }
    char tmp[128];
    size_t len = (size_t)(e - b);
    if (len == 0 || len >= sizeof tmp) return 1;
    memcpy(tmp, b, len);
    tmp[len] = 0;
    char *end;
    float f = strtof(tmp, &end);
    if (end != tmp + len) return 1;
    if (isnan(f)) return 2;
    if (isinf(f)) return 3; /* "inf", or out of float range */
    *out = f;
    return 0;
}

/* A non-negative class index; 0 ok, 1 not an index. */
static int parse_index(const char *b, const char *e, int *out)
{
    if (b == e) return 1;
    long v = 0;
    for (const char *p = b; p < e; p++) {
        if (*p < '0' || *p > '9') return 1;
        v = v * 10 + (*p - '0');
        if (v > INT_MAX) return 1;
    }
    *out = (int)v;
    return 0;
}

static cv_status bad(const where *w, const char *fmt, const char *col, const char *b, const char *e,
                     int K)
{
    char field[48];
    size_t l = (size_t)(e - b) < sizeof field - 4 ? (size_t)(e - b) : sizeof field - 4;
    memcpy(field, b, l);
    strcpy(field + l, (size_t)(e - b) > l ? "..." : "");
    for (char *q = field; *q; q++)
        if ((unsigned char)*q < 32) *q = '?';
    char msg[256];
    snprintf(msg, sizeof msg, fmt, col, field, K - 1);
    return cv_fail(w->ctx, CV_ERR_FORMAT, "%s:%zu: %s", w->name, w->line, msg);
}

/* One label or pred field: a class index, or for multilabel a space-separated list of them,
 * appended to out (multilabel: terminated by -1). */
static cv_status index_field(const where *w, const char *col, const char *b, const char *e,
                             int multilabel, int K, ivec *out)
{
    if (!multilabel) {
        int v;
        if (parse_index(b, e, &v))
            return bad(w, "column '%s': '%s' is not a class index", col, b, e, K);
        if (K > 0 && v >= K) return bad(w, "column '%s': class %s is outside 0..%d", col, b, e, K);
        return ivec_push(out, v) ? cv_fail(w->ctx, CV_ERR_NOMEM, "%s: out of memory", w->name)
                                 : CV_OK;
    }
    const char *p = b;
    while (p < e) {
        while (p < e && *p == ' ') p++;
        if (p == e) break;
        const char *q = p;
        while (q < e && *q != ' ') q++;
        int v;
        if (parse_index(p, q, &v))
            return bad(w, "column '%s': '%s' is not a class index", col, p, q, K);
        if (K > 0 && v >= K) return bad(w, "column '%s': class %s is outside 0..%d", col, p, q, K);
        if (ivec_push(out, v)) return cv_fail(w->ctx, CV_ERR_NOMEM, "%s: out of memory", w->name);
        p = q;
    }
    return ivec_push(out, -1) ? cv_fail(w->ctx, CV_ERR_NOMEM, "%s: out of memory", w->name) : CV_OK;
}

int cv_csv_split(const char *b, const char *e, const char **fb, const char **fe, int max)
{
    int n = 0;
    const char *p = b;
    for (;;) {
        const char *s = p;
        if (p < e && *p == '"') {
            p++;
            while (p < e && *p != '"') p++;
            if (p < e) p++;
        }
        while (p < e && *p != ',') p++;
        if (n < max) fb[n] = s, fe[n] = p;
        n++;
        if (p == e) break;
        p++;
    }
    return n > max ? max + 1 : n;
}

void cv_pred_table_free(cv_pred_table *t)
{
    free(t->labels);
    free(t->scores);
    free(t->preds);
    memset(t, 0, sizeof *t);
}

/* Multilabel index lists (each ended by -1) → n×K indicators. */
static int *indicators(const ivec *lists, size_t n, int K)
{
    int *m = calloc(n * (size_t)K + 1, sizeof *m);
    if (!m) return NULL;
    size_t row = 0;
    for (size_t i = 0; i < lists->n; i++) {
        if (lists->v[i] < 0)
            row++;
        else
            m[row * (size_t)K + (size_t)lists->v[i]] = 1;
    }
    return m;
}

cv_status cv_pred_csv_parse(cv_ctx *ctx, const char *buf, size_t len, const char *name,
                            cv_task task, int num_classes, cv_pred_table *out)
{
    memset(out, 0, sizeof *out);
    where w = {name, 1, ctx};
    const char *p = buf, *end = buf + len;
    if (len >= 3 && !memcmp(p, "\xEF\xBB\xBF", 3)) p += 3;
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *he = nl ? nl : end;
    {
        const char *tb = p, *te = he;
        cv_csv_trim(&tb, &te);
        if (tb == te)
            return cv_fail(ctx, CV_ERR_FORMAT,
                           "%s: empty file (expected a header with 'label' and score_0.. or "
                           "'pred' columns)",
                           name);
    }
    /* header */
    int ncols = 0;
    for (const char *q = p; q < he; q++) ncols += *q == ',';
    ncols++;
    if (ncols > MAX_CLASSES + 16)
        return cv_fail(ctx, CV_ERR_FORMAT, "%s:1: %d columns is too many", name, ncols);
    int *role = malloc((size_t)ncols * sizeof *role);
    const char **fb = malloc((size_t)ncols * sizeof *fb), **fe = malloc((size_t)ncols * sizeof *fe);
    int *score_col = NULL;
    ivec labels = {0}, preds = {0};
    float *scores = NULL;
    size_t scap = 0, n = 0;
    cv_status st = CV_OK;
    if (!role || !fb || !fe) goto oom;
    cv_csv_split(p, he, fb, fe, ncols);
    int label_col = -1, pred_col = -1, K = 0;
    for (int i = 0; i < ncols; i++) {
        const char *b = fb[i], *e = fe[i];
        cv_csv_trim(&b, &e);
        size_t l = (size_t)(e - b);
        int idx;
        role[i] = COL_IGNORE;
        if (l == 5 && !memcmp(b, "label", 5)) {
            if (label_col >= 0) goto dup;
            role[i] = COL_LABEL;
            label_col = i;
        } else if (l == 4 && !memcmp(b, "pred", 4)) {
            if (pred_col >= 0) goto dup;
            role[i] = COL_PRED;
            pred_col = i;
        } else if (l > 6 && !memcmp(b, "score_", 6) && !parse_index(b + 6, e, &idx) &&
                   idx < MAX_CLASSES) {
            role[i] = idx;
            if (idx + 1 > K) K = idx + 1;
        }
        continue;
    dup:
        st = cv_fail(ctx, CV_ERR_FORMAT, "%s:1: column '%.*s' appears twice", name, (int)l, b);
        goto done;
    }
    if (label_col < 0) {
        st = cv_fail(ctx, CV_ERR_FORMAT, "%s:1: no 'label' column in the header", name);
        goto done;
    }
    if (K) {
        score_col = malloc((size_t)K * sizeof *score_col);
        if (!score_col) goto oom;
        for (int c = 0; c < K; c++) score_col[c] = -1;
        for (int i = 0; i < ncols; i++)
            if (role[i] >= 0) {
                if (score_col[role[i]] >= 0) {
                    st = cv_fail(ctx, CV_ERR_FORMAT, "%s:1: column 'score_%d' appears twice", name,
                                 role[i]);
                    goto done;
                }
                score_col[role[i]] = i;
            }
        for (int c = 0; c < K; c++)
            if (score_col[c] < 0) {
                st = cv_fail(ctx, CV_ERR_FORMAT,
                             "%s:1: score columns must be score_0..score_%d; score_%d is missing",
                             name, K - 1, c);
                goto done;
            }
        if (num_classes > 0 && num_classes != K) {
            st = cv_fail(ctx, CV_ERR_FORMAT, "%s:1: %d score columns but %d classes were asked for",
                         name, K, num_classes);
            goto done;
        }
    } else if (pred_col < 0) {
        st = cv_fail(ctx, CV_ERR_FORMAT,
                     "%s:1: no score_0..score_{K-1} columns and no 'pred' column", name);
        goto done;
    } else {
        K = num_classes > 0 ? num_classes : task == CV_TASK_BINARY ? 2 : 0;
    }
    if (task == CV_TASK_BINARY && K != 2) {
        st = cv_fail(ctx, CV_ERR_FORMAT,
                     "%s:1: a binary task needs 2 classes (score_0, score_1), found %d", name, K);
        goto done;
    }
    const int ml = task == CV_TASK_MULTILABEL;
    char colname[32];
    /* rows */
    p = nl ? nl + 1 : end;
    while (p < end) {
        w.line++;
        nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        const char *tb = p, *te = le;
        cv_csv_trim(&tb, &te);
        if (tb == te) { /* blank line */
            p = nl ? nl + 1 : end;
            continue;
        }
        int nf = cv_csv_split(p, le, fb, fe, ncols);
        if (nf != ncols) {
            st = cv_fail(ctx, CV_ERR_FORMAT,
                         "%s:%zu: expected %d fields as in the header, found %s%d", name, w.line,
                         ncols, nf > ncols ? "more than " : "", nf > ncols ? ncols : nf);
            goto done;
        }
        const char *b = fb[label_col], *e = fe[label_col];
        cv_csv_trim(&b, &e);
        if ((st = index_field(&w, "label", b, e, ml, K, &labels))) goto done;
        if (pred_col >= 0) {
            b = fb[pred_col], e = fe[pred_col];
            cv_csv_trim(&b, &e);
            if ((st = index_field(&w, "pred", b, e, ml, K, &preds))) goto done;
        }
        if (K && score_col) {
            if (n == scap) {
                size_t cap = scap ? scap * 2 : 4096;
                if (cap > SIZE_MAX / ((size_t)K * sizeof(float))) goto oom;
                float *s = realloc(scores, cap * (size_t)K * sizeof *s);
                if (!s) goto oom;
                scores = s;
                scap = cap;
            }
            for (int c = 0; c < K; c++) {
                b = fb[score_col[c]], e = fe[score_col[c]];
                cv_csv_trim(&b, &e);
                int rc = parse_float(b, e, &scores[n * (size_t)K + (size_t)c]);
                if (rc) {
                    snprintf(colname, sizeof colname, "score_%d", c);
                    st = bad(&w,
                             rc == 1   ? "column '%s': '%s' is not a number"
                             : rc == 2 ? "column '%s': '%s' (NaN) is not a valid score"
                                       : "column '%s': '%s' (infinite) is not a valid score",
                             colname, b, e, K);
                    goto done;
                }
            }
        }
        n++;
        p = nl ? nl + 1 : end;
    }
    if (n == 0) {
        st = cv_fail(ctx, CV_ERR_FORMAT, "%s: no data rows after the header", name);
        goto done;
    }
    if (K == 0) { /* classes from the largest index seen */
        for (size_t i = 0; i < labels.n; i++)
            if (labels.v[i] + 1 > K) K = labels.v[i] + 1;
        for (size_t i = 0; i < preds.n; i++)
            if (preds.v[i] + 1 > K) K = preds.v[i] + 1;
        if (K < 1) K = 1;
        if (K > MAX_CLASSES) {
            st = cv_fail(ctx, CV_ERR_FORMAT, "%s: class index %d is beyond %d classes", name, K - 1,
                         MAX_CLASSES);
            goto done;
        }
    }
    out->task = task;
    out->num_classes = K;
    out->n = n;
    out->scores = scores;
    scores = NULL;
    if (ml) {
        out->labels = indicators(&labels, n, K);
        if (pred_col >= 0) out->preds = indicators(&preds, n, K);
        if (!out->labels || (pred_col >= 0 && !out->preds)) goto oom;
    } else {
        out->labels = labels.v;
        labels.v = NULL;
        if (pred_col >= 0) {
            out->preds = preds.v;
            preds.v = NULL;
        }
    }
    goto done;
oom:
    st = cv_fail(ctx, CV_ERR_NOMEM, "%s: out of memory", name);
done:
    if (st) cv_pred_table_free(out);
    free(role);
    free(fb);
    free(fe);
    free(score_col);
    free(labels.v);
    free(preds.v);
    free(scores);
    return st;
}

cv_status cv_pred_csv_read(cv_ctx *ctx, const char *path, cv_task task, int num_classes,
                           cv_pred_table *out)
{
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f) return cv_fail(ctx, CV_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len == cap) {
            cap = cap ? cap * 2 : 1 << 20;
            char *b = realloc(buf, cap);
            if (!b) {
                free(buf);
                fclose(f);
                return cv_fail(ctx, CV_ERR_NOMEM, "%s: out of memory reading the file", path);
            }
            buf = b;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) break;
    }
    int err = ferror(f);
    fclose(f);
    if (err) {
        free(buf);
        return cv_fail(ctx, CV_ERR_IO, "%s: read error", path);
    }
    cv_status st = cv_pred_csv_parse(ctx, buf, len, path, task, num_classes, out);
    free(buf);
    return st;
}
