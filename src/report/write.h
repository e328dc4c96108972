/* Writing report files. */
#ifndef CV_REPORT_WRITE_H
#define CV_REPORT_WRITE_H

#include <stddef.h>

#include "cvision/core.h"

/* Writes len bytes to path through a temporary file in the same directory and a rename, so that a
 * reader never sees a half-written file and a failed write leaves the old file in place. */
cv_status cv_write_file_atomic(cv_ctx *ctx, const char *path, const void *data, size_t len);

#endif
