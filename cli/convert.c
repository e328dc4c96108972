/* cvision convert IN OUT.safetensors: any readable weights file to safetensors. */
#include <stdio.h>
#include <string.h>

#include "commands.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: cvision convert [--entry KEY] IN OUT.safetensors\n"
            "  Reads a weights file (torch.save zip or legacy .pth, a training checkpoint, or\n"
            "  safetensors) and writes its state_dict as safetensors.\n"
            "  --entry KEY  which state_dict of a checkpoint (e.g. model_ema, state_dict_ema)\n");
}

int cmd_convert(cv_ctx *ctx, int argc, char **argv)
{
    const char *in = NULL, *out = NULL, *entry = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--entry") && i + 1 < argc) {
            entry = argv[++i];
        } else if (argv[i][0] == '-' && argv[i][1]) {
            cv_fail(ctx, CV_ERR_INVALID, "convert: unknown option '%s'", argv[i]);
            return cli_error(ctx);
        } else if (!in) {
            in = argv[i];
        } else if (!out) {
            out = argv[i];
        } else {
            cv_fail(ctx, CV_ERR_INVALID, "convert: too many arguments");
            return cli_error(ctx);
        }
    }
    if (!in || !out) {
        usage(stderr);
        return 2;
    }
    cv_state *st;
    if (cv_weights_load_entry(ctx, in, entry, &st) != CV_OK) return cli_error(ctx);
    cv_status s = cv_safetensors_save(ctx, st, out);
    cv_state_free(st);
    return s == CV_OK ? 0 : cli_error(ctx);
}
