/* libFuzzer target: the CSV dataset reader (quoting, header lookup, classes, multi-label), with
 * spec options picked by the first input byte. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    char dir[256], spec[600];
    fuzz_path("", dir, sizeof dir);
    fuzz_write("labels.csv", data + 1, size - 1);
    static const char *const opts[] = {"", ",multilabel", ",ordinal", ",classes=0|1|a"};
    snprintf(spec, sizeof spec, "csv:%s/labels.csv,images=%s,id=id,label=label,ext=.png%s", dir,
             dir, opts[data[0] % 4]);
    fuzz_open_and_read(spec);
    return 0;
}
