/* MATLAB level-5 .mat reader (numeric subset). Layout: a 128-byte header (text, subsystem offset,
 * version 0x0100, endian mark "IM"), then data elements: an 8-byte tag (u32 type, u32 size) or a
 * 4-byte "small element" tag (u16 size, u16 type) with up to 4 bytes of data; elements are padded
 * to 8 bytes, except miCOMPRESSED whose size is exact. A miMATRIX holds sub-elements: array flags,
 * dimensions, name, real part. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "data/mat.h"

enum {
    MI_INT8 = 1,
    MI_UINT8 = 2,
    MI_INT16,
    MI_UINT16,
    MI_INT32,
    MI_UINT32,
    MI_SINGLE,
    MI_DOUBLE = 9,
    MI_INT64 = 12,
    MI_UINT64 = 13,
    MI_MATRIX = 14,
    MI_COMPRESSED = 15
};

#define MAX_VARS 64
/* A decompressed element may be large (SVHN extra: 1.6 GB) but not unbounded. */
#define MAX_INFLATE ((size_t)1 << 34)

struct mat_file {
    mat_var var[MAX_VARS];
    int nvars;
    uint8_t *blocks[MAX_VARS]; /* decompressed elements */
    int nblocks;
};

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

size_t mat_type_size(int type)
{
    switch (type) {
    case MI_INT8:
    case MI_UINT8:
        return 1;
    case MI_INT16:
    case MI_UINT16:
        return 2;
    case MI_INT32:
    case MI_UINT32:
    case MI_SINGLE:
        return 4;
    case MI_DOUBLE:
    case MI_INT64:
    case MI_UINT64:
        return 8;
    default:
        return 0;
    }
}

/* Reads the tag at p (n bytes left): type, data pointer, data size and the element's full size
 * with padding. Returns 0 if the tag or its data do not fit. */
static int read_tag(const uint8_t *p, size_t n, int pad, uint32_t *type, const uint8_t **data,
                    size_t *size, size_t *total)
{
    if (n < 8) return 0;
    uint32_t w = le32(p);
    if (w >> 16) { /* small element: 4 bytes of data inside the 8-byte slot */
        *type = w & 0xFFFF;
        *size = w >> 16;
        if (*size > 4) return 0;
        *data = p + 4;
        *total = 8;
        return 1;
    }
    *type = w;
    *size = le32(p + 4);
    if (*size > n - 8) return 0;
    *data = p + 8;
    size_t t = 8 + *size;
    if (pad) t = (t + 7) & ~(size_t)7;
    *total = t < n ? t : n; /* the last element's padding may be missing */
    return 1;
}

