/* Finite-difference gradient checks in double precision for every op's backward kernel: for a
 * random r, L(x) = sum(r * op(x)); the backward kernel given dy = r must equal dL/dx computed by
 * central differences, for inputs and parameters alike. */
#include <string.h>

#include "backend/ref/kernels.h"
#include "test.h"

static uint64_t rng = 12345;

static double urand(void) /* [-1, 1) */
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0 * 2 - 1;
}

static double *rand_vec(int64_t n)
{
    double *v = malloc((size_t)n * sizeof *v);
    for (int64_t i = 0; i < n; i++) v[i] = urand();
    return v;
}

/* The function under test: y = f(x), where `x` is the array being perturbed. */
typedef void (*fwd_fn)(void *ctx, double *y);

/* Checks analytic gradient `g` (of L w.r.t. the n-vector `x`) against central differences of
 * L = sum(r * f()) where f reads x through ctx. */
static double check_grad(const char *what, void *ctx, fwd_fn f, double *x, int64_t n,
                         const double *g, const double *r, int64_t ny)
{
    double *y = malloc((size_t)ny * sizeof *y), worst = 0;
    const double h = 1e-6;
    int64_t step = n > 60 ? n / 60 : 1; /* a spread sample of the coordinates */
    for (int64_t i = 0; i < n; i += step) {
        double x0 = x[i], lp = 0, lm = 0;
        x[i] = x0 + h;
        f(ctx, y);
        for (int64_t k = 0; k < ny; k++) lp += r[k] * y[k];
        x[i] = x0 - h;
        f(ctx, y);
        for (int64_t k = 0; k < ny; k++) lm += r[k] * y[k];
        x[i] = x0;
        double num = (lp - lm) / (2 * h), err = fabs(num - g[i]) / fmax(1.0, fabs(num));
        if (err > worst) worst = err;
    }
    free(y);
    fprintf(stderr, "  %-34s max rel err %.2e\n", what, worst);
    CHECK(worst < 1e-6);
    return worst;
}

/* ---- conv ---- */
typedef struct {
    double *x, *w, *b;
    cv_shape4 xs, ys;
    int kh, kw;
    cv_attrs a;
} conv_case;

static void conv_fwd(void *p, double *y)
{
    conv_case *c = p;
    ref_conv2d_f64(c->x, c->w, c->b, y, &c->xs, &c->ys, c->kh, c->kw, &c->a);
}

static void test_conv(void)
{
    struct {
        int c, o, h, w, k, s, p, d, g;
    } cases[] = {{3, 4, 7, 6, 3, 1, 1, 1, 1},
                 {4, 6, 9, 8, 3, 2, 1, 1, 2},
                 {6, 6, 7, 7, 3, 1, 2, 2, 6},
                 {2, 3, 5, 7, 1, 2, 0, 1, 1}};
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        conv_case c = {0};
        c.xs = (cv_shape4){{2, cases[t].c, cases[t].h, cases[t].w}, 4};
        c.kh = c.kw = cases[t].k;
        c.a = (cv_attrs){.sh = cases[t].s,
                         .sw = cases[t].s,
                         .ph = cases[t].p,
                         .pw = cases[t].p,
                         .dh = cases[t].d,
                         .dw = cases[t].d,
                         .groups = cases[t].g};
        c.ys =
            (cv_shape4){{2, cases[t].o, pool_out_size(cases[t].h, c.kh, c.a.sh, c.a.ph, c.a.dh, 0),
                         pool_out_size(cases[t].w, c.kw, c.a.sw, c.a.pw, c.a.dw, 0)},
                        4};
        int64_t nx = shape_numel(&c.xs), ny = shape_numel(&c.ys);
        int64_t nw = (int64_t)cases[t].o * (cases[t].c / cases[t].g) * c.kh * c.kw;
        c.x = rand_vec(nx), c.w = rand_vec(nw), c.b = rand_vec(cases[t].o);
        double *r = rand_vec(ny), *dx = calloc((size_t)nx, 8), *dw = calloc((size_t)nw, 8),
               *db = calloc((size_t)cases[t].o, 8);
        ref_conv2d_backward_f64(c.x, c.w, r, dx, dw, db, &c.xs, &c.ys, c.kh, c.kw, &c.a);
        char what[64];
        snprintf(what, sizeof what, "conv case %zu d/dx", t);
        check_grad(what, &c, conv_fwd, c.x, nx, dx, r, ny);
        snprintf(what, sizeof what, "conv case %zu d/dw", t);
        check_grad(what, &c, conv_fwd, c.w, nw, dw, r, ny);
        snprintf(what, sizeof what, "conv case %zu d/db", t);
        check_grad(what, &c, conv_fwd, c.b, cases[t].o, db, r, ny);
        free(c.x), free(c.w), free(c.b), free(r), free(dx), free(dw), free(db);
    }
}

