/* torch.save files: the zip archive format (torch >= 1.6), the legacy format (a row of pickles
 * followed by raw storages), and the training checkpoints that wrap a state_dict. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zip.h>

#include "weights/internal.h"
#include "weights/pickle.h"

#define MAX_DEPTH 16 /* how deep a state_dict may sit in a checkpoint's dicts */

typedef struct {
    cv_dtype dtype;
    int64_t numel;
    char *key;
    int root;            /* legacy storage views: the storage viewed, else -1 */
    int64_t view_off;    /* elements into the root */
    zip_int64_t zidx;    /* zip: the data/<key> record */
    const uint8_t *data; /* legacy: the bytes in the file (NULL until the storage list is read) */
    uint8_t *cache;      /* zip: the record, read when several tensors share it */
    int uses;            /* selected tensors still to be made from this storage */
} storage;

typedef struct {
    cv_ctx *ctx;
    const char *name;
    storage *st;
    int nst, cap;
    int *index; /* hash of keys -> storage, open addressing, size icap */
    int icap;
    /* zip */
    zip_t *zip;
    char prefix[256];
    size_t archive_len;
    int legacy;
} loader;

static void loader_free(loader *L)
{
    for (int i = 0; i < L->nst; i++) {
        free(L->st[i].key);
        free(L->st[i].cache);
    }
    free(L->st);
    free(L->index);
    if (L->zip) zip_discard(L->zip);
}

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static int find_storage(const loader *L, const char *key)
{
    if (!L->icap) return -1;
    size_t mask = (size_t)L->icap - 1;
    for (size_t i = hash_str(key) & mask;; i = (i + 1) & mask) {
        int k = L->index[i];
        if (k < 0 || !strcmp(L->st[k].key, key)) return k;
    }
}

/* Adds a storage (key not yet present); returns its index or -1 when out of memory. */
static int add_storage(loader *L, const char *key)
{
    if (L->nst == L->cap) {
        int cap = L->cap ? L->cap * 2 : 64;
        storage *s = realloc(L->st, (size_t)cap * sizeof *s);
        if (!s) return -1;
        L->st = s;
        L->cap = cap;
    }
    if ((L->nst + 1) * 2 > L->icap) {
        int icap = L->icap ? L->icap * 2 : 128;
        int *idx = malloc((size_t)icap * sizeof *idx);
        if (!idx) return -1;
        for (int i = 0; i < icap; i++) idx[i] = -1;
        for (int k = 0; k < L->nst; k++) {
            size_t i = hash_str(L->st[k].key) & (size_t)(icap - 1);
            while (idx[i] >= 0) i = (i + 1) & (size_t)(icap - 1);
            idx[i] = k;
        }
        free(L->index);
        L->index = idx;
        L->icap = icap;
    }
    storage *s = &L->st[L->nst];
    memset(s, 0, sizeof *s);
    s->root = -1;
    s->zidx = -1;
    if (!(s->key = strdup(key))) return -1;
    size_t i = hash_str(key) & (size_t)(L->icap - 1);
    while (L->index[i] >= 0) i = (i + 1) & (size_t)(L->icap - 1);
    L->index[i] = L->nst;
    return L->nst++;
}

static pv *storage_value(loader *L, pk_arena *a, int k)
{
    pv *v = pk_new(a, PV_STORAGE);
    if (!v) {
        cv_fail(L->ctx, CV_ERR_NOMEM, "%s: out of memory", L->name);
        return NULL;
    }
    v->u.storage.id = k;
    v->u.storage.dtype = L->st[k].dtype;
    return v;
}

/* Checks the common head of a storage persistent id: ('storage', <type>, key:str, location:str,
 * numel:int, ...). */
