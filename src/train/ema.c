/* Exponential moving average of a model's state_dict, as torchvision's reference keeps it
 * (ExponentialMovingAverage = AveragedModel(use_buffers=True) with
 * avg_fn = decay * avg + (1 - decay) * param). PyTorch evaluates that in float32 for float32
 * tensors and, for integer buffers, in float32 followed by a truncating copy_; so does this. */
#include "cvision/train.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cv_ema {
    cv_state *st;
    double decay;
    int every;
    int64_t n_averaged;
};

cv_status cv_ema_new(cv_ctx *ctx, const cv_state *model_state, double decay, int every_steps,
                     cv_ema **out)
{
    *out = NULL;
    if (!(decay >= 0 && decay <= 1) || every_steps < 1)
        return cv_fail(ctx, CV_ERR_INVALID, "ema: decay %g must be in [0, 1] and steps %d >= 1",
                       decay, every_steps);
    cv_ema *e = calloc(1, sizeof *e);
    if (!e || !(e->st = cv_state_new())) {
        free(e);
        return cv_fail(ctx, CV_ERR_NOMEM, "ema: out of memory");
    }
    e->decay = decay;
    e->every = every_steps;
    for (int i = 0; i < cv_state_count(model_state); i++) {
        cv_tensor *t;
        cv_status s = cv_tensor_clone(ctx, cv_state_tensor(model_state, i), &t);
        if (!s) s = cv_state_put(ctx, e->st, cv_state_name(model_state, i), t);
        if (s) {
            cv_ema_free(e);
            return s;
        }
    }
    *out = e;
    return CV_OK;
}

void cv_ema_free(cv_ema *e)
{
    if (!e) return;
    cv_state_free(e->st);
    free(e);
}

double cv_ema_adjusted_decay(double decay, int world_size, int batch, int every_steps, int epochs)
{
    double alpha = (1 - decay) * world_size * batch * every_steps / (double)epochs;
    return 1 - (alpha < 1 ? alpha : 1);
}

/* The model's tensor i must match ours by name, dtype and shape. */
static cv_status check_same(cv_ctx *ctx, const cv_ema *e, const cv_state *m)
{
    if (cv_state_count(m) != cv_state_count(e->st))
        return cv_fail(ctx, CV_ERR_SHAPE, "ema: the model has %d tensors, the average %d",
                       cv_state_count(m), cv_state_count(e->st));
    for (int i = 0; i < cv_state_count(m); i++) {
        const cv_tensor *a = cv_state_tensor(e->st, i), *b = cv_state_tensor(m, i);
        if (strcmp(cv_state_name(m, i), cv_state_name(e->st, i)) || a->dtype != b->dtype ||
            !cv_tensor_same_shape(a, b))
            return cv_fail(ctx, CV_ERR_SHAPE,
                           "ema: model tensor %d (%s) differs from the average's", i,
                           cv_state_name(m, i));
    }
    return CV_OK;
}

#define AVG_INT(T)                                                                                 \
    do {                                                                                           \
        T *a = (T *)ea->data;                                                                      \
        const T *x = (const T *)mx->data;                                                          \
        for (int64_t k = 0; k < n; k++) a[k] = (T)(d * (float)a[k] + omd * (float)x[k]);           \
    } while (0)

