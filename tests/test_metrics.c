/* Unit tests of the metrics accumulators: batch invariance, the weighted (bootstrap) path against
 * physically repeated samples, input checks, paired bootstrap, threshold tuning, diagnostics.
 * Values against scikit-learn are checked by tests/parity/test_metrics.py. */
#include <math.h>
#include <string.h>

#include "metrics/metrics_internal.h"
#include "test.h"

static uint64_t rng_state = 42;
static double urand(void)
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(rng_state >> 11) / 9007199254740992.0;
}

/* n samples of K classes with some skill; scores are probabilities. */
static void make_data(int n, int K, int *y, float *s)
{
    for (int i = 0; i < n; i++) {
        y[i] = (int)(urand() * K);
        double sum = 0;
        for (int c = 0; c < K; c++) {
            s[i * K + c] = (float)(urand() + (c == y[i] ? 0.8 * urand() : 0));
            if (urand() < 0.1) s[i * K + c] = 0.25f; /* ties */
            sum += s[i * K + c];
        }
        for (int c = 0; c < K; c++) s[i * K + c] = (float)(s[i * K + c] / sum);
    }
}

/* Every entry of a is in b with the same values. */
static int same_results(const cv_metrics_result *a, const cv_metrics_result *b, double tol)
{
    int ok = 1;
    for (int i = 0; i < cv_metrics_result_count(a); i++) {
        const cv_metric_entry *e = cv_metrics_result_at(a, i);
        const cv_metric_entry *f = cv_metrics_result_get(b, e->name);
        if (!f || f->rows != e->rows || f->cols != e->cols) {
            fprintf(stderr, "  entry %s differs in shape or is missing\n", e->name);
            ok = 0;
            continue;
        }
        size_t nv = e->rows ? (size_t)e->rows * e->cols : 1;
        for (size_t k = 0; k < nv; k++) {
            double x = e->v[k], y = f->v[k];
            if (!(isnan(x) && isnan(y)) && !(fabs(x - y) <= tol * (1 + fabs(y)))) {
                fprintf(stderr, "  %s[%zu]: %.17g vs %.17g\n", e->name, k, x, y);
                ok = 0;
                break;
            }
        }
    }
    return ok;
}

static void test_batches_and_weights(void)
{
    enum { N = 300, K = 5 };
    static int y[N];
    static float s[N * K];
    make_data(N, K, y, s);
    cv_ctx *ctx = cv_ctx_new();
    cv_metrics_opts o;
    cv_metrics_opts_default(&o);
    o.curve_points = 0;
    cv_metrics *one, *many;
    CHECK_OK(ctx, cv_metrics_new(ctx, CV_TASK_MULTICLASS, K, &o, &one));
    CHECK_OK(ctx, cv_metrics_new(ctx, CV_TASK_MULTICLASS, K, &o, &many));
    CHECK_OK(ctx, cv_metrics_add(ctx, one, y, s, NULL, N));
    for (int i = 0; i < N;) {
        int b = 1 + (int)(urand() * 40);
        if (b > N - i) b = N - i;
        CHECK_OK(ctx, cv_metrics_add(ctx, many, y + i, s + (size_t)i * K, NULL, (size_t)b));
        i += b;
    }
    cv_metrics_result *r1, *r2;
    CHECK_OK(ctx, cv_metrics_finalize(ctx, one, &r1));
    CHECK_OK(ctx, cv_metrics_finalize(ctx, many, &r2));
    CHECK(same_results(r1, r2, 1e-12) && same_results(r2, r1, 1e-12));

    /* integer weights must equal physically repeated samples */
    static uint32_t w[N];
    static int yr[N * 3];
    static float sr[N * 3 * K];
    int nr = 0;
    for (int i = 0; i < N; i++) {
        w[i] = (uint32_t)(urand() * 3);
        for (uint32_t k = 0; k < w[i]; k++, nr++) {
            yr[nr] = y[i];
            memcpy(sr + (size_t)nr * K, s + (size_t)i * K, K * sizeof(float));
        }
    }
    cv_metrics *rep;
    CHECK_OK(ctx, cv_metrics_new(ctx, CV_TASK_MULTICLASS, K, &o, &rep));
    CHECK_OK(ctx, cv_metrics_add(ctx, rep, yr, sr, NULL, (size_t)nr));
    cv_metrics_result *rr, *rw;
    CHECK_OK(ctx, cv_metrics_finalize(ctx, rep, &rr));
    CHECK_OK(ctx, cv_metrics_compute(ctx, one, w, 0, &rw));
    CHECK(same_results(rw, rr, 1e-9)); /* every scalar of the weighted replicate */
    cv_metrics_result_free(r1);
    cv_metrics_result_free(r2);
    cv_metrics_result_free(rr);
    cv_metrics_result_free(rw);
    cv_metrics_free(one);
    cv_metrics_free(many);
    cv_metrics_free(rep);
    cv_ctx_free(ctx);
}

