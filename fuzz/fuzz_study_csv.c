/* libFuzzer target: the study results CSV reader, and the analysis (statistics, bootstrap, JSON,
 * CSV and HTML writers) over what it accepts. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cvision/cvision.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char out_dir[64];

static void cleanup(void)
{
    static const char *files[] = {"analysis.json", "analysis.csv", "report.html"};
    char path[128];
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", out_dir, files[i]);
        unlink(path);
    }
    rmdir(out_dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!out_dir[0]) {
        strcpy(out_dir, "/tmp/cvfuzz-study-XXXXXX");
        if (!mkdtemp(out_dir)) return 0;
        atexit(cleanup);
    }
    cv_ctx *ctx = cv_ctx_new();
    if (!ctx) return 0;
    cv_study_result *rows;
    size_t n;
    if (cv_study_results_csv_parse(ctx, (const char *)data, size, "fuzz.csv", &rows, &n) == CV_OK) {
        if (n <= 300) cv_study_analyze(ctx, rows, n, out_dir, 1, 5);
        free(rows);
    }
    cv_ctx_free(ctx);
    return 0;
}
