/* libFuzzer target: the detection box readers (CSV and COCO JSON, as ground truth and as
 * predictions) and the COCO/VOC evaluation over what they accept. */
#include <stdint.h>
#include <stdlib.h>

#include "cvision/cvision.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cv_ctx *ctx = cv_ctx_new();
    if (!ctx) return 0;
    cv_det_set *gt = NULL, *pred = NULL;
    cv_metrics_result *r;
    if (cv_det_parse(ctx, (const char *)data, size, "fuzz.gt", 0, &gt) == CV_OK &&
        cv_det_evaluate(ctx, gt, gt, &r) == CV_OK) {
        free(cv_metrics_report_json(r));
        cv_metrics_result_free(r);
    }
    if (cv_det_parse(ctx, (const char *)data, size, "fuzz.pred", 1, &pred) == CV_OK && gt &&
        cv_det_evaluate(ctx, gt, pred, &r) == CV_OK)
        cv_metrics_result_free(r);
    cv_det_free(gt);
    cv_det_free(pred);
    cv_ctx_free(ctx);
    return 0;
}
