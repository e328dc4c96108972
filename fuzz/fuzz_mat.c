/* libFuzzer target: MATLAB level-5 .mat files (plain and zlib-compressed elements) through the
 * SVHN reader. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char dir[256], spec[300];
    fuzz_path("", dir, sizeof dir);
    fuzz_write("test_32x32.mat", data, size);
    snprintf(spec, sizeof spec, "svhn:%s:test", dir);
    fuzz_open_and_read(spec);
    return 0;
}
