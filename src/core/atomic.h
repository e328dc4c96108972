/* Atomic file replacement, for every file the library writes whole. */
#ifndef CV_ATOMIC_H
#define CV_ATOMIC_H

#include <stddef.h>
#include <stdio.h>

#include "cvision/core.h"

/* Writes path through a temporary file beside it (path.tmp.XXXXXX, mode 0644) and a rename, so
 * that a reader never sees a half-written file and a failed write leaves the old file in place.
 * `fill` writes the content to f and returns NULL, or on failure what went wrong. With `sync` the
 * file is fsynced before the rename (a caller that needs the rename itself to be durable fsyncs
 * the directory). Errors name path; the temporary file never outlives the call. */
cv_status cv_write_atomic(cv_ctx *ctx, const char *path, int sync,
                          const char *(*fill)(void *arg, FILE *f), void *arg);

/* One contiguous piece of a file's content. */
typedef struct {
    const void *data;
    size_t len;
} cv_write_part;

/* cv_write_atomic of the parts, in order. */
cv_status cv_write_parts_atomic(cv_ctx *ctx, const char *path, int sync, const cv_write_part *parts,
                                size_t nparts);

/* cv_write_atomic of len bytes. */
cv_status cv_write_file_atomic(cv_ctx *ctx, const char *path, int sync, const void *data,
                               size_t len);

/* What a failed stdio write reports: errno's text (EIO where the library left errno at 0). */
const char *cv_write_error(void);

#endif
