/* Synchronised batch norm's forward statistics, shared by the reference and oneDNN backends. */
#ifndef CV_BACKEND_SYNC_BN_H
#define CV_BACKEND_SYNC_BN_H

#include "backend/backend.h"

/* Mean and (biased) variance per channel over every rank's batch (io->sum), two-pass like
 * ref_batch_stats, in double: sum and count, then the sum of squared deviations. x is plain
 * N x C (x H x W). Returns the total count, or -1 when the sum over ranks failed or memory ran
 * out. */
double sync_bn_stats(const cv_train_io *io, const float *x, const cv_shape4 *s, float *mean,
                     float *var);

#endif
