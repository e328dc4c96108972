/* Losses with their gradients, PyTorch 1.13's definitions (torch.nn.functional), accumulated in
 * double; log-softmax through log-sum-exp so that large logits neither overflow nor lose the
 * small probabilities. */
#include "cvision/train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static cv_status check_f32(cv_ctx *ctx, const char *what, const char *arg, const cv_tensor *t)
{
    if (!t || t->dtype != CV_F32)
        return cv_fail(ctx, CV_ERR_INVALID, "%s: %s must be a float32 tensor", what, arg);
    return CV_OK;
}

static cv_status check_grad(cv_ctx *ctx, const char *what, const cv_tensor *logits,
                            const cv_tensor *grad)
{
    if (!grad) return CV_OK;
    if (grad->dtype != CV_F32 || !cv_tensor_same_shape(grad, logits))
        return cv_fail(ctx, CV_ERR_SHAPE,
                       "%s: the gradient buffer must be float32 of the logits' shape", what);
    return CV_OK;
}

/* Logits [N,K] float32, an optional weight [K]; sets *n and *k. */
static cv_status check_logits(cv_ctx *ctx, const char *what, const cv_tensor *logits,
                              const cv_tensor *weight, const char *wname, int64_t *n, int64_t *k)
{
    cv_status s = check_f32(ctx, what, "logits", logits);
    if (s) return s;
    if (logits->ndim != 2 || logits->shape[1] < 1) {
        char b[96];
        return cv_fail(ctx, CV_ERR_SHAPE, "%s: logits must be [N, K], got %s", what,
                       cv_shape_str(logits->ndim, logits->shape, b, sizeof b));
    }
    *n = logits->shape[0];
    *k = logits->shape[1];
    if (weight) {
        if ((s = check_f32(ctx, what, wname, weight))) return s;
        if (cv_tensor_numel(weight) != *k)
            return cv_fail(ctx, CV_ERR_SHAPE,
                           "%s: %s has %lld elements, the logits have %lld classes", what, wname,
                           (long long)cv_tensor_numel(weight), (long long)*k);
    }
    return CV_OK;
}

/* log-sum-exp of one row, in double. */
static double row_lse(const float *x, int64_t k)
{
    double m = x[0];
    for (int64_t j = 1; j < k; j++) m = x[j] > m ? x[j] : m;
    if (isinf(m)) return m; /* all -inf (or any +inf): PyTorch's result is inf/nan too */
    double s = 0;
    for (int64_t j = 0; j < k; j++) s += exp(x[j] - m);
    return m + log(s);
}

