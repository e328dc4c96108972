/* libFuzzer target: the predictions CSV reader, and the metrics pipeline over what it accepts. */
#include <stdint.h>
#include <stdlib.h>

#include "cvision/cvision.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cv_ctx *ctx = cv_ctx_new();
    if (!ctx) return 0;
    /* the first byte picks the task, the rest is the file */
    cv_task task = size ? (cv_task)(data[0] % 4) : CV_TASK_MULTICLASS;
    const char *buf = size ? (const char *)data + 1 : "";
    size_t len = size ? size - 1 : 0;
    cv_pred_table t;
    if (cv_pred_csv_parse(ctx, buf, len, "fuzz.csv", task, 0, &t) == CV_OK) {
        cv_metrics_opts o;
        cv_metrics_opts_default(&o);
        o.bootstrap = t.n < 64 ? 3 : 0;
        o.n_bins = 5;
        cv_metrics *m;
        /* keep the K×K work small: the reader itself accepts up to 100000 classes */
        if (t.num_classes <= 64 && cv_metrics_new(ctx, task, t.num_classes, &o, &m) == CV_OK) {
            cv_metrics_result *r;
            if (cv_metrics_add(ctx, m, t.labels, t.scores, t.preds, t.n) == CV_OK &&
                cv_metrics_finalize(ctx, m, &r) == CV_OK) {
                if (t.scores) cv_metrics_thresholds(ctx, m, r, 0.5, 0.5, 1.0);
                free(cv_metrics_report_json(r));
                cv_metrics_result_free(r);
            }
            cv_metrics_free(m);
        }
        cv_pred_table_free(&t);
    }
    cv_ctx_free(ctx);
    return 0;
}
