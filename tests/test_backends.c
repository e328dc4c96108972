/* The oneDNN backend (fused, blocked layouts) against the reference backend (op by op) on every
 * architecture, with random weights and randomised batch-norm statistics. */
#include <string.h>

#include "test.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static float uniform(void) /* [-1, 1) */
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (float)((rng >> 11) * (1.0 / 9007199254740992.0)) * 2 - 1;
}

/* Weights scaled like a trained network's (std ~ 1/sqrt(fan_in)) so activations stay O(1). */
static void randomise(cv_model *m)
{
    cv_state *st = cv_model_params(m);
    for (int i = 0; i < cv_state_count(st); i++) {
        cv_tensor *t = cv_state_tensor(st, i);
        const char *name = cv_state_name(st, i);
        if (t->dtype != CV_F32) continue;
        float *d = t->data;
        int64_t n = cv_tensor_numel(t), fan_in = t->ndim > 1 ? n / t->shape[0] : 1;
        float scale = t->ndim > 1 ? 1.7f / sqrtf((float)fan_in) : 0.1f;
        int is_var = strstr(name, "running_var") != NULL,
            is_w = t->ndim == 1 && strstr(name, ".weight");
        for (int64_t k = 0; k < n; k++)
            d[k] = is_var ? 0.5f + 0.5f * (uniform() + 1)
                   : is_w ? 1 + 0.3f * uniform()
                          : scale * uniform();
    }
    cv_model_params_changed(m);
}

static double max_abs(const cv_tensor *t)
{
    double m = 0;
    for (int64_t i = 0; i < cv_tensor_numel(t); i++) m = fmax(m, fabs(((float *)t->data)[i]));
    return m;
}

static void compare_arch(const char *arch, int64_t n, int64_t h, int64_t w)
{
    cv_ctx *ctx = cv_ctx_new();
    cv_model *m;
    CHECK_OK(ctx, cv_model_create(ctx, arch, 7, &m));
    if (!m) return;
    randomise(m);
    cv_tensor *x, *y_ref = NULL, *y_cpu = NULL;
    int64_t shape[] = {n, 3, h, w};
    CHECK_OK(ctx, cv_tensor_new(ctx, CV_F32, 4, shape, &x));
    for (int64_t i = 0; i < cv_tensor_numel(x); i++) ((float *)x->data)[i] = uniform();
    CHECK_OK(ctx, cv_model_set_backend(ctx, m, CV_BACKEND_REF));
    CHECK_OK(ctx, cv_model_forward(ctx, m, x, &y_ref));
    CHECK_OK(ctx, cv_model_set_backend(ctx, m, CV_BACKEND_CPU));
    CHECK_OK(ctx, cv_model_forward(ctx, m, x, &y_cpu));
    if (y_ref && y_cpu) {
        CHECK(y_ref->shape[0] == n && y_ref->shape[1] == 7);
        double d = 0, scale = max_abs(y_ref);
        for (int64_t i = 0; i < cv_tensor_numel(y_ref); i++)
            d = fmax(d, fabs(((float *)y_ref->data)[i] - ((float *)y_cpu->data)[i]));
        fprintf(stderr, "  %-18s %lldx3x%lldx%lld  max|logit| %.3g  max|diff| %.3g\n", arch,
                (long long)n, (long long)h, (long long)w, scale, d);
        CHECK(scale > 1e-3);
        CHECK(d <= 1e-4 * scale);
    }
    /* a second run reuses the plan and must give the same numbers */
    cv_tensor *again = NULL;
    CHECK_OK(ctx, cv_model_forward(ctx, m, x, &again));
    if (again && y_cpu) CHECK(memcmp(again->data, y_cpu->data, again->nbytes) == 0);
    cv_tensor_free(again);
    cv_tensor_free(y_ref);
    cv_tensor_free(y_cpu);
    cv_tensor_free(x);
    cv_model_free(m);
    cv_ctx_free(ctx);
}

static void test_all_archs(void)
{
    for (int i = 0; i < cv_arch_count(); i++) {
        const char *a = cv_arch_name(i);
        /* the reference backend is slow: small inputs, odd sizes */
        int big = strstr(a, "vgg") || strstr(a, "alexnet");
        compare_arch(a, 2, big ? 67 : 45, big ? 71 : 37);
    }
}

static void test_too_small(void)
{
    cv_ctx *ctx = cv_ctx_new();
    cv_model *m;
    CHECK_OK(ctx, cv_model_create(ctx, "alexnet", 10, &m));
    cv_tensor *x, *y = NULL;
    int64_t shape[] = {1, 3, 20, 20};
    CHECK_OK(ctx, cv_tensor_new(ctx, CV_F32, 4, shape, &x));
    CHECK(cv_model_forward(ctx, m, x, &y) == CV_ERR_SHAPE && y == NULL);
    CHECK(strstr(cv_ctx_error(ctx), "too small") != NULL);
    CHECK(cv_model_create(ctx, "resnet9000", 10, &m) == CV_ERR_NOT_FOUND);
    cv_tensor_free(x);
    cv_model_free(m);
    cv_ctx_free(ctx);
}

int main(void)
{
    RUN(test_too_small);
    RUN(test_all_archs);
    TEST_EXIT();
}