/* ---- batch norm, training mode (batch statistics depend on x) ---- */
typedef struct {
    double *x, *w, *b;
    cv_shape4 s;
} bn_case;

static void bn_fwd(void *p, double *y)
{
    bn_case *c = p;
    double mean[16], var[16];
    ref_batch_stats_f64(c->x, &c->s, mean, var);
    ref_batchnorm_f64(c->x, y, &c->s, c->w, c->b, mean, var, 1e-5);
}

static void test_bn(void)
{
    cv_shape4 shapes[] = {{{3, 4, 5, 3}, 4}, {{5, 6, 0, 0}, 2}};
    for (int t = 0; t < 2; t++) {
        bn_case c = {.s = shapes[t]};
        int64_t n = shape_numel(&c.s), C = c.s.d[1];
        c.x = rand_vec(n), c.w = rand_vec(C), c.b = rand_vec(C);
        double *r = rand_vec(n), *dx = calloc((size_t)n, 8), *dw = calloc((size_t)C, 8),
               *db = calloc((size_t)C, 8), mean[16], var[16];
        ref_batch_stats_f64(c.x, &c.s, mean, var);
        ref_batchnorm_backward_f64(c.x, r, dx, dw, db, &c.s, c.w, mean, var, 1e-5);
        check_grad(t ? "batch_norm 2-D d/dx" : "batch_norm 4-D d/dx", &c, bn_fwd, c.x, n, dx, r, n);
        check_grad("batch_norm d/dweight", &c, bn_fwd, c.w, C, dw, r, n);
        check_grad("batch_norm d/dbias", &c, bn_fwd, c.b, C, db, r, n);
        free(c.x), free(c.w), free(c.b), free(r), free(dx), free(dw), free(db);
    }
}

/* ---- activations (inputs kept away from the kinks) ---- */
typedef struct {
    double *x;
    int64_t n;
    cv_act act;
} act_case;

static void act_fwd(void *p, double *y)
{
    act_case *c = p;
    ref_act_f64(c->x, y, c->n, c->act);
}

static void test_acts(void)
{
    const char *names[] = {"",     "relu", "relu6",   "hardswish", "hardsigmoid",
                           "silu", "gelu", "sigmoid", "tanh"};
    for (int a = ACT_RELU; a <= ACT_TANH; a++) {
        act_case c = {.n = 200, .act = (cv_act)a};
        c.x = rand_vec(c.n);
        for (int64_t i = 0; i < c.n; i++) {
            c.x[i] *= 8; /* cover every branch: (-8, 8) */
            double d = fmin(fmin(fabs(c.x[i]), fabs(c.x[i] - 6)),
                            fmin(fabs(c.x[i] - 3), fabs(c.x[i] + 3)));
            if (d < 1e-3) c.x[i] += 0.01;
        }
        double *r = rand_vec(c.n), *dx = calloc((size_t)c.n, 8);
        ref_act_backward_f64(c.x, r, dx, c.n, c.act);
        char what[64];
        snprintf(what, sizeof what, "%s d/dx", names[a]);
        check_grad(what, &c, act_fwd, c.x, c.n, dx, r, c.n);
        free(c.x), free(r), free(dx);
    }
    /* PyTorch's values at the kinks */
    CHECK(ref_act_grad1_f64(0, ACT_RELU) == 0 && ref_act_grad1_f64(6, ACT_RELU6) == 0 &&
          ref_act_grad1_f64(0, ACT_RELU6) == 0 && ref_act_grad1_f64(3, ACT_HARDSWISH) == 1.5 &&
          ref_act_grad1_f64(-3, ACT_HARDSWISH) == -0.5 &&
          ref_act_grad1_f64(3, ACT_HARDSIGMOID) == 0);
}

