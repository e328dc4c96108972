/* The dataset handle: spec dispatch, accessors, subset views and helpers shared by the readers. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/dataset_impl.h"

cv_dataset *ds_new(int64_t n, int k)
{
    cv_dataset *ds = calloc(1, sizeof *ds);
    if (!ds) return NULL;
    ds->n = n;
    ds->num_classes = k;
    ds->refs = 1;
    ds->labels = malloc((size_t)(n > 0 ? n : 1) * sizeof *ds->labels);
    ds->class_names = calloc((size_t)(k > 0 ? k : 1), sizeof *ds->class_names);
    if (!ds->labels || !ds->class_names) {
        cv_dataset_free(ds);
        return NULL;
    }
    for (int64_t i = 0; i < n; i++) ds->labels[i] = -1;
    return ds;
}

int ds_set_class(cv_dataset *ds, int i, const char *name)
{
    free(ds->class_names[i]);
    ds->class_names[i] = strdup(name);
    return ds->class_names[i] != NULL;
}

cv_status ds_set_classes(cv_ctx *ctx, cv_dataset *ds, const char *const *names, int k)
{
    for (int i = 0; i < k && i < ds->num_classes; i++)
        if (!ds_set_class(ds, i, names[i])) return cv_fail(ctx, CV_ERR_NOMEM, "out of memory");
    return CV_OK;
}

void cv_dataset_free(cv_dataset *ds)
{
    if (!ds || --ds->refs > 0) return;
    if (ds->ops && ds->ops->free) ds->ops->free(ds->impl);
    if (ds->class_names)
        for (int i = 0; i < ds->num_classes; i++) free(ds->class_names[i]);
    free(ds->class_names);
    free(ds->labels);
    free(ds->multi);
    free(ds->index);
    free(ds->spec);
    cv_dataset_free(ds->parent);
    free(ds);
}

int64_t cv_dataset_len(const cv_dataset *ds)
{
    return ds->n;
}

int cv_dataset_num_classes(const cv_dataset *ds)
{
    return ds->num_classes;
}

const char *cv_dataset_class_name(const cv_dataset *ds, int i)
{
    return i >= 0 && i < ds->num_classes && ds->class_names[i] ? ds->class_names[i] : "";
}

const char *cv_dataset_spec(const cv_dataset *ds)
{
    return ds->spec ? ds->spec : "";
}

int cv_dataset_is_multilabel(const cv_dataset *ds)
{
    return ds->multi != NULL;
}

int cv_dataset_is_ordinal(const cv_dataset *ds)
{
    return ds->ordinal;
}

int cv_dataset_label(const cv_dataset *ds, int64_t i)
{
    return i >= 0 && i < ds->n ? ds->labels[i] : -1;
}

const uint8_t *cv_dataset_multilabel(const cv_dataset *ds, int64_t i)
{
    if (!ds->multi || i < 0 || i >= ds->n) return NULL;
    return ds->multi + (size_t)i * (size_t)ds->num_classes;
}

void cv_dataset_sample_name(const cv_dataset *ds, int64_t i, char *buf, size_t size)
{
    while (ds->parent && i >= 0 && i < ds->n) {
        i = ds->index[i];
        ds = ds->parent;
    }
    if (i < 0 || i >= ds->n || !ds->ops->name)
        snprintf(buf, size, "%s[%lld]", cv_dataset_spec(ds), (long long)i);
    else
        ds->ops->name(ds, i, buf, size);
}

cv_status cv_dataset_get(cv_ctx *ctx, const cv_dataset *ds, int64_t i, cv_image **img, int *label)
{
    *img = NULL;
    if (i < 0 || i >= ds->n)
        return cv_fail(ctx, CV_ERR_INVALID, "%s: sample %lld out of range (%lld samples)",
                       cv_dataset_spec(ds), (long long)i, (long long)ds->n);
    if (label) *label = ds->labels[i];
    const cv_dataset *base = ds;
    while (base->parent) {
        i = base->index[i];
        base = base->parent;
    }
    return base->ops->get(ctx, base, i, img);
}

cv_status ds_read_encoded(cv_ctx *ctx, const cv_dataset *ds, int64_t i, void **buf, size_t *n)
{
    *buf = NULL;
    while (ds->parent && i >= 0 && i < ds->n) {
        i = ds->index[i];
        ds = ds->parent;
    }
    if (!ds->ops || !ds->ops->read) return CV_ERR_UNSUPPORTED;
    if (i < 0 || i >= ds->n)
        return cv_fail(ctx, CV_ERR_INVALID, "%s: sample %lld out of range (%lld samples)",
                       cv_dataset_spec(ds), (long long)i, (long long)ds->n);
    return ds->ops->read(ctx, ds, i, buf, n);
}

cv_status cv_dataset_subset(cv_ctx *ctx, cv_dataset *ds, const int64_t *idx, int64_t n,
                            cv_dataset **out)
{
    *out = NULL;
    for (int64_t j = 0; j < n; j++)
        if (idx[j] < 0 || idx[j] >= ds->n)
            return cv_fail(ctx, CV_ERR_INVALID, "%s: subset index %lld out of range (%lld samples)",
                           cv_dataset_spec(ds), (long long)idx[j], (long long)ds->n);
    cv_dataset *s = ds_new(n, ds->num_classes);
    if (!s) return cv_fail(ctx, CV_ERR_NOMEM, "out of memory");
    s->index = malloc((size_t)(n > 0 ? n : 1) * sizeof *s->index);
    s->spec = strdup(cv_dataset_spec(ds));
    if (ds->multi) s->multi = malloc((size_t)(n > 0 ? n : 1) * (size_t)ds->num_classes);
    int ok = s->index && s->spec && (!ds->multi || s->multi);
    for (int k = 0; ok && k < ds->num_classes; k++) ok = ds_set_class(s, k, ds->class_names[k]);
    if (!ok) {
        cv_dataset_free(s);
        return cv_fail(ctx, CV_ERR_NOMEM, "out of memory");
    }
    /* Views of views point at the underlying dataset, so lookups stay one level deep. */
    cv_dataset *root = ds->parent ? ds->parent : ds;
    for (int64_t j = 0; j < n; j++) {
        s->index[j] = ds->parent ? ds->index[idx[j]] : idx[j];
        s->labels[j] = ds->labels[idx[j]];
        if (ds->multi)
            memcpy(s->multi + (size_t)j * (size_t)ds->num_classes,
                   ds->multi + (size_t)idx[j] * (size_t)ds->num_classes, (size_t)ds->num_classes);
    }
    s->ordinal = ds->ordinal;
    s->parent = root;
    root->refs++;
    *out = s;
    return CV_OK;
}

