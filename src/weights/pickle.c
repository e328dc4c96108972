/* The pickle machine: see pickle.h. Every read is bounds-checked against the buffer, every stack
 * pop against the stack and the current mark, every memo index against the memo. */
#include "weights/pickle.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- arena ---- */
typedef struct block {
    struct block *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
} block;

struct pk_arena {
    block *head;
};

#define ARENA_BLOCK 65536

pk_arena *pk_arena_new(void)
{
    return calloc(1, sizeof(pk_arena));
}

void pk_arena_free(pk_arena *a)
{
    if (!a) return;
    for (block *b = a->head, *n; b; b = n) {
        n = b->next;
        free(b);
    }
    free(a);
}

static void *arena_alloc(pk_arena *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    if (n == 0 || n > SIZE_MAX / 2) return NULL;
    block *b = a->head;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > ARENA_BLOCK / 4 ? n : ARENA_BLOCK;
        block *nb = malloc(sizeof(block) + cap);
        if (!nb) return NULL;
        nb->used = 0;
        nb->cap = cap;
        /* A big private block goes behind the head so the head keeps serving small requests. */
        if (b && cap != ARENA_BLOCK) {
            nb->next = b->next;
            b->next = nb;
        } else {
            nb->next = b;
            a->head = nb;
        }
        b = nb;
    }
    void *p = b->data + b->used;
    b->used += n;
    memset(p, 0, n);
    return p;
}

pv *pk_new(pk_arena *a, pv_kind kind)
{
    pv *v = arena_alloc(a, sizeof(pv));
    if (v) v->kind = kind;
    return v;
}

/* ---- value helpers ---- */
const pv *pk_dict_get(const pv *d, const char *key)
{
    if (!d || d->kind != PV_DICT) return NULL;
    const pv *found = NULL;
    size_t kl = strlen(key);
    for (size_t i = 0; i + 1 < d->u.seq.n; i += 2) {
        const pv *k = d->u.seq.v[i];
        if (k->kind == PV_STR && k->u.str.n == kl && !memcmp(k->u.str.s, key, kl))
            found = d->u.seq.v[i + 1];
    }
    return found;
}

const char *pk_kind_name(const pv *v)
{
    static const char *const names[] = {"None", "bool",   "int",    "int",     "float",
                                        "str",  "bytes",  "tuple",  "list",    "set",
                                        "dict", "global", "object", "storage", "tensor"};
    if (v->kind == PV_OBJECT) return v->u.cls->u.glob.qualname;
    if (v->kind == PV_GLOBAL) return v->u.glob.qualname;
    return names[v->kind];
}

/* ---- the machine ---- */
#define MAX_STACK   (1 << 20)
#define MAX_MEMO    (1 << 22)
#define MAX_MARKS   4096
#define MAX_GLOBAL  512 /* longest "module\nname\n" line we accept */
#define MAX_REBUILD 4   /* nesting of _rebuild_from_type_v2 */

typedef struct {
    cv_ctx *ctx;
    const pk_opts *o;
    pk_arena *a;
    const uint8_t *buf;
    size_t len, pos, op_pos;
    pv **stack;
    size_t sp, scap;
    size_t *marks;
    size_t nmarks, mcap;
    pv **memo;
    size_t nmemo, nset; /* slots allocated, slots filled */
} machine;

