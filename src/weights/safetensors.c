/* safetensors: u64 header length | JSON header | tensor bytes. Reading applies the rules of the
 * reference reader (huggingface/safetensors tensor.rs); writing follows the reference writer. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/atomic.h"
#include "weights/internal.h"

#define MAX_HEADER 100000000ull /* the reference reader's MAX_HEADER_SIZE */

/* dtype names in the reference enum's order, which is also increasing alignment: the writer
 * lays tensors out by descending rank. Names cvision has no dtype for map to -1. */
static const struct {
    const char *name;
    int dtype;
} st_dtypes[] = {
    {"BOOL", CV_BOOL}, {"U8", CV_U8},   {"I8", CV_I8},   {"F8_E5M2", -1},   {"F8_E4M3", -1},
    {"I16", CV_I16},   {"U16", -1},     {"F16", CV_F16}, {"BF16", CV_BF16}, {"I32", CV_I32},
    {"U32", -1},       {"F32", CV_F32}, {"F64", CV_F64}, {"I64", CV_I64},   {"U64", -1},
};
#define N_ST_DTYPES (int)(sizeof st_dtypes / sizeof *st_dtypes)

static int rank_of(cv_dtype t)
{
    for (int i = 0; i < N_ST_DTYPES; i++)
        if (st_dtypes[i].dtype == (int)t) return i;
    return -1;
}

int cv_utf8_valid(const uint8_t *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        uint8_t c = s[i];
        size_t k;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0)
            k = 1, cp = c & 0x1f;
        else if ((c & 0xf0) == 0xe0)
            k = 2, cp = c & 0x0f;
        else if ((c & 0xf8) == 0xf0)
            k = 3, cp = c & 0x07;
        else
            return 0;
        if (n - i <= k) return 0;
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xc0) != 0x80) return 0;
            cp = cp << 6 | (s[i + j] & 0x3f);
        }
        if ((k == 1 && cp < 0x80) || (k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000) ||
            cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += k + 1;
    }
    return 1;
}

/* ---- reading ---- */
typedef struct {
    const char *name;
    cv_dtype dtype;
    int ndim;
    int64_t shape[CV_MAX_DIMS];
    uint64_t begin, end;
} info;

static int json_uint(const cJSON *j, uint64_t *out)
{
    if (!cJSON_IsNumber(j)) return 0;
    double v = j->valuedouble;
    if (!(v >= 0 && v <= 9007199254740992.0) || floor(v) != v) return 0;
    *out = (uint64_t)v;
    return 1;
}

