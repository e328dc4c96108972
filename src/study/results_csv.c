/* The study results CSV (model, dataset, metric, upstream, value; any column order). Every error
 * names the file and the line. The rows and their strings share one allocation. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cvision/analysis.h"
#include "data/dataset_impl.h"
#include "metrics/metrics_internal.h"

#define MAX_COLS 256
#define MAX_FILE (256u << 20)

enum { C_MODEL, C_DATASET, C_METRIC, C_UPSTREAM, C_VALUE, C_N };
static const char *col_names[C_N] = {"model", "dataset", "metric", "upstream", "value"};

/* A field for an error message: at most 40 bytes, control characters as '?'. */
static const char *shown(const char *b, const char *e, char buf[48])
{
    size_t l = (size_t)(e - b) < 40 ? (size_t)(e - b) : 40;
    for (size_t i = 0; i < l; i++) buf[i] = (unsigned char)b[i] < 32 ? '?' : b[i];
    strcpy(buf + l, (size_t)(e - b) > l ? "..." : "");
    return buf;
}

/* Empty, "nan" or "null" is NAN; otherwise the whole field must be a finite number. */
static int parse_number(const char *b, const char *e, double *out)
{
    size_t len = (size_t)(e - b);
    if (len == 0 || (len == 3 && !strncasecmp(b, "nan", 3)) ||
        (len == 4 && !strncasecmp(b, "null", 4))) {
        *out = NAN;
        return 0;
    }
    char tmp[64];
    if (len >= sizeof tmp) return -1;
    memcpy(tmp, b, len);
    tmp[len] = 0;
    char *end;
    double v = strtod(tmp, &end);
    if (end != tmp + len || !isfinite(v)) return -1;
    *out = v;
    return 0;
}

/* One pass over the data lines: validates them, counts rows and string bytes, and (when rows is
 * not NULL) fills rows and copies the strings to strs. */
static cv_status pass(cv_ctx *ctx, const char *buf, size_t len, const char *name, const int *col,
                      int ncols, const char *first, cv_study_result *rows, char *strs,
                      size_t *nrows, size_t *nbytes)
{
    const char *fb[MAX_COLS], *fe[MAX_COLS], *end = buf + len;
    size_t line = 1, n = 0, bytes = 0;
    char sh[48];
    for (const char *p = first; p < end; line++) {
        const char *e = memchr(p, '\n', (size_t)(end - p));
        if (!e) e = end;
        const char *b = p;
        p = e < end ? e + 1 : end;
        const char *tb = b, *te = e;
        cv_csv_trim(&tb, &te);
        if (tb == te) continue; /* blank line */
        int nf = cv_csv_split(b, e, fb, fe, MAX_COLS);
        if (nf != ncols)
            return cv_fail(ctx, CV_ERR_FORMAT, "%s:%zu: %d fields, the header has %d", name,
                           line + 1, nf > MAX_COLS ? MAX_COLS + 1 : nf, ncols);
        const char *s[3];
        double v[2];
        for (int c = 0; c < C_N; c++) {
            const char *xb = fb[col[c]], *xe = fe[col[c]];
            cv_csv_trim(&xb, &xe);
            if (c < C_UPSTREAM) {
                if (xb == xe)
                    return cv_fail(ctx, CV_ERR_FORMAT, "%s:%zu: column '%s' is empty", name,
                                   line + 1, col_names[c]);
                if (memchr(xb, 0, (size_t)(xe - xb)))
                    return cv_fail(ctx, CV_ERR_FORMAT, "%s:%zu: column '%s' has a NUL byte", name,
                                   line + 1, col_names[c]);
                if (strs) {
                    memcpy(strs + bytes, xb, (size_t)(xe - xb));
                    strs[bytes + (size_t)(xe - xb)] = 0;
                    s[c] = strs + bytes;
                }
                bytes += (size_t)(xe - xb) + 1;
            } else if (parse_number(xb, xe, &v[c - C_UPSTREAM])) {
                return cv_fail(ctx, CV_ERR_FORMAT,
                               "%s:%zu: column '%s': '%s' is not a finite number (empty or nan for "
                               "none)",
                               name, line + 1, col_names[c], shown(xb, xe, sh));
            }
        }
        if (rows) rows[n] = (cv_study_result){s[0], s[1], s[2], v[0], v[1]};
        n++;
    }
    *nrows = n;
    *nbytes = bytes;
    return CV_OK;
}

cv_status cv_study_results_csv_parse(cv_ctx *ctx, const char *buf, size_t len, const char *name,
                                     cv_study_result **rows, size_t *n)
{
    *rows = NULL;
    *n = 0;
    const char *end = buf + len, *p = buf;
    if (len >= 3 && !memcmp(p, "\xEF\xBB\xBF", 3)) p += 3; /* UTF-8 byte-order mark */
    const char *he = memchr(p, '\n', (size_t)(end - p));
    if (!he) he = end;
    const char *fb[MAX_COLS], *fe[MAX_COLS];
    int ncols = cv_csv_split(p, he, fb, fe, MAX_COLS);
    if (ncols > MAX_COLS)
        return cv_fail(ctx, CV_ERR_FORMAT, "%s:1: more than %d columns", name, MAX_COLS);
    int col[C_N];
    for (int c = 0; c < C_N; c++) col[c] = -1;
    for (int i = 0; i < ncols; i++) {
        const char *b = fb[i], *e = fe[i];
        cv_csv_trim(&b, &e);
        for (int c = 0; c < C_N; c++)
            if ((size_t)(e - b) == strlen(col_names[c]) &&
                !strncasecmp(b, col_names[c], (size_t)(e - b))) {
                if (col[c] >= 0)
                    return cv_fail(ctx, CV_ERR_FORMAT, "%s:1: column '%s' appears twice", name,
                                   col_names[c]);
                col[c] = i;
            }
    }
    for (int c = 0; c < C_N; c++)
        if (col[c] < 0)
            return cv_fail(ctx, CV_ERR_FORMAT,
                           "%s:1: no '%s' column (the header needs model, dataset, metric, "
                           "upstream, value)",
                           name, col_names[c]);
    const char *first = he < end ? he + 1 : end;
    size_t nrows, bytes;
    cv_status st = pass(ctx, buf, len, name, col, ncols, first, NULL, NULL, &nrows, &bytes);
    if (st) return st;
    if (nrows == 0) return cv_fail(ctx, CV_ERR_FORMAT, "%s: no results after the header", name);
    cv_study_result *r = malloc(nrows * sizeof *r + bytes);
    if (!r) return cv_fail(ctx, CV_ERR_NOMEM, "%s: out of memory", name);
    st = pass(ctx, buf, len, name, col, ncols, first, r, (char *)(r + nrows), &nrows, &bytes);
    if (st) {
        free(r);
        return st;
    }
    *rows = r;
    *n = nrows;
    return CV_OK;
}

cv_status cv_study_results_csv_read(cv_ctx *ctx, const char *path, cv_study_result **rows,
                                    size_t *n)
{
    *rows = NULL;
    *n = 0;
    uint8_t *buf;
    size_t len;
    cv_status st = ds_read_file(ctx, path, MAX_FILE, &buf, &len);
    if (st) return st;
    st = cv_study_results_csv_parse(ctx, (const char *)buf, len, path, rows, n);
    free(buf);
    return st;
}
