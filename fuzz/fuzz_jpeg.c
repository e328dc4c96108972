/* libFuzzer target: JPEG decoding from memory (all three channel requests, DCT-scaled, and the
 * training loader's crop-only scaled decode behind a leading rrc). */
#include <stddef.h>
#include <stdint.h>

#include "cvision/cvision.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cv_ctx *ctx = cv_ctx_new();
    int w, h, c;
    /* Skip images too large to decode quickly; the size limits themselves are unit-tested. */
    if (cv_image_probe(ctx, data, size, "fuzz", &w, &h, &c) == CV_OK &&
        (int64_t)w * h <= (1 << 22)) {
        cv_image *img = NULL;
        int want = size ? data[size - 1] % 3 : 0;
        if (cv_image_decode(ctx, data, size, "fuzz", want == 2 ? 3 : want, &img) == CV_OK)
            cv_image_free(img);
        if (cv_image_decode_scaled(ctx, data, size, "fuzz", 3, w / 5 + 1, h / 3 + 1, &img) == CV_OK)
            cv_image_free(img);
        cv_transform_pipeline *p;
        if (cv_transform_pipeline_parse(ctx, "rrc(8,scale=0.05:1),normalize(imagenet)", &p) ==
            CV_OK) {
            float out[3 * 8 * 8];
            cv_transform_apply_encoded(ctx, p, data, size, "fuzz", size, out, 3, 8, 8);
            cv_transform_pipeline_free(p);
        }
    }
    cv_ctx_free(ctx);
    return 0;
}