static cv_status parse_matrix(cv_ctx *ctx, mat_file *m, const uint8_t *p, size_t n,
                              const char *name)
{
    uint32_t type;
    const uint8_t *d;
    size_t size, total;
    /* Array flags */
    if (!read_tag(p, n, 1, &type, &d, &size, &total) || type != MI_UINT32 || size < 8)
        return cv_fail(ctx, CV_ERR_FORMAT, "%s: miMATRIX without array flags", name);
    uint32_t flags = le32(d);
    int mclass = flags & 0xFF, complex = (flags >> 11) & 1;
    p += total, n -= total;
    /* Dimensions */
    if (!read_tag(p, n, 1, &type, &d, &size, &total) || type != MI_INT32 || size % 4 || size < 8 ||
        size > 32)
        return cv_fail(ctx, CV_ERR_FORMAT, "%s: miMATRIX with bad dimensions", name);
    mat_var v = {.mclass = mclass, .ndim = (int)(size / 4)};
    for (int i = 0; i < v.ndim; i++) {
        int32_t x = (int32_t)le32(d + 4 * i);
        if (x < 0) return cv_fail(ctx, CV_ERR_FORMAT, "%s: negative dimension", name);
        v.dims[i] = x;
    }
    p += total, n -= total;
    /* Name */
    if (!read_tag(p, n, 1, &type, &d, &size, &total) || type != MI_INT8)
        return cv_fail(ctx, CV_ERR_FORMAT, "%s: miMATRIX without a name", name);
    size_t nl = size < sizeof v.name - 1 ? size : sizeof v.name - 1;
    memcpy(v.name, d, nl);
    v.name[nl] = 0;
    p += total, n -= total;
    /* Only real numeric arrays are kept; anything else is skipped. */
    if (mclass < 6 || mclass > 15 || complex) return CV_OK;
    if (!read_tag(p, n, 1, &type, &d, &size, &total) || !mat_type_size((int)type))
        return cv_fail(ctx, CV_ERR_FORMAT, "%s: variable '%s' has no numeric data", name, v.name);
    int64_t numel = mat_numel(&v);
    if (numel < 0 || (uint64_t)numel * mat_type_size((int)type) != size)
        return cv_fail(ctx, CV_ERR_FORMAT,
                       "%s: variable '%s': %zu data bytes do not match its dimensions", name,
                       v.name, size);
    v.type = (int)type;
    v.data = d;
    v.nbytes = size;
    if (m->nvars == MAX_VARS)
        return cv_fail(ctx, CV_ERR_UNSUPPORTED, "%s: more than %d variables", name, MAX_VARS);
    m->var[m->nvars++] = v;
    return CV_OK;
}