static cv_status fail(machine *m, cv_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static cv_status fail(machine *m, cv_status code, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return cv_fail(m->ctx, code, "%s: %s (pickle offset %zu)", m->o->name, msg, m->op_pos);
}

#define NOMEM(m) fail(m, CV_ERR_NOMEM, "out of memory")

static int need(machine *m, size_t n)
{
    return m->len - m->pos >= n;
}

static uint64_t rd_le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

static cv_status push(machine *m, pv *v)
{
    if (!v) return NOMEM(m);
    if (m->sp == m->scap) {
        if (m->scap >= MAX_STACK) return fail(m, CV_ERR_FORMAT, "stack deeper than %d", MAX_STACK);
        size_t cap = m->scap ? m->scap * 2 : 64;
        pv **s = realloc(m->stack, cap * sizeof *s);
        if (!s) return NOMEM(m);
        m->stack = s;
        m->scap = cap;
    }
    m->stack[m->sp++] = v;
    return CV_OK;
}

/* Items above the innermost mark (or the whole stack without one) cannot be popped past it. */
static size_t floor_(const machine *m)
{
    return m->nmarks ? m->marks[m->nmarks - 1] : 0;
}

static pv *pop(machine *m)
{
    return m->sp > floor_(m) ? m->stack[--m->sp] : NULL;
}

static pv *top(machine *m)
{
    return m->sp > floor_(m) ? m->stack[m->sp - 1] : NULL;
}

#define POP(m, v)                                                                                  \
    do {                                                                                           \
        if (!((v) = pop(m))) return fail(m, CV_ERR_FORMAT, "stack underflow");                     \
    } while (0)

/* Pops the mark; items [*start, sp) are the marked items. */
static cv_status pop_mark(machine *m, size_t *start)
{
    if (!m->nmarks) return fail(m, CV_ERR_FORMAT, "no MARK on the stack");
    *start = m->marks[--m->nmarks];
    return CV_OK;
}

static pv *new_seq(machine *m, pv_kind kind, pv **items, size_t n)
{
    pv *v = pk_new(m->a, kind);
    if (!v) return NULL;
    if (n) {
        v->u.seq.v = arena_alloc(m->a, n * sizeof(pv *));
        if (!v->u.seq.v) return NULL;
        memcpy(v->u.seq.v, items, n * sizeof(pv *));
    }
    v->u.seq.n = v->u.seq.cap = n;
    return v;
}

static cv_status seq_add(machine *m, pv *seq, pv **items, size_t n)
{
    if (seq->u.seq.n + n > seq->u.seq.cap) {
        size_t cap = seq->u.seq.cap ? seq->u.seq.cap : 8;
        while (cap < seq->u.seq.n + n) cap *= 2;
        pv **v = arena_alloc(m->a, cap * sizeof(pv *));
        if (!v) return NOMEM(m);
        if (seq->u.seq.n) memcpy(v, seq->u.seq.v, seq->u.seq.n * sizeof(pv *));
        seq->u.seq.v = v;
        seq->u.seq.cap = cap;
    }
    memcpy(seq->u.seq.v + seq->u.seq.n, items, n * sizeof(pv *));
    seq->u.seq.n += n;
    return CV_OK;
}

static pv *new_str(machine *m, pv_kind kind, const uint8_t *s, size_t n)
{
    pv *v = pk_new(m->a, kind);
    if (!v) return NULL;
    v->u.str.s = arena_alloc(m->a, n + 1);
    if (!v->u.str.s) return NULL;
    memcpy(v->u.str.s, s, n);
    v->u.str.n = n;
    return v;
}

static cv_status op_str(machine *m, pv_kind kind, int lenbytes)
{
    if (!need(m, (size_t)lenbytes)) return fail(m, CV_ERR_FORMAT, "truncated");
    uint64_t n = rd_le(m->buf + m->pos, lenbytes);
    m->pos += (size_t)lenbytes;
    if (n > m->len - m->pos)
        return fail(m, CV_ERR_FORMAT, "string of %llu bytes runs past the end",
                    (unsigned long long)n);
    pv *v = new_str(m, kind, m->buf + m->pos, (size_t)n);
    m->pos += (size_t)n;
    return push(m, v);
}

static cv_status memo_put(machine *m, uint64_t idx)
{
    pv *v = top(m);
    if (!v) return fail(m, CV_ERR_FORMAT, "PUT on an empty stack");
    if (idx >= MAX_MEMO)
        return fail(m, CV_ERR_FORMAT, "memo index %llu too large", (unsigned long long)idx);
    if (idx >= m->nmemo) {
        size_t n = m->nmemo ? m->nmemo : 64;
        while (n <= idx) n *= 2;
        pv **mm = realloc(m->memo, n * sizeof *mm);
        if (!mm) return NOMEM(m);
        memset(mm + m->nmemo, 0, (n - m->nmemo) * sizeof *mm);
        m->memo = mm;
        m->nmemo = n;
    }
    if (!m->memo[idx]) m->nset++;
    m->memo[idx] = v;
    return CV_OK;
}

static cv_status memo_get(machine *m, uint64_t idx)
{
    if (idx >= m->nmemo || !m->memo[idx])
        return fail(m, CV_ERR_FORMAT, "memo index %llu was never stored", (unsigned long long)idx);
    return push(m, m->memo[idx]);
}

/* ---- globals ---- */
static const struct {
    const char *name;
    int dtype;
} storage_types[] = {
    {"torch.FloatStorage", CV_F32},    {"torch.DoubleStorage", CV_F64},
    {"torch.HalfStorage", CV_F16},     {"torch.BFloat16Storage", CV_BF16},
    {"torch.LongStorage", CV_I64},     {"torch.IntStorage", CV_I32},
    {"torch.ShortStorage", CV_I16},    {"torch.CharStorage", CV_I8},
    {"torch.ByteStorage", CV_U8},      {"torch.BoolStorage", CV_BOOL},
    {"torch.ComplexFloatStorage", -1}, {"torch.ComplexDoubleStorage", -1},
    {"torch.QUInt8Storage", -1},       {"torch.QInt8Storage", -1},
    {"torch.QInt32Storage", -1},       {"torch.QUInt4x2Storage", -1},
    {"torch.QUInt2x4Storage", -1},     {"torch.UntypedStorage", -1},
};

static const struct {
    const char *name;
    pg_kind kind;
} known_globals[] = {
    {"collections.OrderedDict", PG_ORDERED_DICT},
    {"torch._utils._rebuild_tensor_v2", PG_REBUILD_TENSOR_V2},
    {"torch._utils._rebuild_tensor", PG_REBUILD_TENSOR_V2}, /* torch < 0.4: the first 4 args */
    {"torch._utils._rebuild_parameter", PG_REBUILD_PARAMETER},
    {"torch._utils._rebuild_parameter_with_state", PG_REBUILD_PARAMETER_STATE},
    {"torch._tensor._rebuild_from_type_v2", PG_REBUILD_FROM_TYPE_V2},
    {"torch.Tensor", PG_TENSOR_CLASS},
    {"torch._tensor.Tensor", PG_TENSOR_CLASS},
    {"torch.nn.parameter.Parameter", PG_TENSOR_CLASS},
    {"torch.device", PG_DEVICE},
};

/* Modules whose globals can only serve to run code or touch the system: a file naming one is
 * hostile, so it is refused even where the object would not be used. */
static const char *const forbidden_modules[] = {
    "os",
    "posix",
    "nt",
    "subprocess",
    "sys",
    "shutil",
    "socket",
    "builtins",
    "__builtin__",
    "importlib",
    "runpy",
    "code",
    "codeop",
    "pty",
    "ctypes",
    "pickle",
    "_pickle",
    "marshal",
    "types",
    "webbrowser",
    "io",
    "_io",
    "operator",
    "functools",
    "commands",
    "multiprocessing",
    "signal",
    "tempfile",
    "glob",
    "pathlib",
    "asyncio",
    "threading",
    "_thread",
    "pdb",
    "timeit",
    "platform",
    "torch.hub",
    "torch.jit",
    "torch._C",
    "torch.ops",
    "numpy.testing",
};

/* Harmless builtins that real checkpoints use inside non-weight entries (e.g. `args`). */
static const char *const allowed_builtins[] = {
    "set",  "frozenset", "bytearray", "complex", "slice", "range", "int",    "float",
    "bool", "str",       "bytes",     "list",    "dict",  "tuple", "object",
};

static int module_is(const char *mod, const char *name)
{
    size_t n = strlen(name);
    return !strncmp(mod, name, n) && (mod[n] == 0 || mod[n] == '.');
}

static int forbidden(const char *mod, const char *name)
{
    if (!strcmp(mod, "builtins") || !strcmp(mod, "__builtin__")) {
        for (size_t i = 0; i < sizeof allowed_builtins / sizeof *allowed_builtins; i++)
            if (!strcmp(name, allowed_builtins[i])) return 0;
        return 1;
    }
    for (size_t i = 0; i < sizeof forbidden_modules / sizeof *forbidden_modules; i++)
        if (module_is(mod, forbidden_modules[i])) return 1;
    return !strcmp(mod, "torch") && (!strcmp(name, "load") || !strcmp(name, "save"));
}

/* Module and qualified names are dotted ASCII identifiers. */
static int dotted_name(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.'))
            return 0;
    }
    return 1;
}

