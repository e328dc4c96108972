/* cvision transform --input IMG --transform PIPELINE --output OUT.npy [--seed N] [--channels C]
 * Applies a transform pipeline to one image and writes the float32 CHW result: what a model sees.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"

int cmd_transform(cv_ctx *ctx, int argc, char **argv)
{
    const char *in = NULL, *spec = NULL, *outp = NULL;
    unsigned long long seed = 0;
    int channels = 3;
    for (int i = 1; i < argc; i += 2) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            printf("usage: cvision transform --input IMAGE --transform PIPELINE --output OUT.npy\n"
                   "                         [--seed N] [--channels 3|1|0]\n"
                   "Applies a transform pipeline (e.g. \"resize(256),center_crop(224),to_tensor,"
                   "normalize(imagenet)\")\nto an image and writes the float32 [C,H,W] result as "
                   ".npy. --channels: 3 RGB (default), 1 gray, 0 as stored.\n"
                   "See docs/transforms.md for the ops.\n");
            return 0;
        }
        if (!v) {
            cv_fail(ctx, CV_ERR_INVALID, "transform: unknown or incomplete option '%s'", a);
            return cli_error(ctx);
        }
        if (!strcmp(a, "--input") || !strcmp(a, "-i"))
            in = v;
        else if (!strcmp(a, "--transform") || !strcmp(a, "-t"))
            spec = v;
        else if (!strcmp(a, "--output") || !strcmp(a, "-o"))
            outp = v;
        else if (!strcmp(a, "--seed")) {
            char *end;
            seed = strtoull(v, &end, 10);
            if (*end || !*v) {
                cv_fail(ctx, CV_ERR_INVALID, "transform: --seed '%s' is not a number", v);
                return cli_error(ctx);
            }
        } else if (!strcmp(a, "--channels")) {
            channels = atoi(v);
            if (strcmp(v, "0") && strcmp(v, "1") && strcmp(v, "3")) {
                cv_fail(ctx, CV_ERR_INVALID, "transform: --channels must be 0, 1 or 3");
                return cli_error(ctx);
            }
        } else {
            cv_fail(ctx, CV_ERR_INVALID, "transform: unknown option '%s'", a);
            return cli_error(ctx);
        }
    }
    if (!in || !spec || !outp) {
        cv_fail(ctx, CV_ERR_INVALID, "transform: --input, --transform and --output are required");
        return cli_error(ctx);
    }
    cv_transform_pipeline *pipe = NULL;
    cv_image *img = NULL;
    cv_tensor *t = NULL;
    int rc = 0;
    if (cv_transform_pipeline_parse(ctx, spec, &pipe) || cv_image_load(ctx, in, channels, &img) ||
        cv_transform_apply(ctx, pipe, img, seed, &t) || cv_npy_save(ctx, outp, t))
        rc = cli_error(ctx);
    cv_tensor_free(t);
    cv_image_free(img);
    cv_transform_pipeline_free(pipe);
    return rc;
}
