/* Internals of src/study shared between the statistics and the analysis report. */
#ifndef CV_STUDY_INTERNAL_H
#define CV_STUDY_INTERNAL_H

#include "cvision/analysis.h"

/* cv_bootstrap_corr over finite pairs (not filtered again), and, when x2 is not NULL, the
 * percentile interval of rho(x2, y) - rho(x, y) (Spearman) on the same replicates: whether x2
 * ranks the models better than x does. */
cv_status cv_bootstrap_pairs(cv_ctx *ctx, const double *x, const double *y, const double *x2,
                             size_t n, uint64_t seed, uint64_t stream, int n_boot, double level,
                             cv_boot_ci *out, double *diff_lo, double *diff_hi, int *diff_used);

#endif
