/* Core: tensors and the named-tensor table. */
#include <string.h>

#include "test.h"

static void test_tensor_alloc(void)
{
    cv_ctx *ctx = cv_ctx_new();
    cv_tensor *t;
    int64_t shape[] = {2, 3, 4};
    CHECK_OK(ctx, cv_tensor_new(ctx, CV_F32, 3, shape, &t));
    CHECK(t->nbytes == 2 * 3 * 4 * 4);
    CHECK(((uintptr_t)t->data & 63) == 0);
    CHECK(cv_tensor_numel(t) == 24);
    char buf[64];
    CHECK(strcmp(cv_shape_str(t->ndim, t->shape, buf, sizeof buf), "[2, 3, 4]") == 0);
    cv_tensor_free(t);
    int64_t huge[] = {INT64_MAX / 2, 4};
    CHECK(cv_tensor_new(ctx, CV_F32, 2, huge, &t) == CV_ERR_NOMEM && t == NULL);
    CHECK(strstr(cv_ctx_error(ctx), "too large") != NULL);
    int64_t neg[] = {-1};
    CHECK(cv_tensor_new(ctx, CV_F32, 1, neg, &t) != CV_OK);
    cv_ctx_free(ctx);
}

/* Wrapping the context's own message (a common pattern) prefixes it once. */
static void test_fail_wraps_own_message(void)
{
    cv_ctx *ctx = cv_ctx_new();
    cv_fail(ctx, CV_ERR_IO, "inner: %s", "detail");
    CHECK(cv_fail(ctx, CV_ERR_FORMAT, "outer: %s; %s", cv_ctx_error(ctx), "end") == CV_ERR_FORMAT);
    CHECK(strcmp(cv_ctx_error(ctx), "outer: inner: detail; end") == 0);
    cv_ctx_free(ctx);
}

static void test_state(void)
{
    cv_ctx *ctx = cv_ctx_new();
    cv_state *st = cv_state_new();
    char name[32];
    for (int i = 0; i < 1000; i++) {
        cv_tensor *t;
        int64_t shape[] = {i % 7};
        CHECK_OK(ctx, cv_tensor_new(ctx, CV_F32, 1, shape, &t));
        snprintf(name, sizeof name, "layer%d.weight", i);
        CHECK_OK(ctx, cv_state_put(ctx, st, name, t));
    }
    CHECK(cv_state_count(st) == 1000);
    CHECK(strcmp(cv_state_name(st, 500), "layer500.weight") == 0);
    CHECK(cv_state_get(st, "layer999.weight")->shape[0] == 999 % 7);
    CHECK(cv_state_get(st, "nope") == NULL);
    cv_tensor *t = cv_state_take(st, "layer3.weight");
    CHECK(t && t->shape[0] == 3);
    cv_tensor_free(t);
    CHECK(cv_state_count(st) == 999 && cv_state_get(st, "layer3.weight") == NULL);
    CHECK(cv_state_get(st, "layer4.weight") != NULL &&
          strcmp(cv_state_name(st, 3), "layer4.weight") == 0);
    CHECK_OK(ctx, cv_state_set_meta(ctx, st, "format", "pt"));
    CHECK_OK(ctx, cv_state_set_meta(ctx, st, "format", "np"));
    CHECK(strcmp(cv_state_get_meta(st, "format"), "np") == 0 && cv_state_meta_count(st) == 1);
    cv_state_free(st);
    cv_ctx_free(ctx);
}

int main(void)
{
    RUN(test_tensor_alloc);
    RUN(test_fail_wraps_own_message);
    RUN(test_state);
    TEST_EXIT();
}
