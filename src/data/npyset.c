/* npy:X.npy,Y.npy — images and labels as NumPy arrays.
 * X: uint8 [N,H,W], [N,H,W,C] or [N,C,H,W] (C in 1, 3; a last axis of size 1 or 3 means HWC),
 *    or float32/float64 of the same shapes with values in [0,1] (ToTensor's range), stored as
 *    uint8 round(255 x) clamped to [0,255].
 * Y: integer [N] (classes 0..max) or [N,1]; or 0/1 integer [N,K] with K > 1: multi-label. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cvision/npy.h"
#include "data/dataset_impl.h"

typedef struct {
    cv_tensor *x;
    uint8_t *pix; /* converted float data, or NULL (x is uint8) */
    char *file;
    ds_pixels px;
} npyset_impl;

static cv_status npyset_get(cv_ctx *ctx, const cv_dataset *ds, int64_t i, cv_image **img)
{
    return ds_pixels_get(ctx, &((const npyset_impl *)ds->impl)->px, i, img);
}

static void npyset_name(const cv_dataset *ds, int64_t i, char *buf, size_t size)
{
    snprintf(buf, size, "%s[%lld]", ((const npyset_impl *)ds->impl)->file, (long long)i);
}

static void npyset_free(void *p)
{
    npyset_impl *m = p;
    if (!m) return;
    cv_tensor_free(m->x);
    free(m->pix);
    free(m->file);
    free(m);
}

static const ds_ops npyset_ops = {npyset_get, npyset_name, npyset_free, NULL};

static int is_int(cv_dtype t)
{
    return t == CV_I64 || t == CV_I32 || t == CV_I16 || t == CV_I8 || t == CV_U8 || t == CV_BOOL;
}

static int64_t int_at(const cv_tensor *t, size_t i)
{
    switch (t->dtype) {
    case CV_I64:
        return ((const int64_t *)t->data)[i];
    case CV_I32:
        return ((const int32_t *)t->data)[i];
    case CV_I16:
        return ((const int16_t *)t->data)[i];
    case CV_I8:
        return ((const int8_t *)t->data)[i];
    default:
        return ((const uint8_t *)t->data)[i];
    }
}

static int is_ch(int64_t c)
{
    return c == 1 || c == 3;
}

