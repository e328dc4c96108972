#include "util.h"

#include <errno.h>
#include <string.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

double cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

cv_status cli_int(cv_ctx *ctx, const char *opt, const char *s, int min, int max, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max)
        return cv_fail(ctx, CV_ERR_INVALID, "%s: expected an integer in [%d, %d], got '%s'", opt,
                       min, max, s);
    *out = (int)v;
    return CV_OK;
}

cv_status cli_double(cv_ctx *ctx, const char *opt, const char *s, double min, double max,
                     double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !(v >= min && v <= max)) /* !(...) also refuses NaN */
        return cv_fail(ctx, CV_ERR_INVALID, "%s: expected a number in [%g, %g], got '%s'", opt, min,
                       max, s);
    *out = v;
    return CV_OK;
}

cv_status cli_backend(cv_ctx *ctx, const char *name, cv_backend_kind *out)
{
    if (!strcmp(name, "cpu") || !strcmp(name, "ref")) {
        *out = strcmp(name, "cpu") ? CV_BACKEND_REF : CV_BACKEND_CPU;
        return CV_OK;
    }
    return cv_fail(ctx, CV_ERR_INVALID, "--backend: expected cpu or ref, got '%s'", name);
}

cv_status cli_comm_end(cv_ctx *ctx, cv_comm *comm, cv_status s)
{
    int rank = cv_comm_rank(comm), world = cv_comm_size(comm);
    if (!s) s = cv_comm_finalize(ctx, comm);
    cv_comm_free(comm);
    if (s && world > 1) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", cv_ctx_error(ctx));
        cv_fail(ctx, s, "rank %d of %d: %s", rank, world, msg);
    }
    return s;
}

int cli_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

#include <string.h>
#include <sys/stat.h>

#include "cvision/weights.h"

/* Whether `path` is one of the catalog's files for `arch` (by file name). */
static int catalog_file(const char *arch, const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    for (int i = 0; i < cv_catalog_count(); i++) {
        const cv_weights_info *w = cv_catalog_entry(i);
        if (!strcmp(w->arch, arch) && !strcmp(w->file, base)) return 1;
    }
    return 0;
}

cv_status cli_load_model(cv_ctx *ctx, const char *arch, const char *wspec, int num_classes, int res,
                         cv_model **out, const struct cv_weights_info **info_out)
{
    *out = NULL;
    if (info_out) *info_out = NULL;
    char path[4096];
    struct stat sb;
    const cv_weights_info *info = NULL;
    if (stat(wspec, &sb) == 0) {
        snprintf(path, sizeof path, "%s", wspec);
    } else {
        info = cv_catalog_find(arch, wspec);
        if (!info)
            return cv_fail(
                ctx, CV_ERR_NOT_FOUND,
                "%s: no such file, and no weights of that name for %s (see 'cvision models')",
                wspec, arch);
        cv_status s = cv_weights_fetch(ctx, info->url, info->file, path, sizeof path);
        if (s) return s;
    }
    cv_state *st = NULL;
    cv_model *m = NULL;
    cv_status s = cv_weights_load(ctx, path, &st);
    /* torchvision builds GoogLeNet and Inception v3 with transform_input=True for its pretrained
     * weights; the builders read this flag (docs/models.md) */
    if (!s && (info || catalog_file(arch, path)))
        s = cv_state_set_meta(ctx, st, "transform_input", "1");
    if (!s && res > 0) { /* ViT: position embeddings interpolated for this image size */
        char v[16];
        snprintf(v, sizeof v, "%d", res);
        s = cv_state_set_meta(ctx, st, "image_size", v);
    }
    if (!s && num_classes <= 0) {
        /* the head's output count as stored, else the architecture's ImageNet default */
        if ((s = cv_model_create(ctx, arch, 1000, &m))) goto done;
        int64_t k = cv_model_state_classes(m, st);
        num_classes = k > 0 && k <= 1 << 24 ? (int)k : 1000;
        cv_model_free(m);
        m = NULL;
    }
    if (!s) s = cv_model_create(ctx, arch, num_classes, &m);
    if (!s && (s = cv_model_load_state(ctx, m, st, CV_LOAD_STRICT))) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", cv_ctx_error(ctx));
        s = cv_fail(ctx, s, "%s: %s", path, msg);
    }
done:
    cv_state_free(st);
    if (s) {
        cv_model_free(m);
        return s;
    }
    *out = m;
    if (info_out) *info_out = info;
    return CV_OK;
}