/* ---- helpers ---- */

cv_status ds_pixels_get(cv_ctx *ctx, const ds_pixels *px, int64_t i, cv_image **img)
{
    cv_status st = cv_image_new(ctx, px->w, px->h, px->c, img);
    if (st) return st;
    const uint8_t *s = px->base + (size_t)i * px->sample_stride;
    uint8_t *d = (*img)->data;
    if (px->sx == px->c && px->sc == 1 && px->sy == (ptrdiff_t)px->w * px->c) {
        memcpy(d, s, (size_t)px->h * (size_t)px->w * (size_t)px->c);
        return CV_OK;
    }
    for (int y = 0; y < px->h; y++)
        for (int x = 0; x < px->w; x++)
            for (int c = 0; c < px->c; c++) *d++ = s[y * px->sy + x * px->sx + c * px->sc];
    return CV_OK;
}

void ds_shuffle(int64_t *v, int64_t n, cv_rng *rng)
{
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = cv_rng_randint(rng, 0, i + 1);
        int64_t t = v[i];
        v[i] = v[j];
        v[j] = t;
    }
}

int ds_split_fields(const char *s, char sep, char *buf, size_t bufsize, char **fields, int max)
{
    snprintf(buf, bufsize, "%s", s);
    int n = 0;
    char *p = buf;
    while (n < max) {
        fields[n++] = p;
        char *q = strchr(p, sep);
        if (!q) break;
        *q = 0;
        p = q + 1;
    }
    return n;
}

const char *ds_join(char *buf, size_t size, const char *dir, const char *name)
{
    size_t n = strlen(dir);
    snprintf(buf, size, "%s%s%s", dir, n && dir[n - 1] != '/' ? "/" : "", name);
    return buf;
}

int ds_file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

