/* .npy reader/writer: round trips, header variants and hostile headers. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "test.h"

static cv_status parse_str(cv_ctx *ctx, const char *dict, int major, const void *data, size_t n,
                           cv_tensor **out)
{
    unsigned char buf[1024];
    size_t dl = strlen(dict), hoff = major == 1 ? 10 : 12;
    memcpy(buf, "\x93NUMPY", 6);
    buf[6] = (unsigned char)major;
    buf[7] = 0;
    buf[8] = (unsigned char)dl;
    buf[9] = (unsigned char)(dl >> 8);
    if (major > 1) buf[10] = buf[11] = 0;
    memcpy(buf + hoff, dict, dl);
    memcpy(buf + hoff + dl, data, n);
    return cv_npy_parse(ctx, buf, hoff + dl + n, "mem.npy", out);
}

static void test_roundtrip(void)
{
    cv_ctx *ctx = cv_ctx_new();
    char path[] = "test_npy_rt.npy";
    cv_dtype types[] = {CV_F32, CV_F64, CV_F16, CV_I64, CV_I32, CV_I16, CV_I8, CV_U8, CV_BOOL};
    int64_t shapes[][3] = {{2, 3, 5}, {0, 4, 1}, {7, 1, 1}};
    int ndims[] = {3, 2, 1};
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++)
        for (int si = 0; si < 3; si++) {
            cv_tensor *t, *u;
            CHECK_OK(ctx, cv_tensor_new(ctx, types[ti], ndims[si], shapes[si], &t));
            unsigned char *d = t->data;
            for (size_t i = 0; i < t->nbytes; i++)
                d[i] = types[ti] == CV_BOOL ? (unsigned char)(i & 1) : (unsigned char)(i * 37 + 1);
            CHECK_OK(ctx, cv_npy_save(ctx, path, t));
            CHECK_OK(ctx, cv_npy_load(ctx, path, &u));
            if (u) {
                CHECK(u->dtype == t->dtype && cv_tensor_same_shape(u, t));
                CHECK(u->nbytes == t->nbytes && !memcmp(u->data, t->data, t->nbytes));
            }
            cv_tensor_free(t);
            cv_tensor_free(u);
        }
    /* 0-d */
    cv_tensor *t, *u;
    CHECK_OK(ctx, cv_tensor_new(ctx, CV_F64, 0, NULL, &t));
    *(double *)t->data = 3.25;
    CHECK_OK(ctx, cv_npy_save(ctx, path, t));
    CHECK_OK(ctx, cv_npy_load(ctx, path, &u));
    CHECK(u && u->ndim == 0 && *(double *)u->data == 3.25);
    cv_tensor_free(u);
    /* The header is 64-byte aligned, as numpy writes it. */
    FILE *f = fopen(path, "rb");
    unsigned char pre[10];
    CHECK(f && fread(pre, 1, 10, f) == 10);
    CHECK((10 + (pre[8] | pre[9] << 8)) % 64 == 0);
    fclose(f);
    /* bf16 has no numpy dtype. */
    t->dtype = CV_BF16;
    CHECK(cv_npy_save(ctx, path, t) == CV_ERR_UNSUPPORTED);
    cv_tensor_free(t);
    unlink(path);
    cv_ctx_free(ctx);
}

static void test_headers(void)
{
    cv_ctx *ctx = cv_ctx_new();
    cv_tensor *t = NULL;
    float v[6] = {1, 2, 3, 4, 5, 6};
    /* version 2.0 and 3.0, double quotes, no trailing comma, Python 2 longs */
    CHECK_OK(ctx,
             parse_str(ctx, "{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (2L, 3L)}\n",
                       2, v, sizeof v, &t));
    CHECK(t && t->ndim == 2 && t->shape[0] == 2 && t->shape[1] == 3 && ((float *)t->data)[5] == 6);
    cv_tensor_free(t);
    CHECK_OK(ctx, parse_str(ctx, "{'shape': (6,), 'fortran_order': False, 'descr': '<f4', }", 3, v,
                            sizeof v, &t));
    CHECK(t && t->ndim == 1 && t->shape[0] == 6);
    cv_tensor_free(t);
    struct {
        const char *dict;
        size_t n;
        cv_status want;
        const char *msg;
    } bad[] = {
        {"{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", 24, CV_ERR_UNSUPPORTED,
         "Fortran"},
        {"{'descr': '>f4', 'fortran_order': False, 'shape': (2, 3), }", 24, CV_ERR_UNSUPPORTED,
         "'>f4'"},
        {"{'descr': '<c8', 'fortran_order': False, 'shape': (3,), }", 24, CV_ERR_UNSUPPORTED, "c8"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 20, CV_ERR_FORMAT,
         "file holds 20"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 0, CV_ERR_FORMAT,
         "holds 0"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999, 99999999999, "
         "99999999999), }",
         24, CV_ERR_FORMAT, "overflows"},
        {"{'descr': '<f4', 'fortran_order': False}", 24, CV_ERR_FORMAT, "lacks 'shape'"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1), }", 4,
         CV_ERR_UNSUPPORTED, "dimensions"},
        {"{'descr': '<f4', 'extra': 1}", 24, CV_ERR_FORMAT, "unexpected key"},
        {"{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", 8,
         CV_ERR_UNSUPPORTED, "structured"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }", 8, CV_ERR_FORMAT,
         "dimension"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), } xx", 8, CV_ERR_FORMAT,
         "trailing"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,", 8, CV_ERR_FORMAT, "bad .npy"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cv_status s = parse_str(ctx, bad[i].dict, 1, v, bad[i].n, &t);
        CHECK(s == bad[i].want && t == NULL);
        if (!strstr(cv_ctx_error(ctx), bad[i].msg) || !strstr(cv_ctx_error(ctx), "mem.npy"))
            fprintf(stderr, "  case %zu: message '%s' lacks '%s'\n", i, cv_ctx_error(ctx),
                    bad[i].msg),
                test_failures++;
    }
    unsigned char b2 = 2;
    CHECK(parse_str(ctx, "{'descr': '|b1', 'fortran_order': False, 'shape': (1,), }", 1, &b2, 1,
                    &t) == CV_ERR_FORMAT);
    CHECK(cv_npy_parse(ctx, "\x93NUMPY\x04\x00", 10, "v.npy", &t) == CV_ERR_UNSUPPORTED);
    CHECK(cv_npy_parse(ctx, "PK\x03\x04", 4, "z.npy", &t) == CV_ERR_FORMAT);
    CHECK(cv_npy_parse(ctx, "\x93NUMPY\x01\x00\xff\x00", 10, "t.npy", &t) == CV_ERR_FORMAT);
    CHECK(cv_npy_load(ctx, "does-not-exist.npy", &t) == CV_ERR_IO);
    CHECK(strstr(cv_ctx_error(ctx), "does-not-exist.npy") != NULL);
    CHECK(cv_npy_load(ctx, ".", &t) == CV_ERR_IO);
    cv_ctx_free(ctx);
}

int main(void)
{
    RUN(test_roundtrip);
    RUN(test_headers);
    TEST_EXIT();
}