static int check_pid(loader *L, const pv *pid, size_t min_n, cv_dtype *dtype)
{
    if (pid->kind != PV_TUPLE || pid->u.seq.n < min_n) {
        cv_fail(L->ctx, CV_ERR_FORMAT, "%s: malformed persistent id (a %s)", L->name,
                pk_kind_name(pid));
        return 0;
    }
    pv **a = pid->u.seq.v;
    if (a[0]->kind != PV_STR || strcmp(a[0]->u.str.s, "storage")) {
        cv_fail(L->ctx, CV_ERR_UNSUPPORTED,
                "%s: persistent id of type '%s' (only storages are "
                "supported)",
                L->name, a[0]->kind == PV_STR ? a[0]->u.str.s : pk_kind_name(a[0]));
        return 0;
    }
    if (a[1]->kind != PV_GLOBAL || a[1]->u.glob.kind != PG_STORAGE_TYPE) {
        cv_fail(L->ctx, CV_ERR_FORMAT, "%s: persistent id names a %s, not a storage type", L->name,
                pk_kind_name(a[1]));
        return 0;
    }
    if (a[1]->u.glob.dtype < 0) {
        cv_fail(L->ctx, CV_ERR_UNSUPPORTED, "%s: storage type %s is not supported", L->name,
                a[1]->u.glob.qualname);
        return 0;
    }
    if (a[2]->kind != PV_STR || strlen(a[2]->u.str.s) != a[2]->u.str.n || a[2]->u.str.n > 200 ||
        a[4]->kind != PV_INT || a[4]->u.i < 0) {
        cv_fail(L->ctx, CV_ERR_FORMAT, "%s: malformed storage persistent id", L->name);
        return 0;
    }
    *dtype = (cv_dtype)a[1]->u.glob.dtype;
    return 1;
}

static int mul_ok(int64_t a, int64_t b, int64_t *r)
{
    return !__builtin_mul_overflow(a, b, r);
}

/* ---- zip ---- */
static pv *zip_persid(cv_ctx *ctx, void *user, pk_arena *a, const pv *pid)
{
    loader *L = user;
    cv_dtype dt;
    if (!check_pid(L, pid, 5, &dt)) return NULL;
    const char *key = pid->u.seq.v[2]->u.str.s;
    int64_t numel = pid->u.seq.v[4]->u.i;
    int k = find_storage(L, key);
    if (k >= 0) {
        if (L->st[k].dtype != dt || L->st[k].numel != numel) {
            cv_fail(ctx, CV_ERR_FORMAT,
                    "%s: storage '%s' is used with two different types or "
                    "sizes",
                    L->name, key);
            return NULL;
        }
        return storage_value(L, a, k);
    }
    char rec[512];
    snprintf(rec, sizeof rec, "%s/data/%s", L->prefix, key);
    zip_int64_t zi = zip_name_locate(L->zip, rec, 0);
    zip_stat_t zs;
    if (zi < 0 || zip_stat_index(L->zip, (zip_uint64_t)zi, 0, &zs) || !(zs.valid & ZIP_STAT_SIZE) ||
        !(zs.valid & ZIP_STAT_COMP_SIZE)) {
        cv_fail(ctx, CV_ERR_FORMAT, "%s: archive has no record '%s' for storage '%s'", L->name, rec,
                key);
        return NULL;
    }
    int64_t nbytes;
    if (!mul_ok(numel, (int64_t)cv_dtype_size(dt), &nbytes) || (uint64_t)nbytes != zs.size) {
        cv_fail(ctx, CV_ERR_FORMAT,
                "%s: record '%s' holds %" PRIu64 " bytes but its storage needs "
                "%" PRId64 " %s elements",
                L->name, rec, (uint64_t)zs.size, numel, cv_dtype_name(dt));
        return NULL;
    }
    /* Bound what a record may claim by what its compressed bytes can hold (deflate < 1032:1),
     * so that a lying header cannot make us allocate more than the file could produce. */
    if (zs.comp_size > L->archive_len ||
        (zs.comp_size < zs.size && zs.size / 1032 > zs.comp_size + 64)) {
        cv_fail(ctx, CV_ERR_FORMAT,
                "%s: record '%s' claims %" PRIu64 " bytes from %" PRIu64 " stored ones", L->name,
                rec, (uint64_t)zs.size, (uint64_t)zs.comp_size);
        return NULL;
    }
    if ((k = add_storage(L, key)) < 0) {
        cv_fail(ctx, CV_ERR_NOMEM, "%s: out of memory", L->name);
        return NULL;
    }
    L->st[k].dtype = dt;
    L->st[k].numel = numel;
    L->st[k].zidx = zi;
    return storage_value(L, a, k);
}