static cv_status make_global(machine *m, const char *mod, size_t ml, const char *name, size_t nl)
{
    if (!ml || !nl || ml + nl + 2 > MAX_GLOBAL || !dotted_name(mod, ml) || !dotted_name(name, nl))
        return fail(m, CV_ERR_FORMAT, "malformed GLOBAL name");
    char q[2 * MAX_GLOBAL + 2], mb[MAX_GLOBAL], nb[MAX_GLOBAL];
    memcpy(mb, mod, ml);
    mb[ml] = 0;
    memcpy(nb, name, nl);
    nb[nl] = 0;
    snprintf(q, sizeof q, "%s.%s", mb, nb);
    if (forbidden(mb, nb))
        return fail(m, CV_ERR_FORMAT, "pickle references forbidden global '%s'", q);
    pv *g = pk_new(m->a, PV_GLOBAL);
    if (!g) return NOMEM(m);
    g->u.glob.qualname = arena_alloc(m->a, strlen(q) + 1);
    if (!g->u.glob.qualname) return NOMEM(m);
    strcpy((char *)g->u.glob.qualname, q);
    g->u.glob.dtype = -1;
    for (size_t i = 0; i < sizeof known_globals / sizeof *known_globals; i++)
        if (!strcmp(q, known_globals[i].name)) g->u.glob.kind = known_globals[i].kind;
    for (size_t i = 0; i < sizeof storage_types / sizeof *storage_types; i++)
        if (!strcmp(q, storage_types[i].name)) {
            g->u.glob.kind = PG_STORAGE_TYPE;
            g->u.glob.dtype = storage_types[i].dtype;
        }
    return push(m, g);
}

