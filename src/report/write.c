/* Atomic file writes for the reports: temporary file in the same directory, then rename. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "report/write.h"

cv_status cv_write_file_atomic(cv_ctx *ctx, const char *path, const void *data, size_t len)
{
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 12);
    if (!tmp) return cv_fail(ctx, CV_ERR_NOMEM, "%s: out of memory", path);
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp.XXXXXX", 12);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        cv_status s = cv_fail(ctx, CV_ERR_IO, "%s: cannot create a temporary file: %s", path,
                              strerror(errno));
        free(tmp);
        return s;
    }
    (void)fchmod(fd, 0644);
    const char *p = data;
    size_t left = len;
    int err = 0;
    while (left && !err) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0)
            err = w < 0 ? errno : EIO;
        else
            p += w, left -= (size_t)w;
    }
    if (close(fd) && !err) err = errno;
    if (!err && rename(tmp, path)) err = errno;
    cv_status s = CV_OK;
    if (err) {
        unlink(tmp);
        s = cv_fail(ctx, CV_ERR_IO, "%s: write failed: %s", path, strerror(err));
    }
    free(tmp);
    return s;
}
