/* The study analysis' statistics on cases with known answers, the undefined cases, and
 * cv_study_analyze end to end (the parity test compares everything with SciPy; this one runs under
 * ASan/UBSan). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test.h"

static void test_known_values(void)
{
    cv_ctx *ctx = cv_ctx_new();
    /* y = 2x exactly: r = rho = 1, p = 0; slope 2, intercept 0, stderr 0 */
    double x[] = {1, 2, 3, 4, 5}, y[] = {2, 4, 6, 8, 10};
    cv_corr_result c;
    CHECK_OK(ctx, cv_pearson(ctx, x, y, 5, &c));
    CHECK(c.r == 1 && c.p_value == 0 && c.n == 5 && !c.reason);
    CHECK_OK(ctx, cv_spearman(ctx, x, y, 5, &c));
    CHECK(c.r == 1 && c.p_value == 0);
    cv_linregress_result f;
    CHECK_OK(ctx, cv_linregress(ctx, x, y, 5, &f));
    CHECK_NEAR(f.slope, 2, 1e-15);
    CHECK_NEAR(f.intercept, 0, 1e-15);
    CHECK_NEAR(cv_normalized_slope(&f), 200, 1e-12);
    CHECK_NEAR(f.slope_stderr, 0, 1e-15);
    /* ties: ranks (1.5, 1.5, 3) and (1, 2, 3) */
    double xt[] = {1, 1, 2}, yt[] = {1, 2, 3};
    CHECK_OK(ctx, cv_spearman(ctx, xt, yt, 3, &c));
    CHECK_NEAR(c.r, 0.8660254037844386, 1e-15);
    /* I_x(a, b): I_0.5(a, a) = 0.5; I_x(1, 1) = x; I_x(1, b) = 1 - (1 - x)^b */
    CHECK_NEAR(cv_betainc(3.5, 3.5, 0.5), 0.5, 1e-15);
    CHECK_NEAR(cv_betainc(1, 1, 0.3), 0.3, 1e-15);
    CHECK_NEAR(cv_betainc(1, 4, 0.2), 1 - pow(0.8, 4), 1e-15);
    /* t with 1 degree of freedom is Cauchy: P(|T| > 1) = 0.5 */
    CHECK_NEAR(cv_t_two_sided_p(1, 1), 0.5, 1e-15);
    CHECK(cv_t_two_sided_p(INFINITY, 3) == 0 && isnan(cv_t_two_sided_p(NAN, 3)));
    cv_ctx_free(ctx);
}

static void test_undefined(void)
{
    cv_ctx *ctx = cv_ctx_new();
    cv_corr_result c;
    cv_linregress_result f;
    double x[] = {1, NAN, 3, 4, INFINITY}, y[] = {1, 2, NAN, 3, 5};
    CHECK_OK(ctx, cv_pearson(ctx, x, y, 5, &c)); /* two finite pairs left */
    CHECK(c.n == 2 && isnan(c.r) && isnan(c.p_value) && c.reason);
    CHECK_OK(ctx, cv_pearson(ctx, NULL, NULL, 0, &c));
    CHECK(c.n == 0 && isnan(c.r) && c.reason);
    double k[] = {7, 7, 7, 7}, v[] = {1, 2, 3, 5};
    CHECK_OK(ctx, cv_spearman(ctx, k, v, 4, &c));
    CHECK(isnan(c.r) && c.reason && strstr(c.reason, "upstream"));
    CHECK_OK(ctx, cv_spearman(ctx, v, k, 4, &c));
    CHECK(isnan(c.r) && c.reason && strstr(c.reason, "task"));
    CHECK_OK(ctx, cv_linregress(ctx, k, v, 4, &f));
    CHECK(isnan(f.slope) && isnan(cv_normalized_slope(&f)) && f.reason);
    CHECK_OK(ctx, cv_linregress(ctx, v, k, 4, &f)); /* constant y: SciPy's conventions */
    CHECK(f.slope == 0 && f.r == 0 && f.p_value == 1 && !f.reason);
    double flat[] = {0.8, 0.8, 0.8, 0.8}; /* their rounded mean is not 0.8 */
    CHECK_OK(ctx, cv_linregress(ctx, v, flat, 4, &f));
    CHECK(f.slope == 0 && f.intercept == 0.8 && f.r == 0 && f.slope_stderr == 0 && !f.reason);
    cv_boot_ci b;
    CHECK_OK(ctx, cv_bootstrap_corr(ctx, k, v, 4, 1, 0, 50, 0.95, &b));
    CHECK(isnan(b.low[CV_BOOT_PEARSON]) && b.used[CV_BOOT_PEARSON] == 0);
    CHECK(cv_bootstrap_corr(ctx, k, v, 4, 1, 0, 50, 1.5, &b) == CV_ERR_INVALID);
    CHECK(cv_bootstrap_corr(ctx, k, v, 4, 1, 0, -1, 0.95, &b) == CV_ERR_INVALID);
    cv_ctx_free(ctx);
}

