/* A pickle reader for state_dicts: it builds a value tree from the opcodes a torch.save file uses
 * and never executes anything. Known globals (OrderedDict, the tensor rebuild functions, the
 * torch storage types) are interpreted; other globals become opaque placeholders, and globals
 * that can only mean code execution (os.system, builtins.eval, ...) are refused outright. */
#ifndef CV_WEIGHTS_PICKLE_H
#define CV_WEIGHTS_PICKLE_H

#include <stddef.h>
#include <stdint.h>

#include "cvision/core.h"

typedef enum {
    PV_NONE,
    PV_BOOL,
    PV_INT,
    PV_BIGINT, /* an int wider than 64 bits: str holds its little-endian bytes */
    PV_FLOAT,
    PV_STR,
    PV_BYTES,
    PV_TUPLE,
    PV_LIST,
    PV_SET,
    PV_DICT,    /* seq holds key, value, key, value, ... in insertion order */
    PV_GLOBAL,  /* a class or function named by GLOBAL / STACK_GLOBAL */
    PV_OBJECT,  /* what calling an unknown global would have made: a placeholder */
    PV_STORAGE, /* a tensor storage, made by the loader from a persistent id */
    PV_TENSOR,  /* storage + offset + size + stride, from _rebuild_tensor_v2 */
} pv_kind;

typedef enum {
    PG_UNKNOWN,
    PG_ORDERED_DICT,
    PG_REBUILD_TENSOR_V2,
    PG_REBUILD_PARAMETER,
    PG_REBUILD_PARAMETER_STATE,
    PG_REBUILD_FROM_TYPE_V2,
    PG_TENSOR_CLASS, /* torch.Tensor, torch.nn.parameter.Parameter */
    PG_STORAGE_TYPE,
    PG_DEVICE,
} pg_kind;

typedef struct pv pv;
struct pv {
    pv_kind kind;
    union {
        int64_t i; /* BOOL, INT */
        double f;
        struct {
            char *s; /* NUL-terminated copy */
            size_t n;
        } str; /* STR, BYTES, BIGINT */
        struct {
            pv **v;
            size_t n, cap;
        } seq; /* TUPLE, LIST, SET, DICT */
        struct {
            pg_kind kind;
            int dtype; /* PG_STORAGE_TYPE: a cv_dtype, or -1 if the type is not supported */
            const char *qualname; /* "module.name" */
        } glob;
        const pv *cls; /* OBJECT: the global it was made from */
        struct {
            int64_t id; /* the loader's storage index */
            cv_dtype dtype;
        } storage;
        struct {
            const pv *storage;
            int64_t offset;
            int ndim;
            int64_t size[CV_MAX_DIMS], stride[CV_MAX_DIMS];
        } tensor;
    } u;
    pv *state; /* the argument of BUILD, if any (an OrderedDict's __dict__ holds _metadata) */
};

/* All values of one load live in an arena, freed at once. */
typedef struct pk_arena pk_arena;
pk_arena *pk_arena_new(void);
void pk_arena_free(pk_arena *a);

/* Turns a persistent id (BINPERSID) into a value, normally a PV_STORAGE. Returns NULL after
 * recording an error in ctx. */
typedef pv *(*pk_persid_fn)(cv_ctx *ctx, void *user, pk_arena *a, const pv *pid);

typedef struct {
    const char *name;    /* for messages: "model.pth: data.pkl" */
    pk_persid_fn persid; /* NULL: persistent ids are an error */
    void *user;
} pk_opts;

/* Runs one pickle from buf (up to and including STOP). *used receives the bytes consumed. */
cv_status pk_load(cv_ctx *ctx, const pk_opts *o, pk_arena *a, const uint8_t *buf, size_t len,
                  size_t *used, pv **out);

/* Helpers over values. */
pv *pk_new(pk_arena *a, pv_kind kind);
const pv *pk_dict_get(const pv *dict, const char *key); /* last value of a str key, or NULL */
const char *pk_kind_name(const pv *v);                  /* "int", "dict", "argparse.Namespace" */

#endif