/* Reads n bytes at offset off of record zi into dst. */
static cv_status zip_read(loader *L, zip_int64_t zi, uint64_t off, void *dst, uint64_t n)
{
    const char *rec = zip_get_name(L->zip, (zip_uint64_t)zi, 0);
    zip_file_t *f = zip_fopen_index(L->zip, (zip_uint64_t)zi, 0);
    if (!f)
        return cv_fail(L->ctx, CV_ERR_FORMAT, "%s: cannot open record '%s': %s", L->name,
                       rec ? rec : "?", zip_strerror(L->zip));
    cv_status s = CV_OK;
    if (off && zip_fseek(f, (zip_int64_t)off, SEEK_SET) != 0) {
        char skip[4096]; /* compressed records cannot seek: read up to the offset */
        for (uint64_t left = off; left && s == CV_OK;) {
            zip_int64_t r = zip_fread(f, skip, left < sizeof skip ? left : sizeof skip);
            if (r <= 0)
                s = CV_ERR_FORMAT;
            else
                left -= (uint64_t)r;
        }
    }
    for (uint64_t done = 0; s == CV_OK && done < n;) {
        zip_int64_t r = zip_fread(f, (char *)dst + done, n - done);
        if (r <= 0)
            s = CV_ERR_FORMAT;
        else
            done += (uint64_t)r;
    }
    if (s != CV_OK)
        cv_fail(L->ctx, s, "%s: record '%s' is truncated or corrupt: %s", L->name, rec ? rec : "?",
                zip_file_strerror(f));
    zip_fclose(f);
    return s;
}

/* ---- choosing the state_dict and making tensors ---- */
static int contiguous(const pv *t)
{
    int64_t expect = 1;
    for (int d = t->u.tensor.ndim - 1; d >= 0; d--) {
        if (t->u.tensor.size[d] != 1 && t->u.tensor.stride[d] != expect) return 0;
        expect *= t->u.tensor.size[d];
    }
    return 1;
}

/* Copies a strided view (element size es) into dense C order. */
static void gather(uint8_t *dst, const uint8_t *src, const pv *t, size_t es, int64_t numel)
{
    int nd = t->u.tensor.ndim;
    int64_t idx[CV_MAX_DIMS] = {0};
    const int64_t *size = t->u.tensor.size, *stride = t->u.tensor.stride;
    int64_t off = 0;
    for (int64_t i = 0; i < numel; i++) {
        memcpy(dst + (size_t)i * es, src + (size_t)off * es, es);
        for (int d = nd - 1; d >= 0; d--) {
            if (++idx[d] < size[d]) {
                off += stride[d];
                break;
            }
            off -= stride[d] * (idx[d] - 1);
            idx[d] = 0;
        }
    }
}

static cv_status make_tensor(loader *L, const char *key, const pv *t, cv_tensor **out)
{
    *out = NULL;
    storage *s = &L->st[t->u.tensor.storage->u.storage.id];
    storage *root = s->root >= 0 ? &L->st[s->root] : s;
    size_t es = cv_dtype_size(s->dtype);
    int nd = t->u.tensor.ndim;
    int64_t numel = cv_shape_numel(nd, t->u.tensor.size);
    char shp[160];
    cv_shape_str(nd, t->u.tensor.size, shp, sizeof shp);
    if (numel < 0)
        return cv_fail(L->ctx, CV_ERR_FORMAT, "%s: tensor '%s' has an impossible shape %s", L->name,
                       key, shp);
    if (numel > 0) {
        /* Every element the view reaches must lie inside its storage, and the view may not make
         * more elements than the storage holds (stride-0 broadcasts are not state_dict data). */
        int64_t last = t->u.tensor.offset, step;
        for (int d = 0; d < nd; d++) {
            if (!mul_ok(t->u.tensor.size[d] - 1, t->u.tensor.stride[d], &step) ||
                __builtin_add_overflow(last, step, &last))
                last = INT64_MAX;
        }
        if (last >= s->numel)
            return cv_fail(L->ctx, CV_ERR_FORMAT,
                           "%s: tensor '%s' (shape %s, offset %" PRId64 ") reaches element %" PRId64
                           " of a storage of %" PRId64,
                           L->name, key, shp, t->u.tensor.offset, last, s->numel);
        if (numel > s->numel)
            return cv_fail(L->ctx, CV_ERR_UNSUPPORTED,
                           "%s: tensor '%s' (shape %s) has more "
                           "elements than its storage (%" PRId64 "): broadcast views are not "
                           "supported",
                           L->name, key, shp, s->numel);
    }
    if (L->legacy && !root->data)
        return cv_fail(L->ctx, CV_ERR_FORMAT,
                       "%s: storage '%s' of tensor '%s' has no data in "
                       "the file",
                       L->name, root->key, key);
    cv_tensor *x;
    cv_status st = cv_tensor_new(L->ctx, s->dtype, nd, t->u.tensor.size, &x);
    if (st != CV_OK) return st;
    if (numel > 0) {
        int dense = contiguous(t);
        const uint8_t *base = NULL;
        if (L->legacy) {
            base = root->data + (size_t)s->view_off * es;
        } else if (!s->cache && s->uses == 1 && dense) {
            /* The only user of its storage: read straight into the tensor. */
            st = zip_read(L, s->zidx, (uint64_t)t->u.tensor.offset * es, x->data, x->nbytes);
        } else {
            if (!s->cache) {
                s->cache = malloc((size_t)s->numel * es);
                if (!s->cache)
                    st = cv_fail(L->ctx, CV_ERR_NOMEM, "%s: out of memory reading storage '%s'",
                                 L->name, s->key);
                else
                    st = zip_read(L, s->zidx, 0, s->cache, (uint64_t)s->numel * es);
            }
            base = s->cache;
        }
        if (st == CV_OK && base) {
            if (dense)
                memcpy(x->data, base + (size_t)t->u.tensor.offset * es, x->nbytes);
            else
                gather(x->data, base + (size_t)t->u.tensor.offset * es, t, es, numel);
        }
    }
    if (!L->legacy && --s->uses <= 0) {
        free(s->cache);
        s->cache = NULL;
    }
    if (st != CV_OK) {
        cv_tensor_free(x);
        return st;
    }
    *out = x;
    return CV_OK;
}

