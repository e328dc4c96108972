/* libFuzzer target: idx files (raw or gzip) through cv_idx_load and the MNIST dataset reader. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char dir[256], spec[300];
    fuzz_path("", dir, sizeof dir);
    /* The input is the image file; the label file is fixed (3 labels). */
    static const uint8_t labels[] = {0, 0, 8, 1, 0, 0, 0, 3, 1, 2, 3};
    fuzz_write("t10k-labels-idx1-ubyte", labels, sizeof labels);
    fuzz_write("t10k-images-idx3-ubyte", data, size);
    cv_ctx *ctx = cv_ctx_new();
    cv_tensor *t;
    char path[256];
    if (cv_idx_load(ctx, fuzz_path("t10k-images-idx3-ubyte", path, sizeof path), &t) == CV_OK)
        cv_tensor_free(t);
    cv_ctx_free(ctx);
    snprintf(spec, sizeof spec, "mnist:%s:test", dir);
    fuzz_open_and_read(spec);
    return 0;
}