cv_status ds_read_file(cv_ctx *ctx, const char *path, size_t limit, uint8_t **data, size_t *n)
{
    *data = NULL;
    *n = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return cv_fail(ctx, CV_ERR_IO, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) || !S_ISREG(st.st_mode)) {
        fclose(f);
        return cv_fail(ctx, CV_ERR_IO, "%s: not a regular file", path);
    }
    if ((uint64_t)st.st_size > limit) {
        fclose(f);
        return cv_fail(ctx, CV_ERR_FORMAT, "%s: %lld bytes, more than the %zu allowed", path,
                       (long long)st.st_size, limit);
    }
    size_t size = (size_t)st.st_size;
    uint8_t *buf = malloc(size + 1); /* NUL-terminated, for text parsers */
    if (!buf) {
        fclose(f);
        return cv_fail(ctx, CV_ERR_NOMEM, "%s: out of memory (%zu bytes)", path, size);
    }
    size_t got = fread(buf, 1, size, f);
    int err = ferror(f);
    fclose(f);
    if (got != size || err) {
        free(buf);
        return cv_fail(ctx, CV_ERR_IO, "%s: read failed", path);
    }
    buf[size] = 0;
    *data = buf;
    *n = size;
    return CV_OK;
}

/* ---- spec parsing ---- */

/* Applies one "@..." suffix to *ds (replacing it with a subset view). */
static cv_status apply_suffix(cv_ctx *ctx, cv_dataset **ds, const char *suf, const char *spec)
{
    char buf[4096], *f[8];
    int nf = ds_split_fields(suf, ':', buf, sizeof buf, f, 8);
    char *eq = strchr(f[0], '=');
    if (!eq) return cv_fail(ctx, CV_ERR_INVALID, "%s: bad suffix '@%s'", spec, suf);
    *eq = 0;
    const char *key = f[0], *val = eq + 1;
    int64_t n = (*ds)->n, a = 0, b = 0;
    int64_t *idx = NULL;
    cv_status st = CV_OK;
    char *end;
    if (!strcmp(key, "first") || !strcmp(key, "range")) {
        if (!strcmp(key, "first")) {
            b = strtoll(val, &end, 10);
            if (*end || nf != 1 || b < 0)
                return cv_fail(ctx, CV_ERR_INVALID, "%s: '@first=N' needs a count", spec);
        } else {
            a = strtoll(val, &end, 10);
            char *e2 = end;
            if (nf == 2) b = strtoll(f[1], &e2, 10);
            if (*end || nf != 2 || *e2 || a < 0 || b < a)
                return cv_fail(ctx, CV_ERR_INVALID, "%s: '@range=A:B' needs 0 <= A <= B", spec);
        }
        if (b > n) b = n;
        if (a > b) a = b;
        idx = malloc((size_t)(b - a + 1) * sizeof *idx);
        if (!idx) return cv_fail(ctx, CV_ERR_NOMEM, "out of memory");
        for (int64_t i = a; i < b; i++) idx[i - a] = i;
        n = b - a;
    } else if (!strcmp(key, "split") || !strcmp(key, "fold")) {
        /* split=FILE:train|val[:val=F][:seed=S]   fold=FILE:K:I:train|val[:seed=S] */
        int is_fold = !strcmp(key, "fold");
        int pos = 1, k = 0, fi = 0;
        if (is_fold) {
            if (nf < 4) return cv_fail(ctx, CV_ERR_INVALID, "%s: '@fold=FILE:K:I:train|val'", spec);
            k = (int)strtol(f[1], &end, 10);
            if (*end || k < 2) return cv_fail(ctx, CV_ERR_INVALID, "%s: bad fold count", spec);
            fi = (int)strtol(f[2], &end, 10);
            if (*end || fi < 0 || fi >= k)
                return cv_fail(ctx, CV_ERR_INVALID, "%s: fold index must be 0..%d", spec, k - 1);
            pos = 3;
        }
        if (nf <= pos || (strcmp(f[pos], "train") && strcmp(f[pos], "val")))
            return cv_fail(ctx, CV_ERR_INVALID, "%s: split part must be 'train' or 'val'", spec);
        int want_val = !strcmp(f[pos], "val");
        cv_split_params p = {.folds = k, .val_fraction = 0.2, .seed = 0};
        for (int j = pos + 1; j < nf; j++) {
            if (!strncmp(f[j], "val=", 4) && !is_fold) {
                p.val_fraction = strtod(f[j] + 4, &end);
                if (*end || !(p.val_fraction > 0 && p.val_fraction < 1))
                    return cv_fail(ctx, CV_ERR_INVALID, "%s: val=F needs 0 < F < 1", spec);
            } else if (!strncmp(f[j], "seed=", 5)) {
                p.seed = strtoull(f[j] + 5, &end, 10);
                if (*end) return cv_fail(ctx, CV_ERR_INVALID, "%s: bad seed", spec);
            } else {
                return cv_fail(ctx, CV_ERR_INVALID, "%s: unknown split option '%s'", spec, f[j]);
            }
        }
        cv_split *sp;
        st = cv_split_load_or_make(ctx, *ds, val, &p, &sp);
        if (st) return st;
        const int64_t *part;
        if (is_fold && !want_val) {
            st = cv_split_fold_train(ctx, sp, fi, &idx, &n);
        } else {
            part = cv_split_part(sp, is_fold ? fi : (want_val ? 1 : 0), &n);
            idx = malloc((size_t)(n + 1) * sizeof *idx);
            if (idx)
                memcpy(idx, part, (size_t)n * sizeof *idx);
            else
                st = cv_fail(ctx, CV_ERR_NOMEM, "out of memory");
        }
        cv_split_free(sp);
        if (st) return st;
    } else {
        return cv_fail(ctx, CV_ERR_INVALID, "%s: unknown suffix '@%s' (first, range, split, fold)",
                       spec, key);
    }
    cv_dataset *sub;
    st = cv_dataset_subset(ctx, *ds, idx, n, &sub);
    free(idx);
    if (st) return st;
    cv_dataset_free(*ds);
    *ds = sub;
    return CV_OK;
}

