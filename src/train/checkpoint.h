/* Internal: checkpoint saving with a simulated kill, for tests/test_train_kit.c. */
#ifndef CV_TRAIN_CHECKPOINT_H
#define CV_TRAIN_CHECKPOINT_H

#include "cvision/train.h"

/* cv_checkpoint_save that stops (as if the process were killed, leaving files as they are)
 * just before its file-system step number `stop_at` (0-based; -1: never). *steps (may be NULL)
 * receives the number of steps a complete save takes. */
cv_status cv_checkpoint_save_until(cv_ctx *ctx, const char *dir, const char *tag,
                                   const cv_state *model_state, const cv_optim *optim,
                                   const cv_ema *ema, const char *json_extra, int stop_at,
                                   int *steps);

#endif