/* ---- pooling ---- */
typedef struct {
    double *x;
    cv_shape4 xs, ys;
    cv_attrs a;
    int kind; /* 0 max, 1 avg, 2 adaptive */
} pool_case;

static void pool_fwd(void *p, double *y)
{
    pool_case *c = p;
    if (c->kind == 0) ref_maxpool_f64(c->x, y, &c->xs, &c->ys, &c->a);
    if (c->kind == 1) ref_avgpool_f64(c->x, y, &c->xs, &c->ys, &c->a);
    if (c->kind == 2) ref_adaptive_avgpool_f64(c->x, y, &c->xs, &c->ys);
}

static void test_pools(void)
{
    struct {
        int kind, k, s, p, ceil, cip, oh, ow;
        const char *what;
    } cases[] = {{0, 3, 2, 1, 0, 0, 0, 0, "max_pool 3/2/1"},
                 {0, 2, 2, 0, 1, 0, 0, 0, "max_pool 2/2 ceil"},
                 {1, 3, 2, 1, 0, 1, 0, 0, "avg_pool 3/2/1 incl pad"},
                 {1, 3, 2, 1, 1, 0, 0, 0, "avg_pool 3/2/1 ceil excl pad"},
                 {1, 2, 2, 1, 1, 1, 0, 0, "avg_pool 2/2/1 ceil incl pad"},
                 {2, 0, 0, 0, 0, 0, 3, 4, "adaptive_avg_pool 3x4"},
                 {2, 0, 0, 0, 0, 0, 1, 1, "adaptive_avg_pool 1x1"}};
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        pool_case c = {.kind = cases[t].kind};
        c.xs = (cv_shape4){{2, 3, 7, 9}, 4};
        c.a = (cv_attrs){.kh = cases[t].k,
                         .kw = cases[t].k,
                         .sh = cases[t].s,
                         .sw = cases[t].s,
                         .ph = cases[t].p,
                         .pw = cases[t].p,
                         .dh = 1,
                         .dw = 1,
                         .ceil_mode = cases[t].ceil,
                         .count_include_pad = cases[t].cip};
        c.ys = c.kind == 2
                   ? (cv_shape4){{2, 3, cases[t].oh, cases[t].ow}, 4}
                   : (cv_shape4){{2, 3, pool_out_size(7, c.a.kh, c.a.sh, c.a.ph, 1, c.a.ceil_mode),
                                  pool_out_size(9, c.a.kw, c.a.sw, c.a.pw, 1, c.a.ceil_mode)},
                                 4};
        int64_t nx = shape_numel(&c.xs), ny = shape_numel(&c.ys);
        c.x = rand_vec(nx); /* distinct continuous values: no ties in max pooling */
        double *r = rand_vec(ny), *dx = calloc((size_t)nx, 8);
        if (c.kind == 0) ref_maxpool_backward_f64(c.x, r, dx, &c.xs, &c.ys, &c.a);
        if (c.kind == 1) ref_avgpool_backward_f64(r, dx, &c.xs, &c.ys, &c.a);
        if (c.kind == 2) ref_adaptive_avgpool_backward_f64(r, dx, &c.xs, &c.ys);
        check_grad(cases[t].what, &c, pool_fwd, c.x, nx, dx, r, ny);
        free(c.x), free(r), free(dx);
    }
}

/* ---- linear, binary ops, softmax ---- */
typedef struct {
    double *x, *w, *b;
    int64_t n, in, out;
} lin_case;

static void lin_fwd(void *p, double *y)
{
    lin_case *c = p;
    ref_linear_f64(c->x, c->w, c->b, y, c->n, c->in, c->out);
}