cv_status ds_open_npy(cv_ctx *ctx, const char *args, cv_dataset **out)
{
    char buf[4096], *f[4];
    int nf = ds_split_fields(args, ',', buf, sizeof buf, f, 4);
    if (nf != 2) return cv_fail(ctx, CV_ERR_INVALID, "npy:%s: expected npy:X.npy,Y.npy", args);
    cv_tensor *x = NULL, *y = NULL;
    npyset_impl *m = NULL;
    cv_dataset *ds = NULL;
    char s[96];
    cv_status st;
    if ((st = cv_npy_load(ctx, f[0], &x)) || (st = cv_npy_load(ctx, f[1], &y))) goto fail;
    int hwc;
    if (x->ndim == 3)
        hwc = 1;
    else if (x->ndim == 4 && is_ch(x->shape[3]))
        hwc = 1;
    else if (x->ndim == 4 && is_ch(x->shape[1]))
        hwc = 0;
    else
        hwc = -1;
    if (hwc < 0 || (x->dtype != CV_U8 && x->dtype != CV_F32 && x->dtype != CV_F64)) {
        st = cv_fail(ctx, CV_ERR_FORMAT,
                     "%s: images must be uint8/float32/float64 [N,H,W], [N,H,W,C] or [N,C,H,W] "
                     "with C in 1, 3; found %s %s",
                     f[0], cv_dtype_name(x->dtype), cv_shape_str(x->ndim, x->shape, s, sizeof s));
        goto fail;
    }
    int64_t n = x->shape[0];
    int c = x->ndim == 3 ? 1 : (int)(hwc ? x->shape[3] : x->shape[1]);
    int64_t h = x->shape[hwc ? 1 : 2], w = x->shape[hwc ? 2 : 3];
    if (h < 1 || w < 1 || h > 65535 || w > 65535) {
        st = cv_fail(ctx, CV_ERR_FORMAT, "%s: image size %lldx%lld out of range", f[0],
                     (long long)w, (long long)h);
        goto fail;
    }
    int multi = y->ndim == 2 && y->shape[1] > 1;
    if (!is_int(y->dtype) || y->ndim < 1 || y->ndim > 2 || y->shape[0] != n ||
        (y->ndim == 2 && y->shape[1] < 1)) {
        st = cv_fail(ctx, CV_ERR_FORMAT,
                     "%s: labels must be integer [N], [N,1] or [N,K] with N = %lld; found %s %s",
                     f[1], (long long)n, cv_dtype_name(y->dtype),
                     cv_shape_str(y->ndim, y->shape, s, sizeof s));
        goto fail;
    }
    int64_t k = multi ? y->shape[1] : 0;
    size_t cols = y->ndim == 2 ? (size_t)y->shape[1] : 1;
    for (int64_t i = 0; i < n; i++)
        for (size_t j = 0; j < (multi ? cols : 1); j++) {
            int64_t v = int_at(y, (size_t)i * cols + j);
            if (v < 0 || v > (multi ? 1 : 65535)) {
                st = cv_fail(ctx, CV_ERR_FORMAT, "%s: label %lld of sample %lld is %s", f[1],
                             (long long)v, (long long)i,
                             multi ? "not 0 or 1 (a [N,K] array is multi-label)"
                                   : "outside 0..65535");
                goto fail;
            }
            if (!multi && v + 1 > k) k = v + 1;
        }
    if (!(ds = ds_new(n, (int)k)) || !(m = calloc(1, sizeof *m)) || !(m->file = strdup(f[0])) ||
        (multi && !(ds->multi = malloc((size_t)(n * k + 1)))))
        goto nomem;
    for (int ci = 0; ci < k; ci++) {
        char name[24];
        snprintf(name, sizeof name, "%d", ci);
        if (!ds_set_class(ds, ci, name)) goto nomem;
    }
    for (int64_t i = 0; i < n; i++) {
        if (multi)
            for (int64_t j = 0; j < k; j++)
                ds->multi[i * k + j] = (uint8_t)int_at(y, (size_t)(i * k + j));
        else
            ds->labels[i] = (int32_t)int_at(y, (size_t)i * cols);
    }
    size_t per = (size_t)h * (size_t)w * (size_t)c, total = per * (size_t)n;
    const uint8_t *base = x->data;
    if (x->dtype != CV_U8) {
        if (!(m->pix = malloc(total + 1))) goto nomem;
        for (size_t j = 0; j < total; j++) {
            double v =
                x->dtype == CV_F32 ? ((const float *)x->data)[j] : ((const double *)x->data)[j];
            v = nearbyint(v * 255.0);
            m->pix[j] = (uint8_t)(v > 255 ? 255 : v >= 0 ? v : 0); /* NaN -> 0 */
        }
        base = m->pix;
        cv_tensor_free(x); /* the converted copy is all we need */
        x = NULL;
    }
    m->x = x;
    m->px = (ds_pixels){.base = base,
                        .sample_stride = per,
                        .h = (int)h,
                        .w = (int)w,
                        .c = c,
                        .sy = hwc ? (ptrdiff_t)w * c : (ptrdiff_t)w,
                        .sx = hwc ? c : 1,
                        .sc = hwc ? 1 : (ptrdiff_t)h * w};
    cv_tensor_free(y);
    ds->ops = &npyset_ops;
    ds->impl = m;
    *out = ds;
    return CV_OK;
nomem:
    st = cv_fail(ctx, CV_ERR_NOMEM, "out of memory");
fail:
    npyset_free(m);
    cv_dataset_free(ds);
    cv_tensor_free(x);
    cv_tensor_free(y);
    return st;
}