cv_status cv_loss_cross_entropy(cv_ctx *ctx, const cv_tensor *logits, const cv_tensor *target,
                                const cv_ce_opts *opts, double *loss, cv_tensor *grad)
{
    static const char *what = "cross_entropy";
    cv_ce_opts def = {0};
    if (!opts) opts = &def;
    int64_t n, k;
    cv_status s = check_logits(ctx, what, logits, opts->weight, "weight", &n, &k);
    if (s || (s = check_grad(ctx, what, logits, grad))) return s;
    if (!target || (target->dtype != CV_I64 && target->dtype != CV_I32) ||
        cv_tensor_numel(target) != n || target->ndim != 1)
        return cv_fail(ctx, CV_ERR_SHAPE, "%s: target must be int64 or int32 [%lld]", what,
                       (long long)n);
    double eps = opts->label_smoothing;
    if (!(eps >= 0 && eps <= 1))
        return cv_fail(ctx, CV_ERR_INVALID, "%s: label_smoothing %g is outside [0, 1]", what, eps);
    const float *x = logits->data;
    const float *w = opts->weight ? opts->weight->data : NULL;
    int64_t *y = malloc((size_t)(n ? n : 1) * sizeof *y);
    if (!y) return cv_fail(ctx, CV_ERR_NOMEM, "%s: out of memory", what);
    for (int64_t i = 0; i < n; i++) {
        y[i] = target->dtype == CV_I64 ? ((const int64_t *)target->data)[i]
                                       : ((const int32_t *)target->data)[i];
        if (opts->use_ignore_index && y[i] == opts->ignore_index) continue;
        if (y[i] < 0 || y[i] >= k) {
            long long bad = (long long)y[i];
            free(y);
            return cv_fail(ctx, CV_ERR_INVALID,
                           "%s: target[%lld] = %lld is not a class in [0, %lld)", what,
                           (long long)i, bad, (long long)k);
        }
    }
    double wsum_all = 0; /* sum of all class weights (K without weights) */
    for (int64_t j = 0; j < k; j++) wsum_all += w ? w[j] : 1.0;
    double nll = 0, smooth = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        if (opts->use_ignore_index && y[i] == opts->ignore_index) continue;
        const float *xi = x + i * k;
        double lse = row_lse(xi, k);
        double wy = w ? w[y[i]] : 1.0;
        nll += wy * (lse - xi[y[i]]);
        den += wy;
        if (eps > 0)
            for (int64_t j = 0; j < k; j++) smooth += (w ? w[j] : 1.0) * (lse - xi[j]);
    }
    /* PyTorch: (1-eps) * nll_loss(mean) + eps/K * sum(smooth)/sum(w[y]) */
    *loss = (1 - eps) * nll / den + (eps > 0 ? eps / (double)k * smooth / den : 0.0);
    if (grad) {
        float *g = grad->data;
        for (int64_t i = 0; i < n; i++) {
            float *gi = g + i * k;
            if (opts->use_ignore_index && y[i] == opts->ignore_index) {
                memset(gi, 0, (size_t)k * sizeof *gi);
                continue;
            }
            const float *xi = x + i * k;
            double lse = row_lse(xi, k);
            double a = (1 - eps) * (w ? w[y[i]] : 1.0) / den, b = eps / (double)k / den;
            for (int64_t j = 0; j < k; j++) {
                double p = exp(xi[j] - lse);
                double gj = a * p + b * (p * wsum_all - (w ? w[j] : 1.0));
                if (j == y[i]) gj -= a;
                gi[j] = (float)gj;
            }
        }
    }
    free(y);
    return CV_OK;
}

cv_status cv_loss_soft_cross_entropy(cv_ctx *ctx, const cv_tensor *logits, const cv_tensor *target,
                                     const cv_ce_opts *opts, double *loss, cv_tensor *grad)
{
    static const char *what = "soft_cross_entropy";
    cv_ce_opts def = {0};
    if (!opts) opts = &def;
    int64_t n, k;
    cv_status s = check_logits(ctx, what, logits, opts->weight, "weight", &n, &k);
    if (s || (s = check_grad(ctx, what, logits, grad))) return s;
    if ((s = check_f32(ctx, what, "target", target))) return s;
    if (!cv_tensor_same_shape(target, logits))
        return cv_fail(ctx, CV_ERR_SHAPE, "%s: target must have the logits' shape [N, K]", what);
    double eps = opts->label_smoothing;
    if (!(eps >= 0 && eps <= 1))
        return cv_fail(ctx, CV_ERR_INVALID, "%s: label_smoothing %g is outside [0, 1]", what, eps);
    const float *x = logits->data, *t = target->data;
    const float *w = opts->weight ? opts->weight->data : NULL;
    double total = 0;
    for (int64_t i = 0; i < n; i++) {
        const float *xi = x + i * k, *ti = t + i * k;
        double lse = row_lse(xi, k), wt = 0;
        for (int64_t j = 0; j < k; j++) {
            double tj = ti[j] * (1 - eps) + eps / (double)k, wj = w ? w[j] : 1.0;
            total += wj * tj * (lse - xi[j]);
            wt += wj * tj;
        }
        if (grad) {
            float *gi = (float *)grad->data + i * k;
            for (int64_t j = 0; j < k; j++) {
                double tj = ti[j] * (1 - eps) + eps / (double)k, wj = w ? w[j] : 1.0;
                gi[j] = (float)((exp(xi[j] - lse) * wt - wj * tj) / (double)n);
            }
        }
    }
    *loss = total / (double)n;
    return CV_OK;
}

