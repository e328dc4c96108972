/* libFuzzer target: the pipeline-string parser, and applying what parses to a small image. */
#include <stdlib.h>
#include <string.h>

#include "cvision/cvision.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s) return 0;
    memcpy(s, data, size);
    s[size] = 0;
    /* Apply only pipelines whose numbers are small: huge sizes are valid but slow, not bugs. */
    int small = 1;
    for (size_t i = 0; i < size; i++)
        if (s[i] >= '0' && s[i] <= '9') {
            long v = strtol(s + i, NULL, 10);
            small &= v >= 0 && v <= 300;
            while (i < size && s[i] >= '0' && s[i] <= '9') i++;
        }
    cv_ctx *ctx = cv_ctx_new();
    cv_transform_pipeline *pipe = NULL;
    cv_image *img = NULL;
    if (cv_transform_pipeline_parse(ctx, s, &pipe) == CV_OK && small &&
        cv_image_new(ctx, 23, 17, 3, &img) == CV_OK) {
        for (size_t i = 0; i < (size_t)23 * 17 * 3; i++) img->data[i] = (uint8_t)(i * 31);
        cv_tensor *t = NULL;
        if (cv_transform_apply(ctx, pipe, img, 42, &t) == CV_OK) cv_tensor_free(t);
    }
    cv_image_free(img);
    cv_transform_pipeline_free(pipe);
    cv_ctx_free(ctx);
    free(s);
    return 0;
}
