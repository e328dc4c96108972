/* idx files ("SN3 Pascal Vincent", torchvision's read_sn3_pascalvincent_tensor) and the MNIST
 * family built on them: MNIST, FashionMNIST, KMNIST, EMNIST, QMNIST. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "data/dataset_impl.h"

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Reads up to n bytes; returns the count, or -1 on a stream error. */
static int64_t gz_read_all(gzFile f, uint8_t *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        size_t chunk = n - got > (1u << 30) ? (1u << 30) : n - got;
        int r = gzread(f, buf + got, (unsigned)chunk);
        if (r < 0) return -1;
        if (r == 0) break;
        got += (size_t)r;
    }
    return (int64_t)got;
}

cv_status cv_idx_load(cv_ctx *ctx, const char *path, cv_tensor **out)
{
    static const struct {
        uint8_t code;
        cv_dtype dtype;
    } types[] = {{0x08, CV_U8},  {0x09, CV_I8},  {0x0B, CV_I16},
                 {0x0C, CV_I32}, {0x0D, CV_F32}, {0x0E, CV_F64}};
    *out = NULL;
    struct stat sb;
    if (stat(path, &sb)) return cv_fail(ctx, CV_ERR_IO, "%s: %s", path, strerror(errno));
    if (!S_ISREG(sb.st_mode)) return cv_fail(ctx, CV_ERR_IO, "%s: not a regular file", path);
    gzFile f = gzopen(path, "rb");
    if (!f) return cv_fail(ctx, CV_ERR_IO, "%s: %s", path, strerror(errno));
    gzbuffer(f, 1 << 17);
    uint8_t hdr[4 + 4 * 4];
    uint8_t *buf = NULL;
    cv_tensor *t = NULL;
    cv_status st = CV_OK;
    const char *zerr;
    int zcode;
    int64_t got = gz_read_all(f, hdr, 4);
    if (got < 0) goto zfail;
    if (got < 4) {
        st = cv_fail(ctx, CV_ERR_FORMAT, "%s: truncated idx header (%lld bytes)", path,
                     (long long)got);
        goto done;
    }
    int ndim = hdr[3];
    int ti = -1;
    for (int i = 0; i < (int)(sizeof types / sizeof types[0]); i++)
        if (types[i].code == hdr[2]) ti = i;
    if (hdr[0] || hdr[1] || ti < 0 || ndim < 1 || ndim > 4) {
        st =
            cv_fail(ctx, CV_ERR_FORMAT,
                    "%s: bad idx magic 0x%02x%02x%02x%02x (want 0x0000TTNN: type 08/09/0B/0C/0D/0E,"
                    " 1..4 dims)",
                    path, hdr[0], hdr[1], hdr[2], hdr[3]);
        goto done;
    }
    got = gz_read_all(f, hdr + 4, 4 * (size_t)ndim);
    if (got < 0) goto zfail;
    if (got < 4 * ndim) {
        st = cv_fail(ctx, CV_ERR_FORMAT, "%s: truncated idx header (%d dims declared)", path, ndim);
        goto done;
    }
    int64_t shape[4];
    for (int i = 0; i < ndim; i++) shape[i] = be32(hdr + 4 + 4 * i);
    cv_dtype dt = types[ti].dtype;
    size_t es = cv_dtype_size(dt);
    int64_t numel = cv_shape_numel(ndim, shape);
    char sbuf[96];
    cv_shape_str(ndim, shape, sbuf, sizeof sbuf);
    if (numel < 0 || (uint64_t)numel > ((uint64_t)1 << 40) / es) {
        st = cv_fail(ctx, CV_ERR_FORMAT, "%s: idx dims %s too large", path, sbuf);
        goto done;
    }
    size_t need = (size_t)numel * es, hsize = 4 + 4 * (size_t)ndim;
    if (gzdirect(f) && (uint64_t)sb.st_size != hsize + need) {
        st = cv_fail(ctx, CV_ERR_FORMAT, "%s: idx dims %s need %zu data bytes, the file has %lld",
                     path, sbuf, need, (long long)sb.st_size - (long long)hsize);
        goto done;
    }
    /* Compressed: the size is known only by decompressing; grow the buffer as data arrives so a
     * small file claiming huge dims cannot make us allocate them. */
    size_t cap = need < (1u << 20) ? need : (1u << 20), have = 0;
    buf = malloc(cap ? cap : 1);
    if (!buf) goto nomem;
    for (;;) {
        got = gz_read_all(f, buf + have, cap - have);
        if (got < 0) goto zfail;
        have += (size_t)got;
        if (have < cap || cap == need) break;
        size_t ncap = cap * 2 < need ? cap * 2 : need;
        uint8_t *nb = realloc(buf, ncap);
        if (!nb) goto nomem;
        buf = nb;
        cap = ncap;
    }
    uint8_t extra;
    got = have == need ? gz_read_all(f, &extra, 1) : 0;
    if (got < 0) goto zfail;
    if (have != need || got) {
        st = cv_fail(ctx, CV_ERR_FORMAT, "%s: idx dims %s need %zu data bytes, the file has %s%zu",
                     path, sbuf, need, got ? "more than " : "", have);
        goto done;
    }
    st = cv_tensor_new(ctx, dt, ndim, shape, &t);
    if (st) goto done;
    uint8_t *d = t->data;
    if (es == 1) {
        memcpy(d, buf, need);
    } else {
        for (size_t i = 0; i < need; i += es)
            for (size_t b = 0; b < es; b++) d[i + b] = buf[i + es - 1 - b];
    }
    *out = t;
    t = NULL;
    goto done;
zfail:
    zerr = gzerror(f, &zcode);
    st = cv_fail(ctx, CV_ERR_FORMAT, "%s: %s", path, zcode == Z_ERRNO ? strerror(errno) : zerr);
    goto done;
nomem:
    st = cv_fail(ctx, CV_ERR_NOMEM, "%s: out of memory", path);
done:
    free(buf);
    cv_tensor_free(t);
    gzclose(f);
    return st;
}

