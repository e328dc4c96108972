/* cvision bench: images/s of the eval-mode forward pass, or of a full training step with --train
 * (median over timed iterations), and the process's peak resident memory. */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "commands.h"
#include "util.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: cvision bench -m ARCH [--batch N] [--res R] [--threads T] [--iters K]\n"
               "                     [--classes K] [--train [--amp bf16]] [--backend cpu|ref]\n"
               "                     [--json]\n"
               "Times the eval-mode forward pass on random input and prints images/s (median).\n"
               "--train times a whole training step instead: training-mode forward,\n"
               "cross-entropy loss and its gradient, backward, and an SGD step (momentum 0.9).\n"
               "--amp bf16 runs the training step's convolutions and linear layers in bf16.\n"
               "--classes sets the head size (default 1000).\n");
}

static double peak_rss_mb(void)
{
    struct rusage ru;
    return getrusage(RUSAGE_SELF, &ru) ? 0 : ru.ru_maxrss / 1024.0; /* ru_maxrss is in KiB */
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

int cmd_bench(cv_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},   {"batch", required_argument, 0, 'b'},
        {"res", required_argument, 0, 'r'},     {"threads", required_argument, 0, 't'},
        {"iters", required_argument, 0, 'i'},   {"backend", required_argument, 0, 'B'},
        {"classes", required_argument, 0, 'k'}, {"train", no_argument, 0, 'T'},
        {"amp", required_argument, 0, 'A'},     {"json", no_argument, 0, 'j'},
        {"help", no_argument, 0, 'h'},          {0, 0, 0, 0}};
    const char *arch = NULL, *amp = NULL;
    int batch = 1, res = 224, threads = 0, iters = 0, json = 0, train = 0, classes = 1000, c;
    cv_backend_kind backend = CV_BACKEND_CPU;
    cv_status s = CV_OK;
    optind = 1;
    while (!s && (c = getopt_long(argc, argv, "m:b:r:t:i:B:k:TA:jh", opts, NULL)) != -1) {
        switch (c) {
        case 'm':
            arch = optarg;
            break;
        case 'b':
            s = cli_int(ctx, "--batch", optarg, 1, 1 << 16, &batch);
            break;
        case 'r':
            s = cli_int(ctx, "--res", optarg, 1, 1 << 14, &res);
            break;
        case 't':
            s = cli_int(ctx, "--threads", optarg, 1, 4096, &threads);
            break;
        case 'i':
            s = cli_int(ctx, "--iters", optarg, 1, 1 << 20, &iters);
            break;
        case 'B':
            s = cli_backend(ctx, optarg, &backend);
            break;
        case 'k':
            s = cli_int(ctx, "--classes", optarg, 1, 1 << 20, &classes);
            break;
        case 'T':
            train = 1;
            break;
        case 'A':
            amp = optarg;
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
    if (!arch) {
        usage(stderr);
        return 2;
    }
    if (threads) cv_ctx_set_threads(ctx, threads);
    bench_state b = {0};
    double *times = NULL;
    int64_t shape[] = {batch, 3, res, res}, tshape[] = {batch}, gshape[] = {batch, classes};
    if ((s = cv_model_create(ctx, arch, classes, &b.m)) ||
        (s = cv_model_init_weights(ctx, b.m, 1)) || (s = cv_model_set_backend(ctx, b.m, backend)) ||
        (s = cv_model_set_training(ctx, b.m, train)) || (s = cv_model_set_amp(ctx, b.m, amp)) ||
        (s = cv_tensor_new(ctx, CV_F32, 4, shape, &b.x)) ||
        (s = cv_tensor_new(ctx, CV_I64, 1, tshape, &b.target)) ||
        (s = cv_tensor_new(ctx, CV_F32, 2, gshape, &b.grad)))
        goto done;
    for (int64_t i = 0; i < cv_tensor_numel(b.x); i++)
        ((float *)b.x->data)[i] = (float)((i * 7919) % 255) / 255.0f - 0.5f;
    for (int64_t i = 0; i < batch; i++) ((int64_t *)b.target->data)[i] = (i * 37) % classes;
    /* warm-up: the first call plans (primitive creation, weight reorders) */
    double t[T_PARTS], t0 = cli_now();
    for (int w = 0; w < 2 && !s; w++) s = iteration(ctx, &b, train, t);
    if (s) goto done;
    double warm = (cli_now() - t0) / 2;
    if (!iters) iters = warm > 0 ? (int)(3.0 / warm) : 10; /* about 3 s of timing */
    if (iters < 3) iters = 3;
    if (iters > 200) iters = 200;
    times = malloc((size_t)iters * T_PARTS * sizeof *times);
    if (!times) {
        s = cv_fail(ctx, CV_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (int i = 0; i < iters && !s; i++) {
        s = iteration(ctx, &b, train, t);
        for (int k = 0; k < T_PARTS; k++) times[k * iters + i] = t[k];
    }
    if (s) goto done;
    double med[T_PARTS];
    for (int k = 0; k < T_PARTS; k++) med[k] = median(times + k * iters, iters);
    double ips = batch / med[T_TOTAL], rss = peak_rss_mb();
    const char *mode = train ? "training" : "inference";
    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "arch", arch);
        cJSON_AddStringToObject(o, "mode", mode);
        cJSON_AddStringToObject(o, "backend", backend == CV_BACKEND_REF ? "ref" : "cpu");
        cJSON_AddNumberToObject(o, "batch", batch);
        cJSON_AddNumberToObject(o, "res", res);
        cJSON_AddNumberToObject(o, "classes", classes);
        cJSON_AddNumberToObject(o, "threads", cv_ctx_threads(ctx));
        cJSON_AddStringToObject(o, "amp", amp ? amp : "off");
        cJSON_AddNumberToObject(o, "iters", iters);
        cJSON_AddNumberToObject(o, "ms_per_batch_median", med[T_TOTAL] * 1e3);
        cJSON_AddNumberToObject(o, "ms_per_batch_min", times[0] * 1e3);
        if (train) {
            cJSON_AddNumberToObject(o, "ms_forward_median", med[T_FORWARD] * 1e3);
            cJSON_AddNumberToObject(o, "ms_backward_median", med[T_BACKWARD] * 1e3);
            cJSON_AddNumberToObject(o, "ms_optimizer_median", med[T_OPTIM] * 1e3);
        }
        cJSON_AddNumberToObject(o, "images_per_s", ips);
        cJSON_AddNumberToObject(o, "peak_rss_mb", rss);
        char *txt = cJSON_Print(o);
        if (txt) puts(txt);
        free(txt);
        cJSON_Delete(o);
    } else {
        printf(
            "%s %s%s batch %d %dx%d, %d threads, %s: %.2f images/s (median %.2f ms/batch over %d "
            "runs), peak RSS %.0f MB\n",
            arch, mode, amp && !strcmp(amp, "bf16") ? " (bf16 amp)" : "", batch, res, res,
            cv_ctx_threads(ctx), backend == CV_BACKEND_REF ? "ref" : "cpu", ips, med[T_TOTAL] * 1e3,
            iters, rss);
        if (train)
            printf("  forward %.2f ms, loss + backward %.2f ms, optimizer %.2f ms (medians)\n",
                   med[T_FORWARD] * 1e3, med[T_BACKWARD] * 1e3, med[T_OPTIM] * 1e3);
    }
done:
    free(times);
    cv_optim_free(b.opt);
    cv_tensor_free(b.x);
    cv_tensor_free(b.y);
    cv_tensor_free(b.target);
    cv_tensor_free(b.grad);
    cv_model_free(b.m);
    return s ? cli_error(ctx) : 0;
}
