/* cvision models [--json] [--sort acc1|params|gflops] [FILTER]: torchvision's pretrained weights
 * with the catalog's figures; --categories: the ImageNet class names. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "commands.h"

typedef enum { SORT_NONE, SORT_ACC1, SORT_PARAMS, SORT_GFLOPS } sort_key;

static int by_acc1(const void *a, const void *b)
{
    const cv_weights_info *x = *(const cv_weights_info *const *)a;
    const cv_weights_info *y = *(const cv_weights_info *const *)b;
    double u = isnan(x->acc1) ? -1 : x->acc1, v = isnan(y->acc1) ? -1 : y->acc1;
    return u < v ? 1 : u > v ? -1 : strcmp(x->arch, y->arch); /* best first */
}

static int by_params(const void *a, const void *b)
{
    const cv_weights_info *x = *(const cv_weights_info *const *)a;
    const cv_weights_info *y = *(const cv_weights_info *const *)b;
    if (x->num_params != y->num_params) return x->num_params < y->num_params ? -1 : 1;
    return strcmp(x->arch, y->arch) ? strcmp(x->arch, y->arch) : strcmp(x->name, y->name);
}

static int by_gflops(const void *a, const void *b)
{
    const cv_weights_info *x = *(const cv_weights_info *const *)a;
    const cv_weights_info *y = *(const cv_weights_info *const *)b;
    if (x->gflops != y->gflops) return x->gflops < y->gflops ? -1 : 1;
    return strcmp(x->arch, y->arch) ? strcmp(x->arch, y->arch) : strcmp(x->name, y->name);
}

/* The shortest decimal that reads back as the same float: 0.485f prints as 0.485. */
static double shortest(float f)
{
    char b[32];
    for (int p = 6; p < 9; p++) {
        snprintf(b, sizeof b, "%.*g", p, f);
        if ((float)strtod(b, NULL) == f) break;
    }
    return strtod(b, NULL);
}

static cJSON *num_or_null(double v)
{
    return isnan(v) ? cJSON_CreateNull() : cJSON_CreateNumber(v);
}

static void print_json(const cv_weights_info **w, int n)
{
    cJSON *root = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(root, "weights");
    cJSON_AddNumberToObject(root, "count", n);
    for (int i = 0; i < n; i++) {
        char full[128];
        snprintf(full, sizeof full, "%s.%s", w[i]->enum_name, w[i]->name);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "arch", w[i]->arch);
        cJSON_AddStringToObject(o, "weights", full);
        cJSON_AddStringToObject(o, "name", w[i]->name);
        cJSON_AddBoolToObject(o, "default", w[i]->is_default);
        cJSON_AddStringToObject(o, "url", w[i]->url);
        cJSON_AddStringToObject(o, "file", w[i]->file);
        cJSON_AddStringToObject(o, "sha256_prefix", w[i]->sha256_prefix);
        cJSON_AddItemToObject(o, "acc1", num_or_null(w[i]->acc1));
        cJSON_AddItemToObject(o, "acc5", num_or_null(w[i]->acc5));
        cJSON_AddNumberToObject(o, "num_params", (double)w[i]->num_params);
        cJSON_AddNumberToObject(o, "gflops", w[i]->gflops);
        cJSON_AddNumberToObject(o, "file_mib", w[i]->file_mib);
        cJSON *t = cJSON_AddObjectToObject(o, "transform");
        cJSON_AddNumberToObject(t, "resize", w[i]->resize);
        cJSON_AddNumberToObject(t, "crop", w[i]->crop);
        cJSON_AddStringToObject(t, "interpolation", w[i]->interpolation);
        double mean[3], std[3];
        for (int c = 0; c < 3; c++) {
            mean[c] = shortest(w[i]->mean[c]);
            std[c] = shortest(w[i]->std[c]);
        }
        cJSON_AddItemToObject(t, "mean", cJSON_CreateDoubleArray(mean, 3));
        cJSON_AddItemToObject(t, "std", cJSON_CreateDoubleArray(std, 3));
        int ms[2] = {w[i]->min_h, w[i]->min_w};
        cJSON_AddItemToObject(o, "min_size", cJSON_CreateIntArray(ms, 2));
        cJSON_AddItemToArray(arr, o);
    }
    char *s = cJSON_Print(root);
    if (s) puts(s);
    free(s);
    cJSON_Delete(root);
}