static cv_status op_global(machine *m)
{
    const char *s = (const char *)m->buf + m->pos;
    size_t avail = m->len - m->pos, lim = avail < MAX_GLOBAL ? avail : MAX_GLOBAL;
    const char *nl1 = memchr(s, '\n', lim);
    if (!nl1) return fail(m, CV_ERR_FORMAT, "unterminated GLOBAL");
    const char *rest = nl1 + 1;
    const char *nl2 = memchr(rest, '\n', lim - (size_t)(rest - s));
    if (!nl2) return fail(m, CV_ERR_FORMAT, "unterminated GLOBAL");
    m->pos += (size_t)(nl2 + 1 - s);
    return make_global(m, s, (size_t)(nl1 - s), rest, (size_t)(nl2 - rest));
}

static cv_status op_stack_global(machine *m)
{
    pv *name, *mod;
    POP(m, name);
    POP(m, mod);
    if (name->kind != PV_STR || mod->kind != PV_STR)
        return fail(m, CV_ERR_FORMAT, "STACK_GLOBAL needs two strings");
    return make_global(m, mod->u.str.s, mod->u.str.n, name->u.str.s, name->u.str.n);
}

/* ---- calls ---- */
static cv_status int_tuple(machine *m, const pv *t, const char *what, int *ndim, int64_t *out)
{
    if (t->kind != PV_TUPLE && t->kind != PV_LIST)
        return fail(m, CV_ERR_FORMAT, "tensor %s is a %s, not a tuple", what, pk_kind_name(t));
    if (t->u.seq.n > CV_MAX_DIMS)
        return fail(m, CV_ERR_UNSUPPORTED, "tensor has %zu dimensions (at most %d supported)",
                    t->u.seq.n, CV_MAX_DIMS);
    for (size_t i = 0; i < t->u.seq.n; i++) {
        const pv *d = t->u.seq.v[i];
        if (d->kind != PV_INT || d->u.i < 0)
            return fail(m, CV_ERR_FORMAT, "tensor %s[%zu] is not a non-negative int", what, i);
        out[i] = d->u.i;
    }
    *ndim = (int)t->u.seq.n;
    return CV_OK;
}

static cv_status call(machine *m, const pv *fn, const pv *args, int depth, pv **out);