static void test_linear(void)
{
    lin_case c = {.n = 3, .in = 7, .out = 5};
    c.x = rand_vec(21), c.w = rand_vec(35), c.b = rand_vec(5);
    double *r = rand_vec(15), *dx = calloc(21, 8), *dw = calloc(35, 8), *db = calloc(5, 8);
    ref_linear_backward_f64(c.x, c.w, r, dx, dw, db, 3, 7, 5);
    check_grad("linear d/dx", &c, lin_fwd, c.x, 21, dx, r, 15);
    check_grad("linear d/dw", &c, lin_fwd, c.w, 35, dw, r, 15);
    check_grad("linear d/db", &c, lin_fwd, c.b, 5, db, r, 15);
    free(c.x), free(c.w), free(c.b), free(r), free(dx), free(dw), free(db);
}

typedef struct {
    double *a, *b;
    cv_shape4 as, bs;
    cv_op op;
} bin_case;

static void bin_fwd(void *p, double *y)
{
    bin_case *c = p;
    ref_binary_f64(c->op, c->a, c->b, y, &c->as, &c->bs);
}

static void test_binary(void)
{
    cv_shape4 full = {{2, 3, 4, 5}, 4}, bc = {{2, 3, 1, 1}, 4};
    struct {
        cv_op op;
        cv_shape4 bs;
        const char *what;
    } cases[] = {{OP_ADD, full, "add"}, {OP_MUL, full, "mul"}, {OP_MUL, bc, "mul broadcast"}};
    for (int t = 0; t < 3; t++) {
        bin_case c = {.as = full, .bs = cases[t].bs, .op = cases[t].op};
        int64_t na = shape_numel(&c.as), nb = shape_numel(&c.bs);
        c.a = rand_vec(na), c.b = rand_vec(nb);
        double *r = rand_vec(na), *da = calloc((size_t)na, 8), *db = calloc((size_t)nb, 8);
        ref_binary_backward_f64(c.op, c.a, c.b, r, da, db, &c.as, &c.bs);
        char what[64];
        snprintf(what, sizeof what, "%s d/da", cases[t].what);
        check_grad(what, &c, bin_fwd, c.a, na, da, r, na);
        snprintf(what, sizeof what, "%s d/db", cases[t].what);
        check_grad(what, &c, bin_fwd, c.b, nb, db, r, na);
        free(c.a), free(c.b), free(r), free(da), free(db);
    }
}

typedef struct {
    double *x;
} sm_case;

static void sm_fwd(void *p, double *y)
{
    ref_softmax_f64(((sm_case *)p)->x, y, 3, 6);
}

static void test_softmax(void)
{
    sm_case c = {rand_vec(18)};
    double *r = rand_vec(18), y[18], *dx = calloc(18, 8);
    ref_softmax_f64(c.x, y, 3, 6);
    ref_softmax_backward_f64(y, r, dx, 3, 6);
    check_grad("softmax d/dx", &c, sm_fwd, c.x, 18, dx, r, 18);
    free(c.x), free(r), free(dx);
}

/* ---- data movement: channel slice and shuffle ---- */
typedef struct {
    double *x;
    cv_shape4 xs, ys;
    int slice, arg; /* slice: first channel; shuffle: groups */
} move_case;

static void move_fwd(void *p, double *y)
{
    move_case *c = p;
    if (c->slice)
        ref_slice_f64(c->x, y, &c->xs, &c->ys, c->arg);
    else
        ref_shuffle_f64(c->x, y, &c->xs, c->arg);
}

