/* cvision bench: images/s of the eval-mode forward pass (median over timed iterations). */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "util.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: cvision bench -m ARCH [--batch N] [--res R] [--threads T] [--iters K]\n"
               "                     [--backend cpu|ref] [--json]\n"
               "Times the eval-mode forward pass on random input and prints images/s (median).\n");
}

int cmd_bench(cv_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {{"model", required_argument, 0, 'm'},
                                         {"batch", required_argument, 0, 'b'},
                                         {"res", required_argument, 0, 'r'},
                                         {"threads", required_argument, 0, 't'},
                                         {"iters", required_argument, 0, 'i'},
                                         {"backend", required_argument, 0, 'B'},
                                         {"json", no_argument, 0, 'j'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *arch = NULL, *backend = "cpu";
    int batch = 1, res = 224, threads = 0, iters = 0, json = 0, c;
    cv_status s = CV_OK;
    optind = 1;
    while (!s && (c = getopt_long(argc, argv, "m:b:r:t:i:B:jh", opts, NULL)) != -1) {
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
            backend = optarg;
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
    if (strcmp(backend, "cpu") && strcmp(backend, "ref")) {
        cv_fail(ctx, CV_ERR_INVALID, "--backend: expected cpu or ref, got '%s'", backend);
        return cli_error(ctx);
    }
    if (threads) cv_ctx_set_threads(ctx, threads);
    cv_model *m = NULL;
    cv_tensor *x = NULL, *y = NULL;
    double *times = NULL;
    int64_t shape[] = {batch, 3, res, res};
    if ((s = cv_model_create(ctx, arch, 1000, &m)) || (s = cv_model_init_weights(ctx, m, 1)) ||
        (s = cv_model_set_backend(ctx, m,
                                  strcmp(backend, "ref") ? CV_BACKEND_CPU : CV_BACKEND_REF)) ||
        (s = cv_tensor_new(ctx, CV_F32, 4, shape, &x)))
        goto done;
    for (int64_t i = 0; i < cv_tensor_numel(x); i++)
        ((float *)x->data)[i] = (float)((i * 7919) % 255) / 255.0f - 0.5f;
    /* warm-up: the first call plans (primitive creation, weight reorders) */
    double t0 = cli_now();
    for (int w = 0; w < 2 && !s; w++) {
        cv_tensor_free(y);
        s = cv_model_forward(ctx, m, x, &y);
    }
    if (s) goto done;
    double warm = (cli_now() - t0) / 2;
    if (!iters) iters = warm > 0 ? (int)(3.0 / warm) : 10; /* about 3 s of timing */
    if (iters < 3) iters = 3;
    if (iters > 200) iters = 200;
    times = malloc((size_t)iters * sizeof *times);
    if (!times) {
        s = cv_fail(ctx, CV_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (int i = 0; i < iters && !s; i++) {
        cv_tensor_free(y);
        y = NULL;
        double t = cli_now();
        s = cv_model_forward(ctx, m, x, &y);
        times[i] = cli_now() - t;
    }
    if (s) goto done;
    qsort(times, (size_t)iters, sizeof *times, cli_cmp_double);
    double med = iters % 2 ? times[iters / 2] : (times[iters / 2 - 1] + times[iters / 2]) / 2;
    double ips = batch / med;
    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "arch", arch);
        cJSON_AddStringToObject(o, "mode", "inference");
        cJSON_AddStringToObject(o, "backend", backend);
        cJSON_AddNumberToObject(o, "batch", batch);
        cJSON_AddNumberToObject(o, "res", res);
        cJSON_AddNumberToObject(o, "threads", cv_ctx_threads(ctx));
        cJSON_AddNumberToObject(o, "iters", iters);
        cJSON_AddNumberToObject(o, "ms_per_batch_median", med * 1e3);
        cJSON_AddNumberToObject(o, "ms_per_batch_min", times[0] * 1e3);
        cJSON_AddNumberToObject(o, "images_per_s", ips);
        char *txt = cJSON_Print(o);
        if (txt) puts(txt);
        free(txt);
        cJSON_Delete(o);
    } else {
        printf("%s batch %d %dx%d, %d threads, %s: %.2f images/s (median %.2f ms/batch over %d "
               "runs)\n",
               arch, batch, res, res, cv_ctx_threads(ctx), backend, ips, med * 1e3, iters);
    }
done:
    free(times);
    cv_tensor_free(x);
    cv_tensor_free(y);
    cv_model_free(m);
    return s ? cli_error(ctx) : 0;
}
