/* Atomic file replacement: temporary file in the same directory, then rename. */
#include "core/atomic.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char tmp_suffix[] = ".tmp.XXXXXX";

const char *cv_write_error(void)
{
    return strerror(errno ? errno : EIO);
}

cv_status cv_write_atomic(cv_ctx *ctx, const char *path, int sync,
                          const char *(*fill)(void *arg, FILE *f), void *arg)
{
    size_t plen = strlen(path);
    char *tmp = malloc(plen + sizeof tmp_suffix);
    if (!tmp) return cv_fail(ctx, CV_ERR_NOMEM, "%s: out of memory", path);
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, tmp_suffix, sizeof tmp_suffix);
    int fd = mkstemp(tmp);
    FILE *f = fd >= 0 ? fdopen(fd, "wb") : NULL;
    if (!f) {
        cv_status s = cv_fail(ctx, CV_ERR_IO, "%s: cannot create a temporary file: %s", path,
                              strerror(errno));
        if (fd >= 0) {
            close(fd);
            unlink(tmp);
        }
        free(tmp);
        return s;
    }
    (void)fchmod(fd, 0644); /* mkstemp creates 0600; these files are not secrets */
    errno = 0;
    const char *why = fill(arg, f);
    if (!why && (fflush(f) || (sync && fsync(fd)))) why = cv_write_error();
    if (fclose(f) && !why) why = cv_write_error();
    cv_status s = CV_OK;
    if (why)
        s = cv_fail(ctx, CV_ERR_IO, "%s: write failed: %s", path, why);
    else if (rename(tmp, path))
        s = cv_fail(ctx, CV_ERR_IO, "%s: cannot rename %s into place: %s", path, tmp,
                    strerror(errno));
    if (s) unlink(tmp);
    free(tmp);
    return s;
}

typedef struct {
    const cv_write_part *parts;
    size_t n;
} parts_arg;

static const char *fill_parts(void *arg, FILE *f)
{
    const parts_arg *a = arg;
    for (size_t i = 0; i < a->n; i++)
        if (a->parts[i].len && fwrite(a->parts[i].data, 1, a->parts[i].len, f) != a->parts[i].len)
            return cv_write_error();
    return NULL;
}

cv_status cv_write_parts_atomic(cv_ctx *ctx, const char *path, int sync, const cv_write_part *parts,
                                size_t nparts)
{
    parts_arg a = {parts, nparts};
    return cv_write_atomic(ctx, path, sync, fill_parts, &a);
}

cv_status cv_write_file_atomic(cv_ctx *ctx, const char *path, int sync, const void *data,
                               size_t len)
{
    cv_write_part p = {data, len};
    return cv_write_parts_atomic(ctx, path, sync, &p, 1);
}
