/* Applying one parsed pipeline op to a sample. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/transforms_internal.h"

int tf_op_is_random(const tf_op *op)
{
    (void)op;
    return 0;
}

cv_status tf_to_planes(cv_ctx *ctx, tf_sample *smp)
{
    if (!smp->img) return CV_OK;
    cv_status s = cv_planes_from_image(ctx, smp->img, 255.0f, &smp->pl);
    if (s) return s;
    cv_image_free(smp->img);
    smp->img = NULL;
    return CV_OK;
}

static void set_image(tf_sample *smp, cv_image *img)
{
    cv_image_free(smp->img);
    smp->img = img;
}

static void set_planes(tf_sample *smp, cv_planes *pl)
{
    cv_planes_free(smp->pl);
    smp->pl = pl;
}

static cv_status fail_op(cv_ctx *ctx, const tf_op *op, cv_status s)
{
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", cv_ctx_error(ctx));
    return cv_fail(ctx, s, "transform '%s': %s", op->text, msg);
}

static cv_status planes_crop(cv_ctx *ctx, const cv_planes *in, int top, int left, int h, int w,
                             cv_planes **out)
{
    cv_status s = cv_planes_new(ctx, in->c, h, w, out);
    if (s) return s;
    for (int c = 0; c < in->c; c++)
        for (int y = 0; y < h; y++) {
            int sy = y + top;
            if (sy < 0 || sy >= in->h) continue;
            int x0 = left < 0 ? -left : 0, x1 = in->w - left < w ? in->w - left : w;
            if (x1 > x0)
                memcpy((*out)->data + ((size_t)c * h + y) * w + x0,
                       in->data + ((size_t)c * in->h + sy) * in->w + x0 + left,
                       (size_t)(x1 - x0) * sizeof(float));
        }
    return CV_OK;
}

static int center_offset(int size, int crop)
{
    if (crop > size) return -((crop - size) / 2);
    return (int)nearbyint((size - crop) / 2.0);
}

cv_status tf_apply_op(cv_ctx *ctx, const tf_op *op, tf_sample *smp, cv_rng *rng)
{
    (void)rng;
    cv_status s = CV_OK;
    cv_image *img = NULL;
    cv_planes *pl = NULL;
    switch (op->kind) {
    case TF_RESIZE: {
        if (!smp->img)
            return cv_fail(ctx, CV_ERR_UNSUPPORTED,
                           "transform '%s': resize after to_tensor is not supported yet", op->text);
        int ow = op->w, oh = op->h;
        if (!op->two_sizes)
            cv_resize_output_size(smp->img->w, smp->img->h, op->h, op->max_size, &ow, &oh);
        if ((s = cv_image_resize(ctx, smp->img, ow, oh, (cv_interp)op->interp, &img))) break;
        set_image(smp, img);
        break;
    }
    case TF_CENTER_CROP:
        if (smp->img) {
            if (!(s = cv_image_center_crop(ctx, smp->img, op->h, op->w, &img))) set_image(smp, img);
        } else {
            const cv_planes *in = smp->pl;
            if (!(s = planes_crop(ctx, in, center_offset(in->h, op->h), center_offset(in->w, op->w),
                                  op->h, op->w, &pl)))
                set_planes(smp, pl);
        }
        break;
    case TF_TO_TENSOR:
        s = tf_to_planes(ctx, smp);
        break;
    case TF_NORMALIZE: {
        if ((s = tf_to_planes(ctx, smp))) break;
        cv_planes *p = smp->pl;
        if (op->nmean == 3 && p->c != 3)
            return cv_fail(ctx, CV_ERR_SHAPE, "transform '%s': the image has %d channel(s), not 3",
                           op->text, p->c);
        size_t n = (size_t)p->h * p->w;
        for (int c = 0; c < p->c; c++) {
            float m = op->mean[op->nmean == 3 ? c : 0], sd = op->std[op->nmean == 3 ? c : 0];
            float *d = p->data + c * n;
            for (size_t i = 0; i < n; i++) d[i] = (d[i] - m) / sd;
        }
        break;
    }
    case TF_CLASSIFICATION: {
        if (!smp->img)
            return cv_fail(ctx, CV_ERR_INVALID, "transform '%s': must come before to_tensor",
                           op->text);
        if ((s = cv_planes_new(ctx, 3, op->h, op->h, &pl))) break;
        s = cv_preprocess_classification(ctx, smp->img, op->max_size, op->h,
                                         cv_interp_name((cv_interp)op->interp), op->mean, op->std,
                                         pl->data);
        if (s) {
            cv_planes_free(pl);
            break;
        }
        set_planes(smp, pl);
        cv_image_free(smp->img);
        smp->img = NULL;
        break;
    }
    default:
        return cv_fail(ctx, CV_ERR_INTERNAL, "transform '%s': op not implemented", op->text);
    }
    return s ? fail_op(ctx, op, s) : CV_OK;
}
