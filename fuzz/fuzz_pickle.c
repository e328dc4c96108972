/* libFuzzer target: the pickle machine on arbitrary bytes, with a persistent-id hook that accepts
 * any tuple as a storage so that the tensor-rebuild paths are reached too. */
#include <stddef.h>
#include <stdint.h>

#include "weights/pickle.h"

static pv *persid(cv_ctx *ctx, void *user, pk_arena *a, const pv *pid)
{
    (void)user;
    if (pid->kind != PV_TUPLE) {
        cv_fail(ctx, CV_ERR_FORMAT, "fuzz: bad persistent id");
        return NULL;
    }
    pv *s = pk_new(a, PV_STORAGE);
    if (s)
        s->u.storage.dtype = CV_F32;
    else
        cv_fail(ctx, CV_ERR_NOMEM, "fuzz: out of memory");
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cv_ctx *ctx = cv_ctx_new();
    pk_arena *a = pk_arena_new();
    pk_opts o = {.name = "fuzz", .persid = persid};
    pv *out;
    size_t used;
    if (pk_load(ctx, &o, a, data, size, &used, &out) == CV_OK && out->kind == PV_DICT) {
        (void)pk_dict_get(out, "model");
        for (size_t i = 0; i < out->u.seq.n; i++) (void)pk_kind_name(out->u.seq.v[i]);
    }
    pk_arena_free(a);
    cv_ctx_free(ctx);
    return 0;
}
