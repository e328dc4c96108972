/* libFuzzer target: BMP decoding from memory (all three channel requests) and the header probe. */
#include <stddef.h>
#include <stdint.h>

#include "cvision/cvision.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cv_ctx *ctx = cv_ctx_new();
    int w, h, c;
    /* Skip images too large to decode quickly; the size limits themselves are tested elsewhere. */
    if (cv_image_probe(ctx, data, size, "fuzz", &w, &h, &c) == CV_OK &&
        (int64_t)w * h <= (1 << 22)) {
        cv_image *img = NULL;
        int want = size ? data[size - 1] % 3 : 0;
        if (cv_image_decode(ctx, data, size, "fuzz", want == 2 ? 3 : want, &img) == CV_OK)
            cv_image_free(img);
    }
    cv_ctx_free(ctx);
    return 0;
}
