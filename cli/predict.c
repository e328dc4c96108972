/* cvision predict: top-k classes of images with torchvision's eval preprocessing for the weights.
 */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "cvision/image.h"
#include "cvision/transforms.h"
#include "cvision/weights.h"
#include "util.h"

static void usage(FILE *f)
{
    fprintf(
        f, "usage: cvision predict -m ARCH -w WEIGHTS [--topk K] [--json] [--resize R] [--crop C]\n"
           "                       [--interpolation bilinear|bicubic|nearest] [--labels FILE] "
           "IMAGE...\n"
           "WEIGHTS is a weight name (IMAGENET1K_V1, DEFAULT: preprocessing and labels from the\n"
           "catalog, file from the torch hub cache) or a .pth/.safetensors file (ImageNet preset\n"
           "256/224 bilinear unless the file is a catalog file or the options say otherwise).\n");
}

/* Reads one label per line. */
static cv_status read_labels(cv_ctx *ctx, const char *path, int k, char ***out)
{
    FILE *f = fopen(path, "r");
    if (!f) return cv_fail(ctx, CV_ERR_IO, "%s: cannot open labels file", path);
    char **labels = calloc((size_t)k, sizeof *labels), line[1024];
    int n = 0;
    while (labels && n < k && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = 0;
        if (!(labels[n++] = strdup(line))) break;
    }
    fclose(f);
    if (!labels || n < k || !labels[n - 1]) {
        for (int i = 0; labels && i < n; i++) free(labels[i]);
        free(labels);
        return cv_fail(ctx, CV_ERR_FORMAT, "%s: expected %d labels, one per line", path, k);
    }
    *out = labels;
    return CV_OK;
}

static const cv_weights_info *catalog_by_file(const char *arch, const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    for (int i = 0; i < cv_catalog_count(); i++) {
        const cv_weights_info *w = cv_catalog_entry(i);
        if (!strcmp(w->arch, arch) && !strcmp(w->file, base)) return w;
    }
    return NULL;
}

int cmd_predict(cv_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {{"model", required_argument, 0, 'm'},
                                         {"weights", required_argument, 0, 'w'},
                                         {"topk", required_argument, 0, 'k'},
                                         {"json", no_argument, 0, 'j'},
                                         {"resize", required_argument, 0, 'r'},
                                         {"crop", required_argument, 0, 'c'},
                                         {"interpolation", required_argument, 0, 'I'},
                                         {"labels", required_argument, 0, 'L'},
                                         {"threads", required_argument, 0, 't'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *arch = NULL, *weights = NULL, *interp = NULL, *labels_path = NULL;
    int topk = 5, json = 0, resize = 0, crop = 0, threads = 0, c;
    cv_status s = CV_OK;
    optind = 1;
    while (!s && (c = getopt_long(argc, argv, "m:w:k:jr:c:I:L:t:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm':
            arch = optarg;
            break;
        case 'w':
            weights = optarg;
            break;
        case 'k':
            s = cli_int(ctx, "--topk", optarg, 1, 1 << 20, &topk);
            break;
        case 'j':
            json = 1;
            break;
        case 'r':
            s = cli_int(ctx, "--resize", optarg, 1, 1 << 14, &resize);
            break;
        case 'c':
            s = cli_int(ctx, "--crop", optarg, 1, 1 << 14, &crop);
            break;
        case 'I':
            interp = optarg;
            break;
        case 'L':
            labels_path = optarg;
            break;
        case 't':
            s = cli_int(ctx, "--threads", optarg, 1, 4096, &threads);
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
    if (!arch || !weights || optind >= argc) {
        usage(stderr);
        return 2;
    }
    if (threads) cv_ctx_set_threads(ctx, threads);
    cv_model *m = NULL;
    const cv_weights_info *info = NULL;
    char **labels = NULL;
    cv_tensor *x = NULL, *y = NULL;
    cJSON *results = json ? cJSON_CreateArray() : NULL;
    if ((s = cli_load_model(ctx, arch, weights, 0, crop, &m, &info))) goto done;
    if (!info) info = catalog_by_file(arch, weights);
    int k = cv_model_num_classes(m);
    if (topk > k) topk = k;
    static const float imagenet_mean[3] = {0.485f, 0.456f, 0.406f},
                       imagenet_std[3] = {0.229f, 0.224f, 0.225f};
    const float *mean = info ? info->mean : imagenet_mean, *std = info ? info->std : imagenet_std;
    if (!resize) resize = info ? info->resize : 256;
    if (!crop) crop = info ? info->crop : 224;
    if (!interp) interp = info ? info->interpolation : "bilinear";
    if (labels_path && (s = read_labels(ctx, labels_path, k, &labels))) goto done;
    const char *const *imagenet = k == 1000 ? cv_imagenet_categories() : NULL;
    int64_t shape[] = {1, 3, crop, crop};
    if ((s = cv_tensor_new(ctx, CV_F32, 4, shape, &x))) goto done;
    for (int i = optind; i < argc; i++) {
        cv_image *img = NULL;
        if ((s = cv_image_load(ctx, argv[i], 3, &img))) goto done;
        s = cv_preprocess_classification(ctx, img, resize, crop, interp, mean, std, x->data);
        cv_image_free(img);
        cv_tensor_free(y);
        y = NULL;
        if (s || (s = cv_model_forward(ctx, m, x, &y))) goto done;
        /* probabilities, then the k largest */
        float *p = y->data;
        cv_logits_to_scores(p, p, 1, k, 0);
        cJSON *top = json ? cJSON_CreateArray() : NULL;
        if (!json) printf("%s\n", argv[i]);
        for (int r = 0; r < topk; r++) {
            int best = -1;
            for (int j = 0; j < k; j++)
                if (p[j] >= 0 && (best < 0 || p[j] > p[best])) best = j;
            double prob = p[best];
            p[best] = -1;
            char idx[16];
            snprintf(idx, sizeof idx, "%d", best);
            const char *label = labels ? labels[best] : imagenet ? imagenet[best] : idx;
            if (json) {
                cJSON *o = cJSON_CreateObject();
                cJSON_AddNumberToObject(o, "index", best);
                cJSON_AddStringToObject(o, "label", label);
                cJSON_AddNumberToObject(o, "probability", prob);
                cJSON_AddItemToArray(top, o);
            } else {
                printf("  %2d. %6.2f%%  %s\n", r + 1, 100 * prob, label);
            }
        }
        if (json) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "image", argv[i]);
            cJSON_AddItemToObject(o, "top", top);
            cJSON_AddItemToArray(results, o);
        }
    }
    if (json) {
        char *txt = cJSON_Print(results);
        if (txt) puts(txt);
        free(txt);
    }
done:
    cJSON_Delete(results);
    for (int i = 0; labels && i < cv_model_num_classes(m); i++) free(labels[i]);
    free(labels);
    cv_tensor_free(x);
    cv_tensor_free(y);
    cv_model_free(m);
    return s ? cli_error(ctx) : 0;
}
