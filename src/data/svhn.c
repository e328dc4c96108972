/* SVHN (cropped digits): DIR/{train,test,extra}_32x32.mat with X uint8 (32,32,3,N) column-major
 * and y (N,1) digits 1..10 where 10 stands for 0 (torchvision remaps 10 -> 0). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/dataset_impl.h"
#include "data/mat.h"

typedef struct {
    uint8_t *file; /* the .mat bytes (X may point into them) */
    mat_file *mat;
    char *path;
    ds_pixels px;
} svhn_impl;

static cv_status svhn_get(cv_ctx *ctx, const cv_dataset *ds, int64_t i, cv_image **img)
{
    return ds_pixels_get(ctx, &((const svhn_impl *)ds->impl)->px, i, img);
}

static void svhn_name(const cv_dataset *ds, int64_t i, char *buf, size_t size)
{
    snprintf(buf, size, "%s[%lld]", ((const svhn_impl *)ds->impl)->path, (long long)i);
}

static void svhn_free(void *p)
{
    svhn_impl *s = p;
    if (!s) return;
    mat_free(s->mat);
    free(s->file);
    free(s->path);
    free(s);
}

static const ds_ops svhn_ops = {svhn_get, svhn_name, svhn_free, NULL};

cv_status ds_open_svhn(cv_ctx *ctx, const char *args, cv_dataset **out)
{
    char buf[4096], *f[8];
    int nf = ds_split_fields(args, ':', buf, sizeof buf, f, 8);
    if (nf < 2)
        return cv_fail(ctx, CV_ERR_INVALID, "svhn:%s: expected svhn:DIR:train|test|extra", args);
    for (int i = 1; i < nf - 1; i++) f[i][-1] = ':';
    const char *part = f[nf - 1];
    if (strcmp(part, "train") && strcmp(part, "test") && strcmp(part, "extra"))
        return cv_fail(ctx, CV_ERR_INVALID, "svhn: unknown part '%s' (train, test, extra)", part);
    char name[64], path[4096];
    snprintf(name, sizeof name, "%s_32x32.mat", part);
    ds_join(path, sizeof path, f[0], name);
    svhn_impl *s = calloc(1, sizeof *s);
    cv_dataset *ds = NULL;
    size_t n;
    cv_status st;
    if (!s || !(s->path = strdup(path))) {
        st = cv_fail(ctx, CV_ERR_NOMEM, "out of memory");
        goto fail;
    }
    if ((st = ds_read_file(ctx, path, (size_t)1 << 34, &s->file, &n))) goto fail;
    if ((st = mat_parse(ctx, s->file, n, path, &s->mat))) goto fail;
    const mat_var *x = mat_find(s->mat, "X"), *y = mat_find(s->mat, "y");
    if (!x || !y) {
        st = cv_fail(ctx, CV_ERR_FORMAT, "%s: no numeric variable '%s'", path, x ? "y" : "X");
        goto fail;
    }
    if (x->type != 2 || x->ndim != 4 || x->dims[2] != 3 || x->dims[0] < 1 || x->dims[1] < 1 ||
        x->dims[0] > 65535 || x->dims[1] > 65535) {
        st = cv_fail(ctx, CV_ERR_FORMAT, "%s: X must be uint8 (H, W, 3, N)", path);
        goto fail;
    }
    int64_t cnt = x->dims[3];
    if (y->ndim != 2 || mat_numel(y) != cnt || (y->dims[0] != 1 && y->dims[1] != 1)) {
        st = cv_fail(ctx, CV_ERR_FORMAT, "%s: y must be (N, 1) with N = %lld as in X", path,
                     (long long)cnt);
        goto fail;
    }
    if (!(ds = ds_new(cnt, 10))) {
        st = cv_fail(ctx, CV_ERR_NOMEM, "out of memory");
        goto fail;
    }
    for (int64_t i = 0; i < cnt; i++) {
        double v = mat_get(y, i);
        if (!(v >= 0 && v <= 10) || v != floor(v)) {
            st = cv_fail(ctx, CV_ERR_FORMAT, "%s: y[%lld] = %g is not a digit label 0..10", path,
                         (long long)i, v);
            goto fail;
        }
        ds->labels[i] = (int)v % 10;
    }
    static const char *const digits[] = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};
    if ((st = ds_set_classes(ctx, ds, digits, 10))) goto fail;
    int h = (int)x->dims[0], w = (int)x->dims[1];
    s->px = (ds_pixels){.base = x->data,
                        .sample_stride = (size_t)h * (size_t)w * 3,
                        .h = h,
                        .w = w,
                        .c = 3,
                        .sy = 1,
                        .sx = h,
                        .sc = (ptrdiff_t)h * w};
    ds->ops = &svhn_ops;
    ds->impl = s;
    *out = ds;
    return CV_OK;
fail:
    svhn_free(s);
    cv_dataset_free(ds);
    return st;
}
