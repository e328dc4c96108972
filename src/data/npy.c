/* NumPy .npy reader and writer.
 *
 * Layout: "\x93NUMPY", major, minor, header length (u16 LE in 1.0, u32 LE in 2.0/3.0), then an
 * ASCII (3.0: UTF-8) Python dict literal {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3),
 * } padded with spaces and a final '\n', then the raw C-order data. */
#include "cvision/npy.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/atomic.h"

/* numpy itself refuses headers over 10000 bytes by default; be a little more lenient. */
#define NPY_MAX_HEADER (1u << 20)

static const struct {
    const char *code; /* descr without the byte-order character */
    cv_dtype dtype;
} npy_types[] = {
    {"f4", CV_F32}, {"f8", CV_F64}, {"f2", CV_F16}, {"i8", CV_I64},  {"i4", CV_I32},
    {"i2", CV_I16}, {"i1", CV_I8},  {"u1", CV_U8},  {"b1", CV_BOOL},
};

typedef struct {
    const char *p, *end;
} cursor;

static void skip_ws(cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

/* A quoted Python string literal without escapes (all that .npy headers contain). */
static int parse_str(cursor *c, char *out, size_t size)
{
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"')) return 0;
    char q = *c->p++;
    size_t n = 0;
    while (c->p < c->end && *c->p != q) {
        if (*c->p == '\\' || n + 1 >= size) return 0;
        out[n++] = *c->p++;
    }
    if (c->p >= c->end) return 0;
    c->p++;
    out[n] = 0;
    return 1;
}

static int accept(cursor *c, const char *lit)
{
    size_t n = strlen(lit);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, lit, n)) return 0;
    c->p += n;
    return 1;
}

static cv_status bad_header(cv_ctx *ctx, const char *name, const cursor *c, const char *hdr,
                            const char *what)
{
    return cv_fail(ctx, CV_ERR_FORMAT, "%s: bad .npy header at byte %d: %s", name,
                   (int)(c->p - hdr), what);
}

static cv_status parse_header(cv_ctx *ctx, const char *name, const char *hdr, size_t len,
                              cv_dtype *dtype, int *ndim, int64_t *shape)
{
    cursor c = {hdr, hdr + len};
    int have_descr = 0, have_order = 0, have_shape = 0;
    skip_ws(&c);
    if (!accept(&c, "{")) return bad_header(ctx, name, &c, hdr, "expected '{'");
    for (;;) {
        skip_ws(&c);
        if (accept(&c, "}")) break;
        char key[32], descr[32];
        if (!parse_str(&c, key, sizeof key))
            return bad_header(ctx, name, &c, hdr, "expected a key");
        skip_ws(&c);
        if (!accept(&c, ":")) return bad_header(ctx, name, &c, hdr, "expected ':'");
        skip_ws(&c);
        if (!strcmp(key, "descr")) {
            if (c.p < c.end && *c.p == '[')
                return cv_fail(ctx, CV_ERR_UNSUPPORTED,
                               "%s: structured .npy dtypes are not supported", name);
            if (!parse_str(&c, descr, sizeof descr))
                return bad_header(ctx, name, &c, hdr, "expected a dtype string");
            int found = 0;
            for (size_t i = 0; i < sizeof npy_types / sizeof npy_types[0]; i++) {
                if (strcmp(descr + (descr[0] != 0), npy_types[i].code)) continue;
                size_t es = cv_dtype_size(npy_types[i].dtype);
                /* '<' little-endian; '|' "not applicable" for one-byte types; '=' native (LE here).
                 */
                if (descr[0] == '<' || descr[0] == '=' || (es == 1 && descr[0] == '|')) {
                    *dtype = npy_types[i].dtype;
                    found = 1;
                }
                break;
            }
            if (!found)
                return cv_fail(ctx, CV_ERR_UNSUPPORTED,
                               "%s: .npy dtype '%s' is not supported (little-endian f4 f8 f2 i8 i4 "
                               "i2 i1 u1 b1 are)",
                               name, descr);
            have_descr = 1;
        } else if (!strcmp(key, "fortran_order")) {
            if (accept(&c, "True"))
                return cv_fail(ctx, CV_ERR_UNSUPPORTED,
                               "%s: Fortran-ordered .npy arrays are not supported (save with "
                               "np.ascontiguousarray)",
                               name);
            if (!accept(&c, "False"))
                return bad_header(ctx, name, &c, hdr, "fortran_order must be True or False");
            have_order = 1;
        } else if (!strcmp(key, "shape")) {
            if (!accept(&c, "(")) return bad_header(ctx, name, &c, hdr, "expected '(' for shape");
            *ndim = 0;
            for (;;) {
                skip_ws(&c);
                if (accept(&c, ")")) break;
                if (c.p >= c.end || *c.p < '0' || *c.p > '9')
                    return bad_header(ctx, name, &c, hdr, "expected a dimension");
                int64_t v = 0;
                while (c.p < c.end && *c.p >= '0' && *c.p <= '9') {
                    if (v > (INT64_MAX - 9) / 10)
                        return bad_header(ctx, name, &c, hdr, "dimension too large");
                    v = v * 10 + (*c.p++ - '0');
                }
                accept(&c, "L"); /* Python 2 longs */
                if (*ndim >= CV_MAX_DIMS)
                    return cv_fail(ctx, CV_ERR_UNSUPPORTED,
                                   "%s: .npy array has more than %d dimensions", name, CV_MAX_DIMS);
                shape[(*ndim)++] = v;
                skip_ws(&c);
                if (accept(&c, ")")) break;
                if (!accept(&c, ","))
                    return bad_header(ctx, name, &c, hdr, "expected ',' in shape");
            }
            have_shape = 1;
        } else {
            return bad_header(ctx, name, &c, hdr, "unexpected key");
        }
        skip_ws(&c);
        if (accept(&c, "}")) break;
        if (!accept(&c, ",")) return bad_header(ctx, name, &c, hdr, "expected ',' or '}'");
    }
    skip_ws(&c);
    if (c.p != c.end) return bad_header(ctx, name, &c, hdr, "trailing bytes after the dict");
    if (!have_descr || !have_order || !have_shape)
        return cv_fail(ctx, CV_ERR_FORMAT, "%s: .npy header lacks '%s'", name,
                       !have_descr   ? "descr"
                       : !have_order ? "fortran_order"
                                     : "shape");
    return CV_OK;
}

