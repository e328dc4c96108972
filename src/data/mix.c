/* MixUp and CutMix on batches, as torchvision.transforms.v2 does them. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cvision/transforms.h"

static cv_status check_batch(cv_ctx *ctx, const char *what, const cv_tensor *x,
                             const int64_t *labels, int num_classes, double alpha)
{
    if (x->dtype != CV_F32 || x->ndim != 4 || x->shape[0] < 1)
        return cv_fail(ctx, CV_ERR_SHAPE, "%s: expected a float32 [N, C, H, W] batch", what);
    if (num_classes < 1 || !(alpha > 0))
        return cv_fail(ctx, CV_ERR_INVALID, "%s: bad num_classes %d or alpha %g", what, num_classes,
                       alpha);
    for (int64_t i = 0; i < x->shape[0]; i++)
        if (labels[i] < 0 || labels[i] >= num_classes)
            return cv_fail(ctx, CV_ERR_INVALID, "%s: label %lld of sample %lld is outside [0, %d)",
                           what, (long long)labels[i], (long long)i, num_classes);
    return CV_OK;
}

/* label.roll(1, 0) * (1 - lam) + label * lam on one-hot rows, in float32 */
static cv_status mix_labels(cv_ctx *ctx, const int64_t *labels, int64_t n, int k, double lam,
                            cv_tensor **targets)
{
    int64_t shape[2] = {n, k};
    cv_status s = cv_tensor_new(ctx, CV_F32, 2, shape, targets);
    if (s) return s;
    float *t = (*targets)->data, l = (float)lam, l1 = (float)(1.0 - lam);
    for (int64_t i = 0; i < n; i++) {
        int64_t partner = labels[(i + n - 1) % n];
        t[i * k + partner] += l1;
        t[i * k + labels[i]] += l;
    }
    return CV_OK;
}

cv_status cv_mixup(cv_ctx *ctx, cv_tensor *x, const int64_t *labels, int num_classes, double alpha,
                   uint64_t seed, cv_tensor **targets, double *lam_out)
{
    *targets = NULL;
    cv_status s = check_batch(ctx, "mixup", x, labels, num_classes, alpha);
    if (s) return s;
    cv_rng rng;
    cv_rng_init(&rng, seed, 0x4d495855ULL);
    double lam = cv_rng_beta(&rng, alpha, alpha);
    int64_t n = x->shape[0];
    size_t per = (size_t)(x->shape[1] * x->shape[2] * x->shape[3]);
    float *d = x->data, *last = malloc(per * sizeof *last);
    if (!last) return cv_fail(ctx, CV_ERR_NOMEM, "mixup: out of memory");
    memcpy(last, d + (size_t)(n - 1) * per, per * sizeof *last);
    float l = (float)lam, l1 = (float)(1.0 - lam);
    /* back to front so that each partner (i - 1) is still unmixed when read */
    for (int64_t i = n - 1; i >= 0; i--) {
        const float *partner = i ? d + (size_t)(i - 1) * per : last;
        float *xi = d + (size_t)i * per;
        for (size_t j = 0; j < per; j++) xi[j] = partner[j] * l1 + xi[j] * l;
    }
    free(last);
    if (lam_out) *lam_out = lam;
    return mix_labels(ctx, labels, n, num_classes, lam, targets);
}

cv_status cv_cutmix(cv_ctx *ctx, cv_tensor *x, const int64_t *labels, int num_classes, double alpha,
                    uint64_t seed, cv_tensor **targets, double *lam_out)
{
    *targets = NULL;
    cv_status s = check_batch(ctx, "cutmix", x, labels, num_classes, alpha);
    if (s) return s;
    cv_rng rng;
    cv_rng_init(&rng, seed, 0x4355544dULL);
    double lam = cv_rng_beta(&rng, alpha, alpha);
    int64_t n = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
    int64_t rx = cv_rng_randint(&rng, 0, W), ry = cv_rng_randint(&rng, 0, H);
    double r = 0.5 * sqrt(1.0 - lam);
    int64_t hw = (int64_t)(r * W), hh = (int64_t)(r * H);
    int64_t x1 = rx - hw < 0 ? 0 : rx - hw, y1 = ry - hh < 0 ? 0 : ry - hh;
    int64_t x2 = rx + hw > W ? W : rx + hw, y2 = ry + hh > H ? H : ry + hh;
    size_t per = (size_t)(C * H * W);
    float *d = x->data, *last = malloc(per * sizeof *last);
    if (!last) return cv_fail(ctx, CV_ERR_NOMEM, "cutmix: out of memory");
    memcpy(last, d + (size_t)(n - 1) * per, per * sizeof *last);
    for (int64_t i = n - 1; i >= 0; i--) {
        const float *partner = i ? d + (size_t)(i - 1) * per : last;
        float *xi = d + (size_t)i * per;
        for (int64_t c = 0; c < C; c++)
            for (int64_t y = y1; y < y2; y++)
                memcpy(xi + (c * H + y) * W + x1, partner + (c * H + y) * W + x1,
                       (size_t)(x2 - x1) * sizeof(float));
    }
    free(last);
    double lam_adj = 1.0 - (double)((x2 - x1) * (y2 - y1)) / (double)(W * H);
    if (lam_out) *lam_out = lam_adj;
    return mix_labels(ctx, labels, n, num_classes, lam_adj, targets);
}