static int all_tensors(const pv *d)
{
    for (size_t i = 1; i < d->u.seq.n; i += 2)
        if (d->u.seq.v[i]->kind != PV_TENSOR) return 0;
    return 1;
}

static void list_keys(const pv *d, char *buf, size_t n)
{
    size_t off = 0;
    buf[0] = 0;
    for (size_t i = 0; i < d->u.seq.n && off + 1 < n; i += 2) {
        const pv *k = d->u.seq.v[i];
        int w = snprintf(buf + off, n - off, "%s'%.40s'", i ? ", " : "",
                         k->kind == PV_STR ? k->u.str.s : pk_kind_name(k));
        if (w < 0) break;
        off += (size_t)w;
    }
    if (off + 1 >= n && n > 4) strcpy(buf + n - 4, "...");
}

/* Finds the state_dict: the top-level dict itself, or a checkpoint's wrapped entry. */
static cv_status select_dict(loader *L, const pv *top, const char *entry, const pv **out)
{
    static const char *const wrappers[] = {"model", "state_dict", "model_state_dict"};
    char keys[300];
    if (top->kind == PV_OBJECT)
        return cv_fail(L->ctx, CV_ERR_UNSUPPORTED,
                       "%s: the file holds a pickled %s object, not a "
                       "state_dict (save model.state_dict() instead)",
                       L->name, pk_kind_name(top));
    if (top->kind != PV_DICT)
        return cv_fail(L->ctx, CV_ERR_FORMAT, "%s: the pickled object is a %s, not a state_dict",
                       L->name, pk_kind_name(top));
    if (entry) {
        const pv *v = pk_dict_get(top, entry);
        if (!v || v->kind != PV_DICT) {
            list_keys(top, keys, sizeof keys);
            return cv_fail(L->ctx, CV_ERR_NOT_FOUND,
                           "%s: checkpoint has no state_dict '%s' "
                           "(its keys: %s)",
                           L->name, entry, keys);
        }
        *out = v;
        return CV_OK;
    }
    if (!all_tensors(top))
        for (size_t i = 0; i < sizeof wrappers / sizeof *wrappers; i++) {
            const pv *v = pk_dict_get(top, wrappers[i]);
            if (v && v->kind == PV_DICT) {
                *out = v;
                return CV_OK;
            }
        }
    *out = top;
    return CV_OK;
}

static cv_status add_versions(loader *L, const pv *dict, cv_state *st)
{
    const pv *state = dict->state;
    if (state && state->kind == PV_TUPLE && state->u.seq.n >= 1) state = state->u.seq.v[0];
    const pv *md = pk_dict_get(state, "_metadata");
    if (!md || md->kind != PV_DICT) return CV_OK;
    for (size_t i = 0; i + 1 < md->u.seq.n; i += 2) {
        const pv *path = md->u.seq.v[i];
        const pv *ver = pk_dict_get(md->u.seq.v[i + 1], "version");
        if (path->kind != PV_STR || !ver || ver->kind != PV_INT || path->u.str.n > 400 ||
            !cv_utf8_valid((const uint8_t *)path->u.str.s, path->u.str.n))
            continue;
        char k[420], v[32];
        snprintf(k, sizeof k, "version:%s", path->u.str.s);
        snprintf(v, sizeof v, "%" PRId64, ver->u.i);
        cv_status s = cv_state_set_meta(L->ctx, st, k, v);
        if (s != CV_OK) return s;
    }
    return CV_OK;
}