cv_status cv_dataset_open(cv_ctx *ctx, const char *spec, cv_dataset **out)
{
    *out = NULL;
    if (strlen(spec) >= 4096) return cv_fail(ctx, CV_ERR_INVALID, "dataset spec too long");
    char base[4096];
    snprintf(base, sizeof base, "%s", spec);
    char *at = strchr(base, '@');
    if (at) *at = 0;
    char *colon = strchr(base, ':');
    if (!colon)
        return cv_fail(ctx, CV_ERR_INVALID,
                       "dataset spec '%s': expected TYPE:ARGS (e.g. fashionmnist:train, "
                       "cifar10:DIR:test, folder:DIR, csv:FILE,..., npy:X.npy,Y.npy)",
                       spec);
    *colon = 0;
    const char *type = base, *args = colon + 1;
    cv_status st;
    cv_dataset *ds = NULL;
    if (!strcmp(type, "mnist") || !strcmp(type, "fashionmnist") || !strcmp(type, "kmnist") ||
        !strcmp(type, "emnist") || !strcmp(type, "qmnist"))
        st = ds_open_mnist(ctx, type, args, &ds);
    else if (!strcmp(type, "cifar10") || !strcmp(type, "cifar100"))
        st = ds_open_cifar(ctx, type, args, &ds);
    else if (!strcmp(type, "stl10"))
        st = ds_open_stl10(ctx, args, &ds);
    else if (!strcmp(type, "svhn"))
        st = ds_open_svhn(ctx, args, &ds);
    else if (!strcmp(type, "folder"))
        st = ds_open_folder(ctx, args, &ds);
    else if (!strcmp(type, "csv"))
        st = ds_open_csv(ctx, args, &ds);
    else if (!strcmp(type, "npy"))
        st = ds_open_npy(ctx, args, &ds);
    else
        return cv_fail(ctx, CV_ERR_INVALID,
                       "dataset spec '%s': unknown type '%s' (mnist, fashionmnist, kmnist, emnist, "
                       "qmnist, cifar10, cifar100, stl10, svhn, folder, csv, npy)",
                       spec, type);
    if (st) return st;
    ds->spec = strdup(spec);
    if (!ds->spec) {
        cv_dataset_free(ds);
        return cv_fail(ctx, CV_ERR_NOMEM, "out of memory");
    }
    /* Suffixes, applied left to right. */
    const char *s = at ? spec + (at - base) + 1 : NULL;
    while (s) {
        const char *next = strchr(s, '@');
        char suf[4096];
        size_t len = next ? (size_t)(next - s) : strlen(s);
        snprintf(suf, sizeof suf, "%.*s", (int)len, s);
        st = apply_suffix(ctx, &ds, suf, spec);
        if (st) {
            cv_dataset_free(ds);
            return st;
        }
        s = next ? next + 1 : NULL;
    }
    if (at && strcmp(ds->spec, spec)) {
        free(ds->spec);
        ds->spec = strdup(spec);
    }
    *out = ds;
    return CV_OK;
}
