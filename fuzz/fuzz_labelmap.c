/* libFuzzer target: the segmentation label-map reader (PNG palette/gray, .npy) and the
 * confusion matrix over what it accepts. */
#include <stdint.h>
#include <stdlib.h>

#include "cvision/cvision.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cv_ctx *ctx = cv_ctx_new();
    if (!ctx) return 0;
    int32_t *map;
    int w, h;
    cv_seg *s;
    if (cv_label_map_decode(ctx, data, size, "fuzz.png", &map, &w, &h) == CV_OK) {
        if (cv_seg_new(ctx, 256, 255, &s) == CV_OK) {
            cv_metrics_result *r;
            if (cv_seg_add(ctx, s, map, map, (size_t)w * h, "fuzz.png") == CV_OK &&
                cv_seg_finalize(ctx, s, &r) == CV_OK)
                cv_metrics_result_free(r);
            cv_seg_free(s);
        }
        free(map);
    }
    cv_ctx_free(ctx);
    return 0;
}