cv_status cv_ema_update(cv_ctx *ctx, cv_ema *e, const cv_state *model_state)
{
    cv_status s = check_same(ctx, e, model_state);
    if (s) return s;
    float d = (float)e->decay, omd = (float)(1 - e->decay);
    for (int i = 0; i < cv_state_count(model_state); i++) {
        cv_tensor *ea = cv_state_tensor(e->st, i);
        const cv_tensor *mx = cv_state_tensor(model_state, i);
        int64_t n = cv_tensor_numel(ea);
        if (e->n_averaged == 0) {
            memcpy(ea->data, mx->data, ea->nbytes);
            continue;
        }
        switch (ea->dtype) {
        case CV_F32: {
            float *a = ea->data;
            const float *x = mx->data;
            for (int64_t k = 0; k < n; k++) {
                float u = d * a[k], v = omd * x[k];
                a[k] = u + v;
            }
            break;
        }
        case CV_F64: {
            double *a = ea->data;
            const double *x = mx->data;
            for (int64_t k = 0; k < n; k++) a[k] = e->decay * a[k] + (1 - e->decay) * x[k];
            break;
        }
        case CV_I64:
            AVG_INT(int64_t);
            break;
        case CV_I32:
            AVG_INT(int32_t);
            break;
        default:
            memcpy(ea->data, mx->data, ea->nbytes);
            break;
        }
    }
    e->n_averaged++;
    return CV_OK;
}

cv_status cv_ema_step(cv_ctx *ctx, cv_ema *e, const cv_state *model_state, int64_t iter,
                      int in_warmup)
{
    if (iter % e->every) return CV_OK;
    cv_status s = cv_ema_update(ctx, e, model_state);
    /* the reference resets during warmup so that the average keeps copying the weights */
    if (!s && in_warmup) e->n_averaged = 0;
    return s;
}

const cv_state *cv_ema_state(const cv_ema *e)
{
    return e->st;
}

int64_t cv_ema_count(const cv_ema *e)
{
    return e->n_averaged;
}

static char *join(const char *prefix, const char *name)
{
    size_t a = prefix ? strlen(prefix) : 0, b = strlen(name);
    char *s = malloc(a + b + 1);
    if (!s) return NULL;
    if (a) memcpy(s, prefix, a);
    memcpy(s + a, name, b + 1);
    return s;
}

cv_status cv_ema_state_save(cv_ctx *ctx, const cv_ema *e, cv_state *out, const char *prefix)
{
    cv_status s = CV_OK;
    for (int i = 0; i <= cv_state_count(e->st) && !s; i++) {
        cv_tensor *t;
        int count = i == cv_state_count(e->st);
        s = count ? cv_tensor_new(ctx, CV_I64, 0, NULL, &t)
                  : cv_tensor_clone(ctx, cv_state_tensor(e->st, i), &t);
        if (s) break;
        if (count) *(int64_t *)t->data = e->n_averaged;
        char *key = join(prefix, count ? "n_averaged" : cv_state_name(e->st, i));
        s = key ? cv_state_put(ctx, out, key, t) : cv_fail(ctx, CV_ERR_NOMEM, "ema: out of memory");
        if (!key) cv_tensor_free(t);
        free(key);
    }
    return s;
}

cv_status cv_ema_state_load(cv_ctx *ctx, cv_ema *e, const cv_state *st, const char *prefix)
{
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i <= cv_state_count(e->st); i++) {
            int count = i == cv_state_count(e->st);
            char *key = join(prefix, count ? "n_averaged" : cv_state_name(e->st, i));
            if (!key) return cv_fail(ctx, CV_ERR_NOMEM, "ema: out of memory");
            const cv_tensor *t = cv_state_get(st, key),
                            *mine = count ? NULL : cv_state_tensor(e->st, i);
            int ok = t && (count ? t->dtype == CV_I64 && cv_tensor_numel(t) == 1 &&
                                       *(const int64_t *)t->data >= 0
                                 : t->dtype == mine->dtype && cv_tensor_same_shape(t, mine));
            if (!ok) {
                cv_status s = cv_fail(ctx, CV_ERR_FORMAT, "ema state: '%s' is %s", key,
                                      t ? "of the wrong dtype or shape" : "missing");
                free(key);
                return s;
            }
            free(key);
            if (pass == 0) continue;
            if (count)
                e->n_averaged = *(const int64_t *)t->data;
            else
                memcpy(mine->data, t->data, t->nbytes);
        }
    }
    return CV_OK;
}