static void test_bad_batches(void)
{
    cv_ctx *ctx = cv_ctx_new();
    cv_metrics *m;
    CHECK_OK(ctx, cv_metrics_new(ctx, CV_TASK_MULTICLASS, 3, NULL, &m));
    int y[2] = {0, 1}, bad_y[2] = {0, 3}, p[2] = {0, 2};
    float s[6] = {1, 0, 0, 0, 1, 0}, bad_s[6] = {1, 0, 0, NAN, 1, 0};
    CHECK(cv_metrics_add(ctx, m, bad_y, s, NULL, 2) == CV_ERR_INVALID);
    CHECK(strstr(cv_ctx_error(ctx), "label 3 is outside 0..2") != NULL);
    CHECK(cv_metrics_add(ctx, m, y, bad_s, NULL, 2) == CV_ERR_INVALID);
    CHECK(cv_metrics_count(m) == 0); /* a rejected batch leaves nothing behind */
    CHECK_OK(ctx, cv_metrics_add(ctx, m, y, s, NULL, 2));
    CHECK(cv_metrics_add(ctx, m, y, NULL, p, 2) == CV_ERR_INVALID); /* scores, then none */
    CHECK(cv_metrics_count(m) == 2);
    cv_metrics_free(m);
    CHECK(cv_metrics_new(ctx, CV_TASK_BINARY, 3, NULL, &m) == CV_ERR_INVALID);
    CHECK(cv_metrics_new(ctx, CV_TASK_MULTICLASS, 0, NULL, &m) == CV_ERR_INVALID);
    CHECK_OK(ctx, cv_metrics_new(ctx, CV_TASK_MULTICLASS, 3, NULL, &m));
    cv_metrics_result *r;
    CHECK(cv_metrics_finalize(ctx, m, &r) == CV_ERR_INVALID); /* no samples */
    cv_metrics_free(m);
    cv_ctx_free(ctx);
}

/* Streaming without scores keeps no samples: the confusion counts are all that is stored. */
static void test_streaming_preds_only(void)
{
    cv_ctx *ctx = cv_ctx_new();
    cv_metrics *m;
    CHECK_OK(ctx, cv_metrics_new(ctx, CV_TASK_MULTICLASS, 4, NULL, &m));
    int y[1000], p[1000];
    for (int rep = 0; rep < 50; rep++) {
        for (int i = 0; i < 1000; i++) y[i] = i % 4, p[i] = (i + i % 2) % 4; /* half right */
        CHECK_OK(ctx, cv_metrics_add(ctx, m, y, NULL, p, 1000));
    }
    CHECK(m->y == NULL && m->s == NULL);
    cv_metrics_result *r;
    CHECK_OK(ctx, cv_metrics_finalize(ctx, m, &r));
    CHECK_NEAR(cv_metrics_result_scalar(r, "accuracy_score"), 0.5, 1e-15);
    CHECK(cv_metrics_result_get(r, "roc_auc_score.ovr_macro") == NULL);
    cv_metrics_result_free(r);
    cv_metrics_free(m);
    cv_ctx_free(ctx);
}

static void test_paired_bootstrap(void)
{
    enum { N = 200 };
    int y[N], good[N], bad[N];
    for (int i = 0; i < N; i++) {
        y[i] = i % 3;
        good[i] = urand() < 0.9 ? y[i] : (y[i] + 1) % 3;
        bad[i] = urand() < 0.5 ? y[i] : (y[i] + 1) % 3;
    }
    cv_ctx *ctx = cv_ctx_new();
    cv_metrics_opts o;
    cv_metrics_opts_default(&o);
    o.bootstrap = 1;
    cv_metrics *a, *b;
    CHECK_OK(ctx, cv_metrics_new(ctx, CV_TASK_MULTICLASS, 3, &o, &a));
    CHECK_OK(ctx, cv_metrics_new(ctx, CV_TASK_MULTICLASS, 3, &o, &b));
    CHECK_OK(ctx, cv_metrics_add(ctx, a, y, NULL, good, N));
    CHECK_OK(ctx, cv_metrics_add(ctx, b, y, NULL, bad, N));
    cv_paired_result pr;
    CHECK_OK(ctx, cv_metrics_paired_bootstrap(ctx, a, b, "accuracy_score", 300, 0.95, 1, &pr));
    CHECK(pr.ci_low > 0 && pr.diff > 0.25 && pr.p_value < 0.01 && pr.resamples_used == 300);
    CHECK_OK(ctx, cv_metrics_paired_bootstrap(ctx, a, a, "f1_score.macro", 50, 0.95, 1, &pr));
    CHECK(pr.diff == 0 && pr.ci_low == 0 && pr.ci_high == 0 && pr.p_value == 1);
    CHECK(cv_metrics_paired_bootstrap(ctx, a, b, "no_such_metric", 10, 0.95, 1, &pr) ==
          CV_ERR_NOT_FOUND);
    y[0] = 1;
    cv_metrics *c;
    CHECK_OK(ctx, cv_metrics_new(ctx, CV_TASK_MULTICLASS, 3, &o, &c));
    CHECK_OK(ctx, cv_metrics_add(ctx, c, y, NULL, bad, N));
    CHECK(cv_metrics_paired_bootstrap(ctx, a, c, "accuracy_score", 10, 0.95, 1, &pr) ==
          CV_ERR_INVALID); /* different labels */
    cv_metrics_free(a);
    cv_metrics_free(b);
    cv_metrics_free(c);
    cv_ctx_free(ctx);
}