static void test_slice_shuffle(void)
{
    move_case cases[] = {{.xs = {{2, 6, 3, 2}, 4}, .ys = {{2, 2, 3, 2}, 4}, .slice = 1, .arg = 3},
                         {.xs = {{2, 6, 3, 2}, 4}, .ys = {{2, 6, 3, 2}, 4}, .arg = 2},
                         {.xs = {{2, 6, 3, 2}, 4}, .ys = {{2, 6, 3, 2}, 4}, .arg = 3}};
    for (int t = 0; t < 3; t++) {
        move_case *c = &cases[t];
        int64_t nx = shape_numel(&c->xs), ny = shape_numel(&c->ys);
        c->x = rand_vec(nx);
        double *r = rand_vec(ny), *dx = calloc((size_t)nx, 8);
        if (c->slice)
            ref_slice_backward_f64(r, dx, &c->xs, &c->ys, c->arg);
        else
            ref_shuffle_backward_f64(r, dx, &c->xs, c->arg);
        char what[64];
        snprintf(what, sizeof what, "%s %d d/dx", c->slice ? "slice from" : "shuffle groups",
                 c->arg);
        check_grad(what, c, move_fwd, c->x, nx, dx, r, ny);
        free(c->x), free(r), free(dx);
    }
    /* the permutation itself: 6 channels in 2 groups -> 0 3 1 4 2 5 */
    double x[6] = {0, 1, 2, 3, 4, 5}, y[6];
    cv_shape4 s = {{1, 6, 1, 1}, 4};
    ref_shuffle_f64(x, y, &s, 2);
    CHECK(y[0] == 0 && y[1] == 3 && y[2] == 1 && y[3] == 4 && y[4] == 2 && y[5] == 5);
}

typedef struct {
    double *x;
    cv_shape4 s;
    float scale[4], shift[4];
} affine_case;

static void affine_fwd(void *p, double *y)
{
    affine_case *c = p;
    ref_affine_f64(c->x, y, &c->s, c->scale, c->shift);
}

static void test_affine(void)
{
    affine_case c = {.s = {{2, 3, 4, 3}, 4}, .scale = {0.5f, -2, 1.25f}, .shift = {0.1f, 0, -3}};
    int64_t n = shape_numel(&c.s);
    c.x = rand_vec(n);
    double *r = rand_vec(n), *dx = calloc((size_t)n, 8), y[72];
    ref_affine_backward_f64(r, dx, &c.s, c.scale);
    check_grad("affine d/dx", &c, affine_fwd, c.x, n, dx, r, n);
    ref_affine_f64(c.x, y, &c.s, c.scale, c.shift);
    CHECK(fabs(y[0] - (c.x[0] * 0.5 + 0.1f)) < 1e-12 && fabs(y[71] - (c.x[71] * 1.25 - 3)) < 1e-12);
    free(c.x), free(r), free(dx);
}

/* ---- LayerNorm (channels at each position) and channel scale ---- */
typedef struct {
    double *x, *w, *b;
    cv_shape4 s;
    int ln;
} norm_case;

static void norm_fwd(void *p, double *y)
{
    norm_case *c = p;
    if (c->ln)
        ref_layernorm_f64(c->x, y, &c->s, c->w, c->b, 1e-6f);
    else
        ref_channel_scale_f64(c->x, y, &c->s, c->w);
}

static void test_layernorm_scale(void)
{
    cv_shape4 shapes[2] = {{{2, 5, 3, 2}, 4}, {{3, 7}, 2}};
    for (int t = 0; t < 4; t++) {
        norm_case c = {.s = shapes[t % 2], .ln = t < 2};
        int64_t n = shape_numel(&c.s), C = c.s.d[1];
        c.x = rand_vec(n), c.w = rand_vec(C), c.b = rand_vec(C);
        double *r = rand_vec(n), *dx = calloc((size_t)n, 8), *dw = calloc((size_t)C, 8),
               *db = calloc((size_t)C, 8);
        if (c.ln)
            ref_layernorm_backward_f64(c.x, r, dx, dw, db, &c.s, c.w, 1e-6f);
        else
            ref_channel_scale_backward_f64(c.x, r, dx, dw, &c.s, c.w);
        char what[64];
        const char *op = c.ln ? "layernorm" : "channel scale";
        snprintf(what, sizeof what, "%s rank %d d/dx", op, c.s.rank);
        check_grad(what, &c, norm_fwd, c.x, n, dx, r, n);
        snprintf(what, sizeof what, "%s rank %d d/dweight", op, c.s.rank);
        check_grad(what, &c, norm_fwd, c.w, C, dw, r, n);
        if (c.ln) {
            snprintf(what, sizeof what, "%s rank %d d/dbias", op, c.s.rank);
            check_grad(what, &c, norm_fwd, c.b, C, db, r, n);
        }
        free(c.x), free(c.w), free(c.b), free(r), free(dx), free(dw), free(db);
    }
}