static cv_status to_state(loader *L, const pv *top, const char *entry, cv_state **out)
{
    const pv *d;
    cv_status s = select_dict(L, top, entry, &d);
    if (s != CV_OK) return s;
    int ema = entry && !strcmp(entry, "model_ema");
    for (size_t i = 0; i + 1 < d->u.seq.n; i += 2) {
        const pv *k = d->u.seq.v[i], *v = d->u.seq.v[i + 1];
        if (k->kind != PV_STR || strlen(k->u.str.s) != k->u.str.n ||
            !cv_utf8_valid((const uint8_t *)k->u.str.s, k->u.str.n))
            return cv_fail(L->ctx, CV_ERR_FORMAT, "%s: state_dict key #%zu is not a UTF-8 name",
                           L->name, i / 2);
        if (ema && !strcmp(k->u.str.s, "n_averaged")) continue;
        if (v->kind != PV_TENSOR)
            return cv_fail(L->ctx, CV_ERR_FORMAT,
                           "%s: state_dict entry '%s' holds a value of "
                           "type '%s', not a tensor",
                           L->name, k->u.str.s, pk_kind_name(v));
        L->st[v->u.tensor.storage->u.storage.id].uses++;
    }
    cv_state *st = cv_state_new();
    if (!st) return cv_fail(L->ctx, CV_ERR_NOMEM, "%s: out of memory", L->name);
    for (size_t i = 0; s == CV_OK && i + 1 < d->u.seq.n; i += 2) {
        const char *name = d->u.seq.v[i]->u.str.s;
        if (ema && !strcmp(name, "n_averaged")) continue;
        if (ema && !strncmp(name, "module.", 7)) name += 7;
        cv_tensor *t;
        s = make_tensor(L, name, d->u.seq.v[i + 1], &t);
        if (s == CV_OK) s = cv_state_put(L->ctx, st, name, t);
    }
    if (s == CV_OK) s = add_versions(L, d, st);
    if (s != CV_OK) {
        cv_state_free(st);
        return s;
    }
    *out = st;
    return CV_OK;
}

/* ---- the zip format ---- */
static cv_status read_small(loader *L, const char *rec, size_t max, char **out, size_t *n)
{
    *out = NULL;
    zip_int64_t zi = zip_name_locate(L->zip, rec, 0);
    zip_stat_t zs;
    if (zi < 0) return CV_ERR_NOT_FOUND;
    if (zip_stat_index(L->zip, (zip_uint64_t)zi, 0, &zs) || !(zs.valid & ZIP_STAT_SIZE) ||
        zs.size > max || (zs.size > 64 && zs.size / 1032 > zs.comp_size + 64))
        return cv_fail(L->ctx, CV_ERR_FORMAT, "%s: record '%s' is too large or unreadable", L->name,
                       rec);
    char *b = malloc((size_t)zs.size + 1);
    if (!b) return cv_fail(L->ctx, CV_ERR_NOMEM, "%s: out of memory", L->name);
    cv_status s = zip_read(L, zi, 0, b, zs.size);
    if (s != CV_OK) {
        free(b);
        return s;
    }
    b[zs.size] = 0;
    *out = b;
    *n = (size_t)zs.size;
    return CV_OK;
}

