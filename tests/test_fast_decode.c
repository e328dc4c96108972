/* The training loader's decode path (cv_transform_apply_encoded): exact for pipelines that do not
 * start with rrc; for rrc, the crop decoded DCT-scaled stays close to decode-then-transform, with
 * the same crop and flip (a wrong crop mapping or flip gives differences many times larger). */
#include <string.h>
#include <turbojpeg.h>

#include "test.h"

/* A 480x360 photograph-like image (gradients and texture at several scales) as a q90 4:2:0 JPEG. */
static unsigned char *make_jpeg(unsigned long *size, int gray)
{
    int w = 480, h = 360, c = gray ? 1 : 3;
    unsigned char *px = malloc((size_t)w * h * c), *jpg = NULL;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int b = 0; b < c; b++) {
                double v = 128 + 60 * sin(x * 0.05 + b) * cos(y * 0.03) +
                           30 * sin(x * 0.4 + y * 0.3 + b) + 20 * ((x / 37 + y / 29 + b) % 3 - 1);
                px[((size_t)y * w + x) * c + b] = (unsigned char)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
    tjhandle tj = tjInitCompress();
    CHECK(tjCompress2(tj, px, w, 0, h, gray ? TJPF_GRAY : TJPF_RGB, &jpg, size,
                      gray ? TJSAMP_GRAY : TJSAMP_420, 90, 0) == 0);
    tjDestroy(tj);
    free(px);
    return jpg;
}

/* decode + cv_transform_apply_into, the reference */
static void exact(cv_ctx *ctx, cv_transform_pipeline *p, const unsigned char *buf, size_t n,
                  uint64_t seed, float *out, int s)
{
    cv_image *img;
    CHECK_OK(ctx, cv_image_decode(ctx, buf, n, "t.jpg", 3, &img));
    CHECK_OK(ctx, cv_transform_apply_into(ctx, p, img, seed, out, 3, s, s));
    cv_image_free(img);
}

static void test_exact_without_rrc(void)
{
    cv_ctx *ctx = cv_ctx_new();
    unsigned long n;
    unsigned char *jpg = make_jpeg(&n, 0);
    cv_transform_pipeline *p;
    CHECK_OK(ctx, cv_transform_pipeline_parse(
                      ctx, "resize(100),center_crop(80),hflip,normalize(imagenet)", &p));
    float *a = malloc(3 * 80 * 80 * sizeof *a), *b = malloc(3 * 80 * 80 * sizeof *b);
    for (uint64_t seed = 0; seed < 4; seed++) {
        exact(ctx, p, jpg, n, seed, a, 80);
        CHECK_OK(ctx, cv_transform_apply_encoded(ctx, p, jpg, n, "t.jpg", seed, b, 3, 80, 80));
        CHECK(!memcmp(a, b, 3 * 80 * 80 * sizeof *a));
    }
    /* a wrong output shape is an error */
    CHECK(cv_transform_apply_encoded(ctx, p, jpg, n, "t.jpg", 0, b, 3, 64, 64) == CV_ERR_SHAPE);
    free(a);
    free(b);
    cv_transform_pipeline_free(p);
    tjFree(jpg);
    cv_ctx_free(ctx);
}

/* Mean |difference| per sample, in normalized units (1 gray level is about 0.017). Measured: 0.026
 * on average (about 1.5 gray levels), at most 0.042 for one seed. The same comparison against the
 * mirrored result (a flip applied the wrong way) or against the next seed's crop gives 0.3 and
 * more on this texture, and the test checks that too: it can tell a wrong crop or flip. */
static void test_rrc_close(int gray)
{
    cv_ctx *ctx = cv_ctx_new();
    unsigned long n;
    unsigned char *jpg = make_jpeg(&n, gray);
    cv_transform_pipeline *p;
    CHECK_OK(ctx, cv_transform_pipeline_parse(ctx, "rrc(64),hflip,normalize(imagenet)", &p));
    size_t m = 3 * 64 * 64;
    float *a = malloc(m * sizeof *a), *b = malloc(m * sizeof *b), *b2 = malloc(m * sizeof *b2);
    double worst = 0, total = 0, wrong = 1e9;
    for (uint64_t seed = 0; seed < 60; seed++) {
        exact(ctx, p, jpg, n, seed, a, 64);
        CHECK_OK(ctx, cv_transform_apply_encoded(ctx, p, jpg, n, "t.jpg", seed, b, 3, 64, 64));
        CHECK_OK(ctx, cv_transform_apply_encoded(ctx, p, jpg, n, "t.jpg", seed, b2, 3, 64, 64));
        CHECK(!memcmp(b, b2, m * sizeof *b)); /* deterministic */
        double d = 0, dm = 0;
        for (size_t i = 0; i < m; i++) {
            d += fabs(a[i] - b[i]);
            dm += fabs(a[i] - b[i - i % 64 + 63 - i % 64]); /* mirrored */
        }
        d /= m;
        dm /= m;
        if (dm < wrong) wrong = dm;
        total += d;
        if (d > worst) worst = d;
    }
    /* the next seed's crop, against this one's */
    exact(ctx, p, jpg, n, 1000, a, 64);
    CHECK_OK(ctx, cv_transform_apply_encoded(ctx, p, jpg, n, "t.jpg", 1001, b, 3, 64, 64));
    double other = 0;
    for (size_t i = 0; i < m; i++) other += fabs(a[i] - b[i]);
    other /= m;
    fprintf(stderr, "  %s: mean |d| %.4f, worst sample %.4f; mirrored >= %.4f, other crop %.4f\n",
            gray ? "gray" : "rgb", total / 60, worst, wrong, other);
    CHECK(total / 60 < 0.04);
    CHECK(worst < 0.07);
    CHECK(wrong > 0.15 && other > 0.15);
    free(a);
    free(b);
    free(b2);
    cv_transform_pipeline_free(p);
    tjFree(jpg);
    cv_ctx_free(ctx);
}

static void test_rrc_rgb(void)
{
    test_rrc_close(0);
}

static void test_rrc_gray(void)
{
    test_rrc_close(1);
}

/* A truncated JPEG fails as the full decoder fails, whatever part the crop needs. */
static void test_truncated(void)
{
    cv_ctx *ctx = cv_ctx_new();
    unsigned long n;
    unsigned char *jpg = make_jpeg(&n, 0);
    cv_transform_pipeline *p;
    CHECK_OK(ctx, cv_transform_pipeline_parse(ctx, "rrc(64),normalize(imagenet)", &p));
    float *b = malloc(3 * 64 * 64 * sizeof *b);
    for (uint64_t seed = 0; seed < 8; seed++) {
        CHECK(cv_transform_apply_encoded(ctx, p, jpg, n * 2 / 3, "t.jpg", seed, b, 3, 64, 64) ==
              CV_ERR_FORMAT);
        CHECK(strstr(cv_ctx_error(ctx), "t.jpg") && strstr(cv_ctx_error(ctx), "truncated"));
    }
    free(b);
    cv_transform_pipeline_free(p);
    tjFree(jpg);
    cv_ctx_free(ctx);
}

int main(void)
{
    RUN(test_exact_without_rrc);
    RUN(test_rrc_rgb);
    RUN(test_rrc_gray);
    RUN(test_truncated);
    TEST_EXIT();
}
