/* The transfer study's analysis: does the upstream (ImageNet) accuracy of a set of models predict
 * their fine-tuned performance on each task? Correlation statistics with SciPy's definitions,
 * percentile-bootstrap confidence intervals over models, and the JSON/CSV/HTML report
 * (docs/study.md, section "Analysis"). */
#ifndef CVISION_ANALYSIS_H
#define CVISION_ANALYSIS_H

#include <stddef.h>
#include <stdint.h>

#include "cvision/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- statistics ----
 * Every function takes n (x, y) pairs and first drops the pairs where x or y is NaN or infinite;
 * `n` of the result counts the pairs used. An undefined statistic (fewer than 3 pairs, a constant
 * vector) is NAN with a static `reason` string; reason is NULL when everything is defined. They
 * fail (CV_ERR_NOMEM) only when an allocation fails. */

typedef struct cv_corr_result {
    double r;       /* the coefficient, in [-1, 1] */
    double p_value; /* two-sided, for the null hypothesis of no correlation */
    size_t n;
    const char *reason;
} cv_corr_result;

/* Pearson's r; p-value from the exact distribution of r under independent normals (the beta
 * distribution scipy.stats.pearsonr uses). */
cv_status cv_pearson(cv_ctx *ctx, const double *x, const double *y, size_t n, cv_corr_result *out);
/* Spearman's rho: Pearson's r of the ranks (ties get their average rank); p-value from the
 * t approximation with n - 2 degrees of freedom, as scipy.stats.spearmanr. */
cv_status cv_spearman(cv_ctx *ctx, const double *x, const double *y, size_t n, cv_corr_result *out);

typedef struct cv_linregress_result {
    double slope, intercept;
    double r;       /* as scipy.stats.linregress: 0 when y is constant */
    double p_value; /* two-sided, for slope = 0 (t test, n - 2 degrees of freedom) */
    double slope_stderr, intercept_stderr;
    size_t n;
    const char *reason;
} cv_linregress_result;

/* Ordinary least squares y = slope * x + intercept, as scipy.stats.linregress. Undefined (NAN)
 * when x is constant or fewer than 3 pairs remain. */
cv_status cv_linregress(cv_ctx *ctx, const double *x, const double *y, size_t n,
                        cv_linregress_result *out);

/* The normalized slope: the OLS slope of the task metric against the upstream accuracy expressed
 * as a fraction (upstream percent / 100), i.e. task-metric units per unit of upstream accuracy.
 * With a task metric in [0, 1] (accuracy, ROC AUC, F1), 1.0 means one point of task metric per
 * point of upstream accuracy and 0 means no trend. NAN (with reason) when undefined. */
double cv_normalized_slope(const cv_linregress_result *fit);

/* Two-sided p-value of Student's t with df degrees of freedom: 2 * P(T > |t|). */
double cv_t_two_sided_p(double t, double df);
/* The regularized incomplete beta function I_x(a, b) for a, b > 0, x in [0, 1]. */
double cv_betainc(double a, double b, double x);

/* Which statistics a bootstrap replicate computes. */
typedef enum {
    CV_BOOT_PEARSON = 0,
    CV_BOOT_SPEARMAN,
    CV_BOOT_NORM_SLOPE,
    CV_BOOT_NSTATS
} cv_boot_stat;

typedef struct cv_boot_ci {
    double low[CV_BOOT_NSTATS], high[CV_BOOT_NSTATS]; /* NAN when no replicate was defined */
    int used[CV_BOOT_NSTATS]; /* replicates where the statistic was defined (e.g. x not constant) */
} cv_boot_ci;

/* Percentile bootstrap over pairs: each of n_boot replicates draws n pairs with replacement
 * (cv_rng_randint(rng, 0, n) from cv_rng_init(seed, stream), in replicate order), computes
 * Pearson's r, Spearman's rho and the normalized slope, and the interval is the (1-level)/2 and
 * (1+level)/2 quantiles of the defined replicates (numpy's linear percentile). Pairs with a
 * non-finite value are dropped first. n_boot = 0 gives NAN intervals; n_boot < 0 or a level
 * outside (0, 1) is CV_ERR_INVALID. */
cv_status cv_bootstrap_corr(cv_ctx *ctx, const double *x, const double *y, size_t n, uint64_t seed,
                            uint64_t stream, int n_boot, double level, cv_boot_ci *out);

/* ---- the study's analysis ---- */
typedef struct cv_study_result {
    const char *model;   /* architecture (or a user label) */
    const char *dataset; /* dataset name as given on the command line */
    const char *metric;  /* task metric name, e.g. "accuracy", "qwk", "roc_auc", "macro_f1_tuned" */
    double upstream;     /* ImageNet (upstream) top-1 in percent; NAN if unknown */
    double value; /* the selected grid point's test value of the task metric; NAN if failed */
} cv_study_result;

/* Writes analysis.json, analysis.csv and report.html into out_dir (created if missing), each
 * atomically (temporary file + rename). Deterministic for a seed; n_boot bootstrap replicates
 * (0: no intervals). Rows with a NaN value or upstream are left out of the statistics and listed
 * with the reason. Fails on inconsistent rows (a model twice for one dataset, two metrics for
 * one dataset). */
cv_status cv_study_analyze(cv_ctx *ctx, const cv_study_result *rows, size_t n, const char *out_dir,
                           uint64_t seed, int n_boot);

/* Reads a results CSV with a header naming the columns model, dataset, metric, upstream, value
 * (any order; other columns ignored; empty or "nan" upstream/value is NAN). On success *rows
 * holds *n rows whose strings live in the same allocation: free with free(*rows). Errors name the
 * file and the line. */
cv_status cv_study_results_csv_read(cv_ctx *ctx, const char *path, cv_study_result **rows,
                                    size_t *n);
cv_status cv_study_results_csv_parse(cv_ctx *ctx, const char *buf, size_t len, const char *name,
                                     cv_study_result **rows, size_t *n);

#ifdef __cplusplus
}
#endif

#endif