static cv_status zip_checks(loader *L)
{
    char rec[320], *b;
    size_t n;
    snprintf(rec, sizeof rec, "%s/version", L->prefix);
    cv_status s = read_small(L, rec, 64, &b, &n);
    if (s == CV_ERR_NOT_FOUND) {
        snprintf(rec, sizeof rec, "%s/.data/version", L->prefix);
        s = read_small(L, rec, 64, &b, &n);
    }
    if (s == CV_ERR_NOT_FOUND)
        return cv_fail(L->ctx, CV_ERR_FORMAT,
                       "%s: not a torch.save archive (no '%s/version' "
                       "record)",
                       L->name, L->prefix);
    if (s != CV_OK) return s;
    char *end;
    long v = strtol(b, &end, 10);
    int bad = end == b || v < 1 || v > 100;
    free(b);
    if (bad) return cv_fail(L->ctx, CV_ERR_FORMAT, "%s: bad archive version record", L->name);
    snprintf(rec, sizeof rec, "%s/byteorder", L->prefix);
    s = read_small(L, rec, 64, &b, &n);
    if (s == CV_ERR_NOT_FOUND) return CV_OK; /* written since torch 2.x; absent = little */
    if (s != CV_OK) return s;
    int little = !strcmp(b, "little"), big = !strcmp(b, "big");
    free(b);
    if (big)
        return cv_fail(L->ctx, CV_ERR_UNSUPPORTED,
                       "%s: big-endian checkpoints are not "
                       "supported",
                       L->name);
    if (!little) return cv_fail(L->ctx, CV_ERR_FORMAT, "%s: bad byteorder record", L->name);
    return CV_OK;
}

cv_status cv_pth_load_zip(cv_ctx *ctx, const char *name, const uint8_t *buf, size_t len,
                          const char *entry, int nested, cv_state **out)
{
    loader L = {.ctx = ctx, .name = name, .archive_len = len};
    zip_error_t ze;
    zip_error_init(&ze);
    zip_source_t *src = zip_source_buffer_create(buf, len, 0, &ze);
    if (src) L.zip = zip_open_from_source(src, ZIP_RDONLY | ZIP_CHECKCONS, &ze);
    if (!L.zip) {
        cv_status s = cv_fail(ctx, CV_ERR_FORMAT, "%s: not a readable zip archive: %s", name,
                              zip_error_strerror(&ze));
        if (src) zip_source_free(src);
        zip_error_fini(&ze);
        return s;
    }
    zip_error_fini(&ze);
    cv_status s = CV_OK;
    zip_int64_t count = zip_get_num_entries(L.zip, 0);
    const char *first = count > 0 ? zip_get_name(L.zip, 0, 0) : NULL;
    if (count == 1 && first && *first && first[strlen(first) - 1] != '/' && !nested) {
        /* torch.hub's "zipped pre-1.6 checkpoint": one member holding a whole weights file. */
        char *b;
        size_t n;
        s = read_small(&L, first, len * 1032 + 65536, &b, &n);
        if (s == CV_OK) {
            char nm[600];
            snprintf(nm, sizeof nm, "%s (member '%.200s')", name, first);
            s = cv_weights_load_buf(ctx, nm, (const uint8_t *)b, n, entry, 1, out);
            free(b);
        }
        loader_free(&L);
        return s;
    }
    const char *slash = first ? strchr(first, '/') : NULL;
    if (!slash || (size_t)(slash - first) >= sizeof L.prefix) {
        loader_free(&L);
        return cv_fail(ctx, CV_ERR_FORMAT, "%s: not a torch.save archive (no top folder)", name);
    }
    memcpy(L.prefix, first, (size_t)(slash - first));
    L.prefix[slash - first] = 0;
    char rec[320], *pkl = NULL;
    size_t n = 0;
    s = zip_checks(&L);
    if (s == CV_OK) {
        snprintf(rec, sizeof rec, "%s/data.pkl", L.prefix);
        s = read_small(&L, rec, len * 1032 + 65536, &pkl, &n);
        if (s == CV_ERR_NOT_FOUND)
            s = cv_fail(ctx, CV_ERR_FORMAT, "%s: not a torch.save archive (no '%s')", name, rec);
    }
    pk_arena *a = pk_arena_new();
    if (s == CV_OK && !a) s = cv_fail(ctx, CV_ERR_NOMEM, "%s: out of memory", name);
    if (s == CV_OK) {
        char nm[600];
        snprintf(nm, sizeof nm, "%s: data.pkl", name);
        pk_opts o = {.name = nm, .persid = zip_persid, .user = &L};
        pv *top;
        s = pk_load(ctx, &o, a, (const uint8_t *)pkl, n, NULL, &top);
        if (s == CV_OK) s = to_state(&L, top, entry, out);
    }
    free(pkl);
    pk_arena_free(a);
    loader_free(&L);
    return s;
}

/* ---- the legacy format ---- */
/* MAGIC_NUMBER 0x1950a86a20f9469cfc6c, little-endian, as pickle's LONG1 stores it */
static const uint8_t legacy_magic[] = {0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};

