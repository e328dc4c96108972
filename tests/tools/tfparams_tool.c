/* The C side of tests/parity/test_random_params.py: the parameters a pipeline's random ops draw
 * (tf_trace, see src/data/tf_ops.c for each op's layout), for N sample seeds on a W x H RGB image.
 *
 * usage: tfparams_tool PIPELINE W H N   -> one line per seed 0..N-1: the traced numbers */
#include <stdio.h>
#include <stdlib.h>

#include "cvision/cvision.h"
#include "data/transforms_internal.h"

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: tfparams_tool PIPELINE W H N\n");
        return 2;
    }
    int w = atoi(argv[2]), h = atoi(argv[3]), n = atoi(argv[4]);
    cv_ctx *ctx = cv_ctx_new();
    cv_transform_pipeline *pipe = NULL;
    cv_image *img = NULL;
    static tf_trace tr;
    int rc = 1;
    if (cv_transform_pipeline_parse(ctx, argv[1], &pipe) || cv_image_new(ctx, w, h, 3, &img))
        goto out;
    for (size_t i = 0; i < (size_t)w * h * 3; i++) img->data[i] = (uint8_t)(i * 7 % 251);
    for (int s = 0; s < n; s++) {
        if (tf_pipeline_trace(ctx, pipe, img, (uint64_t)s, &tr)) goto out;
        for (int k = 0; k < tr.n; k++) printf(k ? " %.17g" : "%.17g", tr.v[k]);
        printf("\n");
    }
    rc = 0;
out:
    if (rc) fprintf(stderr, "tfparams_tool: %s\n", cv_ctx_error(ctx));
    cv_transform_pipeline_free(pipe);
    cv_image_free(img);
    cv_ctx_free(ctx);
    return rc;
}
