/* A study run's selected checkpoint (the best validation epoch) on the test data, scored by the
 * dataset's task metric through the metrics library. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cvision/data.h"
#include "cvision/model.h"
#include "cvision/train.h"
#include "cvision/transforms.h"
#include "runner.h"

int study_lower_is_better(const char *key)
{
    return strstr(key, "loss") || strstr(key, "error") || strstr(key, "brier") ||
           strstr(key, "calibration");
}

cv_status study_metric_key(cv_ctx *ctx, const char *name, cv_task task, int num_classes,
                           const char **key, int *tuned)
{
    *tuned = 0;
    if (!strcmp(name, "accuracy"))
        *key = "accuracy_score";
    else if (!strcmp(name, "balanced_accuracy"))
        *key = "balanced_accuracy_score";
    else if (!strcmp(name, "qwk"))
        *key = "cohen_kappa_score.quadratic";
    else if (!strcmp(name, "roc_auc"))
        *key = task == CV_TASK_BINARY       ? "roc_auc_score"
               : task == CV_TASK_MULTILABEL ? "roc_auc_score.macro"
                                            : "roc_auc_score.ovr_macro";
    else if (!strcmp(name, "macro_f1"))
        *key = "f1_score.macro";
    else if (!strcmp(name, "macro_f1_tuned")) {
        if (task != CV_TASK_MULTILABEL)
            return cv_fail(ctx, CV_ERR_INVALID,
                           "metric macro_f1_tuned needs a multi-label dataset (per-class "
                           "thresholds); use macro_f1 for single-label data");
        *key = "f1_score.macro";
        *tuned = 1;
    } else if (!strcmp(name, "mcc"))
        *key = "matthews_corrcoef";
    else
        *key = name;
    /* The key must be one the metrics library reports for this task: try it on two samples. */
    int K = num_classes, ml = task == CV_TASK_MULTILABEL;
    int *lab = malloc(2 * (size_t)K * sizeof *lab);
    float *sc = malloc(2 * (size_t)K * sizeof *sc);
    cv_status st = lab && sc ? CV_OK : cv_fail(ctx, CV_ERR_NOMEM, "out of memory");
    for (int i = 0; !st && i < 2; i++)
        for (int k = 0; k < K; k++) {
            sc[i * K + k] = ml ? 0.5f : 1.0f / (float)K;
            if (ml) lab[i * K + k] = (i + k) % 2;
        }
    if (!st && !ml) lab[0] = 0, lab[1] = 1;
    cv_metrics_opts o;
    cv_metrics_opts_default(&o);
    cv_metrics *m = NULL;
    cv_metrics_result *r = NULL;
    if (!st) st = cv_metrics_new(ctx, task, K, &o, &m);
    if (!st) st = cv_metrics_add(ctx, m, lab, sc, NULL, 2);
    if (!st) st = cv_metrics_finalize(ctx, m, &r);
    if (!st && (!cv_metrics_result_get(r, *key) ||
                cv_metrics_result_get(r, *key)->section != CV_SECTION_METRIC ||
                cv_metrics_result_get(r, *key)->rows || cv_metrics_result_get(r, *key)->cols))
        st = cv_fail(ctx, CV_ERR_INVALID,
                     "metric '%s': not a scalar metric for a %s task (accuracy, balanced_accuracy, "
                     "qwk, roc_auc, macro_f1, macro_f1_tuned, mcc, or a key of the metrics JSON)",
                     name, cv_task_name(task));
    cv_metrics_result_free(r);
    cv_metrics_free(m);
    free(lab);
    free(sc);
    return st;
}

typedef struct {
    float *scores; /* n x K */
    int *labels;   /* n, or n x K (multi-label) */
    size_t n;
} scored;