static pv *legacy_persid(cv_ctx *ctx, void *user, pk_arena *a, const pv *pid)
{
    loader *L = user;
    cv_dtype dt;
    if (!check_pid(L, pid, 6, &dt)) return NULL;
    const char *key = pid->u.seq.v[2]->u.str.s;
    int64_t numel = pid->u.seq.v[4]->u.i;
    const pv *view = pid->u.seq.v[5];
    int k = find_storage(L, key);
    if (k < 0) {
        if ((k = add_storage(L, key)) < 0) {
            cv_fail(ctx, CV_ERR_NOMEM, "%s: out of memory", L->name);
            return NULL;
        }
        L->st[k].dtype = dt;
        L->st[k].numel = numel;
    } else if (L->st[k].dtype != dt || L->st[k].root >= 0) {
        cv_fail(ctx, CV_ERR_FORMAT, "%s: storage '%s' is used with two different types", L->name,
                key);
        return NULL;
    }
    if (view->kind == PV_NONE) return storage_value(L, a, k);
    /* view_metadata = (view_key, offset, view_size), in elements of the root storage */
    pv **v = view->u.seq.v;
    if (view->kind != PV_TUPLE || view->u.seq.n != 3 || v[0]->kind != PV_STR ||
        strlen(v[0]->u.str.s) != v[0]->u.str.n || v[1]->kind != PV_INT || v[2]->kind != PV_INT ||
        v[1]->u.i < 0 || v[2]->u.i < 0 || v[1]->u.i > L->st[k].numel ||
        v[2]->u.i > L->st[k].numel - v[1]->u.i) {
        cv_fail(ctx, CV_ERR_FORMAT, "%s: bad storage view of '%s'", L->name, key);
        return NULL;
    }
    int vk = find_storage(L, v[0]->u.str.s);
    if (vk < 0) {
        if ((vk = add_storage(L, v[0]->u.str.s)) < 0) {
            cv_fail(ctx, CV_ERR_NOMEM, "%s: out of memory", L->name);
            return NULL;
        }
        L->st[vk].dtype = dt;
        L->st[vk].numel = v[2]->u.i;
        L->st[vk].root = k;
        L->st[vk].view_off = v[1]->u.i;
    } else if (L->st[vk].root != k || L->st[vk].dtype != dt) {
        cv_fail(ctx, CV_ERR_FORMAT, "%s: storage view '%s' is inconsistent", L->name,
                v[0]->u.str.s);
        return NULL;
    }
    return storage_value(L, a, vk);
}