/* Checks the magic and version in the first 12 bytes (fewer if the file is shorter) and returns the
 * header's offset and length. */
static cv_status parse_prefix(cv_ctx *ctx, const char *name, const unsigned char *b, size_t n,
                              size_t *hoff, size_t *hlen)
{
    if (n < 10 || memcmp(b, "\x93NUMPY", 6))
        return cv_fail(ctx, CV_ERR_FORMAT, "%s: not a .npy file (bad magic)", name);
    if (b[6] == 1) {
        *hoff = 10;
        *hlen = (size_t)b[8] | (size_t)b[9] << 8;
    } else if (b[6] == 2 || b[6] == 3) {
        if (n < 12) return cv_fail(ctx, CV_ERR_FORMAT, "%s: truncated .npy header", name);
        *hoff = 12;
        *hlen = (size_t)b[8] | (size_t)b[9] << 8 | (size_t)b[10] << 16 | (size_t)b[11] << 24;
    } else {
        return cv_fail(ctx, CV_ERR_UNSUPPORTED, "%s: .npy format version %d.%d is not supported",
                       name, b[6], b[7]);
    }
    if (*hlen > NPY_MAX_HEADER)
        return cv_fail(ctx, CV_ERR_FORMAT, "%s: .npy header length %zu is implausible", name,
                       *hlen);
    return CV_OK;
}

/* Validates the header against the data size that follows it and allocates the tensor. */
static cv_status make_tensor(cv_ctx *ctx, const char *name, const char *hdr, size_t hlen,
                             uint64_t data_bytes, cv_tensor **out)
{
    cv_dtype dtype = CV_F32;
    int ndim = 0;
    int64_t shape[CV_MAX_DIMS];
    cv_status s = parse_header(ctx, name, hdr, hlen, &dtype, &ndim, shape);
    if (s) return s;
    int64_t numel = cv_shape_numel(ndim, shape);
    char b[160];
    if (numel < 0 || (uint64_t)numel > UINT64_MAX / cv_dtype_size(dtype))
        return cv_fail(ctx, CV_ERR_FORMAT, "%s: .npy shape %s overflows", name,
                       cv_shape_str(ndim, shape, b, sizeof b));
    uint64_t need = (uint64_t)numel * cv_dtype_size(dtype);
    if (need != data_bytes)
        return cv_fail(ctx, CV_ERR_FORMAT,
                       "%s: .npy header says %s %s (%llu data bytes) but the file holds %llu", name,
                       cv_dtype_name(dtype), cv_shape_str(ndim, shape, b, sizeof b),
                       (unsigned long long)need, (unsigned long long)data_bytes);
    s = cv_tensor_new(ctx, dtype, ndim, shape, out);
    if (s) return cv_fail(ctx, s, "%s: %s", name, cv_ctx_error(ctx));
    return CV_OK;
}

/* NumPy booleans must be 0 or 1; anything else would break comparisons downstream. */
static cv_status check_bools(cv_ctx *ctx, const char *name, cv_tensor *t)
{
    if (t->dtype != CV_BOOL) return CV_OK;
    const unsigned char *d = t->data;
    for (size_t i = 0; i < t->nbytes; i++)
        if (d[i] > 1) {
            int v = d[i];
            cv_tensor_free(t);
            return cv_fail(ctx, CV_ERR_FORMAT, "%s: bool element %zu has value %d", name, i, v);
        }
    return CV_OK;
}

