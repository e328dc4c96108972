/* libFuzzer target: the .npy parser on arbitrary bytes. */
#include <stddef.h>
#include <stdint.h>

#include "cvision/cvision.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cv_ctx *ctx = cv_ctx_new();
    cv_tensor *t = NULL;
    if (cv_npy_parse(ctx, data, size, "fuzz.npy", &t) == CV_OK) cv_tensor_free(t);
    cv_ctx_free(ctx);
    return 0;
}
