/* Opening weight files: the file is mapped read-only and handed to the format's reader. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "weights/internal.h"

cv_status cv_weights_load_entry(cv_ctx *ctx, const char *path, const char *entry, cv_state **out)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return cv_fail(ctx, CV_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return cv_fail(ctx, CV_ERR_IO, "%s: not a regular file", path);
    }
    if (sb.st_size == 0) {
        close(fd);
        return cv_fail(ctx, CV_ERR_FORMAT, "%s: empty file", path);
    }
    void *map = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED)
        return cv_fail(ctx, CV_ERR_IO, "%s: cannot map: %s", path, strerror(errno));
    cv_status s = cv_weights_load_buf(ctx, path, map, (size_t)sb.st_size, entry, 0, out);
    munmap(map, (size_t)sb.st_size);
    return s;
}

cv_status cv_weights_load(cv_ctx *ctx, const char *path, cv_state **out)
{
    return cv_weights_load_entry(ctx, path, NULL, out);
}

cv_status cv_weights_load_mem(cv_ctx *ctx, const char *name, const void *data, size_t size,
                              const char *entry, cv_state **out)
{
    *out = NULL;
    if (!size) return cv_fail(ctx, CV_ERR_FORMAT, "%s: empty file", name);
    return cv_weights_load_buf(ctx, name, data, size, entry, 0, out);
}
