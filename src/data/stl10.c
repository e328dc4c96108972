/* STL-10, binary version: X files of 3x96x96 uint8 records stored column-major per channel
 * (torchvision reshapes to (3,96,96) and transposes the last two axes), y files of labels 1..10.
 * Images are read on demand with pread: the unlabeled file alone is 2.7 GB. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/dataset_impl.h"

#define STL_SIDE 96
#define STL_REC  (3 * STL_SIDE * STL_SIDE)

static const char *const stl10_names[] = {"airplane", "bird",  "car",    "cat",  "deer",
                                          "dog",      "horse", "monkey", "ship", "truck"};

typedef struct {
    int fd[2]; /* train_X / test_X, unlabeled_X */
    char *path[2];
    int64_t *src; /* per sample: record index; + (1 << 40) * file slot */
} stl_impl;

#define SLOT_SHIFT 40

static cv_status stl_get(cv_ctx *ctx, const cv_dataset *ds, int64_t i, cv_image **img)
{
    const stl_impl *s = ds->impl;
    int slot = (int)(s->src[i] >> SLOT_SHIFT);
    int64_t rec = s->src[i] & (((int64_t)1 << SLOT_SHIFT) - 1);
    uint8_t raw[STL_REC];
    ssize_t got = pread(s->fd[slot], raw, STL_REC, (off_t)rec * STL_REC);
    if (got != STL_REC)
        return cv_fail(ctx, CV_ERR_IO, "%s: record %lld: %s", s->path[slot], (long long)rec,
                       got < 0 ? strerror(errno) : "short read");
    ds_pixels px = {.base = raw,
                    .h = STL_SIDE,
                    .w = STL_SIDE,
                    .c = 3,
                    .sy = 1,
                    .sx = STL_SIDE,
                    .sc = STL_SIDE * STL_SIDE};
    return ds_pixels_get(ctx, &px, 0, img);
}

static void stl_name(const cv_dataset *ds, int64_t i, char *buf, size_t size)
{
    const stl_impl *s = ds->impl;
    snprintf(buf, size, "%s[%lld]", s->path[s->src[i] >> SLOT_SHIFT],
             (long long)(s->src[i] & (((int64_t)1 << SLOT_SHIFT) - 1)));
}

static void stl_free(void *p)
{
    stl_impl *s = p;
    if (!s) return;
    for (int k = 0; k < 2; k++) {
        if (s->fd[k] >= 0) close(s->fd[k]);
        free(s->path[k]);
    }
    free(s->src);
    free(s);
}

static const ds_ops stl_ops = {stl_get, stl_name, stl_free, NULL};