/* ---- transformer pieces: tokens (class token, position embeddings), attention, take ---- */
typedef struct {
    double *x, *cls, *pos;
    cv_shape4 xs;
    int op, heads; /* 0 tokens, 1 attention, 2 take */
} tf_case;

static void tf_fwd(void *p, double *y)
{
    tf_case *c = p;
    if (c->op == 0)
        ref_tokens_f64(c->x, y, &c->xs, c->cls, c->pos);
    else if (c->op == 1)
        ref_attention_f64(c->x, y, &c->xs, c->heads);
    else
        ref_take_f64(c->x, y, &c->xs, 2);
}

static void test_transformer_ops(void)
{
    /* tokens: 2 x 3 x (2x2 patches) -> 2 x 3 x 5 */
    tf_case t = {.xs = {{2, 3, 2, 2}, 4}};
    t.x = rand_vec(24), t.cls = rand_vec(3), t.pos = rand_vec(15);
    double *r = rand_vec(30), *dx = calloc(24, 8), *dc = calloc(3, 8), *dp = calloc(15, 8);
    ref_tokens_backward_f64(r, dx, dc, dp, &t.xs);
    check_grad("tokens d/dx", &t, tf_fwd, t.x, 24, dx, r, 30);
    check_grad("tokens d/dclass_token", &t, tf_fwd, t.cls, 3, dc, r, 30);
    check_grad("tokens d/dpos_embedding", &t, tf_fwd, t.pos, 15, dp, r, 30);
    double y[30];
    ref_tokens_f64(t.x, y, &t.xs, t.cls, t.pos);
    /* token 1 + (1*2 + 0) of feature 2 of sample 1 is patch (1, 0) plus its position embedding */
    CHECK(fabs(y[(1 * 3 + 2) * 5 + 3] - (t.x[(1 * 3 + 2) * 4 + 2] + t.pos[3 * 3 + 2])) < 1e-12);
    free(t.x), free(t.cls), free(t.pos), free(r), free(dx), free(dc), free(dp);
    /* attention: 2 samples, D = 4 in 2 heads, 5 tokens */
    tf_case a = {.xs = {{2, 12, 5, 1}, 4}, .op = 1, .heads = 2};
    a.x = rand_vec(120);
    r = rand_vec(40), dx = calloc(120, 8);
    ref_attention_backward_f64(a.x, r, dx, &a.xs, 2);
    check_grad("attention d/dqkv", &a, tf_fwd, a.x, 120, dx, r, 40);
    free(r), free(dx);
    /* with one token every query attends to it alone: y = v */
    cv_shape4 one = {{1, 6, 1, 1}, 4};
    double q[6] = {1, 2, 3, 4, 5, 6}, o[2];
    ref_attention_f64(q, o, &one, 1);
    CHECK(o[0] == 5 && o[1] == 6);
    tf_case k = {.x = a.x, .xs = {{2, 12, 5, 1}, 4}, .op = 2};
    r = rand_vec(24), dx = calloc(120, 8);
    ref_take_backward_f64(r, dx, &k.xs, 2);
    check_grad("take d/dx", &k, tf_fwd, k.x, 120, dx, r, 24);
    free(a.x), free(r), free(dx);
}

/* ---- Swin pieces: pad, crop, patch merging, shifted-window attention ---- */
typedef struct {
    double *x, *table;
    cv_shape4 xs, ys;
    int op, w, shift, heads; /* 0 pad, 1 crop, 2 merge, 3 window attention */
} swin_case;

static void swin_fwd(void *p, double *y)
{
    swin_case *c = p;
    if (c->op == 0)
        ref_pad_f64(c->x, y, &c->xs, &c->ys);
    else if (c->op == 1)
        ref_crop_f64(c->x, y, &c->xs, &c->ys);
    else if (c->op == 2)
        ref_merge_f64(c->x, y, &c->xs, &c->ys);
    else
        ref_window_attention_f64(c->x, y, &c->xs, c->w, c->shift, c->heads, c->table);
}