static void test_bootstrap(void)
{
    cv_ctx *ctx = cv_ctx_new();
    double x[40], y[40];
    cv_rng rng;
    cv_rng_init(&rng, 3, 0);
    for (int i = 0; i < 40; i++)
        x[i] = 55 + 30 * cv_rng_uniform(&rng), y[i] = x[i] / 100 + 0.05 * cv_rng_normal(&rng);
    cv_boot_ci a, b, c;
    CHECK_OK(ctx, cv_bootstrap_corr(ctx, x, y, 40, 7, 1, 200, 0.95, &a));
    CHECK_OK(ctx, cv_bootstrap_corr(ctx, x, y, 40, 7, 1, 200, 0.95, &b));
    CHECK_OK(ctx, cv_bootstrap_corr(ctx, x, y, 40, 7, 2, 200, 0.95, &c));
    for (int k = 0; k < CV_BOOT_NSTATS; k++) /* deterministic */
        CHECK(a.low[k] == b.low[k] && a.high[k] == b.high[k] && a.used[k] == b.used[k]);
    CHECK(a.low[CV_BOOT_PEARSON] != c.low[CV_BOOT_PEARSON]); /* the stream matters */
    cv_corr_result r;
    CHECK_OK(ctx, cv_pearson(ctx, x, y, 40, &r));
    for (int k = 0; k < CV_BOOT_NSTATS; k++) CHECK(a.low[k] < a.high[k] && a.used[k] == 200);
    CHECK(a.low[CV_BOOT_PEARSON] < r.r && r.r < a.high[CV_BOOT_PEARSON]);
    cv_ctx_free(ctx);
}

static void test_analyze(void)
{
    cv_ctx *ctx = cv_ctx_new();
    char dir[] = "/tmp/cvtest-study-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    cv_study_result rows[] = {
        {"a", "d1", "accuracy", 60, 0.8},  {"b", "d1", "accuracy", 70, 0.85},
        {"c", "d1", "accuracy", 80, 0.83}, {"d", "d1", "accuracy", NAN, 0.9},
        {"a", "d2", "qwk", 60, 0.5},       {"b", "d2", "qwk", 70, NAN},
        {"c", "d2", "qwk", 80, 0.7},       {"d", "d2", "qwk", 75, 0.6},
    };
    CHECK_OK(ctx, cv_study_analyze(ctx, rows, 8, dir, 1, 20));
    const char *files[] = {"analysis.json", "analysis.csv", "report.html"};
    char path[128];
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        CHECK(access(path, R_OK) == 0);
        unlink(path);
    }
    rmdir(dir);
    rows[1].metric = "qwk";
    CHECK(cv_study_analyze(ctx, rows, 8, dir, 1, 20) == CV_ERR_INVALID);
    CHECK(strstr(cv_ctx_error(ctx), "d1") != NULL);
    CHECK(cv_study_analyze(ctx, rows, 0, dir, 1, 20) == CV_ERR_INVALID);
    cv_study_result *parsed;
    size_t n;
    const char *csv =
        "value,model,dataset,metric,upstream\n0.5,\"m,1\",d,acc,\n\n0.6,m2,d,acc,nan\n";
    CHECK_OK(ctx, cv_study_results_csv_parse(ctx, csv, strlen(csv), "t.csv", &parsed, &n));
    CHECK(n == 2 && !strcmp(parsed[0].model, "m,1") && isnan(parsed[0].upstream) &&
          parsed[1].value == 0.6 && !strcmp(parsed[1].metric, "acc"));
    free(parsed);
    cv_ctx_free(ctx);
}

int main(void)
{
    RUN(test_known_values);
    RUN(test_undefined);
    RUN(test_bootstrap);
    RUN(test_analyze);
    TEST_EXIT();
}