/* zlib-inflates a miCOMPRESSED element into a new block. */
static cv_status inflate_block(cv_ctx *ctx, mat_file *m, const uint8_t *src, size_t n,
                               const char *name, uint8_t **out, size_t *outn)
{
    if (m->nblocks == MAX_VARS)
        return cv_fail(ctx, CV_ERR_UNSUPPORTED, "%s: too many compressed elements", name);
    z_stream z = {0};
    if (inflateInit(&z) != Z_OK) return cv_fail(ctx, CV_ERR_NOMEM, "%s: zlib init failed", name);
    size_t cap = n * 4 + 4096, have = 0;
    uint8_t *buf = malloc(cap);
    int rc = Z_OK;
    const uint8_t *in = src;
    size_t left = n;
    while (buf) {
        if (have == cap) {
            if (cap >= MAX_INFLATE) break;
            uint8_t *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        unsigned chunk_in = left > (1u << 30) ? (1u << 30) : (unsigned)left;
        unsigned chunk_out = cap - have > (1u << 30) ? (1u << 30) : (unsigned)(cap - have);
        z.next_in = (Bytef *)in;
        z.avail_in = chunk_in;
        z.next_out = buf + have;
        z.avail_out = chunk_out;
        rc = inflate(&z, Z_NO_FLUSH);
        in += chunk_in - z.avail_in;
        left -= chunk_in - z.avail_in;
        have += chunk_out - z.avail_out;
        if (rc == Z_STREAM_END) break;
        if (rc != Z_OK && rc != Z_BUF_ERROR) break;
        if (rc == Z_BUF_ERROR && z.avail_out && !left) break; /* truncated input */
    }
    inflateEnd(&z);
    if (!buf) return cv_fail(ctx, CV_ERR_NOMEM, "%s: out of memory inflating an element", name);
    if (rc != Z_STREAM_END) {
        free(buf);
        return cv_fail(ctx, CV_ERR_FORMAT, "%s: corrupt or truncated compressed element (%s)", name,
                       have >= MAX_INFLATE ? "too large"
                       : z.msg             ? z.msg
                                           : "zlib error");
    }
    m->blocks[m->nblocks++] = buf;
    *out = buf;
    *outn = have;
    return CV_OK;
}

static cv_status parse_elements(cv_ctx *ctx, mat_file *m, const uint8_t *p, size_t n,
                                const char *name, int depth)
{
    const uint8_t *start = p;
    while (n > 0) {
        if (n < 8) {
            /* Trailing bytes shorter than a tag: only padding is acceptable. */
            for (size_t i = 0; i < n; i++)
                if (p[i]) return cv_fail(ctx, CV_ERR_FORMAT, "%s: truncated element tag", name);
            return CV_OK;
        }
        uint32_t type;
        const uint8_t *d;
        size_t size, total;
        if (!read_tag(p, n, le32(p) != MI_COMPRESSED, &type, &d, &size, &total))
            return cv_fail(ctx, CV_ERR_FORMAT, "%s: element at byte %zu%s overruns its data", name,
                           (size_t)(p - start),
                           depth ? " of a compressed block" : " after the header");
        cv_status st = CV_OK;
        if (type == MI_COMPRESSED) {
            if (depth > 0)
                return cv_fail(ctx, CV_ERR_FORMAT, "%s: nested compressed element", name);
            uint8_t *blk = NULL;
            size_t bn = 0;
            st = inflate_block(ctx, m, d, size, name, &blk, &bn);
            if (!st) st = parse_elements(ctx, m, blk, bn, name, depth + 1);
        } else if (type == MI_MATRIX) {
            st = parse_matrix(ctx, m, d, size, name);
        } /* other top-level elements are ignored */
        if (st) return st;
        p += total;
        n -= total;
    }
    return CV_OK;
}

cv_status mat_parse(cv_ctx *ctx, const uint8_t *buf, size_t n, const char *name, mat_file **out)
{
    *out = NULL;
    if (n < 128)
        return cv_fail(ctx, CV_ERR_FORMAT, "%s: %zu bytes, too short for a MATLAB 5 header", name,
                       n);
    if (buf[126] == 'M' && buf[127] == 'I')
        return cv_fail(ctx, CV_ERR_UNSUPPORTED, "%s: big-endian .mat files are not supported",
                       name);
    if (buf[126] != 'I' || buf[127] != 'M' || buf[124] != 0x00 || buf[125] != 0x01)
        return cv_fail(ctx, CV_ERR_FORMAT,
                       "%s: not a MATLAB level-5 .mat file (v7.3/HDF5 files are not supported)",
                       name);
    mat_file *m = calloc(1, sizeof *m);
    if (!m) return cv_fail(ctx, CV_ERR_NOMEM, "out of memory");
    cv_status st = parse_elements(ctx, m, buf + 128, n - 128, name, 0);
    if (st) {
        mat_free(m);
        return st;
    }
    *out = m;
    return CV_OK;
}

void mat_free(mat_file *m)
{
    if (!m) return;
    for (int i = 0; i < m->nblocks; i++) free(m->blocks[i]);
    free(m);
}

const mat_var *mat_find(const mat_file *m, const char *name)
{
    for (int i = 0; i < m->nvars; i++)
        if (!strcmp(m->var[i].name, name)) return &m->var[i];
    return NULL;
}

int64_t mat_numel(const mat_var *v)
{
    return cv_shape_numel(v->ndim, v->dims);
}

double mat_get(const mat_var *v, int64_t i)
{
    const uint8_t *p = v->data + (size_t)i * mat_type_size(v->type);
    uint64_t u = 0;
    for (size_t b = mat_type_size(v->type); b-- > 0;) u = u << 8 | p[b];
    switch (v->type) {
    case MI_INT8:
        return (int8_t)u;
    case MI_UINT8:
        return (uint8_t)u;
    case MI_INT16:
        return (int16_t)u;
    case MI_UINT16:
        return (uint16_t)u;
    case MI_INT32:
        return (int32_t)u;
    case MI_UINT32:
        return (uint32_t)u;
    case MI_INT64:
        return (double)(int64_t)u;
    case MI_UINT64:
        return (double)u;
    case MI_SINGLE: {
        uint32_t w = (uint32_t)u;
        float f;
        memcpy(&f, &w, 4);
        return f;
    }
    case MI_DOUBLE: {
        double f;
        memcpy(&f, &u, 8);
        return f;
    }
    default:
        return 0;
    }
}