/* ---- the MNIST family ---- */

#define FASHION_DIR "/usr/share/datasets/fashion-mnist"

typedef struct {
    cv_tensor *images; /* u8 [N, H, W] */
    char *file;
    int64_t offset; /* QMNIST test50k: samples start at 10000 */
    ds_pixels px;
} mnist_impl;

static cv_status mnist_get(cv_ctx *ctx, const cv_dataset *ds, int64_t i, cv_image **img)
{
    const mnist_impl *m = ds->impl;
    return ds_pixels_get(ctx, &m->px, i, img);
}

static void mnist_name(const cv_dataset *ds, int64_t i, char *buf, size_t size)
{
    const mnist_impl *m = ds->impl;
    snprintf(buf, size, "%s[%lld]", m->file, (long long)(i + m->offset));
}

static void mnist_free(void *p)
{
    mnist_impl *m = p;
    if (!m) return;
    cv_tensor_free(m->images);
    free(m->file);
    free(m);
}

static const ds_ops mnist_ops = {mnist_get, mnist_name, mnist_free, NULL};

/* Finds `name` or `name.gz` in dir, dir/raw or dir/<Class>/raw (torchvision's root layout). */
static cv_status find_idx(cv_ctx *ctx, const char *dir, const char *cls, const char *name,
                          char *path, size_t size)
{
    char sub[3][4096];
    snprintf(sub[0], sizeof sub[0], "%s", dir);
    ds_join(sub[1], sizeof sub[1], dir, "raw");
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s/raw", cls);
    ds_join(sub[2], sizeof sub[2], dir, tmp);
    for (int s = 0; s < 3; s++)
        for (int gz = 0; gz < 2; gz++) {
            snprintf(tmp, sizeof tmp, "%s%s", name, gz ? ".gz" : "");
            ds_join(path, size, sub[s], tmp);
            if (ds_file_exists(path)) return CV_OK;
        }
    return cv_fail(ctx, CV_ERR_NOT_FOUND, "%s: no %s[.gz] there (nor in raw/ or %s/raw/)", dir,
                   name, cls);
}

static const char *const mnist_classes[] = {"0 - zero",  "1 - one",  "2 - two", "3 - three",
                                            "4 - four",  "5 - five", "6 - six", "7 - seven",
                                            "8 - eight", "9 - nine"};
static const char *const fashion_classes[] = {"T-shirt/top", "Trouser",   "Pullover", "Dress",
                                              "Coat",        "Sandal",    "Shirt",    "Sneaker",
                                              "Bag",         "Ankle boot"};