/* Opens an X file and returns its record count. */
static cv_status open_x(cv_ctx *ctx, const char *dir, const char *name, stl_impl *s, int slot,
                        int64_t *n)
{
    char path[4096];
    ds_join(path, sizeof path, dir, name);
    if (!(s->path[slot] = strdup(path))) return cv_fail(ctx, CV_ERR_NOMEM, "out of memory");
    s->fd[slot] = open(path, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    if (s->fd[slot] < 0 || fstat(s->fd[slot], &sb))
        return cv_fail(ctx, CV_ERR_IO, "%s: %s", path, strerror(errno));
    if (!S_ISREG(sb.st_mode) || sb.st_size % STL_REC)
        return cv_fail(ctx, CV_ERR_FORMAT, "%s: %lld bytes is not a whole number of %d-byte images",
                       path, (long long)sb.st_size, STL_REC);
    *n = sb.st_size / STL_REC;
    return CV_OK;
}

/* fold_indices.txt: line `fold` holds the fold's training indices, space-separated. */
static cv_status read_fold(cv_ctx *ctx, const char *dir, int fold, int64_t ntrain, int64_t **idx,
                           int64_t *n)
{
    char path[4096];
    ds_join(path, sizeof path, dir, "fold_indices.txt");
    uint8_t *text;
    size_t len;
    cv_status st = ds_read_file(ctx, path, 1 << 24, &text, &len);
    if (st) return st;
    char *s = (char *)text;
    for (int line = 0; line < fold && s; line++) {
        s = strchr(s, '\n');
        if (s) s++;
    }
    int64_t *v = malloc((size_t)(ntrain + 1) * sizeof *v), m = 0;
    if (!s || !v) {
        free(text);
        free(v);
        return s ? cv_fail(ctx, CV_ERR_NOMEM, "out of memory")
                 : cv_fail(ctx, CV_ERR_FORMAT, "%s: no line for fold %d", path, fold);
    }
    while (*s && *s != '\n') {
        if (*s == ' ' || *s == '\t' || *s == '\r') {
            s++;
            continue;
        }
        char *end;
        long long x = strtoll(s, &end, 10);
        if (end == s || x < 0 || x >= ntrain || m >= ntrain) {
            int tl = (int)strcspn(s, " \t\r\n");
            st = cv_fail(ctx, CV_ERR_FORMAT, "%s: fold %d: bad index '%.*s'", path, fold,
                         tl < 20 ? tl : 20, s);
            free(text);
            free(v);
            return st;
        }
        v[m++] = x;
        s = end;
    }
    free(text);
    *idx = v;
    *n = m;
    return CV_OK;
}

cv_status ds_open_stl10(cv_ctx *ctx, const char *args, cv_dataset **out)
{
    char buf[4096], *f[8];
    int nf = ds_split_fields(args, ':', buf, sizeof buf, f, 8);
    int fold = -1;
    if (nf >= 3 && !strncmp(f[nf - 1], "fold=", 5)) {
        char *end;
        fold = (int)strtol(f[nf - 1] + 5, &end, 10);
        if (*end || fold < 0 || fold > 9)
            return cv_fail(ctx, CV_ERR_INVALID, "stl10: fold must be 0..9");
        nf--;
    }
    if (nf < 2)
        return cv_fail(ctx, CV_ERR_INVALID,
                       "stl10:%s: expected stl10:DIR:train|test|unlabeled|train+unlabeled[:fold=N]",
                       args);
    for (int i = 1; i < nf - 1; i++) f[i][-1] = ':';
    const char *root = f[0], *part = f[nf - 1];
    int train = !strcmp(part, "train"), test = !strcmp(part, "test"),
        unl = !strcmp(part, "unlabeled"), both = !strcmp(part, "train+unlabeled");
    if (!train && !test && !unl && !both)
        return cv_fail(ctx, CV_ERR_INVALID,
                       "stl10: unknown part '%s' (train, test, unlabeled, train+unlabeled)", part);
    if (fold >= 0 && !train && !both)
        return cv_fail(ctx, CV_ERR_INVALID, "stl10: folds apply to train and train+unlabeled");
    const char *xname = test ? "test_X.bin" : unl ? "unlabeled_X.bin" : "train_X.bin";
    char dir[4096], path[4096];
    snprintf(dir, sizeof dir, "%s", root);
    if (!ds_file_exists(ds_join(path, sizeof path, dir, xname))) {
        ds_join(dir, sizeof dir, root, "stl10_binary");
        if (!ds_file_exists(ds_join(path, sizeof path, dir, xname)))
            return cv_fail(ctx, CV_ERR_NOT_FOUND, "%s: no %s there (nor in stl10_binary/)", root,
                           xname);
    }
    stl_impl *s = calloc(1, sizeof *s);
    cv_dataset *ds = NULL;
    uint8_t *y = NULL;
    int64_t *fidx = NULL, nfold = 0, nx = 0, nu = 0;
    size_t ny = 0;
    cv_status st;
    if (!s) return cv_fail(ctx, CV_ERR_NOMEM, "out of memory");
    s->fd[0] = s->fd[1] = -1;
    if (!unl) {
        if ((st = open_x(ctx, dir, xname, s, 0, &nx))) goto fail;
        ds_join(path, sizeof path, dir, test ? "test_y.bin" : "train_y.bin");
        if ((st = ds_read_file(ctx, path, (size_t)1 << 30, &y, &ny))) goto fail;
        if ((int64_t)ny != nx) {
            st = cv_fail(ctx, CV_ERR_FORMAT, "%s has %zu labels but %s has %lld images", path, ny,
                         s->path[0], (long long)nx);
            goto fail;
        }
        for (size_t i = 0; i < ny; i++)
            if (y[i] < 1 || y[i] > 10) {
                st = cv_fail(ctx, CV_ERR_FORMAT, "%s: label %d of sample %zu is outside 1..10",
                             path, y[i], i);
                goto fail;
            }
        if (fold >= 0 && (st = read_fold(ctx, dir, fold, nx, &fidx, &nfold))) goto fail;
    }
    if (unl || both)
        if ((st = open_x(ctx, dir, "unlabeled_X.bin", s, 1, &nu))) goto fail;
    int64_t nl = fold >= 0 ? nfold : nx, n = nl + nu;
    if (!(ds = ds_new(n, 10)) || !(s->src = malloc((size_t)(n + 1) * sizeof *s->src))) {
        st = cv_fail(ctx, CV_ERR_NOMEM, "out of memory");
        goto fail;
    }
    for (int64_t i = 0; i < nl; i++) {
        int64_t r = fidx ? fidx[i] : i;
        s->src[i] = r;
        ds->labels[i] = y[r] - 1;
    }
    for (int64_t i = 0; i < nu; i++) s->src[nl + i] = ((int64_t)1 << SLOT_SHIFT) | i;
    /* class_names.txt when present, as torchvision does. */
    ds_join(path, sizeof path, dir, "class_names.txt");
    uint8_t *text;
    size_t len;
    int named = 0;
    if (ds_file_exists(path) && ds_read_file(ctx, path, 1 << 20, &text, &len) == CV_OK) {
        char *p = (char *)text, *names[10];
        int m = 0;
        while (*p && m < 11) {
            char *e = strchr(p, '\n');
            if (e) *e = 0;
            if (e && e > p && e[-1] == '\r') e[-1] = 0;
            if (m < 10) names[m] = p;
            m++;
            if (!e) break;
            p = e + 1;
        }
        if (m == 10) {
            if ((st = ds_set_classes(ctx, ds, (const char *const *)names, 10))) {
                free(text);
                goto fail;
            }
            named = 1;
        }
        free(text);
    }
    if (!named && (st = ds_set_classes(ctx, ds, stl10_names, 10))) goto fail;
    free(y);
    free(fidx);
    ds->ops = &stl_ops;
    ds->impl = s;
    *out = ds;
    return CV_OK;
fail:
    free(y);
    free(fidx);
    stl_free(s);
    cv_dataset_free(ds);
    return st;
}
