/* csv:FILE,images=DIR,id=COL,label=COL[,ext=.png][,multilabel][,ordinal][,classes=A|B|C] —
 * the Kaggle layout: a CSV (RFC 4180; header row) naming each image by id, and its label.
 * Classes: the given list, else the distinct labels sorted (numerically when every label is an
 * integer); ordinal: integer grades 0..max, class k = grade k; multilabel: space-separated labels.
 * Images are read (as RGB) when a sample is asked for; a missing or corrupt one is an error that
 * names the CSV file and line. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/dataset_impl.h"

typedef struct {
    char *csv;
    char **paths;
    int64_t *line;
    int64_t n;
} csv_impl;

static cv_status csv_get(cv_ctx *ctx, const cv_dataset *ds, int64_t i, cv_image **img)
{
    const csv_impl *c = ds->impl;
    cv_status st = cv_image_load(ctx, c->paths[i], 3, img);
    if (st)
        return cv_fail(ctx, st, "%s:%lld: %s", c->csv, (long long)c->line[i], cv_ctx_error(ctx));
    return CV_OK;
}

static void csv_name(const cv_dataset *ds, int64_t i, char *buf, size_t size)
{
    const csv_impl *c = ds->impl;
    snprintf(buf, size, "%s:%lld: %s", c->csv, (long long)c->line[i], c->paths[i]);
}

static void csv_free(void *p)
{
    csv_impl *c = p;
    if (!c) return;
    for (int64_t i = 0; i < c->n; i++) free(c->paths[i]);
    free(c->paths);
    free(c->line);
    free(c->csv);
    free(c);
}

static cv_status csv_read(cv_ctx *ctx, const cv_dataset *ds, int64_t i, void **buf, size_t *n)
{
    const csv_impl *c = ds->impl;
    cv_status st = cv_read_file(ctx, c->paths[i], buf, n);
    if (st)
        return cv_fail(ctx, st, "%s:%lld: %s", c->csv, (long long)c->line[i], cv_ctx_error(ctx));
    return CV_OK;
}

static const ds_ops csv_ops = {csv_get, csv_name, csv_free, csv_read};

/* ---- a small RFC 4180 reader over a NUL-terminated buffer ---- */
typedef struct {
    char *p;      /* next unread byte */
    int64_t line; /* physical line of p (1-based) */
    char **field; /* fields of the current record (pointers into buf) */
    int nfield, cap;
} csv_reader;

/* Parses one record in place (unquoting into the same buffer). Returns 1, 0 at end of input,
 * -1 on allocation failure, -2 on an unterminated quote. */
static int csv_next(csv_reader *r, int64_t *rec_line)
{
    r->nfield = 0;
    if (!*r->p) return 0;
    *rec_line = r->line;
    for (;;) {
        if (r->nfield == r->cap) {
            int nc = r->cap ? r->cap * 2 : 16;
            char **nf = realloc(r->field, (size_t)nc * sizeof *nf);
            if (!nf) return -1;
            r->field = nf;
            r->cap = nc;
        }
        char *out = r->p, *start = r->p;
        r->field[r->nfield++] = start;
        if (*r->p == '"') {
            r->p++;
            for (;;) {
                if (!*r->p) return -2;
                if (*r->p == '"') {
                    if (r->p[1] == '"')
                        *out++ = '"', r->p += 2;
                    else {
                        r->p++;
                        break;
                    }
                } else {
                    if (*r->p == '\n') r->line++;
                    *out++ = *r->p++;
                }
            }
            /* Text after the closing quote is kept, as Python's csv module does. */
            while (*r->p && *r->p != ',' && *r->p != '\n' && *r->p != '\r') *out++ = *r->p++;
        } else {
            while (*r->p && *r->p != ',' && *r->p != '\n' && *r->p != '\r') out++, r->p++;
        }
        char sep = *r->p;
        if (sep == '\r' && r->p[1] == '\n') r->p++;
        if (sep) r->p++;
        *out = 0;
        if (sep != ',') {
            if (sep) r->line++;
            return 1;
        }
    }
}

