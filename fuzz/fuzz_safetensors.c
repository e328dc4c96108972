/* libFuzzer target: the safetensors reader and its header validation. */
#include <stddef.h>
#include <stdint.h>

#include "weights/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cv_ctx *ctx = cv_ctx_new();
    cv_state *st = NULL;
    if (cv_safetensors_load_mem(ctx, "fuzz", data, size, &st) == CV_OK) cv_state_free(st);
    cv_ctx_free(ctx);
    return 0;
}
