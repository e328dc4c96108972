/* Image decoding, PNG writing, probing, DCT-scaled decoding and hostile inputs. */
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>
#include <unistd.h>

#include "test.h"

static cv_image *pattern(cv_ctx *ctx, int w, int h, int c)
{
    cv_image *img;
    CHECK_OK(ctx, cv_image_new(ctx, w, h, c, &img));
    for (size_t i = 0; i < (size_t)w * h * c; i++) img->data[i] = (uint8_t)(i * 7 + i / 13);
    return img;
}

static void test_png_roundtrip(void)
{
    cv_ctx *ctx = cv_ctx_new();
    const char *path = "test_image_rt.png";
    for (int c = 1; c <= 3; c += 2) {
        cv_image *img = pattern(ctx, 37, 11, c), *back;
        CHECK_OK(ctx, cv_image_save_png(ctx, path, img));
        CHECK_OK(ctx, cv_image_load(ctx, path, 0, &back));
        CHECK(back && back->w == 37 && back->h == 11 && back->c == c);
        if (back) CHECK(!memcmp(back->data, img->data, (size_t)37 * 11 * c));
        cv_image_free(back);
        /* gray -> RGB replicates; RGB -> L is Pillow's rounded luma */
        CHECK_OK(ctx, cv_image_load(ctx, path, c == 1 ? 3 : 1, &back));
        if (back && c == 1)
            CHECK(back->c == 3 && back->data[3] == img->data[1] && back->data[5] == img->data[1]);
        if (back && c == 3) {
            const uint8_t *p = img->data;
            CHECK(back->c == 1 &&
                  back->data[0] ==
                      (uint8_t)((p[0] * 19595 + p[1] * 38470 + p[2] * 7471 + 0x8000) >> 16));
        }
        cv_image_free(back);
        void *buf;
        size_t n;
        int w, h, cc;
        CHECK_OK(ctx, cv_read_file(ctx, path, &buf, &n));
        CHECK_OK(ctx, cv_image_probe(ctx, buf, n, path, &w, &h, &cc));
        CHECK(w == 37 && h == 11 && cc == c);
        /* every truncation is an error naming the file, never a crash */
        for (size_t k = 0; k < n; k += 7) {
            cv_status s = cv_image_decode(ctx, buf, k, "cut.png", 3, &back);
            CHECK(s != CV_OK && back == NULL && strstr(cv_ctx_error(ctx), "cut.png"));
        }
        free(buf);
        cv_image_free(img);
    }
    unlink(path);
    cv_ctx_free(ctx);
}

static void test_bad_inputs(void)
{
    cv_ctx *ctx = cv_ctx_new();
    cv_image *img = NULL;
    CHECK(cv_image_decode(ctx, "hello", 5, "x.txt", 3, &img) == CV_ERR_FORMAT);
    CHECK(strstr(cv_ctx_error(ctx), "x.txt") && strstr(cv_ctx_error(ctx), "not a JPEG"));
    CHECK(cv_image_decode(ctx, "", 0, "empty.png", 3, &img) == CV_ERR_FORMAT);
    const unsigned char jpeg_head[] = {0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, 'J', 'F', 'I', 'F'};
    CHECK(cv_image_decode(ctx, jpeg_head, sizeof jpeg_head, "head.jpg", 3, &img) == CV_ERR_FORMAT);
    CHECK(strstr(cv_ctx_error(ctx), "head.jpg") != NULL);
    /* A PNG header that claims 60000 x 60000 in a tiny file is refused before allocating. */
    unsigned char big[] = {0x89, 'P',  'N', 'G', '\r', '\n', 0x1a, '\n', 0,    0, 0,
                           13,   'I',  'H', 'D', 'R',  0,    0,    0xEA, 0x60, 0, 0,
                           0xEA, 0x60, 8,   2,   0,    0,    0,    0,    0,    0, 0};
    CHECK(cv_image_decode(ctx, big, sizeof big, "big.png", 3, &img) == CV_ERR_FORMAT);
    CHECK(cv_image_decode(ctx, "P6\n4 4\n255\n", 11, "short.ppm", 3, &img) == CV_ERR_FORMAT);
    CHECK(strstr(cv_ctx_error(ctx), "truncated") != NULL);
    CHECK(cv_image_decode(ctx, "P5 2 2 65535\n12345678", 21, "deep.pgm", 3, &img) ==
          CV_ERR_UNSUPPORTED);
    CHECK(cv_image_load(ctx, "no-such-image.jpg", 3, &img) == CV_ERR_IO);
    CHECK(cv_image_decode(ctx, "P5 1 1 255\nx", 12, "bad.pgm", 2, &img) == CV_ERR_INVALID);
    CHECK(img == NULL);
    cv_ctx_free(ctx);
}

static void test_pnm(void)
{
    cv_ctx *ctx = cv_ctx_new();
    cv_image *img = NULL;
    const char ppm[] = "P6\n# comment\n2 1\n255\n\x01\x02\x03\x04\x05\x06";
    CHECK_OK(ctx, cv_image_decode(ctx, ppm, sizeof ppm - 1, "a.ppm", 0, &img));
    CHECK(img && img->w == 2 && img->h == 1 && img->c == 3 && img->data[5] == 6);
    cv_image_free(img);
    cv_ctx_free(ctx);
}

static void test_jpeg_scaled(void)
{
    cv_ctx *ctx = cv_ctx_new();
    cv_image *src = pattern(ctx, 400, 320, 3), *img = NULL;
    tjhandle tj = tjInitCompress();
    unsigned char *jpg = NULL;
    unsigned long n = 0;
    CHECK(tjCompress2(tj, src->data, 400, 0, 320, TJPF_RGB, &jpg, &n, TJSAMP_420, 90, 0) == 0);
    CHECK_OK(ctx, cv_image_decode(ctx, jpg, n, "a.jpg", 3, &img));
    CHECK(img && img->w == 400 && img->h == 320);
    cv_image_free(img);
    struct {
        int mw, mh, w, h;
    } cases[] = {{50, 40, 50, 40},
                 {51, 40, 100, 80},
                 {1, 1, 50, 40},
                 {300, 10, 300, 240},
                 {999, 999, 400, 320}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CHECK_OK(ctx,
                 cv_image_decode_scaled(ctx, jpg, n, "a.jpg", 3, cases[i].mw, cases[i].mh, &img));
        CHECK(img && img->w == cases[i].w && img->h == cases[i].h);
        cv_image_free(img);
    }
    int w, h, c;
    CHECK_OK(ctx, cv_image_probe(ctx, jpg, n, "a.jpg", &w, &h, &c));
    CHECK(w == 400 && h == 320 && c == 3);
    /* truncated: Pillow's "image file is truncated" is an error here too */
    CHECK(cv_image_decode(ctx, jpg, n / 2, "half.jpg", 3, &img) == CV_ERR_FORMAT);
    CHECK(strstr(cv_ctx_error(ctx), "half.jpg") != NULL);
    tjFree(jpg);
    tjDestroy(tj);
    cv_image_free(src);
    cv_ctx_free(ctx);
}

int main(void)
{
    RUN(test_jpeg_scaled);
    RUN(test_png_roundtrip);
    RUN(test_bad_inputs);
    RUN(test_pnm);
    TEST_EXIT();
}