static cv_status rebuild_tensor(machine *m, const pv *args, pv **out)
{
    if (args->u.seq.n < 4)
        return fail(m, CV_ERR_FORMAT, "_rebuild_tensor takes at least 4 arguments, got %zu",
                    args->u.seq.n);
    pv **a = args->u.seq.v;
    if (a[0]->kind != PV_STORAGE)
        return fail(m, CV_ERR_FORMAT, "_rebuild_tensor: first argument is a %s, not a storage",
                    pk_kind_name(a[0]));
    if (a[1]->kind != PV_INT || a[1]->u.i < 0)
        return fail(m, CV_ERR_FORMAT, "_rebuild_tensor: bad storage offset");
    pv *t = pk_new(m->a, PV_TENSOR);
    if (!t) return NOMEM(m);
    t->u.tensor.storage = a[0];
    t->u.tensor.offset = a[1]->u.i;
    int nd, ns;
    cv_status s = int_tuple(m, a[2], "size", &nd, t->u.tensor.size);
    if (s == CV_OK) s = int_tuple(m, a[3], "stride", &ns, t->u.tensor.stride);
    if (s != CV_OK) return s;
    if (nd != ns)
        return fail(m, CV_ERR_FORMAT, "tensor size has %d dimensions but stride has %d", nd, ns);
    t->u.tensor.ndim = nd;
    *out = t;
    return CV_OK;
}

/* OrderedDict([[k, v], ...]): how Python 2 pickled it (old torch checkpoints). */
static cv_status ordered_dict_items(machine *m, pv *d, const pv *items, size_t nargs)
{
    if (nargs != 1 || (items->kind != PV_LIST && items->kind != PV_TUPLE))
        return fail(m, CV_ERR_UNSUPPORTED, "OrderedDict built from unsupported arguments");
    for (size_t i = 0; i < items->u.seq.n; i++) {
        const pv *kv = items->u.seq.v[i];
        if ((kv->kind != PV_LIST && kv->kind != PV_TUPLE) || kv->u.seq.n != 2)
            return fail(m, CV_ERR_FORMAT, "OrderedDict item %zu is not a (key, value) pair", i);
        cv_status s = seq_add(m, d, kv->u.seq.v, 2);
        if (s != CV_OK) return s;
    }
    return CV_OK;
}

/* What REDUCE / NEWOBJ of `fn` with the tuple `args` yields. */
static cv_status call(machine *m, const pv *fn, const pv *args, int depth, pv **out)
{
    if (fn->kind != PV_GLOBAL)
        return fail(m, CV_ERR_FORMAT, "call of a %s, which is not callable", pk_kind_name(fn));
    if (args->kind != PV_TUPLE)
        return fail(m, CV_ERR_FORMAT, "call arguments are a %s, not a tuple", pk_kind_name(args));
    size_t n = args->u.seq.n;
    pv **a = args->u.seq.v;
    switch (fn->u.glob.kind) {
    case PG_ORDERED_DICT:
        *out = pk_new(m->a, PV_DICT);
        if (!*out) return NOMEM(m);
        return n ? ordered_dict_items(m, *out, a[0], n) : CV_OK;
    case PG_REBUILD_TENSOR_V2:
        return rebuild_tensor(m, args, out);
    case PG_REBUILD_PARAMETER:
    case PG_REBUILD_PARAMETER_STATE:
        if (n < 1 || a[0]->kind != PV_TENSOR)
            return fail(m, CV_ERR_FORMAT, "%s needs a tensor argument", fn->u.glob.qualname);
        *out = a[0];
        return CV_OK;
    case PG_REBUILD_FROM_TYPE_V2:
        /* (func, type, args, state): a tensor subclass; only plain tensors/parameters. */
        if (n != 4 || a[1]->kind != PV_GLOBAL || a[1]->u.glob.kind != PG_TENSOR_CLASS)
            return fail(m, CV_ERR_UNSUPPORTED, "_rebuild_from_type_v2 of an unsupported type");
        if (depth >= MAX_REBUILD) return fail(m, CV_ERR_FORMAT, "rebuild nested too deeply");
        return call(m, a[0], a[2], depth + 1, out);
    default:
        /* Anything else (argparse.Namespace, torch.device, numpy scalars...) becomes a
         * placeholder that fails only where a tensor is needed. */
        *out = pk_new(m->a, PV_OBJECT);
        if (!*out) return NOMEM(m);
        (*out)->u.cls = fn;
        return CV_OK;
    }
}

