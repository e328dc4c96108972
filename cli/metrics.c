/* cvision metrics: every metric, with CIs, thresholds and diagnostics, from a predictions CSV. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "util.h"
#include "report/json.h"

static const char *usage_text =
    "usage: cvision metrics --pred FILE.csv [options]\n"
    "       cvision metrics --task segmentation|detection --gt ... --pred ... (see\n"
    "       cvision metrics --task detection --help)\n"
    "  FILE.csv: a 'label' column (multilabel: space-separated class indices) and\n"
    "  score_0..score_{K-1} probability columns and/or a 'pred' column.\n"
    "options:\n"
    "  --task T              binary|multiclass|multilabel|ordinal (default: binary for 2\n"
    "                        classes, else multiclass)\n"
    "  --classes K           number of classes when there are no score columns\n"
    "  --json                print the JSON report (docs/metrics-json.md)\n"
    "  --html FILE           write a self-contained HTML report\n"
    "  --ci N                percentile bootstrap CIs from N resamples (default: none)\n"
    "  --seed S              bootstrap seed (default 0)\n"
    "  --level L             CI level (default 0.95)\n"
    "  --bins B              calibration bins (default 15)\n"
    "  --beta B              beta of fbeta_score (default 2)\n"
    "  --curve-points N      points kept per ROC/PR curve, 0 = all (default 1000)\n"
    "  --threshold T         multilabel decision threshold (default 0.5)\n"
    "  --val VAL.csv         multilabel: tune per-class F1-maximising thresholds on VAL.csv\n"
    "  --target-recall R     threshold reaching recall R (binary, or per class)\n"
    "  --target-precision P  threshold reaching precision P\n"
    "  --cost C              threshold minimising C*FP + FN\n"
    "  --compare B.csv       paired bootstrap: do these predictions beat B.csv's?\n"
    "  --metric NAME         the metric compared (default accuracy_score)\n"
    "  --train-pred T.csv    the model's predictions on its training data (overfitting check)\n"
    "  --duplicates N        train/test duplicates reported by 'cvision data check'\n";

typedef struct {
    const char *pred, *task, *html, *val, *compare, *metric, *train;
    int classes, json, ci, bins, curve_points;
    unsigned long long seed;
    double level, beta, threshold, recall, precision, cost;
    long long duplicates;
} args_t;

static int parse_args(cv_ctx *ctx, int argc, char **argv, args_t *a)
{
    memset(a, 0, sizeof *a);
    a->level = 0.95;
    a->bins = 15;
    a->beta = 2;
    a->threshold = 0.5;
    a->curve_points = 1000;
    a->duplicates = -1;
    a->metric = "accuracy_score";
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        if (!strcmp(o, "--json")) {
            a->json = 1;
            continue;
        }
        if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
            fputs(usage_text, stdout);
            return 1;
        }
        if (i + 1 >= argc) {
            cv_fail(ctx, CV_ERR_INVALID, "metrics: %s needs a value (see --help)", o);
            return -1;
        }
        const char *v = argv[++i];
        double d;
        const char **str = !strcmp(o, "--pred")         ? &a->pred
                           : !strcmp(o, "--task")       ? &a->task
                           : !strcmp(o, "--html")       ? &a->html
                           : !strcmp(o, "--val")        ? &a->val
                           : !strcmp(o, "--compare")    ? &a->compare
                           : !strcmp(o, "--metric")     ? &a->metric
                           : !strcmp(o, "--train-pred") ? &a->train
                                                        : NULL;
        if (str) {
            *str = v;
            continue;
        }
        double *num = !strcmp(o, "--level")              ? &a->level
                      : !strcmp(o, "--beta")             ? &a->beta
                      : !strcmp(o, "--threshold")        ? &a->threshold
                      : !strcmp(o, "--target-recall")    ? &a->recall
                      : !strcmp(o, "--target-precision") ? &a->precision
                      : !strcmp(o, "--cost")             ? &a->cost
                                                         : NULL;
        if (num) {
            if (cli_double(ctx, o, v, -1e300, 1e300, num)) return -1;
            continue;
        }
        if (!strcmp(o, "--classes") || !strcmp(o, "--ci") || !strcmp(o, "--bins") ||
            !strcmp(o, "--curve-points") || !strcmp(o, "--duplicates")) {
            if (cli_double(ctx, o, v, 0, 1e9, &d)) return -1;
            if (d != (long long)d) {
                cv_fail(ctx, CV_ERR_INVALID, "metrics: %s needs an integer, not '%s'", o, v);
                return -1;
            }
            if (!strcmp(o, "--classes")) a->classes = (int)d;
            if (!strcmp(o, "--ci")) a->ci = (int)d;
            if (!strcmp(o, "--bins")) a->bins = (int)d;
            if (!strcmp(o, "--curve-points")) a->curve_points = (int)d;
            if (!strcmp(o, "--duplicates")) a->duplicates = (long long)d;
            continue;
        }
        if (!strcmp(o, "--seed")) {
            char *end;
            a->seed = strtoull(v, &end, 10);
            if (end == v || *end) {
                cv_fail(ctx, CV_ERR_INVALID, "metrics: --seed needs an integer, not '%s'", v);
                return -1;
            }
            continue;
        }
        cv_fail(ctx, CV_ERR_INVALID, "metrics: unknown option '%s' (see --help)", o);
        return -1;
    }
    if (!a->pred) {
        cv_fail(ctx, CV_ERR_INVALID, "metrics: --pred FILE.csv is required (see --help)");
        return -1;
    }
    return 0;
}

/* Reads a predictions file and accumulates it. `want` fixes the task (NULL: infer). */
static cv_status load(cv_ctx *ctx, const char *path, const cv_task *want, int classes,
                      const cv_metrics_opts *o, int use_preds, cv_metrics **out)
{
    *out = NULL;
    cv_task task = CV_TASK_MULTICLASS;
    if (want) task = *want;
    cv_pred_table t;
    cv_status st = cv_pred_csv_read(ctx, path, task, classes, &t);
    if (st) return st;
    if (!want && t.num_classes == 2) task = CV_TASK_BINARY;
    st = cv_metrics_new(ctx, task, t.num_classes, o, out);
    if (!st)
        st = cv_metrics_add(ctx, *out, t.labels, t.scores, use_preds || !t.scores ? t.preds : NULL,
                            t.n);
    if (st) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", cv_ctx_error(ctx));
        st = cv_fail(ctx, st, "%s: %s", path, msg);
        cv_metrics_free(*out);
        *out = NULL;
    }
    cv_pred_table_free(&t);
    return st;
}

