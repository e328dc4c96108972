/* cvision bench: images/s of the eval-mode forward pass, or of a full training step with --train
 * (median over timed iterations), and the process's peak resident memory. */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "commands.h"
#include "util.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: cvision bench -m ARCH | --all [--batch N[,N...]] [--res R] [--threads T]\n"
            "                     [--warmup W] [--seconds S | --iters K] [--classes K]\n"
            "                     [--train [--amp bf16]] [--backend cpu|ref] [--profile] [--json]\n"
            "Times the eval-mode forward pass on random input and prints images/s (median).\n"
            "W untimed passes first (default 2; the first plans), then timed passes until S\n"
            "seconds have passed (default 3, at least one pass, at most 200), or exactly K.\n"
            "--all times every registered architecture (one row per architecture and batch);\n"
            "--all --list only prints their names.\n"
            "--train times a whole training step instead: training-mode forward,\n"
            "cross-entropy loss and its gradient, backward, and an SGD step (momentum 0.9).\n"
            "--amp bf16 runs the training step's convolutions and linear layers in bf16.\n"
            "--classes sets the head size (default 1000).\n"
            "--profile adds the time per graph op over the timed runs, split into oneDNN\n"
            "primitives, reorders between layouts and reference-kernel fallbacks.\n");
}

static double peak_rss_mb(void)
{
    struct rusage ru;
    return getrusage(RUSAGE_SELF, &ru) ? 0 : ru.ru_maxrss / 1024.0; /* ru_maxrss is in KiB */
}

/* CPU time of the whole process (all threads): on a machine shared with other jobs it counts
 * only this process's work, where wall time also counts the waits for a core. */
static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cli_cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* The pieces of one timed iteration (seconds). */
enum { T_TOTAL, T_FORWARD, T_BACKWARD, T_OPTIM, T_PARTS };

typedef struct {
    cv_model *m;
    cv_tensor *x, *y, *target, *grad;
    cv_optim *opt;
} bench_state;

/* One iteration: the eval forward, or a training step as a training loop runs it. */
static cv_status iteration(cv_ctx *ctx, bench_state *b, int train, double t[T_PARTS])
{
    double t0 = cli_now();
    cv_tensor_free(b->y);
    b->y = NULL;
    cv_status s = cv_model_forward(ctx, b->m, b->x, &b->y);
    double t1 = cli_now();
    if (s || !train) {
        t[T_TOTAL] = t[T_FORWARD] = t1 - t0;
        return s;
    }
    double loss;
    cv_model_zero_grad(b->m);
    if ((s = cv_loss_cross_entropy(ctx, b->y, b->target, NULL, &loss, b->grad)) ||
        (s = cv_model_backward(ctx, b->m, b->grad)))
        return s;
    double t2 = cli_now();
    if (!b->opt) { /* the gradient table exists once a training forward has run */
        cv_optim_config cfg;
        cv_optim_config_default(CV_OPTIM_SGD, &cfg);
        cfg.lr = 0.01;
        cfg.momentum = 0.9;
        if ((s = cv_optim_new(ctx, &cfg, &b->opt)) ||
            (s = cv_optim_add_state(ctx, b->opt, cv_model_params(b->m), cv_model_grads(b->m),
                                    NULL)))
            return s;
    }
    /* No cv_model_params_changed here: a training plan re-lays the weights out from the parameter
     * tensors every step (src/backend/cpu/dnnl_train.c), so dropping it would only replan. */
    if ((s = cv_optim_step(ctx, b->opt, 0.01))) return s;
    double t3 = cli_now();
    t[T_TOTAL] = t3 - t0;
    t[T_FORWARD] = t1 - t0;
    t[T_BACKWARD] = t2 - t1;
    t[T_OPTIM] = t3 - t2;
    return CV_OK;
}

typedef struct {
    int batch, res, iters, warmup, train, classes, profile;
    double seconds;
    const char *amp; /* NULL or "bf16" */
    cv_backend_kind backend;
} bench_opts;