static void test_swin_ops(void)
{
    swin_case cases[] = {{.xs = {{2, 3, 5, 4}, 4}, .ys = {{2, 3, 6, 6}, 4}, .op = 0},
                         {.xs = {{2, 3, 6, 6}, 4}, .ys = {{2, 3, 5, 4}, 4}, .op = 1},
                         {.xs = {{2, 3, 5, 4}, 4}, .ys = {{2, 12, 3, 2}, 4}, .op = 2},
                         /* 6x9 map in 3x3 windows, shifted by 1 (masks), 2 heads of 2 channels */
                         {.xs = {{2, 12, 6, 9}, 4},
                          .ys = {{2, 4, 6, 9}, 4},
                          .op = 3,
                          .w = 3,
                          .shift = 1,
                          .heads = 2},
                         /* a side no larger than the window: that side's shift is zeroed */
                         {.xs = {{1, 6, 3, 6}, 4},
                          .ys = {{1, 2, 3, 6}, 4},
                          .op = 3,
                          .w = 3,
                          .shift = 1,
                          .heads = 1}};
    const char *names[] = {"pad", "crop", "patch merge", "window attention", "window attn 1 row"};
    for (int t = 0; t < 5; t++) {
        swin_case *c = &cases[t];
        int64_t nx = shape_numel(&c->xs), ny = shape_numel(&c->ys), nt = 0;
        c->x = rand_vec(nx);
        double *r = rand_vec(ny), *dx = calloc((size_t)nx, 8), *dt = NULL;
        if (c->op == 0) ref_pad_backward_f64(r, dx, &c->xs, &c->ys);
        if (c->op == 1) ref_crop_backward_f64(r, dx, &c->xs, &c->ys);
        if (c->op == 2) ref_merge_backward_f64(r, dx, &c->xs, &c->ys);
        if (c->op == 3) {
            nt = (2 * c->w - 1) * (2 * c->w - 1) * c->heads;
            c->table = rand_vec(nt), dt = calloc((size_t)nt, 8);
            ref_window_attention_backward_f64(c->x, r, dx, dt, &c->xs, c->w, c->shift, c->heads,
                                              c->table);
        }
        char what[64];
        snprintf(what, sizeof what, "%s d/dx", names[t]);
        check_grad(what, c, swin_fwd, c->x, nx, dx, r, ny);
        if (c->op == 3) {
            snprintf(what, sizeof what, "%s d/dtable", names[t]);
            check_grad(what, c, swin_fwd, c->table, nt, dt, r, ny);
        }
        if (c->op == 2) {  /* block 1 (channels C..2C) holds odd rows, even columns */
            double y[144]; /* 2 x 12 x 3 x 2 */
            ref_merge_f64(c->x, y, &c->xs, &c->ys);
            CHECK(y[((0 * 12 + 3 + 0) * 3 + 1) * 2 + 0] == c->x[((0 * 3 + 0) * 5 + 3) * 4 + 0]);
        }
        free(c->x), free(r), free(dx), free(dt);
        if (c->op == 3) free(c->table);
    }
}

/* ---- Swin V2's cosine window attention: input, logit scale, position-bias MLP, qkv bias ---- */
typedef struct {
    double *x, *prm[5];
    cv_shape4 xs;
    int w, shift, heads, hidden;
} swin2_case;

static void swin2_fwd(void *p, double *y)
{
    swin2_case *c = p;
    ref_window_attention_v2_f64(c->x, y, &c->xs, c->w, c->shift, c->heads, c->hidden,
                                (const double *const *)c->prm);
}