cv_status cv_pth_load_legacy(cv_ctx *ctx, const char *name, const uint8_t *buf, size_t len,
                             const char *entry, cv_state **out)
{
    loader L = {.ctx = ctx, .name = name, .legacy = 1};
    pk_arena *a = pk_arena_new();
    if (!a) return cv_fail(ctx, CV_ERR_NOMEM, "%s: out of memory", name);
    size_t pos = 0, used;
    char nm[600];
    pv *magic, *proto, *sys, *top = NULL, *keys = NULL;
    snprintf(nm, sizeof nm, "%s: header", name);
    pk_opts ho = {.name = nm};
    cv_status s = pk_load(ctx, &ho, a, buf, len, &used, &magic);
    if (s == CV_OK && (magic->kind != PV_BIGINT || magic->u.str.n != sizeof legacy_magic ||
                       memcmp(magic->u.str.s, legacy_magic, sizeof legacy_magic)))
        s = cv_fail(ctx, CV_ERR_FORMAT, "%s: bad legacy magic number", name);
    if (s == CV_OK) {
        pos += used;
        s = pk_load(ctx, &ho, a, buf + pos, len - pos, &used, &proto);
    }
    if (s == CV_OK && (proto->kind != PV_INT || proto->u.i != 1001))
        s = cv_fail(ctx, CV_ERR_UNSUPPORTED, "%s: legacy protocol version is not 1001", name);
    if (s == CV_OK) {
        pos += used;
        s = pk_load(ctx, &ho, a, buf + pos, len - pos, &used, &sys);
    }
    if (s == CV_OK) {
        pos += used;
        const pv *le = pk_dict_get(sys, "little_endian");
        if (sys->kind != PV_DICT)
            s = cv_fail(ctx, CV_ERR_FORMAT, "%s: legacy sys_info is not a dict", name);
        else if (le && le->kind == PV_BOOL && !le->u.i)
            s = cv_fail(ctx, CV_ERR_UNSUPPORTED, "%s: big-endian checkpoints are not supported",
                        name);
    }
    if (s == CV_OK) {
        snprintf(nm, sizeof nm, "%s: object pickle", name);
        pk_opts o = {.name = nm, .persid = legacy_persid, .user = &L};
        s = pk_load(ctx, &o, a, buf + pos, len - pos, &used, &top);
    }
    if (s == CV_OK) {
        pos += used;
        snprintf(nm, sizeof nm, "%s: storage list", name);
        pk_opts o = {.name = nm};
        s = pk_load(ctx, &o, a, buf + pos, len - pos, &used, &keys);
        if (s == CV_OK && keys->kind != PV_LIST)
            s = cv_fail(ctx, CV_ERR_FORMAT, "%s: legacy storage list is not a list", name);
        pos += used;
    }
    /* The storages follow in the list's order: int64 numel, then the raw bytes. */
    for (size_t i = 0; s == CV_OK && i < keys->u.seq.n; i++) {
        const pv *k = keys->u.seq.v[i];
        int si = k->kind == PV_STR ? find_storage(&L, k->u.str.s) : -1;
        if (si < 0 || L.st[si].root >= 0 || L.st[si].data) {
            s = cv_fail(ctx, CV_ERR_FORMAT,
                        "%s: storage list names an unknown or repeated "
                        "storage '%s'",
                        name, k->kind == PV_STR ? k->u.str.s : "?");
            break;
        }
        storage *st = &L.st[si];
        int64_t numel, nbytes;
        if (len - pos < 8) {
            s = cv_fail(ctx, CV_ERR_FORMAT, "%s: truncated before storage '%s'", name, st->key);
            break;
        }
        memcpy(&numel, buf + pos, 8);
        pos += 8;
        if (numel != st->numel || !mul_ok(numel, (int64_t)cv_dtype_size(st->dtype), &nbytes) ||
            (uint64_t)nbytes > len - pos) {
            s = cv_fail(ctx, CV_ERR_FORMAT,
                        "%s: storage '%s' (%" PRId64 " elements expected) "
                        "has %" PRId64 " elements or runs past the end of the file",
                        name, st->key, st->numel, numel);
            break;
        }
        st->data = buf + pos;
        pos += (size_t)nbytes;
    }
    if (s == CV_OK) s = to_state(&L, top, entry, out);
    pk_arena_free(a);
    loader_free(&L);
    return s;
}

/* ---- sniffing ---- */
cv_weights_format cv_weights_sniff(const uint8_t *buf, size_t len)
{
    if (len >= 4 && buf[0] == 'P' && buf[1] == 'K' &&
        ((buf[2] == 3 && buf[3] == 4) || (buf[2] == 5 && buf[3] == 6)))
        return WF_ZIP;
    if (len >= 9 && buf[8] == '{') return WF_SAFETENSORS;
    if (len >= 2 && buf[0] == 0x80 && buf[1] >= 2 && buf[1] <= 5) return WF_LEGACY; /* PROTO */
    if (len >= 262 && !memcmp(buf + 257, "ustar", 5)) return WF_TAR;
    return WF_UNKNOWN;
}

cv_status cv_weights_load_buf(cv_ctx *ctx, const char *name, const uint8_t *buf, size_t len,
                              const char *entry, int nested, cv_state **out)
{
    *out = NULL;
    if (!len) return cv_fail(ctx, CV_ERR_FORMAT, "%s: empty file", name);
    switch (cv_weights_sniff(buf, len)) {
    case WF_ZIP:
        return cv_pth_load_zip(ctx, name, buf, len, entry, nested, out);
    case WF_LEGACY:
        return cv_pth_load_legacy(ctx, name, buf, len, entry, out);
    case WF_SAFETENSORS:
        if (entry)
            return cv_fail(ctx, CV_ERR_INVALID, "%s: a safetensors file has no entry '%s'", name,
                           entry);
        return cv_safetensors_load_mem(ctx, name, buf, len, out);
    case WF_TAR:
        return cv_fail(ctx, CV_ERR_UNSUPPORTED,
                       "%s: the tar checkpoint format of torch < 0.4 is "
                       "not supported (re-save it with torch.save)",
                       name);
    default:
        return cv_fail(ctx, CV_ERR_FORMAT,
                       "%s: not a weights file (expected a torch.save zip or "
                       "legacy file, or safetensors)",
                       name);
    }
}