/* Runs the model over `spec` with the checkpoint's eval transform and keeps scores and labels. */
static cv_status score_data(cv_ctx *ctx, const cv_study *s, cv_model *model, const char *tf,
                            const study_dataset *d, const char *spec, scored *out)
{
    memset(out, 0, sizeof *out);
    int K = d->num_classes, ml = d->task == CV_TASK_MULTILABEL;
    cv_dataset *ds = NULL;
    cv_transform_pipeline *pipe = NULL;
    cv_image *img = NULL;
    cv_tensor *x0 = NULL, *logits = NULL;
    cv_loader *L = NULL;
    int label;
    cv_status st = cv_dataset_open(ctx, spec, &ds);
    /* Test labels map to the model's outputs by class name: test data may lack classes. */
    int dk = st ? 0 : cv_dataset_num_classes(ds);
    int *map = st ? NULL : malloc((size_t)(dk > 0 ? dk : 1) * sizeof *map);
    if (!st && !map) st = cv_fail(ctx, CV_ERR_NOMEM, "out of memory");
    for (int k = 0; !st && k < dk; k++) {
        const char *name = cv_dataset_class_name(ds, k);
        map[k] = -1;
        for (int j = 0; j < K && map[k] < 0; j++)
            if (!strcmp(name, d->class_names[j])) map[k] = j;
        if (map[k] < 0)
            st = cv_fail(ctx, CV_ERR_INVALID, "%s: class '%s' is not a class of %s", spec, name,
                         d->train);
    }
    if (!st && cv_dataset_len(ds) < 1) st = cv_fail(ctx, CV_ERR_INVALID, "%s is empty", spec);
    if (!st) st = cv_transform_pipeline_parse(ctx, tf, &pipe);
    if (!st) st = cv_dataset_get(ctx, ds, 0, &img, &label);
    if (!st) st = cv_transform_apply(ctx, pipe, img, 0, &x0);
    if (!st && x0->ndim != 3)
        st = cv_fail(ctx, CV_ERR_SHAPE, "transform '%s' does not produce a C x H x W tensor", tf);
    cv_loader_pipeline lp = {0};
    if (!st) {
        lp = (cv_loader_pipeline){pipe, (int)x0->shape[0], (int)x0->shape[1], (int)x0->shape[2]};
        cv_loader_opts o = {0};
        o.batch_size = s->batch;
        o.workers = s->workers > 0 ? s->workers : 1;
        o.seed = s->seed;
        o.out_c = lp.c, o.out_h = lp.h, o.out_w = lp.w;
        o.transform = cv_loader_pipeline_fn;
        o.user = &lp;
        st = cv_loader_new(ctx, ds, &o, &L);
    }
    size_t total = st ? 0 : (size_t)cv_dataset_len(ds);
    if (!st) {
        out->scores = malloc(total * (size_t)K * sizeof *out->scores);
        out->labels = malloc(total * (size_t)(ml ? K : 1) * sizeof *out->labels);
        if (!out->scores || !out->labels) st = cv_fail(ctx, CV_ERR_NOMEM, "out of memory");
    }
    if (!st) st = cv_model_set_training(ctx, model, 0);
    if (!st) st = cv_loader_start_epoch(ctx, L, 0);
    const cv_batch *b;
    while (!st && !(st = cv_loader_next(ctx, L, &b)) && b) {
        if (out->n + (size_t)b->n > total) {
            st = cv_fail(ctx, CV_ERR_INVALID, "%s: more samples than the dataset has", spec);
            break;
        }
        cv_tensor_free(logits);
        logits = NULL;
        if ((st = cv_model_forward(ctx, model, b->x, &logits))) break;
        cv_logits_to_scores(logits->data, out->scores + out->n * (size_t)K, b->n, K, ml);
        for (int64_t i = 0; i < b->n; i++) {
            size_t row = out->n + (size_t)i;
            if (ml) {
                for (int k = 0; k < K; k++) out->labels[row * (size_t)K + (size_t)k] = 0;
                for (int k = 0; k < dk; k++)
                    out->labels[row * (size_t)K + (size_t)map[k]] = b->targets[i * dk + k] > 0.5f;
            } else if (b->labels[i] < 0) {
                st = cv_fail(ctx, CV_ERR_INVALID, "%s: sample %lld has no label", spec,
                             (long long)b->indices[i]);
                break;
            } else {
                out->labels[row] = map[b->labels[i]];
            }
        }
        out->n += (size_t)b->n;
    }
    free(map);
    cv_tensor_free(logits);
    cv_tensor_free(x0);
    cv_image_free(img);
    cv_loader_free(L);
    cv_transform_pipeline_free(pipe);
    cv_dataset_free(ds);
    return st;
}

