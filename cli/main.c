/* cvision: the command-line tool. Dispatches to one function per subcommand. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"

static const struct {
    const char *name;
    cli_command_fn fn;
    const char *summary;
} commands[] = {
    {"bench", cmd_bench, "images/s of a model's forward pass"},
    {"forward", cmd_forward, "logits for a .npy batch (eval mode)"},
    {"train", cmd_train, "fine-tune a model on a dataset, with validation and checkpoints"},
    {"predict", cmd_predict, "classify images with a pretrained model"},
    {"data", cmd_data, "inspect a dataset: info, check (duplicates, leakage), show, export"},
    {"npy", cmd_npy, "inspect a NumPy .npy array (dtype, shape, value range)"},
    {"transform", cmd_transform,
     "apply a transform pipeline to an image, write the tensor as .npy"},
    {"models", cmd_models, "list pretrained weights with their accuracy, size and cost"},
    {"convert", cmd_convert, "convert a weights file to safetensors"},
    {"runs", cmd_runs, "list, show and compare training runs (SQLite)"},
    {"metrics", cmd_metrics, "classification metrics, CIs and diagnostics from a predictions CSV"},
    {"eval", cmd_eval, "evaluate a model on a dataset: predictions CSV, metrics, report"},
    {"study-report", cmd_study_report,
     "a transfer study's analysis (JSON, CSV, HTML) from its results CSV"},
    {"study", cmd_study, "transfer study: models x datasets x grid, resumable, parallel"},
    {NULL, NULL, NULL},
};

int cli_error(cv_ctx *ctx)
{
    fprintf(stderr, "cvision: %s\n", cv_ctx_error(ctx));
    return 1;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: cvision <command> [options]\n\ncommands:\n");
    for (int i = 0; commands[i].name; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\n'cvision <command> --help' describes a command.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    /* Commands that run loader threads beside the kernels want OpenMP's idle threads to sleep
     * rather than spin (spinning starves the loader on small machines: 2x slower training on 2
     * cores). libgomp reads the setting when it loads, so set it and start again. */
    if (!getenv("OMP_WAIT_POLICY") &&
        (!strcmp(argv[1], "train") || !strcmp(argv[1], "eval") || !strcmp(argv[1], "study"))) {
        setenv("OMP_WAIT_POLICY", "passive", 1);
        execv("/proc/self/exe", argv);
        /* if that fails, run on with the default policy */
    }
    for (int i = 0; commands[i].name; i++) {
        if (strcmp(argv[1], commands[i].name)) continue;
        cv_ctx *ctx = cv_ctx_new();
        if (!ctx) {
            fprintf(stderr, "cvision: out of memory\n");
            return 1;
        }
        int rc = commands[i].fn(ctx, argc - 1, argv + 1);
        cv_ctx_free(ctx);
        return rc;
    }
    fprintf(stderr, "cvision: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
