/* Probability quality: log loss, Brier score, expected/maximum calibration error with
 * torchmetrics' binning, and the reliability diagram. */
#include <math.h>
#include <stdlib.h>

#include "metrics/metrics_internal.h"

static const char *const rel_rows[] = {"bin_lower", "bin_upper", "count", "confidence", "accuracy"};

void cv_calibration_metrics(const cv_metrics *m, const cv_agg *a, cv_metrics_result *r, int full)
{
    if (m->task == CV_TASK_MULTILABEL) return;
    const char *notprob =
        "undefined: some scores are outside [0, 1], so they are not probabilities";
    double n = a->n;
    cv_res_scalar(r, "log_loss", m->K >= 2 ? a->logloss / n : NAN,
                  "undefined: log loss needs at least two classes");
    cv_res_scalar(r, "brier_score_loss", m->outside01 ? NAN : a->brier / n, notprob);
    const int nb = m->opts.n_bins + 1; /* torchmetrics keeps an extra bin for confidence 1.0 */
    double ece = 0, mce = 0;
    for (int b = 0; b < nb; b++) {
        double cnt = a->cal[b * 3];
        if (cnt == 0) continue;
        double gap = fabs(a->cal[b * 3 + 2] / cnt - a->cal[b * 3 + 1] / cnt);
        ece += gap * cnt / n;
        if (gap > mce) mce = gap;
    }
    cv_res_scalar(r, "calibration_error.ece", m->outside01 ? NAN : ece, notprob);
    cv_res_scalar(r, "calibration_error.mce", m->outside01 ? NAN : mce, notprob);
    if (!full || m->outside01) return;
    double *v = malloc((size_t)nb * 5 * sizeof *v);
    if (!v) {
        r->oom = 1;
        return;
    }
    for (int b = 0; b < nb; b++) {
        double cnt = a->cal[b * 3];
        v[b] = m->bounds[b];
        v[nb + b] = b + 1 < nb ? m->bounds[b + 1] : 1.0;
        v[2 * nb + b] = cnt;
        v[3 * nb + b] = cnt ? a->cal[b * 3 + 1] / cnt : NAN;
        v[4 * nb + b] = cnt ? a->cal[b * 3 + 2] / cnt : NAN;
    }
    cv_res_add(r, CV_SECTION_CURVE, "reliability_diagram", 5, nb, v, rel_rows);
    free(v);
}
