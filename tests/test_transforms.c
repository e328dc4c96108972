/* Pipelines (parsing errors, determinism across threads), the RNG, MixUp and CutMix. */
#include <pthread.h>
#include <string.h>

#include "test.h"

static void test_parse_errors(void)
{
    cv_ctx *ctx = cv_ctx_new();
    cv_transform_pipeline *p = NULL;
    struct {
        const char *spec, *token;
    } bad[] = {
        {"resize(256", "resize(256"},
        {"resize(abc)", "resize(abc)"},
        {"foo,to_tensor", "unknown op 'foo'"},
        {"rrc(224,scale=1)", "lo:hi"},
        {"hue(0.7)", "hue(0.7)"},
        {"normalize(1,2,3)", "normalize(1,2,3)"},
        {"posterize(9)", "posterize(9)"},
        {"random_crop(10,mode=wrap)", "mode must be"},
        {"", "empty"},
        {"to_tensor,,hflip", "empty op"},
        {"hflip(p=2)", "outside [0, 1]"},
        {"randaugment(2,31)", "randaugment(2,31)"},
        {"rotate(10,bicubic)", "nearest or bilinear"},
        {"resize(10)x", "after ')'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cv_status s = cv_transform_pipeline_parse(ctx, bad[i].spec, &p);
        CHECK(s == CV_ERR_INVALID && p == NULL);
        if (!strstr(cv_ctx_error(ctx), bad[i].token)) {
            fprintf(stderr, "  '%s': message '%s' lacks '%s'\n", bad[i].spec, cv_ctx_error(ctx),
                    bad[i].token);
            test_failures++;
        }
    }
    CHECK_OK(ctx,
             cv_transform_pipeline_parse(ctx, " resize( 256 , bicubic ) , center_crop(224) ", &p));
    CHECK(p && !cv_transform_pipeline_is_random(p));
    cv_transform_pipeline_free(p);
    CHECK_OK(ctx, cv_transform_pipeline_parse(
                      ctx, "rrc(224),hflip,randaugment(2,9),normalize(imagenet)", &p));
    CHECK(p && cv_transform_pipeline_is_random(p));
    cv_transform_pipeline_free(p);
    cv_ctx_free(ctx);
}

/* A training pipeline's evaluation counterpart: random crops made deterministic, the other random
 * ops dropped, and the result itself a valid, non-random pipeline. */
static void test_eval_spec(void)
{
    cv_ctx *ctx = cv_ctx_new();
    struct {
        const char *train, *eval;
    } cases[] = {
        {"grayscale(3),resize(56),random_crop(56,padding=4),hflip,to_tensor,normalize(imagenet),"
         "random_erasing(p=0.25)",
         "grayscale(3),resize(56),center_crop(56,56),to_tensor,normalize(imagenet)"},
        {"rrc(224,bicubic),hflip,trivialaugment,to_tensor,normalize(imagenet)",
         "resize(256,bicubic),center_crop(224,224),to_tensor,normalize(imagenet)"},
        {"random_resized_crop(160,120),color_jitter(0.4,0.4,0.4)",
         "resize(137,bilinear),center_crop(160,120)"},
        {"hflip,vflip", ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cv_transform_pipeline *p = NULL, *e = NULL;
        char out[512];
        CHECK_OK(ctx, cv_transform_pipeline_parse(ctx, cases[i].train, &p));
        CHECK_OK(ctx, cv_transform_pipeline_eval_spec(ctx, p, out, sizeof out));
        if (strcmp(out, cases[i].eval)) {
            fprintf(stderr, "  '%s' -> '%s', expected '%s'\n", cases[i].train, out, cases[i].eval);
            test_failures++;
        }
        if (out[0]) {
            CHECK_OK(ctx, cv_transform_pipeline_parse(ctx, out, &e));
            CHECK(e && !cv_transform_pipeline_is_random(e));
        }
        char small[20];
        if (strlen(cases[i].eval) >= sizeof small)
            CHECK(cv_transform_pipeline_eval_spec(ctx, p, small, sizeof small) == CV_ERR_INVALID);
        cv_transform_pipeline_free(e);
        cv_transform_pipeline_free(p);
    }
    cv_ctx_free(ctx);
}

/* ---- the same augmentation whatever the thread and order ---- */

#define NSAMPLES 12
static cv_image *g_img;
static cv_transform_pipeline *g_pipe;
static cv_tensor *g_out[2][NSAMPLES];

typedef struct {
    int set, first, step;
} job;

static void *worker(void *arg)
{
    job *j = arg;
    cv_ctx *ctx = cv_ctx_new();
    for (int k = j->first; k >= 0 && k < NSAMPLES; k += j->step)
        if (cv_transform_apply(ctx, g_pipe, g_img, cv_transform_sample_seed(7, 1, (uint64_t)k),
                               &g_out[j->set][k]))
            fprintf(stderr, "apply: %s\n", cv_ctx_error(ctx));
    cv_ctx_free(ctx);
    return NULL;
}

static void test_thread_determinism(void)
{
    cv_ctx *ctx = cv_ctx_new();
    CHECK_OK(ctx, cv_image_new(ctx, 57, 43, 3, &g_img));
    for (size_t i = 0; i < (size_t)57 * 43 * 3; i++) g_img->data[i] = (uint8_t)(i * 13 + i / 7);
    CHECK_OK(
        ctx,
        cv_transform_pipeline_parse(
            ctx,
            "rrc(32),hflip,trivialaugment,color_jitter(0.4,0.4,0.4,0.1),to_tensor,random_erasing",
            &g_pipe));
    /* set 0: one thread in order; set 1: three threads, backwards and interleaved */
    job one = {0, 0, 1};
    worker(&one);
    pthread_t th[3];
    job jobs[3] = {{1, NSAMPLES - 1, -3}, {1, NSAMPLES - 2, -3}, {1, NSAMPLES - 3, -3}};
    for (int t = 0; t < 3; t++) pthread_create(&th[t], NULL, worker, &jobs[t]);
    for (int t = 0; t < 3; t++) pthread_join(th[t], NULL);
    int distinct = 0;
    for (int k = 0; k < NSAMPLES; k++) {
        cv_tensor *a = g_out[0][k], *b = g_out[1][k], *prev = k ? g_out[0][k - 1] : NULL;
        CHECK(a && b && a->nbytes == b->nbytes && !memcmp(a->data, b->data, a->nbytes));
        if (a && prev)
            distinct += a->nbytes != prev->nbytes || memcmp(a->data, prev->data, a->nbytes);
    }
    for (int k = 0; k < NSAMPLES; k++) {
        cv_tensor_free(g_out[0][k]);
        cv_tensor_free(g_out[1][k]);
    }
    CHECK(distinct == NSAMPLES - 1);
    cv_transform_pipeline_free(g_pipe);
    cv_image_free(g_img);
    cv_ctx_free(ctx);
}

static void test_rng(void)
{
    cv_rng r;
    cv_rng_init(&r, 1, 2);
    int counts[7] = {0};
    double gsum = 0, bsum = 0;
    const int n = 70000;
    for (int i = 0; i < n; i++) {
        int64_t v = cv_rng_randint(&r, 3, 10);
        CHECK(v >= 3 && v < 10);
        if (v >= 3 && v < 10) counts[v - 3]++;
        gsum += cv_rng_gamma(&r, 0.5);
        bsum += cv_rng_beta(&r, 2.0, 6.0);
    }
    for (int k = 0; k < 7; k++) CHECK(abs(counts[k] - n / 7) < 400); /* ~ 4 sd */
    CHECK_NEAR(gsum / n, 0.5, 0.02);
    CHECK_NEAR(bsum / n, 0.25, 0.01);
    cv_rng a, b;
    cv_rng_init(&a, 5, 9);
    cv_rng_init(&b, 5, 9);
    CHECK(cv_rng_next(&a) == cv_rng_next(&b));
    cv_rng_init(&b, 5, 10);
    CHECK(cv_rng_next(&a) != cv_rng_next(&b));
}

static cv_tensor *batch(cv_ctx *ctx, int n, int h, int w)
{
    cv_tensor *x;
    int64_t shape[4] = {n, 2, h, w};
    CHECK_OK(ctx, cv_tensor_new(ctx, CV_F32, 4, shape, &x));
    float *d = x->data;
    for (int64_t i = 0; i < cv_tensor_numel(x); i++) d[i] = (float)(i / (2 * h * w) * 100 + i % 17);
    return x;
}

static void test_mixup_cutmix(void)
{
    cv_ctx *ctx = cv_ctx_new();
    int64_t labels[3] = {2, 0, 1};
    double lam_sum = 0;
    for (int seed = 0; seed < 400; seed++) {
        cv_tensor *x = batch(ctx, 3, 4, 5), *orig = batch(ctx, 3, 4, 5), *t = NULL;
        double lam;
        CHECK_OK(ctx, cv_mixup(ctx, x, labels, 4, 1.0, (uint64_t)seed, &t, &lam));
        lam_sum += lam;
        const float *a = x->data, *o = orig->data, *tt = t->data;
        for (int i = 0; i < 3; i++) {
            int p = (i + 2) % 3; /* roll(1, 0) partner */
            for (int j = 0; j < 40; j++)
                CHECK_NEAR(a[i * 40 + j],
                           o[p * 40 + j] * (float)(1 - lam) + o[i * 40 + j] * (float)lam, 1e-4);
            CHECK_NEAR(tt[i * 4 + labels[i]], lam, 1e-6);
            CHECK_NEAR(tt[i * 4 + labels[p]], 1 - lam, 1e-6);
        }
        cv_tensor_free(t);
        /* CutMix: the pasted fraction of pixels is 1 - lam_adjusted */
        memcpy(x->data, orig->data, x->nbytes);
        CHECK_OK(ctx, cv_cutmix(ctx, x, labels, 4, 1.0, (uint64_t)seed, &t, &lam));
        int pasted = 0;
        for (int j = 0; j < 40; j++) pasted += ((float *)x->data)[j] != ((float *)orig->data)[j];
        CHECK_NEAR(1.0 - pasted / 40.0, lam, 1e-9);
        CHECK_NEAR(((float *)t->data)[labels[0]], lam, 1e-6);
        cv_tensor_free(t);
        cv_tensor_free(x);
        cv_tensor_free(orig);
    }
    CHECK_NEAR(lam_sum / 400, 0.5, 0.06); /* Beta(1, 1) */
    cv_tensor *x = batch(ctx, 3, 4, 5), *t;
    int64_t badl[3] = {0, 4, 1};
    CHECK(cv_mixup(ctx, x, badl, 4, 1.0, 1, &t, NULL) == CV_ERR_INVALID && t == NULL);
    CHECK(strstr(cv_ctx_error(ctx), "sample 1") != NULL);
    cv_tensor_free(x);
    cv_ctx_free(ctx);
}

int main(void)
{
    RUN(test_parse_errors);
    RUN(test_eval_spec);
    RUN(test_thread_determinism);
    RUN(test_rng);
    RUN(test_mixup_cutmix);
    TEST_EXIT();
}