static cv_status op_reduce(machine *m)
{
    pv *args, *fn, *res = NULL;
    POP(m, args);
    POP(m, fn);
    cv_status s = call(m, fn, args, 0, &res);
    return s != CV_OK ? s : push(m, res);
}

static cv_status op_build(machine *m)
{
    pv *state, *obj;
    POP(m, state);
    if (!(obj = top(m))) return fail(m, CV_ERR_FORMAT, "stack underflow");
    if (obj->kind != PV_DICT && obj->kind != PV_OBJECT && obj->kind != PV_TENSOR)
        return fail(m, CV_ERR_FORMAT, "BUILD on a %s", pk_kind_name(obj));
    obj->state = state;
    return CV_OK;
}

static cv_status op_setitems(machine *m, size_t start)
{
    size_t n = m->sp - start;
    if (n % 2) return fail(m, CV_ERR_FORMAT, "SETITEMS with an odd number of items");
    if (start == 0) return fail(m, CV_ERR_FORMAT, "SETITEMS without a dict");
    pv *d = m->stack[start - 1];
    if (start - 1 < floor_(m)) return fail(m, CV_ERR_FORMAT, "stack underflow");
    cv_status s = CV_OK;
    if (d->kind == PV_DICT)
        s = seq_add(m, d, m->stack + start, n);
    else if (d->kind != PV_OBJECT) /* a placeholder (e.g. an unknown dict subclass) drops them */
        return fail(m, CV_ERR_FORMAT, "SETITEM on a %s", pk_kind_name(d));
    m->sp = start;
    return s;
}

static cv_status op_appends(machine *m, size_t start)
{
    if (start == 0 || start - 1 < floor_(m)) return fail(m, CV_ERR_FORMAT, "APPEND without a list");
    pv *l = m->stack[start - 1];
    cv_status s = CV_OK;
    if (l->kind == PV_LIST || l->kind == PV_SET)
        s = seq_add(m, l, m->stack + start, m->sp - start);
    else if (l->kind != PV_OBJECT)
        return fail(m, CV_ERR_FORMAT, "APPEND to a %s", pk_kind_name(l));
    m->sp = start;
    return s;
}

static cv_status op_long(machine *m, int lenbytes)
{
    if (!need(m, (size_t)lenbytes)) return fail(m, CV_ERR_FORMAT, "truncated");
    uint64_t n = rd_le(m->buf + m->pos, lenbytes);
    m->pos += (size_t)lenbytes;
    if (!need(m, (size_t)n)) return fail(m, CV_ERR_FORMAT, "truncated");
    if (n > 8) { /* kept as bytes: only the legacy format's magic number is one */
        pv *b = new_str(m, PV_BIGINT, m->buf + m->pos, (size_t)n);
        m->pos += (size_t)n;
        return push(m, b);
    }
    uint64_t u = rd_le(m->buf + m->pos, (int)n);
    if (n && n < 8 && (m->buf[m->pos + n - 1] & 0x80)) u |= ~(uint64_t)0 << (8 * n); /* sign */
    m->pos += (size_t)n;
    pv *v = pk_new(m->a, PV_INT);
    if (v) v->u.i = (int64_t)u;
    return push(m, v);
}