cv_status cv_npy_parse(cv_ctx *ctx, const void *buf, size_t n, const char *name, cv_tensor **out)
{
    *out = NULL;
    const unsigned char *b = buf;
    size_t hoff, hlen;
    cv_status s = parse_prefix(ctx, name, b, n, &hoff, &hlen);
    if (s) return s;
    if (hlen > n - hoff) return cv_fail(ctx, CV_ERR_FORMAT, "%s: truncated .npy header", name);
    s = make_tensor(ctx, name, (const char *)b + hoff, hlen, n - hoff - hlen, out);
    if (s) return s;
    if ((*out)->nbytes) memcpy((*out)->data, b + hoff + hlen, (*out)->nbytes);
    s = check_bools(ctx, name, *out);
    if (s) *out = NULL;
    return s;
}

cv_status cv_npy_load(cv_ctx *ctx, const char *path, cv_tensor **out)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return cv_fail(ctx, CV_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    unsigned char pre[12];
    char *hdr = NULL;
    size_t hoff, hlen;
    cv_status s;
    if (fstat(fileno(f), &st) || !S_ISREG(st.st_mode)) {
        s = cv_fail(ctx, CV_ERR_IO, "%s: not a regular file", path);
        goto done;
    }
    size_t got = fread(pre, 1, sizeof pre, f);
    s = parse_prefix(ctx, path, pre, got, &hoff, &hlen);
    if (s) goto done;
    if ((uint64_t)st.st_size < hoff + hlen) {
        s = cv_fail(ctx, CV_ERR_FORMAT, "%s: truncated .npy header", path);
        goto done;
    }
    hdr = malloc(hlen + 1);
    if (!hdr) {
        s = cv_fail(ctx, CV_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    if (fseek(f, (long)hoff, SEEK_SET) || fread(hdr, 1, hlen, f) != hlen) {
        s = cv_fail(ctx, CV_ERR_IO, "%s: read error in .npy header", path);
        goto done;
    }
    s = make_tensor(ctx, path, hdr, hlen, (uint64_t)st.st_size - hoff - hlen, out);
    if (s) goto done;
    if ((*out)->nbytes && fread((*out)->data, 1, (*out)->nbytes, f) != (*out)->nbytes) {
        cv_tensor_free(*out);
        *out = NULL;
        s = cv_fail(ctx, CV_ERR_IO, "%s: read error in .npy data", path);
        goto done;
    }
    s = check_bools(ctx, path, *out);
    if (s) *out = NULL;
done:
    free(hdr);
    fclose(f);
    return s;
}

cv_status cv_npy_save(cv_ctx *ctx, const char *path, const cv_tensor *t)
{
    const char *code = NULL;
    for (size_t i = 0; i < sizeof npy_types / sizeof npy_types[0]; i++)
        if (npy_types[i].dtype == t->dtype) code = npy_types[i].code;
    if (!code)
        return cv_fail(ctx, CV_ERR_UNSUPPORTED, "%s: dtype %s has no .npy equivalent", path,
                       cv_dtype_name(t->dtype));
    /* The same text numpy writes, so files are byte-identical to np.save's. */
    char dict[512];
    int n = snprintf(dict, sizeof dict, "{'descr': '%c%s', 'fortran_order': False, 'shape': (",
                     cv_dtype_size(t->dtype) == 1 ? '|' : '<', code);
    for (int i = 0; i < t->ndim; i++)
        n += snprintf(dict + n, sizeof dict - (size_t)n, "%s%lld", i ? ", " : "",
                      (long long)t->shape[i]);
    if (t->ndim == 1) n += snprintf(dict + n, sizeof dict - (size_t)n, ",");
    n += snprintf(dict + n, sizeof dict - (size_t)n, "), }");
    /* Header (magic + version + length + dict + padding + '\n') is a multiple of 64 bytes. */
    size_t dlen = (size_t)n, total = (10 + dlen + 1 + 63) / 64 * 64;
    unsigned char hdr[640];
    memcpy(hdr, "\x93NUMPY\x01\x00", 8);
    size_t hlen = total - 10;
    hdr[8] = (unsigned char)(hlen & 0xff);
    hdr[9] = (unsigned char)(hlen >> 8);
    memcpy(hdr + 10, dict, dlen);
    memset(hdr + 10 + dlen, ' ', total - 10 - dlen - 1);
    hdr[total - 1] = '\n';

    cv_write_part parts[2] = {{hdr, total}, {t->data, t->nbytes}};
    return cv_write_parts_atomic(ctx, path, 0, parts, 2);
}