/* Times one architecture at one batch size and adds its result to `json` or prints it. */
static cv_status bench_one(cv_ctx *ctx, const char *arch, const bench_opts *o, cJSON *json)
{
    bench_state b = {0};
    double *times = NULL;
    int batch = o->batch, train = o->train, iters = o->iters;
    int64_t shape[] = {batch, 3, o->res, o->res}, tshape[] = {batch},
            gshape[] = {batch, o->classes};
    cv_status s;
    if ((s = cv_model_create(ctx, arch, o->classes, &b.m)) ||
        (s = cv_model_init_weights(ctx, b.m, 1)) ||
        (s = cv_model_set_backend(ctx, b.m, o->backend)) ||
        (s = cv_model_set_training(ctx, b.m, train)) || (s = cv_model_set_amp(ctx, b.m, o->amp)) ||
        (s = cv_tensor_new(ctx, CV_F32, 4, shape, &b.x)) ||
        (s = cv_tensor_new(ctx, CV_I64, 1, tshape, &b.target)) ||
        (s = cv_tensor_new(ctx, CV_F32, 2, gshape, &b.grad)))
        goto done;
    for (int64_t i = 0; i < cv_tensor_numel(b.x); i++)
        ((float *)b.x->data)[i] = (float)((i * 7919) % 255) / 255.0f - 0.5f;
    for (int64_t i = 0; i < batch; i++) ((int64_t *)b.target->data)[i] = (i * 37) % o->classes;
    /* warm-up: the first call plans (primitive creation, weight reorders) */
    double t[T_PARTS];
    for (int w = 0; w < o->warmup && !s; w++) s = iteration(ctx, &b, train, t);
    if (s) goto done;
    int cap = iters ? iters : 200, n = 0; /* timed passes: exactly --iters, or --seconds' worth */
    times = malloc((size_t)cap * (T_PARTS + 1) * sizeof *times);
    if (!times) {
        s = cv_fail(ctx, CV_ERR_NOMEM, "out of memory");
        goto done;
    }
    if (o->profile && (s = cv_model_profile(ctx, b.m, 1))) goto done;
    double *cpu = times + T_PARTS * cap, t_start = cli_now();
    while (n < cap && !s && (iters || n == 0 || cli_now() - t_start < o->seconds)) {
        double c0 = cpu_now();
        s = iteration(ctx, &b, train, t);
        cpu[n] = cpu_now() - c0;
        for (int k = 0; k < T_PARTS; k++) times[k * cap + n] = t[k];
        n++;
    }
    if (s) goto done;
    iters = n;
    double med[T_PARTS], total = 0, cpu_med = median(cpu, n);
    for (int k = 0; k < T_PARTS; k++) med[k] = median(times + k * cap, n);
    for (int i = 0; i < n; i++) total += times[i]; /* T_TOTAL's row (sorted, but a sum) */
    double ips = batch / med[T_TOTAL], rss = peak_rss_mb();
    const char *mode = train ? "training" : "inference";
    cv_profile_row rows[3 * 64];
    int nrows = o->profile ? cv_model_profile_rows(b.m, rows, 3 * 64) : 0;
    if (nrows > 3 * 64) nrows = 3 * 64;
    if (json) {
        cJSON *r = cJSON_CreateObject();
        cJSON_AddStringToObject(r, "arch", arch);
        cJSON_AddStringToObject(r, "mode", mode);
        cJSON_AddStringToObject(r, "backend", o->backend == CV_BACKEND_REF ? "ref" : "cpu");
        cJSON_AddNumberToObject(r, "batch", batch);
        cJSON_AddNumberToObject(r, "res", o->res);
        cJSON_AddNumberToObject(r, "classes", o->classes);
        cJSON_AddNumberToObject(r, "threads", cv_ctx_threads(ctx));
        cJSON_AddStringToObject(r, "amp", o->amp ? o->amp : "off");
        cJSON_AddNumberToObject(r, "warmup", o->warmup);
        cJSON_AddNumberToObject(r, "iters", iters);
        cJSON_AddNumberToObject(r, "ms_per_batch_median", med[T_TOTAL] * 1e3);
        cJSON_AddNumberToObject(r, "ms_per_batch_min", times[0] * 1e3);
        cJSON_AddNumberToObject(r, "cpu_ms_per_batch_median", cpu_med * 1e3);
        if (train) {
            cJSON_AddNumberToObject(r, "ms_forward_median", med[T_FORWARD] * 1e3);
            cJSON_AddNumberToObject(r, "ms_backward_median", med[T_BACKWARD] * 1e3);
            cJSON_AddNumberToObject(r, "ms_optimizer_median", med[T_OPTIM] * 1e3);
        }
        cJSON_AddNumberToObject(r, "images_per_s", ips);
        cJSON_AddNumberToObject(r, "peak_rss_mb", rss);
        if (o->profile) {
            cJSON *pa = cJSON_AddArrayToObject(r, "profile");
            for (int i = 0; i < nrows; i++) {
                cJSON *q = cJSON_CreateObject();
                cJSON_AddStringToObject(q, "op", rows[i].op);
                cJSON_AddStringToObject(q, "how", rows[i].how);
                cJSON_AddNumberToObject(q, "ms_per_batch", rows[i].seconds * 1e3 / iters);
                cJSON_AddNumberToObject(q, "calls_per_batch", (double)rows[i].calls / iters);
                cJSON_AddItemToArray(pa, q);
            }
        }
        cJSON_AddItemToArray(json, r);
    } else {
        printf("%s %s%s batch %d %dx%d, %d threads, %s: %.2f images/s (median %.2f ms/batch over "
               "%d runs; CPU time %.2f ms/batch), peak RSS %.0f MB\n",
               arch, mode, o->amp ? " (bf16 amp)" : "", batch, o->res, o->res, cv_ctx_threads(ctx),
               o->backend == CV_BACKEND_REF ? "ref" : "cpu", ips, med[T_TOTAL] * 1e3, iters,
               cpu_med * 1e3, rss);
        if (train)
            printf("  forward %.2f ms, loss + backward %.2f ms, optimizer %.2f ms (medians)\n",
                   med[T_FORWARD] * 1e3, med[T_BACKWARD] * 1e3, med[T_OPTIM] * 1e3);
        if (o->profile) {
            double sum = 0;
            for (int i = 0; i < nrows; i++) sum += rows[i].seconds;
            printf("  profile (ms per batch, mean of %d runs; steps %.1f of %.1f ms):\n", iters,
                   sum * 1e3 / iters, total * 1e3 / iters);
            for (int i = 0; i < nrows; i++)
                printf("  %-20s %-9s %9.2f ms %5.1f%% %7.1f calls\n", rows[i].op, rows[i].how,
                       rows[i].seconds * 1e3 / iters, sum > 0 ? 100 * rows[i].seconds / sum : 0,
                       (double)rows[i].calls / iters);
        }
        fflush(stdout);
    }
done:
    free(times);
    cv_optim_free(b.opt);
    cv_tensor_free(b.x);
    cv_tensor_free(b.y);
    cv_tensor_free(b.target);
    cv_tensor_free(b.grad);
    cv_model_free(b.m);
    return s;
}