int cmd_metrics(cv_ctx *ctx, int argc, char **argv)
{
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], "--task") &&
            (!strcmp(argv[i + 1], "segmentation") || !strcmp(argv[i + 1], "detection")))
            return cmd_metrics_detseg(ctx, argc, argv);
    args_t a;
    int rc = parse_args(ctx, argc, argv, &a);
    if (rc) return rc > 0 ? 0 : cli_error(ctx);
    cv_task task, *want = NULL;
    if (a.task) {
        if (cv_task_parse(ctx, a.task, &task)) return cli_error(ctx);
        want = &task;
    }
    cv_metrics_opts o;
    cv_metrics_opts_default(&o);
    o.n_bins = a.bins;
    o.beta = a.beta;
    o.threshold = a.threshold;
    o.curve_points = a.curve_points;
    o.bootstrap = a.ci;
    o.ci_level = a.level;
    o.seed = a.seed;
    cv_metrics *m = NULL, *val = NULL, *train = NULL, *ma = NULL, *mb = NULL;
    cv_metrics_result *r = NULL, *rt = NULL;
    double *tuned = NULL;
    char *json = NULL;
    cJSON *extra = NULL;
    int ok = 0;
    if (a.val) {
        if (!want || task != CV_TASK_MULTILABEL) {
            cv_fail(ctx, CV_ERR_INVALID,
                    "metrics: --val tunes multilabel thresholds: it needs "
                    "--task multilabel");
            goto out;
        }
        cv_metrics_opts vo = o;
        vo.bootstrap = 0;
        if (load(ctx, a.val, want, a.classes, &vo, 0, &val)) goto out;
        tuned = malloc((size_t)cv_metrics_num_classes(val) * sizeof *tuned);
        if (!tuned) {
            cv_fail(ctx, CV_ERR_NOMEM, "metrics: out of memory");
            goto out;
        }
        if (cv_metrics_tune_thresholds(ctx, val, tuned)) goto out;
        o.class_thresholds = tuned;
    }
    if (load(ctx, a.pred, want,
             a.classes ? a.classes
             : val     ? cv_metrics_num_classes(val)
                       : 0,
             &o, !tuned, &m))
        goto out;
    if (cv_metrics_finalize(ctx, m, &r)) goto out;
    if ((a.recall > 0 || a.precision > 0 || a.cost > 0) &&
        cv_metrics_thresholds(ctx, m, r, a.recall, a.precision, a.cost))
        goto out;
    cv_task got = cv_metrics_task(m);
    if (a.train) {
        cv_metrics_opts to = o;
        to.bootstrap = 0;
        if (load(ctx, a.train, &got, cv_metrics_num_classes(m), &to, !tuned, &train) ||
            cv_metrics_finalize(ctx, train, &rt))
            goto out;
    }
    cv_diag_inputs di = {rt, a.duplicates};
    if ((rt || a.duplicates > 0) && cv_metrics_diagnose(ctx, r, &di)) goto out;
    cv_paired_result pr;
    if (a.compare) {
        cv_metrics_opts po = o;
        po.bootstrap = a.ci ? a.ci : 1000; /* keeps the samples for the resampling */
        int B = po.bootstrap;
        if (load(ctx, a.pred, &got, cv_metrics_num_classes(m), &po, !tuned, &ma) ||
            load(ctx, a.compare, &got, cv_metrics_num_classes(m), &po, !tuned, &mb) ||
            cv_metrics_paired_bootstrap(ctx, ma, mb, a.metric, B, a.level, a.seed, &pr))
            goto out;
        extra = cJSON_CreateObject();
        cJSON *cmp = cJSON_AddObjectToObject(extra, "comparison");
        cJSON_AddStringToObject(cmp, "metric", a.metric);
        cJSON_AddStringToObject(cmp, "a", a.pred);
        cJSON_AddStringToObject(cmp, "b", a.compare);
        cJSON_AddItemToObject(cmp, "value_a", cv_json_number(pr.a));
        cJSON_AddItemToObject(cmp, "value_b", cv_json_number(pr.b));
        cJSON_AddItemToObject(cmp, "difference", cv_json_number(pr.diff));
        double ci[2] = {pr.ci_low, pr.ci_high};
        cJSON_AddItemToObject(cmp, "ci", cv_json_numbers(ci, 2));
        cJSON_AddItemToObject(cmp, "level", cv_json_number(a.level));
        cJSON_AddNumberToObject(cmp, "resamples", pr.resamples_used);
        cJSON_AddItemToObject(cmp, "p_value", cv_json_number(pr.p_value));
        cJSON_AddBoolToObject(cmp, "a_better", pr.ci_low > 0);
        cJSON_AddBoolToObject(cmp, "b_better", pr.ci_high < 0);
    }
    if (a.html && cv_metrics_report_html(ctx, r, a.html)) goto out;
    if (a.json) {
        if (tuned) {
            if (!extra) extra = cJSON_CreateObject();
            cJSON_AddItemToObject(extra, "tuned_thresholds",
                                  cv_json_numbers(tuned, cv_metrics_num_classes(m)));
        }
        json = cv_metrics_report_json_extra(r, extra);
        extra = NULL;
        if (!json) {
            cv_fail(ctx, CV_ERR_NOMEM, "metrics: out of memory writing JSON");
            goto out;
        }
        puts(json);
    } else {
        printf("%s: ", a.pred);
        cv_metrics_report_text(stdout, r);
        if (tuned) {
            printf("\ntuned per-class thresholds (from %s):", a.val);
            for (int c = 0; c < cv_metrics_num_classes(m); c++) printf(" %.6g", tuned[c]);
            putchar('\n');
        }
        if (a.compare)
            printf("\n%s: %s %.4f vs %s %.4f, difference %.4f, %.0f%% CI [%.4f, %.4f], p = %.4f "
                   "(%d resamples): %s\n",
                   a.metric, a.pred, pr.a, a.compare, pr.b, pr.diff, 100 * a.level, pr.ci_low,
                   pr.ci_high, pr.p_value, pr.resamples_used,
                   pr.ci_low > 0    ? "the first is better"
                   : pr.ci_high < 0 ? "the second is better"
                                    : "no significant difference");
    }
    ok = 1;
out:
    cJSON_Delete(extra);
    free(json);
    free(tuned);
    cv_metrics_result_free(r);
    cv_metrics_result_free(rt);
    cv_metrics_free(m);
    cv_metrics_free(val);
    cv_metrics_free(train);
    cv_metrics_free(ma);
    cv_metrics_free(mb);
    return ok ? 0 : cli_error(ctx);
}
