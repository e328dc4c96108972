/* One function per subcommand; each lives in cli/<name>.c and returns the process exit code. */
#ifndef CV_CLI_COMMANDS_H
#define CV_CLI_COMMANDS_H

#include "cvision/cvision.h"

typedef int (*cli_command_fn)(cv_ctx *ctx, int argc, char **argv);

/* Prints "cvision: <message>" on stderr and returns 1: the single error line of a failed command.
 */
int cli_error(cv_ctx *ctx);

int cmd_data(cv_ctx *ctx, int argc, char **argv);
int cmd_npy(cv_ctx *ctx, int argc, char **argv);
int cmd_bench(cv_ctx *ctx, int argc, char **argv);
int cmd_train(cv_ctx *ctx, int argc, char **argv);
int cmd_forward(cv_ctx *ctx, int argc, char **argv);
int cmd_predict(cv_ctx *ctx, int argc, char **argv);
int cmd_transform(cv_ctx *ctx, int argc, char **argv);
int cmd_convert(cv_ctx *ctx, int argc, char **argv);
int cmd_models(cv_ctx *ctx, int argc, char **argv);
int cmd_runs(cv_ctx *ctx, int argc, char **argv);
int cmd_metrics(cv_ctx *ctx, int argc, char **argv);
/* cvision metrics --task segmentation|detection (cli/metrics_detseg.c) */
int cmd_metrics_detseg(cv_ctx *ctx, int argc, char **argv);
int cmd_eval(cv_ctx *ctx, int argc, char **argv);
int cmd_study_report(cv_ctx *ctx, int argc, char **argv);
int cmd_study(cv_ctx *ctx, int argc, char **argv);

#endif