/* "1,32" -> {1, 32} */
static cv_status parse_batches(cv_ctx *ctx, const char *arg, int *b, int max, int *n)
{
    char buf[128];
    if (strlen(arg) >= sizeof buf)
        return cv_fail(ctx, CV_ERR_INVALID, "--batch: '%s' too long", arg);
    strcpy(buf, arg);
    *n = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        if (*n == max) return cv_fail(ctx, CV_ERR_INVALID, "--batch: at most %d sizes", max);
        cv_status s = cli_int(ctx, "--batch", tok, 1, 1 << 16, &b[(*n)++]);
        if (s) return s;
    }
    return *n ? CV_OK : cv_fail(ctx, CV_ERR_INVALID, "--batch: no size in '%s'", arg);
}

int cmd_bench(cv_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {{"model", required_argument, 0, 'm'},
                                         {"all", no_argument, 0, 'A'},
                                         {"batch", required_argument, 0, 'b'},
                                         {"res", required_argument, 0, 'r'},
                                         {"threads", required_argument, 0, 't'},
                                         {"iters", required_argument, 0, 'i'},
                                         {"warmup", required_argument, 0, 'W'},
                                         {"seconds", required_argument, 0, 'S'},
                                         {"backend", required_argument, 0, 'B'},
                                         {"classes", required_argument, 0, 'k'},
                                         {"train", no_argument, 0, 'T'},
                                         {"profile", no_argument, 0, 'P'},
                                         {"list", no_argument, 0, 'L'},
                                         {"json", no_argument, 0, 'j'},
                                         {"amp", required_argument, 0, 'a'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *arch = NULL;
    bench_opts o = {
        .res = 224, .warmup = 2, .seconds = 3, .classes = 1000, .backend = CV_BACKEND_CPU};
    int batches[8] = {1}, nbatch = 1, all = 0, list = 0, threads = 0, json = 0, c;
    cv_status s = CV_OK;
    optind = 1;
    while (!s && (c = getopt_long(argc, argv, "m:b:r:t:i:W:S:B:k:TPLja:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm':
            arch = optarg;
            break;
        case 'A':
            all = 1;
            break;
        case 'b':
            s = parse_batches(ctx, optarg, batches, 8, &nbatch);
            break;
        case 'r':
            s = cli_int(ctx, "--res", optarg, 1, 1 << 14, &o.res);
            break;
        case 't':
            s = cli_int(ctx, "--threads", optarg, 1, 4096, &threads);
            break;
        case 'i':
            s = cli_int(ctx, "--iters", optarg, 1, 1 << 20, &o.iters);
            break;
        case 'W':
            s = cli_int(ctx, "--warmup", optarg, 0, 1 << 20, &o.warmup);
            break;
        case 'S':
            s = cli_double(ctx, "--seconds", optarg, 0, 1e6, &o.seconds);
            break;
        case 'B':
            s = cli_backend(ctx, optarg, &o.backend);
            break;
        case 'k':
            s = cli_int(ctx, "--classes", optarg, 1, 1 << 20, &o.classes);
            break;
        case 'T':
            o.train = 1;
            break;
        case 'P':
            o.profile = 1;
            break;
        case 'L':
            list = 1;
            break;
        case 'a':
            o.amp = optarg;
            break;
        case 'j':
            json = 1;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (s) return cli_error(ctx);
    if (!arch == !all) {
        usage(stderr);
        return 2;
    }
    if (list) {
        for (int a = 0; all && a < cv_arch_count(); a++) puts(cv_arch_name(a));
        return 0;
    }
    if (threads) cv_ctx_set_threads(ctx, threads);
    cJSON *arr = json ? cJSON_CreateArray() : NULL;
    int narch = all ? cv_arch_count() : 1, failed = 0;
    for (int a = 0; a < narch; a++)
        for (int k = 0; k < nbatch; k++) {
            const char *name = all ? cv_arch_name(a) : arch;
            o.batch = batches[k];
            if (!(s = bench_one(ctx, name, &o, arr))) continue;
            if (!all) {
                cJSON_Delete(arr);
                return cli_error(ctx);
            }
            /* --all goes on past a failing architecture and reports it */
            failed++;
            if (arr) {
                cJSON *r = cJSON_CreateObject();
                cJSON_AddStringToObject(r, "arch", name);
                cJSON_AddNumberToObject(r, "batch", o.batch);
                cJSON_AddStringToObject(r, "error", cv_ctx_error(ctx));
                cJSON_AddItemToArray(arr, r);
            } else {
                printf("%s batch %d: error: %s\n", name, o.batch, cv_ctx_error(ctx));
            }
        }
    if (arr) {
        /* one measurement: its object alone, as before --all existed */
        cJSON *out = !all && nbatch == 1 ? cJSON_DetachItemFromArray(arr, 0) : arr;
        char *txt = out ? cJSON_Print(out) : NULL;
        if (txt) puts(txt);
        free(txt);
        if (out != arr) cJSON_Delete(out);
        cJSON_Delete(arr);
    }
    if (failed) {
        fprintf(stderr, "cvision: %d of %d measurements failed\n", failed, narch * nbatch);
        return 1;
    }
    return 0;
}
