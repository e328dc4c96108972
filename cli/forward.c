/* cvision forward: logits for a float32 NCHW .npy batch, in eval mode. The interoperability and
 * parity entry point: what PyTorch's model(x) returns, as a .npy. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "util.h"

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: cvision forward -m ARCH -w WEIGHTS [--num-classes K] --input X.npy --output Y.npy\n"
        "                       [--res R] [--backend cpu|ref] [--threads T]\n"
        "X is float32 [N, 3, H, W]; Y becomes float32 [N, K] logits (eval mode).\n"
        "WEIGHTS is a .pth or .safetensors file, or a weight name such as IMAGENET1K_V1.\n"
        "--res R builds a ViT for R x R images, interpolating the position embeddings.\n");
}

int cmd_forward(cv_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {{"model", required_argument, 0, 'm'},
                                         {"weights", required_argument, 0, 'w'},
                                         {"num-classes", required_argument, 0, 'k'},
                                         {"input", required_argument, 0, 'i'},
                                         {"output", required_argument, 0, 'o'},
                                         {"backend", required_argument, 0, 'B'},
                                         {"threads", required_argument, 0, 't'},
                                         {"res", required_argument, 0, 'r'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *arch = NULL, *weights = NULL, *in = NULL, *outp = NULL;
    int k = 0, threads = 0, res = 0, c;
    cv_backend_kind backend = CV_BACKEND_CPU;
    cv_status s = CV_OK;
    optind = 1;
    while (!s && (c = getopt_long(argc, argv, "m:w:k:i:o:B:t:r:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm':
            arch = optarg;
            break;
        case 'w':
            weights = optarg;
            break;
        case 'k':
            s = cli_int(ctx, "--num-classes", optarg, 1, 1 << 24, &k);
            break;
        case 'i':
            in = optarg;
            break;
        case 'o':
            outp = optarg;
            break;
        case 'B':
            s = cli_backend(ctx, optarg, &backend);
            break;
        case 't':
            s = cli_int(ctx, "--threads", optarg, 1, 4096, &threads);
            break;
        case 'r':
            s = cli_int(ctx, "--res", optarg, 1, 1 << 14, &res);
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
    if (!arch || !weights || !in || !outp) {
        usage(stderr);
        return 2;
    }
    if (threads) cv_ctx_set_threads(ctx, threads);
    cv_model *m = NULL;
    cv_tensor *x = NULL, *y = NULL;
    if ((s = cv_npy_load(ctx, in, &x))) goto done;
    if (x->dtype != CV_F32 || x->ndim != 4 || x->shape[1] != 3) {
        char b[96];
        s = cv_fail(ctx, CV_ERR_SHAPE,
                    "%s: expected a float32 array of shape [N, 3, H, W], got %s %s", in,
                    cv_dtype_name(x->dtype), cv_shape_str(x->ndim, x->shape, b, sizeof b));
        goto done;
    }
    if ((s = cli_load_model(ctx, arch, weights, k, res, &m, NULL))) goto done;
    if ((s = cv_model_set_backend(ctx, m, backend))) goto done;
    if ((s = cv_model_forward(ctx, m, x, &y))) goto done;
    s = cv_npy_save(ctx, outp, y);
done:
    cv_tensor_free(x);
    cv_tensor_free(y);
    cv_model_free(m);
    return s ? cli_error(ctx) : 0;
}