static const char *const kmnist_classes[] = {"o",  "ki", "su", "tsu", "na",
                                             "ha", "ma", "ya", "re",  "wo"};
static const char *const emnist_splits[] = {"byclass", "bymerge", "balanced",
                                            "letters", "digits",  "mnist"};

/* EMNIST class lists as torchvision builds them: sorted(set of characters). */
static int emnist_classes(const char *split, char names[64][4])
{
    const char *merged = "cijklmopsuvwxyz";
    int k = 0;
    if (!strcmp(split, "letters")) {
        strcpy(names[k++], "N/A");
        for (char ch = 'a'; ch <= 'z'; ch++) names[k][0] = ch, names[k++][1] = 0;
        return k;
    }
    const char *all = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    int digits_only = !strcmp(split, "digits") || !strcmp(split, "mnist");
    for (const char *p = all; *p; p++) {
        if (digits_only && *p > '9') break;
        if (strcmp(split, "byclass") && *p >= 'a' && strchr(merged, *p)) continue;
        names[k][0] = *p;
        names[k++][1] = 0;
    }
    return k;
}

cv_status ds_open_mnist(cv_ctx *ctx, const char *type, const char *args, cv_dataset **out)
{
    char buf[4096], *f[8];
    int nf = ds_split_fields(args, ':', buf, sizeof buf, f, 8);
    int is_emnist = !strcmp(type, "emnist"), is_q = !strcmp(type, "qmnist");
    const char *dir, *part, *esplit = NULL;
    /* The directory is everything between the type and the trailing fixed fields. */
    int tail = is_emnist ? 2 : 1;
    if (nf < tail + 1) {
        if (!strcmp(type, "fashionmnist") && nf == 1) {
            dir = FASHION_DIR;
        } else {
            return cv_fail(ctx, CV_ERR_INVALID, "%s:%s: expected %s:DIR:%s", type, args, type,
                           is_emnist ? "SPLIT:train|test"
                           : is_q    ? "train|test|test10k|test50k|nist"
                                     : "train|test");
        }
    } else {
        for (int i = 1; i < nf - tail; i++) f[i][-1] = ':'; /* rejoin a DIR holding ':' */
        dir = f[0];
    }
    part = f[nf - 1];
    if (is_emnist) {
        esplit = f[nf - 2];
        int ok = 0;
        for (int i = 0; i < 6; i++) ok |= !strcmp(esplit, emnist_splits[i]);
        if (!ok)
            return cv_fail(ctx, CV_ERR_INVALID,
                           "emnist: unknown split '%s' (byclass, bymerge, balanced, letters, "
                           "digits, mnist)",
                           esplit);
    }
    int train = !strcmp(part, "train");
    if (is_q) {
        if (!train && strcmp(part, "test") && strcmp(part, "test10k") && strcmp(part, "test50k") &&
            strcmp(part, "nist"))
            return cv_fail(ctx, CV_ERR_INVALID,
                           "qmnist: unknown part '%s' (train, test, test10k, test50k, nist)", part);
    } else if (!train && strcmp(part, "test")) {
        return cv_fail(ctx, CV_ERR_INVALID, "%s: unknown part '%s' (train, test)", type, part);
    }

    char imgname[256], lblname[256];
    const char *cls;
    if (is_emnist) {
        cls = "EMNIST";
        snprintf(imgname, sizeof imgname, "emnist-%s-%s-images-idx3-ubyte", esplit, part);
        snprintf(lblname, sizeof lblname, "emnist-%s-%s-labels-idx1-ubyte", esplit, part);
    } else if (is_q) {
        cls = "QMNIST";
        const char *pre = !strcmp(part, "nist") ? "xnist" : train ? "qmnist-train" : "qmnist-test";
        snprintf(imgname, sizeof imgname, "%s-images-idx3-ubyte", pre);
        snprintf(lblname, sizeof lblname, "%s-labels-idx2-int", pre);
    } else {
        cls = !strcmp(type, "mnist")    ? "MNIST"
              : !strcmp(type, "kmnist") ? "KMNIST"
                                        : "FashionMNIST";
        snprintf(imgname, sizeof imgname, "%s-images-idx3-ubyte", train ? "train" : "t10k");
        snprintf(lblname, sizeof lblname, "%s-labels-idx1-ubyte", train ? "train" : "t10k");
    }
    char ipath[4096], lpath[4096];
    cv_status st = find_idx(ctx, dir, cls, imgname, ipath, sizeof ipath);
    if (st) return st;
    st = find_idx(ctx, dir, cls, lblname, lpath, sizeof lpath);
    if (st) return st;

    cv_tensor *im = NULL, *lb = NULL;
    cv_dataset *ds = NULL;
    mnist_impl *m = NULL;
    if ((st = cv_idx_load(ctx, ipath, &im)) || (st = cv_idx_load(ctx, lpath, &lb))) goto fail;
    if (im->dtype != CV_U8 || im->ndim != 3) {
        char s[96];
        st = cv_fail(ctx, CV_ERR_FORMAT, "%s: images must be uint8 [N, H, W], found %s %s", ipath,
                     cv_dtype_name(im->dtype), cv_shape_str(im->ndim, im->shape, s, sizeof s));
        goto fail;
    }
    if (is_q ? (lb->dtype != CV_I32 || lb->ndim != 2 || lb->shape[1] < 1)
             : (lb->dtype != CV_U8 || lb->ndim != 1)) {
        char s[96];
        st = cv_fail(ctx, CV_ERR_FORMAT, "%s: labels must be %s, found %s %s", lpath,
                     is_q ? "int32 [N, >=1]" : "uint8 [N]", cv_dtype_name(lb->dtype),
                     cv_shape_str(lb->ndim, lb->shape, s, sizeof s));
        goto fail;
    }
    if (im->shape[0] != lb->shape[0]) {
        st = cv_fail(ctx, CV_ERR_FORMAT, "%s has %lld images but %s has %lld labels", ipath,
                     (long long)im->shape[0], lpath, (long long)lb->shape[0]);
        goto fail;
    }
    if (im->shape[1] > 65535 || im->shape[2] > 65535) {
        st = cv_fail(ctx, CV_ERR_FORMAT, "%s: image size %lldx%lld too large", ipath,
                     (long long)im->shape[2], (long long)im->shape[1]);
        goto fail;
    }
    int64_t first = 0, n = im->shape[0];
    if (is_q && !strcmp(part, "test10k")) n = n < 10000 ? n : 10000;
    if (is_q && !strcmp(part, "test50k")) first = n < 10000 ? n : 10000, n -= first;

    char names[64][4];
    int k;
    const char *const *cn = NULL;
    if (is_emnist)
        k = emnist_classes(esplit, names);
    else
        k = 10, cn = !strcmp(type, "fashionmnist") ? fashion_classes
                     : !strcmp(type, "kmnist")     ? kmnist_classes
                                                   : mnist_classes;
    ds = ds_new(n, k);
    m = calloc(1, sizeof *m);
    if (!ds || !m || !(m->file = strdup(ipath))) goto nomem;
    for (int c = 0; c < k; c++)
        if (!ds_set_class(ds, c, cn ? cn[c] : names[c])) goto nomem;
    for (int64_t i = 0; i < n; i++) {
        int64_t v =
            is_q ? ((int32_t *)lb->data)[(first + i) * lb->shape[1]] : ((uint8_t *)lb->data)[i];
        if (v < 0 || v >= k) {
            st = cv_fail(ctx, CV_ERR_FORMAT, "%s: label %lld of sample %lld is outside 0..%d",
                         lpath, (long long)v, (long long)(first + i), k - 1);
            goto fail;
        }
        ds->labels[i] = (int32_t)v;
    }
    int h = (int)im->shape[1], w = (int)im->shape[2];
    m->images = im;
    m->offset = first;
    m->px = (ds_pixels){.base = (uint8_t *)im->data + (size_t)first * (size_t)h * (size_t)w,
                        .sample_stride = (size_t)h * (size_t)w,
                        .h = h,
                        .w = w,
                        .c = 1,
                        .sy = w,
                        .sx = 1,
                        .sc = 0};
    ds->ops = &mnist_ops;
    ds->impl = m;
    cv_tensor_free(lb);
    *out = ds;
    return CV_OK;
nomem:
    st = cv_fail(ctx, CV_ERR_NOMEM, "out of memory");
fail:
    cv_tensor_free(im); /* not yet owned by m */
    mnist_free(m);
    cv_dataset_free(ds);
    cv_tensor_free(lb);
    return st;
}
