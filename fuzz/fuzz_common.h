/* Shared by the dataset fuzz targets: the readers take paths, so each input is written to a file
 * in a per-process temporary directory, opened as a dataset spec, and every sample is read. */
#ifndef CV_FUZZ_COMMON_H
#define CV_FUZZ_COMMON_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cvision/cvision.h"

static char fuzz_dir[64];

static void fuzz_cleanup(void)
{
    DIR *d = opendir(fuzz_dir);
    struct dirent *e;
    char path[512];
    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.')
            snprintf(path, sizeof path, "%s/%s", fuzz_dir, e->d_name), unlink(path);
    if (d) closedir(d);
    rmdir(fuzz_dir);
}

static const char *fuzz_path(const char *name, char *buf, size_t size)
{
    if (!fuzz_dir[0]) {
        /* Memory-backed when possible: every input is written out. */
        const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(fuzz_dir, sizeof fuzz_dir, "%s/cvfuzz_XXXXXX", base);
        if (!mkdtemp(fuzz_dir)) abort();
        atexit(fuzz_cleanup);
    }
    snprintf(buf, size, "%s/%s", fuzz_dir, name);
    return buf;
}

static void fuzz_write(const char *name, const uint8_t *data, size_t size)
{
    char path[256];
    FILE *f = fopen(fuzz_path(name, path, sizeof path), "wb");
    if (!f) abort();
    if (size && fwrite(data, 1, size, f) != size) abort();
    fclose(f);
}

/* Opens the spec and reads (at most 16) samples; errors are expected, crashes are not. */
static void fuzz_open_and_read(const char *spec)
{
    cv_ctx *ctx = cv_ctx_new();
    cv_dataset *ds;
    if (cv_dataset_open(ctx, spec, &ds) == CV_OK) {
        int64_t n = cv_dataset_len(ds);
        for (int64_t i = 0; i < n && i < 16; i++) {
            cv_image *img;
            int label;
            char name[512];
            if (cv_dataset_get(ctx, ds, i, &img, &label) == CV_OK) cv_image_free(img);
            cv_dataset_sample_name(ds, i, name, sizeof name);
        }
        cv_dataset_free(ds);
    }
    cv_ctx_free(ctx);
}

#endif
