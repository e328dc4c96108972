/* The explicit context: the last error message and the thread count. */
#include "cvision/core.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct cv_ctx {
    char msg[1024];
    int threads;
};

cv_ctx *cv_ctx_new(void)
{
    cv_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return NULL;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    ctx->threads = n > 0 ? (int)n : 1;
    return ctx;
}

void cv_ctx_free(cv_ctx *ctx)
{
    free(ctx);
}

const char *cv_ctx_error(const cv_ctx *ctx)
{
    return ctx ? ctx->msg : "no context";
}

void cv_ctx_clear_error(cv_ctx *ctx)
{
    if (ctx) ctx->msg[0] = 0;
}

cv_status cv_fail(cv_ctx *ctx, cv_status code, const char *fmt, ...)
{
    if (!ctx) return code;
    /* formatted aside first: an argument may be the context's own message (cv_ctx_error) */
    char msg[sizeof ctx->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    memcpy(ctx->msg, msg, sizeof msg);
    return code;
}

int cv_ctx_threads(const cv_ctx *ctx)
{
    return ctx->threads;
}

void cv_ctx_set_threads(cv_ctx *ctx, int threads)
{
    ctx->threads = threads > 0 ? threads : 1;
}

const char *cv_status_name(cv_status s)
{
    static const char *names[] = {
        "ok",          "i/o error", "format error",   "invalid argument", "out of memory",
        "unsupported", "not found", "shape mismatch", "network error",    "internal error"};
    return (unsigned)s < sizeof names / sizeof names[0] ? names[s] : "unknown error";
}