static int by_offsets(const void *a, const void *b)
{
    const info *x = *(const info *const *)a, *y = *(const info *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

static int by_name(const void *a, const void *b)
{
    return strcmp((*(const info *const *)a)->name, (*(const info *const *)b)->name);
}

static cv_status parse_info(cv_ctx *ctx, const char *file, const cJSON *j, info *t)
{
    const char *name = j->string;
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(j, "dtype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(j, "shape");
    const cJSON *offs = cJSON_GetObjectItemCaseSensitive(j, "data_offsets");
    if (!cJSON_IsObject(j) || !cJSON_IsString(dt) || !cJSON_IsArray(shape) ||
        !cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2)
        return cv_fail(ctx, CV_ERR_FORMAT,
                       "%s: header entry '%s' needs dtype, shape and two "
                       "data_offsets",
                       file, name);
    t->name = name;
    int found = -1;
    for (int i = 0; i < N_ST_DTYPES; i++)
        if (!strcmp(dt->valuestring, st_dtypes[i].name)) found = i;
    if (found < 0)
        return cv_fail(ctx, CV_ERR_FORMAT, "%s: tensor '%s' has unknown dtype '%.20s'", file, name,
                       dt->valuestring);
    if (st_dtypes[found].dtype < 0)
        return cv_fail(ctx, CV_ERR_UNSUPPORTED,
                       "%s: tensor '%s' has dtype %s, which cvision does "
                       "not support",
                       file, name, dt->valuestring);
    t->dtype = (cv_dtype)st_dtypes[found].dtype;
    int nd = cJSON_GetArraySize(shape);
    if (nd > CV_MAX_DIMS)
        return cv_fail(ctx, CV_ERR_UNSUPPORTED, "%s: tensor '%s' has %d dimensions (at most %d)",
                       file, name, nd, CV_MAX_DIMS);
    t->ndim = nd;
    uint64_t d;
    for (int i = 0; i < nd; i++) {
        if (!json_uint(cJSON_GetArrayItem(shape, i), &d) || d > INT64_MAX)
            return cv_fail(ctx, CV_ERR_FORMAT, "%s: tensor '%s' has a bad shape", file, name);
        t->shape[i] = (int64_t)d;
    }
    if (!json_uint(cJSON_GetArrayItem(offs, 0), &t->begin) ||
        !json_uint(cJSON_GetArrayItem(offs, 1), &t->end))
        return cv_fail(ctx, CV_ERR_FORMAT, "%s: tensor '%s' has bad data_offsets", file, name);
    return CV_OK;
}

static cv_status add_metadata(cv_ctx *ctx, const char *file, const cJSON *md, cv_state *st)
{
    if (!cJSON_IsObject(md))
        return cv_fail(ctx, CV_ERR_FORMAT, "%s: __metadata__ is not an object", file);
    for (const cJSON *e = md->child; e; e = e->next) {
        if (!cJSON_IsString(e))
            return cv_fail(ctx, CV_ERR_FORMAT, "%s: __metadata__ value '%s' is not a string", file,
                           e->string);
        cv_status s = cv_state_set_meta(ctx, st, e->string, e->valuestring);
        if (s != CV_OK) return s;
    }
    return CV_OK;
}

cv_status cv_safetensors_load_mem(cv_ctx *ctx, const char *file, const uint8_t *buf, size_t len,
                                  cv_state **out)
{
    *out = NULL;
    if (len < 8) return cv_fail(ctx, CV_ERR_FORMAT, "%s: too short for a safetensors header", file);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | buf[i];
    if (n > MAX_HEADER)
        return cv_fail(ctx, CV_ERR_FORMAT,
                       "%s: safetensors header length %" PRIu64 " exceeds the "
                       "limit of %llu",
                       file, n, MAX_HEADER);
    if (n > len - 8)
        return cv_fail(ctx, CV_ERR_FORMAT,
                       "%s: safetensors header length %" PRIu64 " runs past "
                       "the end of the file (%zu bytes)",
                       file, n, len);
    const char *hdr = (const char *)buf + 8;
    if (!n || hdr[0] != '{' || !cv_utf8_valid(buf + 8, (size_t)n))
        return cv_fail(ctx, CV_ERR_FORMAT, "%s: safetensors header is not a UTF-8 JSON object",
                       file);
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(hdr, (size_t)n, &end, 0);
    int trailing = 0;
    for (const char *p = end; root && p < hdr + n; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') trailing = 1;
    if (!root || !cJSON_IsObject(root) || trailing) {
        cJSON_Delete(root);
        return cv_fail(ctx, CV_ERR_FORMAT, "%s: safetensors header is not valid JSON", file);
    }
    int count = 0;
    for (cJSON *e = root->child; e; e = e->next) count++;
    info *infos = calloc((size_t)count + 1, sizeof *infos);
    info **order = calloc((size_t)count + 1, sizeof *order);
    cv_state *st = cv_state_new();
    cv_status s =
        infos && order && st ? CV_OK : cv_fail(ctx, CV_ERR_NOMEM, "%s: out of memory", file);
    int nt = 0;
    for (cJSON *e = root->child; s == CV_OK && e; e = e->next) {
        if (!strcmp(e->string, "__metadata__"))
            s = add_metadata(ctx, file, e, st);
        else if ((s = parse_info(ctx, file, e, &infos[nt])) == CV_OK)
            order[nt] = &infos[nt], nt++;
    }
    if (s == CV_OK) {
        qsort(order, (size_t)nt, sizeof *order, by_name);
        for (int i = 1; i < nt && s == CV_OK; i++)
            if (!strcmp(order[i - 1]->name, order[i]->name))
                s = cv_fail(ctx, CV_ERR_FORMAT, "%s: tensor '%s' appears twice in the header", file,
                            order[i]->name);
    }
    uint64_t data_len = len - 8 - n;
    if (s == CV_OK) {
        /* Sorted by offsets the tensors must tile the buffer exactly: no gap, no overlap. */
        qsort(order, (size_t)nt, sizeof *order, by_offsets);
        uint64_t pos = 0;
        for (int i = 0; i < nt && s == CV_OK; i++) {
            info *t = order[i];
            int64_t numel = cv_shape_numel(t->ndim, t->shape), nbytes;
            if (t->begin != pos || t->end < t->begin)
                s = cv_fail(ctx, CV_ERR_FORMAT,
                            "%s: tensor '%s' has data_offsets [%" PRIu64 ", %" PRIu64
                            "] where %" PRIu64 " was expected (gap or overlap)",
                            file, t->name, t->begin, t->end, pos);
            else if (numel < 0 ||
                     __builtin_mul_overflow(numel, (int64_t)cv_dtype_size(t->dtype), &nbytes))
                s = cv_fail(ctx, CV_ERR_FORMAT,
                            "%s: tensor '%s' has a shape whose size "
                            "overflows",
                            file, t->name);
            else if (t->end - t->begin != (uint64_t)nbytes)
                s = cv_fail(ctx, CV_ERR_FORMAT,
                            "%s: tensor '%s' spans %" PRIu64 " bytes but its "
                            "shape and dtype need %" PRId64,
                            file, t->name, t->end - t->begin, nbytes);
            pos = t->end;
        }
        if (s == CV_OK && pos != data_len)
            s = cv_fail(ctx, CV_ERR_FORMAT,
                        "%s: the tensors cover %" PRIu64 " bytes but the "
                        "data section has %" PRIu64,
                        file, pos, data_len);
    }
    for (int i = 0; i < nt && s == CV_OK; i++) {
        cv_tensor *t;
        s = cv_tensor_new(ctx, infos[i].dtype, infos[i].ndim, infos[i].shape, &t);
        if (s != CV_OK) break;
        if (t->nbytes) memcpy(t->data, buf + 8 + n + infos[i].begin, t->nbytes);
        s = cv_state_put(ctx, st, infos[i].name, t);
    }
    free(infos);
    free(order);
    cJSON_Delete(root);
    if (s != CV_OK) {
        cv_state_free(st);
        return s;
    }
    *out = st;
    return CV_OK;
}

/* ---- writing ---- */
typedef struct {
    char *s;
    size_t n, cap;
    int oom;
} sbuf;

static void put(sbuf *b, const char *s, size_t n)
{
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (b->n + n + 1 > cap) cap *= 2;
        char *p = realloc(b->s, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->s = p;
        b->cap = cap;
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = 0;
}

static void puts_(sbuf *b, const char *s)
{
    put(b, s, strlen(s));
}

static void put_json_str(sbuf *b, const char *s)
{
    put(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char e[8];
        if (c == '"' || c == '\\') {
            e[0] = '\\', e[1] = (char)c;
            put(b, e, 2);
        } else if (c < 0x20) {
            snprintf(e, sizeof e, "\\u%04x", c);
            put(b, e, 6);
        } else {
            put(b, (const char *)&c, 1);
        }
    }
    put(b, "\"", 1);
}

typedef struct {
    const char *name;
    const cv_tensor *t;
    int rank;
    uint64_t begin;
} wentry;

static int write_order(const void *a, const void *b)
{
    const wentry *x = *(const wentry *const *)a, *y = *(const wentry *const *)b;
    if (x->rank != y->rank) return y->rank - x->rank;
    return strcmp(x->name, y->name);
}

typedef struct {
    const sbuf *hdr;
    wentry **order;
    int n;
} wjob;

static const char *write_all(void *arg, FILE *f)
{
    const wjob *w = arg;
    uint8_t len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (uint8_t)((uint64_t)w->hdr->n >> (8 * i));
    int ok = fwrite(len8, 1, 8, f) == 8 && fwrite(w->hdr->s, 1, w->hdr->n, f) == w->hdr->n;
    for (int i = 0; ok && i < w->n; i++)
        ok = fwrite(w->order[i]->t->data, 1, w->order[i]->t->nbytes, f) == w->order[i]->t->nbytes;
    return ok ? NULL : cv_write_error();
}

cv_status cv_safetensors_save(cv_ctx *ctx, const cv_state *st, const char *path)
{
    int n = cv_state_count(st);
    wentry *e = calloc((size_t)n + 1, sizeof *e);
    wentry **order = calloc((size_t)n + 1, sizeof *order);
    sbuf hdr = {0};
    cv_status s = CV_OK;
    if (!e || !order) {
        s = cv_fail(ctx, CV_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    for (int i = 0; i < n; i++) {
        e[i].name = cv_state_name(st, i);
        e[i].t = cv_state_tensor(st, i);
        e[i].rank = rank_of(e[i].t->dtype);
        order[i] = &e[i];
        if (!cv_utf8_valid((const uint8_t *)e[i].name, strlen(e[i].name)) ||
            !strcmp(e[i].name, "__metadata__")) {
            s = cv_fail(ctx, CV_ERR_INVALID,
                        "%s: tensor name '%s' cannot be stored in "
                        "safetensors",
                        path, e[i].name);
            goto done;
        }
    }
    for (int i = 0; i < cv_state_meta_count(st); i++) {
        const char *k = cv_state_meta_key(st, i), *v = cv_state_get_meta(st, k);
        if (!cv_utf8_valid((const uint8_t *)k, strlen(k)) ||
            !cv_utf8_valid((const uint8_t *)v, strlen(v))) {
            s = cv_fail(ctx, CV_ERR_INVALID, "%s: metadata '%s' is not UTF-8", path, k);
            goto done;
        }
    }
    qsort(order, (size_t)n, sizeof *order, write_order);
    uint64_t pos = 0;
    for (int i = 0; i < n; i++) {
        order[i]->begin = pos;
        pos += order[i]->t->nbytes;
    }
    puts_(&hdr, "{");
    int nm = cv_state_meta_count(st);
    if (nm) {
        puts_(&hdr, "\"__metadata__\":{");
        for (int i = 0; i < nm; i++) {
            const char *k = cv_state_meta_key(st, i);
            if (i) puts_(&hdr, ",");
            put_json_str(&hdr, k);
            puts_(&hdr, ":");
            put_json_str(&hdr, cv_state_get_meta(st, k));
        }
        puts_(&hdr, "}");
    }
    for (int i = 0; i < n; i++) {
        char num[64];
        if (i || nm) puts_(&hdr, ",");
        put_json_str(&hdr, e[i].name);
        puts_(&hdr, ":{\"dtype\":\"");
        puts_(&hdr, st_dtypes[e[i].rank].name);
        puts_(&hdr, "\",\"shape\":[");
        for (int d = 0; d < e[i].t->ndim; d++) {
            snprintf(num, sizeof num, d ? ",%" PRId64 : "%" PRId64, e[i].t->shape[d]);
            puts_(&hdr, num);
        }
        snprintf(num, sizeof num, "],\"data_offsets\":[%" PRIu64 ",%" PRIu64 "]}", e[i].begin,
                 e[i].begin + e[i].t->nbytes);
        puts_(&hdr, num);
    }
    puts_(&hdr, "}");
    while (hdr.n % 8) puts_(&hdr, " "); /* the reference writer pads the header to 8 bytes */
    if (hdr.oom) {
        s = cv_fail(ctx, CV_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    wjob w = {&hdr, order, n};
    s = cv_write_atomic(ctx, path, 1, write_all, &w);
done:
    free(e);
    free(order);
    free(hdr.s);
    return s;
}