cv_status cv_loss_bce_logits(cv_ctx *ctx, const cv_tensor *logits, const cv_tensor *target,
                             const cv_tensor *weight, const cv_tensor *pos_weight, double *loss,
                             cv_tensor *grad)
{
    static const char *what = "binary_cross_entropy_with_logits";
    int64_t n, k;
    cv_status s = check_logits(ctx, what, logits, weight, "weight", &n, &k);
    if (s || (s = check_logits(ctx, what, logits, pos_weight, "pos_weight", &n, &k))) return s;
    if ((s = check_grad(ctx, what, logits, grad)) || (s = check_f32(ctx, what, "target", target)))
        return s;
    if (!cv_tensor_same_shape(target, logits))
        return cv_fail(ctx, CV_ERR_SHAPE, "%s: target must have the logits' shape [N, K]", what);
    const float *x = logits->data, *t = target->data;
    const float *w = weight ? weight->data : NULL, *pw = pos_weight ? pos_weight->data : NULL;
    double total = 0, inv = 1.0 / (double)(n * k);
    for (int64_t i = 0; i < n * k; i++) {
        int64_t j = i % k;
        double xi = x[i], yi = t[i], wj = w ? w[j] : 1.0;
        /* PyTorch: (1-y) x + (1 + (pw-1) y) (log1p(exp(-|x|)) + max(-x, 0)) */
        double lw = pw ? 1 + (pw[j] - 1) * yi : 1.0;
        total += wj * ((1 - yi) * xi + lw * (log1p(exp(-fabs(xi))) + fmax(-xi, 0)));
        if (grad) {
            /* sigmoid(x) - 1 without cancellation for large |x| */
            double sm1 = xi >= 0 ? -exp(-xi) / (1 + exp(-xi)) : -1 / (1 + exp(xi));
            ((float *)grad->data)[i] = (float)(wj * ((1 - yi) + lw * sm1) * inv);
        }
    }
    *loss = total * inv;
    return CV_OK;
}

/* Regression heads: logits [N] or [N,1] against N float targets. */
static cv_status check_regression(cv_ctx *ctx, const char *what, const cv_tensor *logits,
                                  const cv_tensor *target, const cv_tensor *grad)
{
    cv_status s = check_f32(ctx, what, "logits", logits);
    if (s || (s = check_f32(ctx, what, "target", target))) return s;
    if (!(logits->ndim == 1 || (logits->ndim == 2 && logits->shape[1] == 1)))
        return cv_fail(ctx, CV_ERR_SHAPE, "%s: logits must be [N] or [N, 1] (one output)", what);
    if (cv_tensor_numel(target) != cv_tensor_numel(logits))
        return cv_fail(ctx, CV_ERR_SHAPE, "%s: %lld targets for %lld outputs", what,
                       (long long)cv_tensor_numel(target), (long long)cv_tensor_numel(logits));
    return check_grad(ctx, what, logits, grad);
}

cv_status cv_loss_l1(cv_ctx *ctx, const cv_tensor *logits, const cv_tensor *target, double *loss,
                     cv_tensor *grad)
{
    cv_status s = check_regression(ctx, "l1_loss", logits, target, grad);
    if (s) return s;
    int64_t n = cv_tensor_numel(logits);
    const float *x = logits->data, *t = target->data;
    double total = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = (double)x[i] - t[i];
        total += fabs(d);
        if (grad) ((float *)grad->data)[i] = (float)((d > 0) - (d < 0)) / (float)n;
    }
    *loss = total / (double)n;
    return CV_OK;
}

cv_status cv_loss_mse(cv_ctx *ctx, const cv_tensor *logits, const cv_tensor *target, double *loss,
                      cv_tensor *grad)
{
    cv_status s = check_regression(ctx, "mse_loss", logits, target, grad);
    if (s) return s;
    int64_t n = cv_tensor_numel(logits);
    const float *x = logits->data, *t = target->data;
    double total = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = (double)x[i] - t[i];
        total += d * d;
        if (grad) ((float *)grad->data)[i] = (float)(2 * d / (double)n);
    }
    *loss = total / (double)n;
    return CV_OK;
}
