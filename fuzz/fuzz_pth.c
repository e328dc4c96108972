/* libFuzzer target: the whole sniffing weights loader (zip, legacy, zipped legacy, safetensors,
 * checkpoint unwrapping) on a buffer in memory. */
#include <stddef.h>
#include <stdint.h>

#include "cvision/weights.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cv_ctx *ctx = cv_ctx_new();
    cv_state *st = NULL;
    if (cv_weights_load_mem(ctx, "fuzz", data, size, NULL, &st) == CV_OK) cv_state_free(st);
    if (cv_weights_load_mem(ctx, "fuzz", data, size, "model_ema", &st) == CV_OK) cv_state_free(st);
    cv_ctx_free(ctx);
    return 0;
}
