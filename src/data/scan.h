/* A parallel pass over every sample of a dataset (data info, data check). */
#ifndef CV_DATA_SCAN_H
#define CV_DATA_SCAN_H

#include "cvision/data.h"

/* Called once per readable sample, from worker `worker` (0..threads-1) with its context. A
 * failure stops the scan with the context's message. */
typedef cv_status (*ds_scan_fn)(void *user, cv_ctx *ctx, int worker, int64_t i,
                                const cv_image *img);

typedef struct {
    int64_t index;
    char *message;
} ds_bad;

/* Reads every sample on `threads` threads (<= 0: the context's count) and calls fn. With
 * `bad` NULL, the first unreadable sample (lowest index) stops the scan with its error; otherwise
 * unreadable samples are collected in *bad (sorted by index; free with ds_bad_free). */
cv_status ds_scan(cv_ctx *ctx, const cv_dataset *ds, int threads, ds_scan_fn fn, void *user,
                  ds_bad **bad, int64_t *nbad);
void ds_bad_free(ds_bad *bad, int64_t n);
/* The worker count ds_scan will use. */
int ds_scan_threads(cv_ctx *ctx, const cv_dataset *ds, int threads);

#endif