/* The tuned threshold of each class maximises its F1 over every candidate threshold. */
static void test_tune_thresholds(void)
{
    enum { N = 150, K = 4 };
    static int Y[N * K];
    static float S[N * K];
    for (int i = 0; i < N * K; i++) {
        Y[i] = urand() < 0.3;
        S[i] = (float)(0.4 * Y[i] + 0.6 * urand());
    }
    Y[3] = 0; /* keep class 3 without positives after the loop below */
    for (int i = 0; i < N; i++) Y[i * K + 3] = 0;
    cv_ctx *ctx = cv_ctx_new();
    cv_metrics *m;
    CHECK_OK(ctx, cv_metrics_new(ctx, CV_TASK_MULTILABEL, K, NULL, &m));
    CHECK_OK(ctx, cv_metrics_add(ctx, m, Y, S, NULL, N));
    double thr[K];
    CHECK_OK(ctx, cv_metrics_tune_thresholds(ctx, m, thr));
    for (int c = 0; c < K; c++) {
        double best = 0, got = -1;
        for (int j = 0; j <= N; j++) {
            double t = j < N ? S[j * K + c] : thr[c];
            int tp = 0, fp = 0, fn = 0;
            for (int i = 0; i < N; i++) {
                int p = S[i * K + c] >= t;
                tp += p && Y[i * K + c];
                fp += p && !Y[i * K + c];
                fn += !p && Y[i * K + c];
            }
            double f1 = tp ? 2.0 * tp / (2 * tp + fp + fn) : 0;
            if (j < N && f1 > best) best = f1;
            if (j == N) got = f1;
        }
        CHECK_NEAR(got, best, 1e-12);
    }
    /* a class without positives: nothing predicted */
    float mx = 0;
    for (int i = 0; i < N; i++)
        if (S[i * K + 3] > mx) mx = S[i * K + 3];
    CHECK(thr[3] > mx);
    cv_metrics_free(m);
    cv_ctx_free(ctx);
}

static int has_diag(const cv_metrics_result *r, const char *code)
{
    for (int i = 0; i < cv_metrics_result_diag_count(r); i++)
        if (!strcmp(cv_metrics_result_diag_code(r, i), code)) return 1;
    return 0;
}

static void test_diagnostics(void)
{
    enum { N = 1000 };
    static int y[N], p[N], pt[N];
    for (int i = 0; i < N; i++) {
        y[i] = i < 20 ? 1 : 0; /* 2% positives */
        p[i] = i < 2 ? 1 : 0;  /* finds 2 of the 20 */
        pt[i] = y[i];
    }
    cv_ctx *ctx = cv_ctx_new();
    cv_metrics *m, *t;
    CHECK_OK(ctx, cv_metrics_new(ctx, CV_TASK_BINARY, 2, NULL, &m));
    CHECK_OK(ctx, cv_metrics_new(ctx, CV_TASK_BINARY, 2, NULL, &t));
    CHECK_OK(ctx, cv_metrics_add(ctx, m, y, NULL, p, N));
    CHECK_OK(ctx, cv_metrics_add(ctx, t, y, NULL, pt, N));
    cv_metrics_result *r, *rt;
    CHECK_OK(ctx, cv_metrics_finalize(ctx, m, &r));
    CHECK_OK(ctx, cv_metrics_finalize(ctx, t, &rt));
    CHECK(has_diag(r, "accuracy_paradox") && has_diag(r, "class_imbalance"));
    CHECK(!has_diag(r, "overfitting") && !has_diag(r, "leakage"));
    cv_diag_inputs in = {rt, 12};
    CHECK_OK(ctx, cv_metrics_diagnose(ctx, r, &in));
    CHECK(has_diag(r, "overfitting") && has_diag(r, "leakage"));
    CHECK(!has_diag(rt, "accuracy_paradox")); /* the perfect model */
    cv_metrics_result_free(r);
    cv_metrics_result_free(rt);
    cv_metrics_free(m);
    cv_metrics_free(t);
    cv_ctx_free(ctx);
}

int main(void)
{
    RUN(test_batches_and_weights);
    RUN(test_bad_batches);
    RUN(test_streaming_preds_only);
    RUN(test_paired_bootstrap);
    RUN(test_tune_thresholds);
    RUN(test_diagnostics);
    TEST_EXIT();
}