static cv_status metric_of(cv_ctx *ctx, const study_dataset *d, const scored *sc,
                           const double *thresholds, double *value)
{
    cv_metrics_opts o;
    cv_metrics_opts_default(&o);
    o.class_thresholds = thresholds;
    cv_metrics *m = NULL;
    cv_metrics_result *r = NULL;
    cv_status st = cv_metrics_new(ctx, d->task, d->num_classes, &o, &m);
    if (!st) st = cv_metrics_add(ctx, m, sc->labels, sc->scores, NULL, sc->n);
    if (!st) st = cv_metrics_finalize(ctx, m, &r);
    if (!st) *value = cv_metrics_result_scalar(r, d->key);
    cv_metrics_result_free(r);
    cv_metrics_free(m);
    return st;
}

static cv_status tune(cv_ctx *ctx, const study_dataset *d, const scored *val, double *thr)
{
    cv_metrics_opts o;
    cv_metrics_opts_default(&o);
    cv_metrics *m = NULL;
    cv_status st = cv_metrics_new(ctx, d->task, d->num_classes, &o, &m);
    if (!st) st = cv_metrics_add(ctx, m, val->labels, val->scores, NULL, val->n);
    if (!st) st = cv_metrics_tune_thresholds(ctx, m, thr);
    cv_metrics_free(m);
    return st;
}

cv_status study_evaluate(cv_ctx *ctx, const cv_study *s, const study_dataset *d,
                         const char *run_dir, const char *test, double *value, int64_t *samples)
{
    *value = NAN;
    *samples = 0;
    cv_state *st_w = NULL;
    char *json = NULL;
    cJSON *side = NULL;
    cv_model *model = NULL;
    scored val = {0}, te = {0};
    double *thr = NULL;
    cv_status st = cv_checkpoint_load(ctx, run_dir, "best", &st_w, NULL, NULL, &json);
    if (!st && !(side = cJSON_Parse(json)))
        st = cv_fail(ctx, CV_ERR_FORMAT, "%s/best.json: not JSON", run_dir);
    const cJSON *arch = side ? cJSON_GetObjectItem(side, "arch") : NULL,
                *tf = side ? cJSON_GetObjectItem(side, "eval_transform") : NULL;
    if (!st && (!cJSON_IsString(arch) || !cJSON_IsString(tf)))
        st =
            cv_fail(ctx, CV_ERR_FORMAT, "%s/best.json: no \"arch\" or \"eval_transform\"", run_dir);
    if (!st) st = cv_model_create(ctx, arch->valuestring, d->num_classes, &model);
    if (!st) st = cv_model_load_state(ctx, model, st_w, CV_LOAD_STRICT);
    if (!st && d->tuned) {
        thr = malloc((size_t)d->num_classes * sizeof *thr);
        if (!thr) st = cv_fail(ctx, CV_ERR_NOMEM, "out of memory");
        if (!st) st = score_data(ctx, s, model, tf->valuestring, d, d->val_spec, &val);
        if (!st) st = tune(ctx, d, &val, thr);
    }
    if (!st) st = score_data(ctx, s, model, tf->valuestring, d, test, &te);
    if (!st) st = metric_of(ctx, d, &te, thr, value);
    if (!st) *samples = (int64_t)te.n;
    free(val.scores), free(val.labels), free(te.scores), free(te.labels), free(thr);
    cv_model_free(model);
    cJSON_Delete(side);
    free(json);
    cv_state_free(st_w);
    return st;
}
