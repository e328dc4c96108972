/* Small helpers shared by the subcommands. */
#ifndef CV_CLI_UTIL_H
#define CV_CLI_UTIL_H

#include "cvision/cvision.h"

/* Monotonic seconds. */
double cli_now(void);
/* Parses a positive int option value; on failure records an error naming the option. */
cv_status cli_int(cv_ctx *ctx, const char *opt, const char *s, int min, int max, int *out);
/* Parses a number option value in [min, max] (finite); on failure records an error naming it. */
cv_status cli_double(cv_ctx *ctx, const char *opt, const char *s, double min, double max,
                     double *out);
int cli_cmp_double(const void *a, const void *b);
/* "cpu" or "ref" (the --backend option). */
cv_status cli_backend(cv_ctx *ctx, const char *name, cv_backend_kind *out);
/* Ends a command run on `comm` with status s: finalizes MPI only when s is CV_OK (a failed rank
 * exits without it, so that mpirun ends the ranks still waiting in a collective) and frees comm.
 * With several ranks a failure's message gets a "rank R of N: " prefix. Returns the status. */
cv_status cli_comm_end(cv_ctx *ctx, cv_comm *comm, cv_status s);

#endif

/* Builds `arch` and loads weights named by `wspec`: a file path (.pth in either torch.save format,
 * or .safetensors), or a catalog weight name ("IMAGENET1K_V1", "DEFAULT") resolved through the
 * torch hub cache. num_classes <= 0 takes the class count from the file's head. `info_out`, when
 * not NULL, receives the catalog entry (NULL for a plain file). res > 0 asks ViTs for that image
 * size (position embeddings interpolated); other architectures ignore it. */
struct cv_weights_info;
cv_status cli_load_model(cv_ctx *ctx, const char *arch, const char *wspec, int num_classes, int res,
                         cv_model **out, const struct cv_weights_info **info_out);
