/* The study's analysis report (work in progress: the statistics land next). */
#include "cvision/analysis.h"

cv_status cv_study_analyze(cv_ctx *ctx, const cv_study_result *rows, size_t n, const char *out_dir,
                           uint64_t seed, int n_boot)
{
    (void)rows, (void)n, (void)seed, (void)n_boot;
    return cv_fail(ctx, CV_ERR_UNSUPPORTED, "%s: the study analysis is not implemented yet",
                   out_dir);
}