/* A cell for an error message: on one line (control characters as '?'), at most size-1 bytes. */
static const char *one_line(const char *s, size_t n, char *buf, size_t size)
{
    size_t m = n < size - 1 ? n : size - 1;
    for (size_t i = 0; i < m; i++) buf[i] = (unsigned char)s[i] < 32 ? '?' : s[i];
    buf[m] = 0;
    return buf;
}

static int is_integer(const char *s, long long *v)
{
    char *end;
    if (!*s) return 0;
    errno = 0;
    *v = strtoll(s, &end, 10);
    return !*end && !errno && !isspace((unsigned char)*s);
}

typedef struct {
    char **names;
    int n, cap;
} classset;

#define MAX_CLASSES 10000

static int cls_find(const classset *c, const char *s, size_t len)
{
    for (int i = 0; i < c->n; i++)
        if (!strncmp(c->names[i], s, len) && !c->names[i][len]) return i;
    return -1;
}

/* Returns 0 on allocation failure or too many classes. */
static int cls_add(classset *c, const char *s, size_t len)
{
    if (cls_find(c, s, len) >= 0) return 1;
    if (c->n >= MAX_CLASSES) return 0;
    if (c->n == c->cap) {
        int nc = c->cap ? c->cap * 2 : 16;
        char **nn = realloc(c->names, (size_t)nc * sizeof *nn);
        if (!nn) return 0;
        c->names = nn;
        c->cap = nc;
    }
    if (!(c->names[c->n] = strndup(s, len))) return 0;
    c->n++;
    return 1;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmp_num(const void *a, const void *b)
{
    long long u = strtoll(*(char *const *)a, NULL, 10), v = strtoll(*(char *const *)b, NULL, 10);
    return (u > v) - (u < v);
}

/* The next space-separated token of a multi-label cell: its start (NULL at the end) and length. */
static const char *next_token(const char **p, size_t *len)
{
    while (**p == ' ') (*p)++;
    if (!**p) return NULL;
    const char *t = *p;
    while (**p && **p != ' ') (*p)++;
    *len = (size_t)(*p - t);
    return t;
}

cv_status ds_open_csv(cv_ctx *ctx, const char *args, cv_dataset **out)
{
    char buf[4096], *f[16];
    int nf = ds_split_fields(args, ',', buf, sizeof buf, f, 16);
    const char *file = f[0], *images = NULL, *idcol = NULL, *labcol = NULL, *ext = "",
               *given = NULL;
    int multi = 0, ordinal = 0;
    for (int i = 1; i < nf; i++) {
        if (!strncmp(f[i], "images=", 7))
            images = f[i] + 7;
        else if (!strncmp(f[i], "id=", 3))
            idcol = f[i] + 3;
        else if (!strncmp(f[i], "label=", 6))
            labcol = f[i] + 6;
        else if (!strncmp(f[i], "ext=", 4))
            ext = f[i] + 4;
        else if (!strncmp(f[i], "classes=", 8))
            given = f[i] + 8;
        else if (!strcmp(f[i], "multilabel"))
            multi = 1;
        else if (!strcmp(f[i], "ordinal"))
            ordinal = 1;
        else
            return cv_fail(ctx, CV_ERR_INVALID,
                           "csv:%s: unknown option '%s' (images=, id=, label=, ext=, classes=, "
                           "multilabel, ordinal)",
                           args, f[i]);
    }
    if (!images || !idcol || !labcol)
        return cv_fail(ctx, CV_ERR_INVALID,
                       "csv:%s: expected csv:FILE,images=DIR,id=COL,label=COL[,ext=.png]", args);
    if (multi && ordinal)
        return cv_fail(ctx, CV_ERR_INVALID, "csv: multilabel and ordinal exclude each other");
    uint8_t *text;
    size_t len;
    cv_status st = ds_read_file(ctx, file, (size_t)1 << 31, &text, &len);
    if (st) return st;
    if (memchr(text, 0, len)) {
        free(text);
        return cv_fail(ctx, CV_ERR_FORMAT, "%s: binary data (NUL byte) in a CSV file", file);
    }
    csv_reader r = {.p = (char *)text, .line = 1};
    if (len >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3)) r.p += 3; /* UTF-8 byte order mark */
    classset cls = {0};
    char **ids = NULL, **labs = NULL;
    int64_t *lines = NULL, n = 0, cap = 0, rec_line = 0;
    cv_dataset *ds = NULL;
    csv_impl *c = NULL;
    int icol = -1, lcol = -1, ncols, got;
    got = csv_next(&r, &rec_line);
    if (got <= 0) {
        st = got == -1 ? cv_fail(ctx, CV_ERR_NOMEM, "out of memory")
                       : cv_fail(ctx, CV_ERR_FORMAT, "%s: no header row", file);
        goto done;
    }
    ncols = r.nfield;
    for (int i = 0; i < ncols; i++) {
        if (!strcmp(r.field[i], idcol)) icol = i;
        if (!strcmp(r.field[i], labcol)) lcol = i;
    }
    if (icol < 0 || lcol < 0) {
        st = cv_fail(ctx, CV_ERR_FORMAT, "%s:1: no column '%s' in the header", file,
                     icol < 0 ? idcol : labcol);
        goto done;
    }
    while ((got = csv_next(&r, &rec_line)) > 0) {
        if (r.nfield == 1 && !r.field[0][0]) continue; /* blank line */
        if (r.nfield != ncols) {
            st = cv_fail(ctx, CV_ERR_FORMAT, "%s:%lld: %d fields, the header has %d", file,
                         (long long)rec_line, r.nfield, ncols);
            goto done;
        }
        if (!r.field[icol][0]) {
            st = cv_fail(ctx, CV_ERR_FORMAT, "%s:%lld: empty id", file, (long long)rec_line);
            goto done;
        }
        if (!multi && !r.field[lcol][0]) {
            st = cv_fail(ctx, CV_ERR_FORMAT, "%s:%lld: empty label", file, (long long)rec_line);
            goto done;
        }
        if (n == cap) {
            int64_t nc = cap ? cap * 2 : 256;
            char **ni = realloc(ids, (size_t)nc * sizeof *ni);
            if (ni) ids = ni;
            char **nl = realloc(labs, (size_t)nc * sizeof *nl);
            if (nl) labs = nl;
            int64_t *nli = realloc(lines, (size_t)nc * sizeof *nli);
            if (nli) lines = nli;
            if (!ni || !nl || !nli) goto nomem;
            cap = nc;
        }
        ids[n] = r.field[icol];
        labs[n] = r.field[lcol];
        lines[n++] = rec_line;
    }
    if (got == -1) goto nomem;
    if (got == -2) {
        st = cv_fail(ctx, CV_ERR_FORMAT, "%s:%lld: unterminated quoted field", file,
                     (long long)rec_line);
        goto done;
    }
    /* Classes. */
    if (given) {
        char gbuf[4096], *g[1024];
        int ng = ds_split_fields(given, '|', gbuf, sizeof gbuf, g, 1024);
        for (int i = 0; i < ng; i++)
            if (!g[i][0] || cls_find(&cls, g[i], strlen(g[i])) >= 0 ||
                !cls_add(&cls, g[i], strlen(g[i]))) {
                st = cv_fail(ctx, CV_ERR_INVALID, "csv: classes= has an empty or repeated name");
                goto done;
            }
    } else if (ordinal) {
        long long maxv = -1, v;
        for (int64_t i = 0; i < n; i++) {
            if (!is_integer(labs[i], &v) || v < 0 || v > 65535) {
                char shown[128];
                st = cv_fail(ctx, CV_ERR_FORMAT,
                             "%s:%lld: ordinal label '%s' is not an integer 0..65535", file,
                             (long long)lines[i],
                             one_line(labs[i], strlen(labs[i]), shown, sizeof shown));
                goto done;
            }
            if (v > maxv) maxv = v;
        }
        for (long long v2 = 0; v2 <= maxv; v2++) {
            char s[24];
            snprintf(s, sizeof s, "%lld", v2);
            if (!cls_add(&cls, s, strlen(s))) goto nomem;
        }
    } else {
        int ok = 1;
        for (int64_t i = 0; i < n && ok; i++) {
            if (multi) {
                const char *p = labs[i], *t;
                size_t tl;
                while (ok && (t = next_token(&p, &tl))) ok = cls_add(&cls, t, tl);
            } else {
                ok = cls_add(&cls, labs[i], strlen(labs[i]));
            }
        }
        if (!ok) {
            st = cv_fail(ctx, CV_ERR_FORMAT, "%s: out of memory or more than %d classes", file,
                         MAX_CLASSES);
            goto done;
        }
        long long v;
        int numeric = 1;
        for (int i = 0; i < cls.n; i++) numeric = numeric && is_integer(cls.names[i], &v);
        if (cls.n) qsort(cls.names, (size_t)cls.n, sizeof *cls.names, numeric ? cmp_num : cmp_str);
    }
    if (ordinal && given) {
        long long v;
        for (int i = 0; i < cls.n; i++)
            if (!is_integer(cls.names[i], &v) || v != i) {
                st = cv_fail(ctx, CV_ERR_INVALID, "csv: ordinal classes= must be 0|1|2|...");
                goto done;
            }
    }
    if (!(ds = ds_new(n, cls.n)) || !(c = calloc(1, sizeof *c)) || !(c->csv = strdup(file)) ||
        !(c->paths = calloc((size_t)n + 1, sizeof *c->paths)) ||
        !(c->line = malloc(((size_t)n + 1) * sizeof *c->line)) ||
        (multi && !(ds->multi = calloc((size_t)n * (size_t)cls.n + 1, 1))))
        goto nomem;
    for (int i = 0; i < cls.n; i++)
        if (!ds_set_class(ds, i, cls.names[i])) goto nomem;
    for (int64_t i = 0; i < n; i++) {
        const char *bad = NULL;
        size_t badlen = 0;
        if (multi) {
            const char *p = labs[i], *t;
            size_t tl;
            while (!bad && (t = next_token(&p, &tl))) {
                int k = cls_find(&cls, t, tl);
                if (k < 0)
                    bad = t, badlen = tl;
                else
                    ds->multi[(size_t)i * (size_t)cls.n + (size_t)k] = 1;
            }
        } else {
            int k = cls_find(&cls, labs[i], strlen(labs[i]));
            if (k < 0 && ordinal) {
                long long v;
                if (is_integer(labs[i], &v) && v >= 0 && v < cls.n) k = (int)v;
            }
            if (k < 0) bad = labs[i], badlen = strlen(bad);
            ds->labels[i] = k;
        }
        if (bad) {
            char shown[128];
            st = cv_fail(ctx, CV_ERR_FORMAT, "%s:%lld: label '%s' is not one of the %d classes",
                         file, (long long)lines[i], one_line(bad, badlen, shown, sizeof shown),
                         cls.n);
            goto done;
        }
        char rel[4096];
        snprintf(rel, sizeof rel, "%s%s", ids[i], ext);
        size_t need = strlen(images) + strlen(rel) + 2;
        if (!(c->paths[i] = malloc(need))) goto nomem;
        c->n = i + 1;
        ds_join(c->paths[i], need, images, rel);
        c->line[i] = lines[i];
    }
    ds->ordinal = ordinal;
    ds->ops = &csv_ops;
    ds->impl = c;
    c = NULL;
    *out = ds;
    ds = NULL;
    goto done;
nomem:
    st = cv_fail(ctx, CV_ERR_NOMEM, "out of memory");
done:
    for (int i = 0; i < cls.n; i++) free(cls.names[i]);
    free(cls.names);
    free(ids);
    free(labs);
    free(lines);
    free(r.field);
    free(text);
    csv_free(c);
    cv_dataset_free(ds);
    return st;
}
