/* libFuzzer target: CIFAR-10/100 binary batches (records, labels, class-name file). */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char dir[256], spec[300];
    fuzz_path("", dir, sizeof dir);
    fuzz_write("test_batch.bin", data, size);
    fuzz_write("test.bin", data, size);
    /* The first bytes double as a class-name file (read only when it has exactly 10 lines). */
    fuzz_write("batches.meta.txt", data, size < 200 ? size : 200);
    snprintf(spec, sizeof spec, "cifar10:%s:test", dir);
    fuzz_open_and_read(spec);
    snprintf(spec, sizeof spec, "cifar100:%s:test:coarse", dir);
    fuzz_open_and_read(spec);
    return 0;
}
