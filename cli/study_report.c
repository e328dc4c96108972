/* cvision study-report: the study's analysis (JSON, CSV, HTML) from a results CSV, without
 * running the study. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "util.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: cvision study-report --results FILE.csv --out DIR [--seed S] [--boot N]\n"
            "  FILE.csv has a header naming the columns model, dataset, metric, upstream, value\n"
            "  (upstream: ImageNet top-1 in percent; empty or nan for unknown). Writes\n"
            "  DIR/analysis.json, DIR/analysis.csv and DIR/report.html: per dataset the trend of\n"
            "  the metric with upstream accuracy (Pearson, Spearman, normalized slope) and the\n"
            "  comparison with the average of the other datasets, with percentile-bootstrap 95%%\n"
            "  intervals over models (N resamples, default 1000; 0 for none; seed default 0).\n");
}

static cv_status parse_seed(cv_ctx *ctx, const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (!*s || *end || errno || *s == '-')
        return cv_fail(ctx, CV_ERR_INVALID, "--seed: '%s' is not a non-negative integer", s);
    *out = v;
    return CV_OK;
}

int cmd_study_report(cv_ctx *ctx, int argc, char **argv)
{
    const char *results = NULL, *out = NULL;
    uint64_t seed = 0;
    int boot = 1000;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (i + 1 >= argc) {
            cv_fail(ctx, CV_ERR_INVALID, "study-report: unknown option or missing value: %s", a);
            return cli_error(ctx);
        }
        const char *v = argv[++i];
        if (!strcmp(a, "--results"))
            results = v;
        else if (!strcmp(a, "--out"))
            out = v;
        else if (!strcmp(a, "--seed")) {
            if (parse_seed(ctx, v, &seed)) return cli_error(ctx);
        } else if (!strcmp(a, "--boot")) {
            if (cli_int(ctx, "--boot", v, 0, 1000000, &boot)) return cli_error(ctx);
        } else {
            cv_fail(ctx, CV_ERR_INVALID, "study-report: unknown option %s (see --help)", a);
            return cli_error(ctx);
        }
    }
    if (!results || !out) {
        cv_fail(ctx, CV_ERR_INVALID, "study-report: --results and --out are required (see --help)");
        return cli_error(ctx);
    }
    cv_study_result *rows;
    size_t n;
    if (cv_study_results_csv_read(ctx, results, &rows, &n)) return cli_error(ctx);
    cv_status st = cv_study_analyze(ctx, rows, n, out, seed, boot);
    free(rows);
    if (st) return cli_error(ctx);
    printf("%s/analysis.json, %s/analysis.csv, %s/report.html: %zu results\n", out, out, out, n);
    return 0;
}