static cv_status step(machine *m, int *done)
{
    m->op_pos = m->pos;
    if (!need(m, 1)) return fail(m, CV_ERR_FORMAT, "truncated: no STOP opcode");
    uint8_t op = m->buf[m->pos++];
    pv *v, *w;
    size_t start = 0;
    cv_status s;
    switch (op) {
    case 0x80: /* PROTO */
        if (!need(m, 1)) return fail(m, CV_ERR_FORMAT, "truncated");
        if (m->buf[m->pos] > 5)
            return fail(m, CV_ERR_UNSUPPORTED, "pickle protocol %d", m->buf[m->pos]);
        m->pos++;
        return CV_OK;
    case 0x95: /* FRAME: only a hint for buffered readers */
        if (!need(m, 8)) return fail(m, CV_ERR_FORMAT, "truncated");
        m->pos += 8;
        return CV_OK;
    case '.': /* STOP */
        *done = 1;
        return CV_OK;
    case '(': /* MARK */
        if (m->nmarks == m->mcap) {
            if (m->mcap >= MAX_MARKS) return fail(m, CV_ERR_FORMAT, "MARKs nested too deeply");
            size_t cap = m->mcap ? m->mcap * 2 : 16;
            size_t *mk = realloc(m->marks, cap * sizeof *mk);
            if (!mk) return NOMEM(m);
            m->marks = mk;
            m->mcap = cap;
        }
        m->marks[m->nmarks++] = m->sp;
        return CV_OK;
    case ')':
        return push(m, pk_new(m->a, PV_TUPLE));
    case ']':
        return push(m, pk_new(m->a, PV_LIST));
    case '}':
        return push(m, pk_new(m->a, PV_DICT));
    case 0x8f:
        return push(m, pk_new(m->a, PV_SET)); /* EMPTY_SET */
    case 'N':
        return push(m, pk_new(m->a, PV_NONE));
    case 0x88: /* NEWTRUE */
    case 0x89: /* NEWFALSE */
        v = pk_new(m->a, PV_BOOL);
        if (v) v->u.i = op == 0x88;
        return push(m, v);
    case 't':  /* TUPLE */
    case 'l':  /* LIST */
    case 'd':  /* DICT */
    case 0x91: /* FROZENSET */
        if ((s = pop_mark(m, &start)) != CV_OK) return s;
        if (op == 'd' && (m->sp - start) % 2)
            return fail(m, CV_ERR_FORMAT, "DICT with an odd number of items");
        v = new_seq(m,
                    op == 't'   ? PV_TUPLE
                    : op == 'l' ? PV_LIST
                    : op == 'd' ? PV_DICT
                                : PV_SET,
                    m->stack + start, m->sp - start);
        m->sp = start;
        return push(m, v);
    case 0x85:   /* TUPLE1 */
    case 0x86:   /* TUPLE2 */
    case 0x87: { /* TUPLE3 */
        size_t n = (size_t)(op - 0x84);
        if (m->sp - floor_(m) < n) return fail(m, CV_ERR_FORMAT, "stack underflow");
        v = new_seq(m, PV_TUPLE, m->stack + m->sp - n, n);
        m->sp -= n;
        return push(m, v);
    }
    case 'J':   /* BININT */
    case 'K':   /* BININT1 */
    case 'M': { /* BININT2 */
        int n = op == 'J' ? 4 : op == 'K' ? 1 : 2;
        if (!need(m, (size_t)n)) return fail(m, CV_ERR_FORMAT, "truncated");
        uint64_t u = rd_le(m->buf + m->pos, n);
        m->pos += (size_t)n;
        v = pk_new(m->a, PV_INT);
        if (v) v->u.i = op == 'J' ? (int64_t)(int32_t)(uint32_t)u : (int64_t)u;
        return push(m, v);
    }
    case 0x8a:
        return op_long(m, 1); /* LONG1 */
    case 0x8b:
        return op_long(m, 4); /* LONG4 */
    case 'G': {               /* BINFLOAT, big-endian */
        if (!need(m, 8)) return fail(m, CV_ERR_FORMAT, "truncated");
        uint64_t u = 0;
        for (int i = 0; i < 8; i++) u = u << 8 | m->buf[m->pos + (size_t)i];
        m->pos += 8;
        v = pk_new(m->a, PV_FLOAT);
        if (v) memcpy(&v->u.f, &u, 8);
        return push(m, v);
    }
    case 'X':
        return op_str(m, PV_STR, 4); /* BINUNICODE */
    case 0x8c:
        return op_str(m, PV_STR, 1); /* SHORT_BINUNICODE */
    case 0x8d:
        return op_str(m, PV_STR, 8); /* BINUNICODE8 */
    case 'U':
        return op_str(m, PV_STR, 1); /* SHORT_BINSTRING (py2 str) */
    case 'T':
        return op_str(m, PV_STR, 4); /* BINSTRING */
    case 'C':
        return op_str(m, PV_BYTES, 1); /* SHORT_BINBYTES */
    case 'B':
        return op_str(m, PV_BYTES, 4); /* BINBYTES */
    case 0x8e:
        return op_str(m, PV_BYTES, 8); /* BINBYTES8 */
    case 'c':
        return op_global(m);
    case 0x93:
        return op_stack_global(m);
    case 'R':
        return op_reduce(m);
    case 0x81: /* NEWOBJ: cls.__new__(cls, *args) */
        return op_reduce(m);
    case 'b':
        return op_build(m);
    case 'a': /* APPEND */
        if (m->sp - floor_(m) < 2) return fail(m, CV_ERR_FORMAT, "stack underflow");
        return op_appends(m, m->sp - 1);
    case 'e':  /* APPENDS */
    case 0x90: /* ADDITEMS */
        if ((s = pop_mark(m, &start)) != CV_OK) return s;
        return op_appends(m, start);
    case 's': /* SETITEM */
        if (m->sp - floor_(m) < 3) return fail(m, CV_ERR_FORMAT, "stack underflow");
        return op_setitems(m, m->sp - 2);
    case 'u': /* SETITEMS */
        if ((s = pop_mark(m, &start)) != CV_OK) return s;
        return op_setitems(m, start);
    case 'Q': /* BINPERSID */
        POP(m, v);
        if (!m->o->persid) return fail(m, CV_ERR_FORMAT, "unexpected persistent id");
        w = m->o->persid(m->ctx, m->o->user, m->a, v);
        if (!w) return CV_ERR_FORMAT;
        return push(m, w);
    case 'h': /* BINGET */
        if (!need(m, 1)) return fail(m, CV_ERR_FORMAT, "truncated");
        return memo_get(m, m->buf[m->pos++]);
    case 'j': /* LONG_BINGET */
        if (!need(m, 4)) return fail(m, CV_ERR_FORMAT, "truncated");
        m->pos += 4;
        return memo_get(m, rd_le(m->buf + m->pos - 4, 4));
    case 'q': /* BINPUT */
        if (!need(m, 1)) return fail(m, CV_ERR_FORMAT, "truncated");
        return memo_put(m, m->buf[m->pos++]);
    case 'r': /* LONG_BINPUT */
        if (!need(m, 4)) return fail(m, CV_ERR_FORMAT, "truncated");
        m->pos += 4;
        return memo_put(m, rd_le(m->buf + m->pos - 4, 4));
    case 0x94: /* MEMOIZE: the next index is the memo's size, as in pickle.py */
        return memo_put(m, m->nset);
    case '0': /* POP */
        if (m->sp > floor_(m)) {
            m->sp--;
            return CV_OK;
        }
        /* POP of a mark (pickle's "pop the topmost stack item", where the mark is one) */
        if (m->nmarks && m->marks[m->nmarks - 1] == m->sp) {
            m->nmarks--;
            return CV_OK;
        }
        return fail(m, CV_ERR_FORMAT, "stack underflow");
    case '1': /* POP_MARK */
        if ((s = pop_mark(m, &start)) != CV_OK) return s;
        m->sp = start;
        return CV_OK;
    case '2': /* DUP */
        if (!(v = top(m))) return fail(m, CV_ERR_FORMAT, "stack underflow");
        return push(m, v);
    default:
        return fail(m, CV_ERR_UNSUPPORTED, "unsupported pickle opcode 0x%02x", op);
    }
}

cv_status pk_load(cv_ctx *ctx, const pk_opts *o, pk_arena *a, const uint8_t *buf, size_t len,
                  size_t *used, pv **out)
{
    machine m = {.ctx = ctx, .o = o, .a = a, .buf = buf, .len = len};
    *out = NULL;
    cv_status s = CV_OK;
    int done = 0;
    while (s == CV_OK && !done) s = step(&m, &done);
    if (s == CV_OK) {
        if (m.sp != 1 || m.nmarks)
            s = fail(&m, CV_ERR_FORMAT,
                     "STOP with %zu items and %zu marks "
                     "on the stack",
                     m.sp, m.nmarks);
        else {
            *out = m.stack[0];
            if (used) *used = m.pos;
        }
    }
    free(m.stack);
    free(m.marks);
    free(m.memo);
    return s;
}