static void print_table(const cv_weights_info **w, int n, int grouped)
{
    printf("%-20s %-36s %7s %7s %9s %8s %9s  %s\n", "arch", "weights", "acc@1", "acc@5",
           "params(M)", "GFLOPs", "size(MiB)", "eval transform");
    for (int i = 0; i < n; i++) {
        char name[48], acc1[16], acc5[16];
        snprintf(name, sizeof name, "%s%s", w[i]->name, w[i]->is_default ? " (default)" : "");
        snprintf(acc1, sizeof acc1, isnan(w[i]->acc1) ? "-" : "%.3f", w[i]->acc1);
        snprintf(acc5, sizeof acc5, isnan(w[i]->acc5) ? "-" : "%.3f", w[i]->acc5);
        int same = grouped && i && !strcmp(w[i - 1]->arch, w[i]->arch);
        printf("%-20s %-36s %7s %7s %9.2f %8.3f %9.1f  %d->%d %s\n", same ? "" : w[i]->arch, name,
               acc1, acc5, (double)w[i]->num_params / 1e6, w[i]->gflops, w[i]->file_mib,
               w[i]->resize, w[i]->crop, w[i]->interpolation);
    }
}

int cmd_models(cv_ctx *ctx, int argc, char **argv)
{
    int json = 0;
    sort_key sort = SORT_NONE;
    const char *filter = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) {
            json = 1;
        } else if (!strcmp(argv[i], "--sort") && i + 1 < argc) {
            const char *k = argv[++i];
            sort = !strcmp(k, "acc1")     ? SORT_ACC1
                   : !strcmp(k, "params") ? SORT_PARAMS
                   : !strcmp(k, "gflops") ? SORT_GFLOPS
                                          : SORT_NONE;
            if (sort == SORT_NONE) {
                cv_fail(ctx, CV_ERR_INVALID,
                        "models: --sort takes acc1, params or gflops, not "
                        "'%s'",
                        k);
                return cli_error(ctx);
            }
        } else if (!strcmp(argv[i], "--categories")) {
            for (const char *const *c = cv_imagenet_categories(); *c; c++) puts(*c);
            return 0;
        } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf(
                "usage: cvision models [--json] [--sort acc1|params|gflops] [FILTER]\n"
                "  Lists torchvision's pretrained ImageNet-1K weights (architectures whose name\n"
                "  contains FILTER) with accuracy, size, cost and evaluation transform.\n");
            return 0;
        } else if (argv[i][0] != '-' && !filter) {
            filter = argv[i];
        } else {
            cv_fail(ctx, CV_ERR_INVALID, "models: unknown argument '%s'", argv[i]);
            return cli_error(ctx);
        }
    }
    int n = 0, total = cv_catalog_count();
    const cv_weights_info **w = malloc((size_t)total * sizeof *w);
    if (!w) {
        cv_fail(ctx, CV_ERR_NOMEM, "models: out of memory");
        return cli_error(ctx);
    }
    for (int i = 0; i < total; i++)
        if (!filter || strstr(cv_catalog_entry(i)->arch, filter)) w[n++] = cv_catalog_entry(i);
    if (sort == SORT_ACC1) qsort(w, (size_t)n, sizeof *w, by_acc1);
    if (sort == SORT_PARAMS) qsort(w, (size_t)n, sizeof *w, by_params);
    if (sort == SORT_GFLOPS) qsort(w, (size_t)n, sizeof *w, by_gflops);
    if (json)
        print_json(w, n);
    else
        print_table(w, n, sort == SORT_NONE);
    free(w);
    return 0;
}