static void test_swin_v2(void)
{
    /* 6x9 map in 3x3 windows shifted by 1, 2 heads of 2 channels; a 1-row map (shift zeroed) */
    swin2_case cases[] = {{.xs = {{2, 12, 6, 9}, 4}, .w = 3, .shift = 1, .heads = 2, .hidden = 5},
                          {.xs = {{1, 6, 3, 6}, 4}, .w = 3, .shift = 1, .heads = 1, .hidden = 4}};
    const char *pn[5] = {"logit_scale", "cpb_mlp.0.weight", "cpb_mlp.0.bias", "cpb_mlp.2.weight",
                         "qkv.bias"};
    for (int t = 0; t < 2; t++) {
        swin2_case *c = &cases[t];
        int64_t nx = shape_numel(&c->xs), ny = nx / 3, C3 = c->xs.d[1];
        int64_t np[5] = {c->heads, 2 * c->hidden, c->hidden, (int64_t)c->heads * c->hidden, C3};
        c->x = rand_vec(nx);
        double *r = rand_vec(ny), *dx = calloc((size_t)nx, 8), *g[5];
        for (int k = 0; k < 5; k++) c->prm[k] = rand_vec(np[k]), g[k] = calloc((size_t)np[k], 8);
        /* the first head's logit scale above log(100): clamped, no gradient (zero k vectors,
         * where F.normalize divides by eps, are not differentiable: the models' padded tokens
         * cover them against torchvision) */
        c->prm[0][0] = 5.0;
        ref_window_attention_v2_backward_f64(c->x, r, dx, g, &c->xs, c->w, c->shift, c->heads,
                                             c->hidden, (const double *const *)c->prm);
        CHECK(g[0][0] == 0);
        char what[64];
        snprintf(what, sizeof what, "window attn v2 #%d d/dx", t);
        check_grad(what, c, swin2_fwd, c->x, nx, dx, r, ny);
        for (int k = 0; k < 5; k++) {
            snprintf(what, sizeof what, "window attn v2 #%d d/d%s", t, pn[k]);
            check_grad(what, c, swin2_fwd, c->prm[k], np[k], g[k], r, ny);
        }
        free(c->x), free(r), free(dx);
        for (int k = 0; k < 5; k++) free(c->prm[k]), free(g[k]);
    }
}

/* ---- MaxViT's block and grid attention ---- */
typedef struct {
    double *x, *table;
    cv_shape4 xs;
    int w, grid, heads;
} part_case;

static void part_fwd(void *p, double *y)
{
    part_case *c = p;
    ref_partition_attention_f64(c->x, y, &c->xs, c->w, c->grid, c->heads, c->table);
}

static void test_partition_attention(void)
{
    /* a 6x9 map in 3x3 windows, and as a 3x3 grid of pixels 2 rows and 3 columns apart */
    for (int grid = 0; grid < 2; grid++) {
        part_case c = {.xs = {{2, 12, 6, 9}, 4}, .w = 3, .grid = grid, .heads = 2};
        int64_t nx = shape_numel(&c.xs), ny = nx / 3, nt = 25 * 2;
        c.x = rand_vec(nx), c.table = rand_vec(nt);
        double *r = rand_vec(ny), *dx = calloc((size_t)nx, 8), *dt = calloc((size_t)nt, 8);
        ref_partition_attention_backward_f64(c.x, r, dx, dt, &c.xs, c.w, grid, c.heads, c.table);
        char what[64];
        snprintf(what, sizeof what, "%s attention d/dx", grid ? "grid" : "block");
        check_grad(what, &c, part_fwd, c.x, nx, dx, r, ny);
        snprintf(what, sizeof what, "%s attention d/dtable", grid ? "grid" : "block");
        check_grad(what, &c, part_fwd, c.table, nt, dt, r, ny);
        /* grid: pixel (0, 0) attends to (2, 0), (0, 3), ... only; changing pixel (1, 0)'s
         * key and value leaves its output alone */
        double *y0 = malloc((size_t)ny * 8), *y1 = malloc((size_t)ny * 8);
        part_fwd(&c, y0);
        for (int ch = 4; ch < 12; ch++) c.x[ch * 54 + 9] += 1; /* k, v of pixel (1, 0), n = 0 */
        part_fwd(&c, y1);
        CHECK((y0[0] == y1[0]) == grid);
        free(y0), free(y1), free(c.x), free(c.table), free(r), free(dx), free(dt);
    }
}

int main(void)
{
    RUN(test_conv);
    RUN(test_bn);
    RUN(test_acts);
    RUN(test_pools);
    RUN(test_linear);
    RUN(test_binary);
    RUN(test_softmax);
    RUN(test_slice_shuffle);
    RUN(test_affine);
    RUN(test_layernorm_scale);
    RUN(test_transformer_ops);
    RUN(test_swin_ops);
    RUN(test_swin_v2);
    RUN(test_partition_attention);
    TEST_EXIT();
}
