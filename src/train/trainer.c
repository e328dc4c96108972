/* The trainer: data -> loader -> model (training mode) -> loss -> backward -> optimizer step,
 * then validation with the metrics library, checkpoints and the runs database, once per epoch. */
#include "cvision/trainer.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cvision/data.h"
#include "cvision/dist.h"
#include "cvision/image.h"
#include "cvision/metrics.h"
#include "cvision/model.h"
#include "cvision/train.h"
#include "cvision/transforms.h"
#include "cvision/weights.h"
#include "train/ddp.h"

void cv_train_config_default(cv_train_config *c)
{
    memset(c, 0, sizeof *c);
    c->val_fraction = 0.2;
    c->epochs = 10;
    c->batch = 64;
    c->workers = 2;
    c->optim = "sgd";
    c->lr = 0.01;
    c->momentum = 0.9;
    c->weight_decay = 1e-4;
    c->norm_weight_decay = NAN;
    c->mode = "full";
    c->dropout = NAN;
    c->seed = 0;
    c->progress = 0;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Everything one training run holds; freed by trainer_free. */
typedef struct {
    const cv_train_config *c;
    cv_dataset *train_all, *train, *val;
    cv_split *split;
    cv_transform_pipeline *train_pipe, *eval_pipe;
    char train_tf[512], eval_tf[512];
    cv_loader_pipeline train_lp, eval_lp;
    cv_loader *train_loader, *val_loader;
    cv_model *model;
    cv_optim *optim;
    cv_sched sched;
    cv_ema *ema;
    cv_runs *runs;
    int64_t run_id;
    int num_classes;
    cv_task task;
    const char *metric;
    char *args_json;
    cv_comm *comm, *own_comm; /* own_comm: the single-process one made when the caller gave none */
    int rank, world;
    ddp *ddp; /* gradient averaging (world > 1) */
} trainer;

static void trainer_free(trainer *t)
{
    cv_loader_free(t->train_loader);
    cv_loader_free(t->val_loader);
    if (t->train != t->train_all) cv_dataset_free(t->train);
    cv_dataset_free(t->train_all);
    cv_dataset_free(t->val);
    cv_split_free(t->split);
    cv_transform_pipeline_free(t->train_pipe);
    cv_transform_pipeline_free(t->eval_pipe);
    cv_model_free(t->model);
    cv_optim_free(t->optim);
    cv_ema_free(t->ema);
    cv_runs_close(t->runs);
    free(t->args_json);
    ddp_free(t->ddp);
    cv_comm_free(t->own_comm);
}

/* Default transforms: images already at the model's working size (small datasets such as
 * FashionMNIST or CIFAR) are only converted to 3 channels and normalised with ImageNet's
 * statistics; larger images get torchvision's classification recipe (RandomResizedCrop(224) and a
 * flip for training; Resize(256) and CenterCrop(224) for evaluation). Without --eval-transform, a
 * given training pipeline's deterministic counterpart evaluates (cv_transform_pipeline_eval_spec):
 * a model trained on resize(56) must be evaluated at 56x56 too. */
static cv_status default_transforms(cv_ctx *ctx, trainer *t)
{
    cv_image *img = NULL;
    int label;
    cv_status s = cv_dataset_get(ctx, t->train_all, 0, &img, &label);
    if (s) return s;
    int small = img->w <= 64 && img->h <= 64;
    const char *gray = img->c == 1 ? "grayscale(3)," : "";
    cv_image_free(img);
    if (!t->c->train_transform)
        snprintf(t->train_tf, sizeof t->train_tf, "%s%s", gray,
                 small ? "to_tensor,normalize(imagenet)"
                       : "rrc(224),hflip,to_tensor,normalize(imagenet)");
    if (t->c->eval_transform) return CV_OK;
    if (t->c->train_transform) { /* evaluate what training saw, without its randomness */
        cv_transform_pipeline *pipe;
        if ((s = cv_transform_pipeline_parse(ctx, t->c->train_transform, &pipe))) return s;
        s = cv_transform_pipeline_eval_spec(ctx, pipe, t->eval_tf, sizeof t->eval_tf);
        cv_transform_pipeline_free(pipe);
        return s;
    }
    snprintf(t->eval_tf, sizeof t->eval_tf, "%s%s", gray,
             small ? "to_tensor,normalize(imagenet)"
                   : "resize(256),center_crop(224),to_tensor,normalize(imagenet)");
    return CV_OK;
}

/* A pipeline and the shape it produces (from sample 0). */
static cv_status make_pipeline(cv_ctx *ctx, const cv_dataset *ds, const char *spec,
                               cv_transform_pipeline **pipe, cv_loader_pipeline *lp)
{
    cv_status s = cv_transform_pipeline_parse(ctx, spec, pipe);
    if (s) return s;
    cv_image *img = NULL;
    cv_tensor *x = NULL;
    int label;
    if (!(s = cv_dataset_get(ctx, ds, 0, &img, &label)) &&
        !(s = cv_transform_apply(ctx, *pipe, img, 0, &x))) {
        if (x->ndim != 3)
            s = cv_fail(ctx, CV_ERR_SHAPE, "transform '%s' does not produce a C x H x W tensor",
                        spec);
        else
            *lp = (cv_loader_pipeline){*pipe, (int)x->shape[0], (int)x->shape[1], (int)x->shape[2]};
    }
    cv_image_free(img);
    cv_tensor_free(x);
    return s;
}

static cv_status make_loader(cv_ctx *ctx, trainer *t, const cv_dataset *ds, cv_loader_pipeline *lp,
                             int train, cv_loader **out)
{
    cv_loader_opts o = {0};
    o.batch_size = t->c->batch;
    o.workers = t->c->workers > 0 ? t->c->workers : 1;
    o.shuffle = train && !t->c->no_shuffle;
    o.drop_last = train && t->c->drop_last;
    o.seed = t->c->seed;
    /* Training shards are padded to equal lengths so that every rank takes the same number of
     * steps; evaluation shards are exact so that every sample counts once. */
    o.world = t->world, o.rank = t->rank;
    o.shard = train ? CV_SHARD_PAD : CV_SHARD_EXACT;
    o.out_c = lp->c, o.out_h = lp->h, o.out_w = lp->w;
    o.transform = cv_loader_pipeline_fn;
    o.user = lp;
    return cv_loader_new(ctx, ds, &o, out);
}

static cv_status open_data(cv_ctx *ctx, trainer *t)
{
    const cv_train_config *c = t->c;
    cv_status s = cv_dataset_open(ctx, c->data, &t->train_all);
    if (s) return s;
    t->train = t->train_all;
    t->num_classes = cv_dataset_num_classes(t->train_all);
    if (t->num_classes < 1)
        return cv_fail(ctx, CV_ERR_INVALID, "%s: the dataset has no classes", c->data);
    if (c->val) {
        if ((s = cv_dataset_open(ctx, c->val, &t->val))) return s;
        if (cv_dataset_num_classes(t->val) != t->num_classes)
            return cv_fail(ctx, CV_ERR_INVALID, "%s has %d classes but %s has %d", c->val,
                           cv_dataset_num_classes(t->val), c->data, t->num_classes);
    } else if (c->val_fraction > 0) {
        char path[4096];
        snprintf(path, sizeof path, "%s/split.json", c->out_dir);
        cv_split_params sp = {.folds = 0, .val_fraction = c->val_fraction, .seed = c->seed};
        /* Rank 0 makes and saves the split; the others load that file once it exists. */
        if (t->rank == 0 && (s = cv_split_load_or_make(ctx, t->train_all, path, &sp, &t->split)))
            return s;
        if ((s = cv_comm_barrier(ctx, t->comm))) return s;
        if (t->rank != 0 && (s = cv_split_load_or_make(ctx, t->train_all, path, &sp, &t->split)))
            return s;
        int64_t ntr, nva;
        const int64_t *tr = cv_split_part(t->split, 0, &ntr),
                      *va = cv_split_part(t->split, 1, &nva);
        if ((s = cv_dataset_subset(ctx, t->train_all, tr, ntr, &t->train))) return s;
        if ((s = cv_dataset_subset(ctx, t->train_all, va, nva, &t->val))) return s;
    }
    t->task = cv_dataset_is_multilabel(t->train_all) ? CV_TASK_MULTILABEL
              : cv_dataset_is_ordinal(t->train_all)  ? CV_TASK_ORDINAL
              : t->num_classes == 2                  ? CV_TASK_BINARY
                                                     : CV_TASK_MULTICLASS;
    if ((s = default_transforms(ctx, t))) return s;
    if (c->train_transform) snprintf(t->train_tf, sizeof t->train_tf, "%s", c->train_transform);
    if (c->eval_transform) snprintf(t->eval_tf, sizeof t->eval_tf, "%s", c->eval_transform);
    if ((s = make_pipeline(ctx, t->train, t->train_tf, &t->train_pipe, &t->train_lp))) return s;
    if ((s = make_loader(ctx, t, t->train, &t->train_lp, 1, &t->train_loader))) return s;
    if (t->val) {
        if ((s = make_pipeline(ctx, t->val, t->eval_tf, &t->eval_pipe, &t->eval_lp))) return s;
        if ((s = make_loader(ctx, t, t->val, &t->eval_lp, 0, &t->val_loader))) return s;
    }
    return CV_OK;
}

/* Builds the model with the dataset's class count; pretrained weights load strictly except for a
 * head of another size, which keeps its fresh initialisation (torchvision's fine-tuning recipe). */
static cv_status open_model(cv_ctx *ctx, trainer *t)
{
    const cv_train_config *c = t->c;
    cv_status s = cv_model_create(ctx, c->arch, t->num_classes, &t->model);
    if (!s) s = cv_model_init_weights(ctx, t->model, c->seed);
    if (!s) s = cv_model_set_amp(ctx, t->model, c->amp);
    if (!s && !isnan(c->dropout)) s = cv_model_set_dropout(ctx, t->model, (float)c->dropout);
    if (s || !c->weights) return s;
    char path[4096];
    struct stat sb;
    if (stat(c->weights, &sb) == 0) {
        snprintf(path, sizeof path, "%s", c->weights);
    } else {
        const cv_weights_info *w = cv_catalog_find(c->arch, c->weights);
        if (!w)
            return cv_fail(ctx, CV_ERR_NOT_FOUND,
                           "%s: no such file, and no weights of that name for %s", c->weights,
                           c->arch);
        if ((s = cv_weights_fetch(ctx, w->url, w->file, path, sizeof path))) return s;
    }
    cv_state *st = NULL;
    if ((s = cv_weights_load(ctx, path, &st))) return s;
    const cv_tensor *head = cv_state_get(st, cv_model_head_name(t->model, 0));
    int same_head = head && head->shape[0] == t->num_classes;
    s = cv_model_load_state(ctx, t->model, st, same_head ? CV_LOAD_STRICT : CV_LOAD_SKIP_HEAD);
    cv_state_free(st);
    if (s) return cv_fail(ctx, s, "%s: %s", path, cv_ctx_error(ctx));
    return CV_OK;
}

/* Linear probe: only the head trains; full: everything. */
static cv_status set_trainable(cv_ctx *ctx, trainer *t, int linear)
{
    cv_status s = cv_model_set_trainable(ctx, t->model, "", !linear);
    for (int i = 0; !s && linear && i < cv_model_head_count(t->model); i++)
        s = cv_model_set_trainable(ctx, t->model, cv_model_head_name(t->model, i), 1);
    return s;
}

static cv_status make_optim(cv_ctx *ctx, trainer *t)
{
    const cv_train_config *c = t->c;
    cv_optim_free(t->optim);
    t->optim = NULL;
    int kind = cv_optim_kind_parse(c->optim);
    if (kind < 0)
        return cv_fail(ctx, CV_ERR_INVALID,
                       "--opt: unknown optimizer '%s' (sgd, sgd_nesterov, adam, adamw)", c->optim);
    cv_optim_config oc;
    cv_optim_config_default((cv_optim_kind)kind, &oc);
    oc.lr = c->lr;
    oc.weight_decay = c->weight_decay;
    if (kind == CV_OPTIM_SGD) oc.momentum = c->momentum;
    oc.nesterov = !strcmp(c->optim, "sgd_nesterov");
    cv_param_rules rules;
    cv_param_rules_default(&rules);
    rules.norm_weight_decay = c->norm_weight_decay;
    rules.lr_mults = c->lr_mults;
    cv_status s = cv_optim_new(ctx, &oc, &t->optim);
    cv_state *grads = s ? NULL : cv_model_grads(t->model);
    if (!s && !grads) s = cv_fail(ctx, CV_ERR_NOMEM, "out of memory for gradients");
    if (!s) s = cv_optim_add_state(ctx, t->optim, cv_model_params(t->model), grads, &rules);
    return s;
}

static cv_status make_sched(cv_ctx *ctx, trainer *t)
{
    cv_sched_default(&t->sched);
    t->sched.epochs = t->c->epochs;
    cv_status s = t->c->sched ? cv_sched_parse(ctx, t->c->sched, &t->sched) : CV_OK;
    if (!s) t->sched.epochs = t->c->epochs;
    return s ? s : cv_sched_validate(ctx, &t->sched);
}

/* The loss and d(loss)/d(logits) for one batch. */
static cv_status batch_loss(cv_ctx *ctx, trainer *t, const cv_batch *b, const cv_tensor *logits,
                            const cv_tensor *soft, double *loss, cv_tensor *grad)
{
    const char *kind = t->c->loss ? t->c->loss : t->task == CV_TASK_MULTILABEL ? "bce" : "ce";
    int64_t n = b->n, k = t->num_classes;
    cv_tensor *target = NULL;
    cv_status s;
    if (!strcmp(kind, "ce")) {
        cv_ce_opts o = {.label_smoothing = t->c->label_smoothing};
        if (soft) return cv_loss_soft_cross_entropy(ctx, logits, soft, &o, loss, grad);
        if ((s = cv_tensor_new(ctx, CV_I64, 1, &n, &target))) return s;
        for (int64_t i = 0; i < n; i++) ((int64_t *)target->data)[i] = b->labels[i];
        s = cv_loss_cross_entropy(ctx, logits, target, &o, loss, grad);
    } else if (!strcmp(kind, "bce")) {
        int64_t shape[2] = {n, k};
        if ((s = cv_tensor_new(ctx, CV_F32, 2, shape, &target))) return s;
        for (int64_t i = 0; i < n * k; i++)
            ((float *)target->data)[i] =
                b->targets ? b->targets[i] : (float)(b->labels[i / k] == i % k);
        s = cv_loss_bce_logits(ctx, logits, target, NULL, NULL, loss, grad);
    } else if (!strcmp(kind, "mse") || !strcmp(kind, "l1")) {
        /* ordinal grades as regression on the first output (the head still has K outputs, the
         * grade is read from output 0; the others get no gradient) */
        int64_t shape[2] = {n, 1};
        cv_tensor *pred = NULL, *g1 = NULL;
        if ((s = cv_tensor_new(ctx, CV_F32, 2, shape, &target)) ||
            (s = cv_tensor_new(ctx, CV_F32, 2, shape, &pred)) ||
            (s = cv_tensor_new(ctx, CV_F32, 2, shape, &g1))) {
            cv_tensor_free(pred), cv_tensor_free(g1), cv_tensor_free(target);
            return s;
        }
        for (int64_t i = 0; i < n; i++) {
            ((float *)target->data)[i] = (float)b->labels[i];
            ((float *)pred->data)[i] = ((const float *)logits->data)[i * k];
        }
        s = !strcmp(kind, "mse") ? cv_loss_mse(ctx, pred, target, loss, g1)
                                 : cv_loss_l1(ctx, pred, target, loss, g1);
        memset(grad->data, 0, grad->nbytes);
        for (int64_t i = 0; !s && i < n; i++) ((float *)grad->data)[i * k] = ((float *)g1->data)[i];
        cv_tensor_free(pred), cv_tensor_free(g1);
    } else {
        return cv_fail(ctx, CV_ERR_INVALID, "--loss: unknown loss '%s' (ce, bce, mse, l1)", kind);
    }
    cv_tensor_free(target);
    return s;
}

static void progress(const trainer *t, int epoch, int64_t step, int64_t steps, double loss,
                     double rate, double eta, int done)
{
    if (t->c->progress < 0) return;
    if (t->c->progress > 0) {
        int width = 24, fill = steps ? (int)(width * step / steps) : width;
        char bar[32];
        for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '.';
        bar[width] = 0;
        fprintf(stderr, "\repoch %d/%d [%s] %lld/%lld loss %.4f %.0f img/s ETA %.0fs   ", epoch + 1,
                t->c->epochs, bar, (long long)step, (long long)steps, loss, rate, eta);
        if (done) fputc('\n', stderr);
    } else if (done || (steps >= 10 && step % (steps / 10) == 0)) {
        fprintf(stderr, "epoch %d/%d step %lld/%lld loss %.4f %.0f img/s\n", epoch + 1,
                t->c->epochs, (long long)step, (long long)steps, loss, rate);
    }
}

static cv_status train_epoch(cv_ctx *ctx, trainer *t, int epoch, double *mean_loss)
{
    cv_status s = cv_model_set_training(ctx, t->model, 1);
    if (!s) s = cv_loader_start_epoch(ctx, t->train_loader, epoch);
    if (s) return s;
    int64_t steps = cv_loader_num_batches(t->train_loader);
    if (t->c->max_steps > 0 && steps > t->c->max_steps) steps = t->c->max_steps;
    double sum = 0, t0 = now(), waited0 = t->ddp ? ddp_wait_seconds(t->ddp) : 0;
    int64_t seen = 0, step = 0;
    const cv_batch *b;
    cv_tensor *logits = NULL, *grad = NULL, *soft = NULL;
    while (step < steps && !(s = cv_loader_next(ctx, t->train_loader, &b)) && b) {
        if (b->n < 2) continue; /* batch norm cannot train on one sample (PyTorch raises) */
        int64_t lshape[2] = {b->n, t->num_classes};
        if (t->c->mixup > 0 || t->c->cutmix > 0) {
            int64_t *lab = malloc((size_t)b->n * sizeof *lab);
            if (!lab) return cv_fail(ctx, CV_ERR_NOMEM, "out of memory");
            for (int64_t i = 0; i < b->n; i++) lab[i] = b->labels[i];
            uint64_t seed =
                cv_transform_sample_seed(t->c->seed ^ 0x6d6978ull, (uint64_t)epoch, (uint64_t)step);
            int cut = t->c->cutmix > 0 && (t->c->mixup <= 0 || (seed & 1));
            cv_tensor_free(soft);
            soft = NULL;
            s = cut ? cv_cutmix(ctx, b->x, lab, t->num_classes, t->c->cutmix, seed, &soft, NULL)
                    : cv_mixup(ctx, b->x, lab, t->num_classes, t->c->mixup, seed, &soft, NULL);
            free(lab);
            if (s) break;
        }
        cv_tensor_free(logits);
        logits = NULL;
        if ((s = cv_model_forward(ctx, t->model, b->x, &logits))) break;
        if (!grad || grad->shape[0] != b->n) {
            cv_tensor_free(grad);
            if ((s = cv_tensor_new(ctx, CV_F32, 2, lshape, &grad))) break;
        }
        double loss;
        if ((s = batch_loss(ctx, t, b, logits, soft, &loss, grad))) break;
        if (!isfinite(loss)) {
            s = cv_fail(ctx, CV_ERR_INVALID,
                        "epoch %d step %lld: the loss is %g (diverged: lower --lr)", epoch + 1,
                        (long long)step + 1, loss);
            break;
        }
        cv_model_zero_grad(t->model);
        if (t->ddp && (s = ddp_begin(ctx, t->ddp, cv_model_grads(t->model)))) break;
        if ((s = cv_model_backward(ctx, t->model, grad))) break;
        if (t->ddp && (s = ddp_finish(ctx, t->ddp))) break;
        if (t->c->clip_grad > 0 &&
            (s = cv_optim_clip_grad_norm(ctx, t->optim, t->c->clip_grad, NULL)))
            break;
        if ((s = cv_optim_step_sched(ctx, t->optim, &t->sched, epoch, step, steps))) break;
        if (t->ema && (s = cv_ema_step(ctx, t->ema, cv_model_params(t->model), step, 0))) break;
        sum += loss * (double)b->n;
        seen += b->n;
        step++;
        double el = now() - t0;
        progress(t, epoch, step, steps, sum / (double)seen, (double)(seen * t->world) / el,
                 el / (double)step * (double)(steps - step), 0);
    }
    cv_tensor_free(logits);
    cv_tensor_free(grad);
    cv_tensor_free(soft);
    if (s) return s;
    if (t->world > 1) { /* the epoch's loss over all ranks' samples */
        double tot[2] = {sum, (double)seen};
        if ((s = cv_comm_allreduce_sum(ctx, t->comm, tot, 2, CV_F64))) return s;
        sum = tot[0], seen = (int64_t)tot[1];
    }
    double el = now() - t0;
    progress(t, epoch, step, steps, seen ? sum / (double)seen : 0, seen / (el > 0 ? el : 1), 0, 1);
    if (t->ddp && t->c->progress >= 0 && step > 0)
        fprintf(stderr, "epoch %d: %d ranks, %.1f ms/step waiting for gradient averaging\n",
                epoch + 1, t->world, 1e3 * (ddp_wait_seconds(t->ddp) - waited0) / (double)step);
    *mean_loss = seen ? sum / (double)seen : NAN;
    return CV_OK;
}

/* Labels of a batch in the metrics library's layout: one per sample, or k 0/1 per sample. */
static void batch_labels(const trainer *t, const cv_batch *b, int *labels)
{
    int64_t k = t->num_classes;
    for (int64_t i = 0; i < b->n; i++) {
        if (t->task != CV_TASK_MULTILABEL)
            labels[i] = b->labels[i];
        else
            for (int64_t j = 0; j < k; j++) labels[i * k + j] = b->targets[i * k + j] > 0.5f;
    }
}

/* The validation rows' sink (on rank 0, or the one process): the metrics accumulator. */
static cv_status add_to_metrics(cv_ctx *ctx, void *acc, const int64_t *index, const int *labels,
                                const float *scores, size_t n)
{
    return cv_metrics_add(ctx, acc, labels, scores, NULL, n);
}

/* Each rank evaluates its shard; the rows go to rank 0 (cv_eval_gather), which alone returns a
 * result (*out stays NULL elsewhere). */
static cv_status validate(cv_ctx *ctx, trainer *t, cv_metrics_result **out)
{
    *out = NULL;
    cv_metrics_opts mo;
    cv_metrics_opts_default(&mo);
    cv_metrics *acc = NULL;
    cv_eval_gather *g = NULL;
    cv_tensor *logits = NULL;
    int *labels = NULL;
    int64_t k = t->num_classes;
    size_t nl = t->task == CV_TASK_MULTILABEL ? (size_t)k : 1;
    cv_status s = cv_model_set_training(ctx, t->model, 0);
    if (!s && t->rank == 0) s = cv_metrics_new(ctx, t->task, t->num_classes, &mo, &acc);
    if (!s) s = cv_eval_gather_new(ctx, t->comm, (int)nl, (int)k, add_to_metrics, acc, &g);
    if (!s) s = cv_loader_start_epoch(ctx, t->val_loader, 0);
    const cv_batch *b;
    while (!s && !(s = cv_loader_next(ctx, t->val_loader, &b)) && b) {
        cv_tensor_free(logits);
        logits = NULL;
        if ((s = cv_model_forward(ctx, t->model, b->x, &logits))) break;
        cv_logits_to_scores(logits->data, logits->data, b->n, k, t->task == CV_TASK_MULTILABEL);
        int *l = realloc(labels, ((size_t)b->n * nl + 1) * sizeof *l);
        if (!l) {
            s = cv_fail(ctx, CV_ERR_NOMEM, "out of memory");
            break;
        }
        labels = l;
        batch_labels(t, b, labels);
        s = cv_eval_gather_add(ctx, g, b->indices, labels, logits->data, (size_t)b->n);
    }
    if (!s) s = cv_eval_gather_finish(ctx, g);
    if (!s && acc) s = cv_metrics_finalize(ctx, acc, out);
    cv_tensor_free(logits);
    free(labels);
    cv_eval_gather_free(g);
    cv_metrics_free(acc);
    return s;
}

/* Validates with the EMA's weights: copies them into the model, validates, and puts the model's
 * own weights back bit for bit (training continues exactly as without this). */
static cv_status validate_ema(cv_ctx *ctx, trainer *t, cv_metrics_result **out)
{
    cv_state *params = cv_model_params(t->model);
    const cv_state *avg = cv_ema_state(t->ema);
    int n = cv_state_count(params);
    cv_tensor **keep = calloc((size_t)n, sizeof *keep);
    cv_status s = keep ? CV_OK : cv_fail(ctx, CV_ERR_NOMEM, "out of memory");
    for (int i = 0; !s && i < n; i++) {
        cv_tensor *p = cv_state_tensor(params, i);
        const cv_tensor *a = cv_state_get(avg, cv_state_name(params, i));
        if (!a || a->nbytes != p->nbytes)
            s = cv_fail(ctx, CV_ERR_INTERNAL, "EMA: no average of %s", cv_state_name(params, i));
        else if (!(s = cv_tensor_clone(ctx, p, &keep[i])))
            memcpy(p->data, a->data, p->nbytes);
    }
    cv_model_params_changed(t->model);
    if (!s) s = validate(ctx, t, out);
    for (int i = 0; keep && i < n; i++)
        if (keep[i]) memcpy(cv_state_tensor(params, i)->data, keep[i]->data, keep[i]->nbytes);
    cv_model_params_changed(t->model);
    for (int i = 0; keep && i < n; i++) cv_tensor_free(keep[i]);
    free(keep);
    return s;
}

/* The metric that selects the best epoch, and whether larger is better. */
static const char *default_metric(cv_task task)
{
    switch (task) {
    case CV_TASK_MULTILABEL:
        return "f1_score.macro";
    case CV_TASK_ORDINAL:
        return "cohen_kappa_score.quadratic";
    default:
        return "accuracy_score";
    }
}

static int lower_is_better(const char *metric)
{
    return strstr(metric, "loss") || strstr(metric, "error") || strstr(metric, "brier") ||
           strstr(metric, "calibration");
}

/* The checkpoint sidecar's own members: what eval and resume need to rebuild the run. */
/* The scalar metrics of r as a JSON object member `key` of o. */
static void add_metrics(cJSON *o, const char *key, const cv_metrics_result *r)
{
    cJSON *m = cJSON_AddObjectToObject(o, key);
    for (int i = 0; i < cv_metrics_result_count(r); i++) {
        const cv_metric_entry *e = cv_metrics_result_at(r, i);
        if (e->rows == 0 && e->cols == 0 && e->section == CV_SECTION_METRIC)
            cJSON_AddItemToObject(
                m, e->name, isfinite(e->v[0]) ? cJSON_CreateNumber(e->v[0]) : cJSON_CreateNull());
    }
}

/* r: the model's validation metrics, r_ema the EMA's (or NULL); `weights` says which of the two
 * this checkpoint's best selection used ("model" or "ema"). */
static char *sidecar_json(const trainer *t, int epoch, int best_epoch, double best,
                          const cv_metrics_result *r, const cv_metrics_result *r_ema,
                          const char *weights)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "arch", t->c->arch);
    cJSON_AddNumberToObject(o, "num_classes", t->num_classes);
    cJSON *classes = cJSON_AddArrayToObject(o, "classes");
    for (int i = 0; i < t->num_classes; i++)
        cJSON_AddItemToArray(classes, cJSON_CreateString(cv_dataset_class_name(t->train_all, i)));
    cJSON_AddStringToObject(o, "task", cv_task_name(t->task));
    cJSON_AddStringToObject(o, "train_transform", t->train_tf);
    cJSON_AddStringToObject(o, "eval_transform", t->eval_tf);
    cJSON_AddNumberToObject(o, "epoch", epoch);
    cJSON_AddNumberToObject(o, "best_epoch", best_epoch);
    cJSON_AddStringToObject(o, "metric", t->metric);
    cJSON_AddItemToObject(o, "best_metric",
                          isfinite(best) ? cJSON_CreateNumber(best) : cJSON_CreateNull());
    cJSON_AddNumberToObject(o, "run_id", (double)t->run_id);
    cJSON_AddItemToObject(o, "args", cJSON_Parse(t->args_json));
    if (r) add_metrics(o, "val_metrics", r);
    if (r_ema) add_metrics(o, "ema_val_metrics", r_ema);
    if (r_ema) cJSON_AddStringToObject(o, "weights", weights);
    char *txt = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return txt;
}

static char *args_json(const cv_train_config *c)
{
    cJSON *o = cJSON_CreateObject();
#define S(k, v) cJSON_AddItemToObject(o, k, (v) ? cJSON_CreateString(v) : cJSON_CreateNull())
#define N(k, v)                                                                                    \
    cJSON_AddItemToObject(                                                                         \
        o, k, isfinite((double)(v)) ? cJSON_CreateNumber((double)(v)) : cJSON_CreateNull())
    S("arch", c->arch), S("weights", c->weights), S("data", c->data), S("val", c->val);
    N("val_fraction", c->val_fraction), N("epochs", c->epochs), N("batch", c->batch);
    S("optim", c->optim), N("lr", c->lr), N("momentum", c->momentum),
        N("weight_decay", c->weight_decay);
    N("norm_weight_decay", c->norm_weight_decay), S("sched", c->sched), S("loss", c->loss);
    N("label_smoothing", c->label_smoothing), S("mode", c->mode), N("lp_epochs", c->lp_epochs);
    S("lr_mults", c->lr_mults), N("clip_grad", c->clip_grad), N("patience", c->patience);
    N("ema_decay", c->ema_decay), N("mixup", c->mixup), N("cutmix", c->cutmix),
        N("seed", (double)c->seed);
    S("amp", c->amp ? c->amp : "off");
    N("drop_last", c->drop_last), N("no_shuffle", c->no_shuffle), N("dropout", c->dropout);
    N("sync_bn", c->sync_bn);
#undef S
#undef N
    char *txt = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return txt;
}

/* Restores model, optimizer and EMA from out_dir/last.*; returns the epoch to continue with. */
static cv_status resume(cv_ctx *ctx, trainer *t, int *start, int *best_epoch, double *best)
{
    cv_state *st = NULL;
    char *json = NULL;
    cv_status s = cv_checkpoint_load(ctx, t->c->out_dir, "last", &st, t->optim, t->ema, &json);
    if (s == CV_ERR_NOT_FOUND) {
        cv_ctx_clear_error(ctx);
        return CV_OK; /* nothing saved yet: start from the beginning */
    }
    if (!s) s = cv_model_load_state(ctx, t->model, st, CV_LOAD_STRICT);
    cJSON *o = s ? NULL : cJSON_Parse(json);
    if (!s && !o) s = cv_fail(ctx, CV_ERR_FORMAT, "%s/last.json: not JSON", t->c->out_dir);
    if (!s) {
        cJSON *e = cJSON_GetObjectItem(o, "epoch"), *be = cJSON_GetObjectItem(o, "best_epoch"),
              *bm = cJSON_GetObjectItem(o, "best_metric"), *rid = cJSON_GetObjectItem(o, "run_id");
        *start = cJSON_IsNumber(e) ? e->valueint + 1 : 0;
        *best_epoch = cJSON_IsNumber(be) ? be->valueint : -1;
        *best = cJSON_IsNumber(bm) ? bm->valuedouble : NAN;
        if (cJSON_IsNumber(rid)) t->run_id = (int64_t)rid->valuedouble;
    }
    cJSON_Delete(o);
    free(json);
    cv_state_free(st);
    return s;
}

cv_status cv_train_run(cv_ctx *ctx, const cv_train_config *c, cv_train_result *out)
{
    memset(out, 0, sizeof *out);
    out->best_epoch = -1;
    out->best_metric = NAN;
    if (!c->arch || !c->data || !c->out_dir)
        return cv_fail(ctx, CV_ERR_INVALID,
                       "training needs a model, a dataset and an output directory");
    if (c->epochs < 1 || c->batch < 1)
        return cv_fail(ctx, CV_ERR_INVALID, "--epochs and --batch must be positive");
    if (mkdir(c->out_dir, 0777) && errno != EEXIST)
        return cv_fail(ctx, CV_ERR_IO, "%s: cannot create the output directory: %s", c->out_dir,
                       strerror(errno));
    if (c->threads > 0) cv_ctx_set_threads(ctx, c->threads);
    cv_train_config cc = *c;
    c = &cc;
    trainer t = {.c = c};
    int lpft = !strcmp(c->mode, "lpft"), linear = !strcmp(c->mode, "linear") || lpft;
    int lp_epochs = lpft ? (c->lp_epochs > 0 ? c->lp_epochs : c->epochs / 2) : 0;
    if (!linear && strcmp(c->mode, "full"))
        return cv_fail(ctx, CV_ERR_INVALID, "--mode: expected full, linear or lpft, got '%s'",
                       c->mode);
    cv_status s = c->comm ? CV_OK : cv_comm_single(ctx, &t.own_comm);
    t.comm = c->comm ? c->comm : t.own_comm;
    if (!s) {
        t.rank = cv_comm_rank(t.comm), t.world = cv_comm_size(t.comm);
        if (t.rank != 0) cc.progress = -1; /* rank 0 alone logs */
        if (t.world > 1) s = ddp_new(ctx, t.comm, DDP_BUCKET_BYTES, &t.ddp);
    }
    if (!s) s = open_data(ctx, &t);
    if (!s) s = open_model(ctx, &t);
    if (!s && t.ddp) cv_model_set_grad_hook(t.model, ddp_grad_ready, t.ddp);
    /* with one rank too (its sums are the identity), so that 1 and N ranks compute alike */
    if (!s && c->sync_bn) s = cv_model_set_sync_bn(ctx, t.model, ddp_sum, t.comm);
    if (!s) s = set_trainable(ctx, &t, linear);
    if (!s) s = make_optim(ctx, &t);
    if (!s) s = make_sched(ctx, &t);
    if (!s && c->ema_decay > 0)
        s = cv_ema_new(ctx, cv_model_params(t.model), c->ema_decay, 1, &t.ema);
    t.metric = c->metric ? c->metric : default_metric(t.task);
    t.args_json = args_json(c);
    int start = 0, best_epoch = -1;
    double best = NAN;
    /* Every rank reads rank 0's last checkpoint (the output directory is shared). */
    if (!s && c->resume) s = resume(ctx, &t, &start, &best_epoch, &best);
    if (!s && t.world > 1) { /* every rank starts from rank 0's parameters and buffers */
        s = ddp_bcast_state(ctx, t.comm, (cv_state *)cv_model_params(t.model), 0);
        cv_model_params_changed(t.model);
    }
    char db[4096];
    snprintf(db, sizeof db, "%s/runs.sqlite", c->out_dir);
    if (!s && t.rank == 0) s = cv_runs_open(ctx, c->runs_db ? c->runs_db : db, &t.runs);
    if (!s && t.rank == 0 && t.run_id > 0)
        s = cv_run_resume(ctx, t.runs, t.run_id);
    else if (!s && t.rank == 0) {
        cv_run_info ri = {c->arch, c->data, t.args_json, c->out_dir, t.metric, (int64_t)c->seed};
        s = cv_run_begin(ctx, t.runs, &ri, &t.run_id);
    }
    if (!s) cv_model_set_seed(t.model, c->seed);
    int since_best = 0;
    for (int epoch = start; !s && epoch < c->epochs; epoch++) {
        if (lpft && epoch == lp_epochs && epoch > 0) { /* linear probe done: fine-tune everything */
            if ((s = set_trainable(ctx, &t, 0)) || (s = make_optim(ctx, &t))) break;
        }
        double t0 = now(), loss = NAN;
        if ((s = train_epoch(ctx, &t, epoch, &loss))) break;
        out->last_train_loss = loss;
        cv_metrics_result *r = NULL, *r_ema = NULL;
        double value = NAN, ema_value = NAN;
        int is_best = 0, use_ema = 0;
        if (t.val_loader) {
            if ((s = validate(ctx, &t, &r))) break;
            /* Rank 0 has the metrics; every rank needs the value for best-epoch and early stopping
             * decisions, and to stop together on an unknown metric. */
            double v[2] = {r ? cv_metrics_result_scalar(r, t.metric) : NAN,
                           r && !cv_metrics_result_get(r, t.metric)};
            if (t.world > 1 && (s = cv_comm_bcast(ctx, t.comm, v, sizeof v, 0))) break;
            value = v[0];
            if (v[1] != 0) {
                cv_metrics_result_free(r);
                s = cv_fail(ctx, CV_ERR_NOT_FOUND, "--metric: no metric named '%s' for this task",
                            t.metric);
                break;
            }
            /* the EMA's weights compete too; they win only when strictly better */
            if (t.ema && cv_ema_count(t.ema) > 0) {
                if ((s = validate_ema(ctx, &t, &r_ema))) {
                    cv_metrics_result_free(r);
                    break;
                }
                ema_value = r_ema ? cv_metrics_result_scalar(r_ema, t.metric) : NAN;
                /* as for `value`: every rank must take the same best-epoch decision */
                if (t.world > 1 &&
                    (s = cv_comm_bcast(ctx, t.comm, &ema_value, sizeof ema_value, 0))) {
                    cv_metrics_result_free(r);
                    break;
                }
                use_ema = isfinite(ema_value) &&
                          (!isfinite(value) ||
                           (lower_is_better(t.metric) ? ema_value < value : ema_value > value));
                if (use_ema) value = ema_value;
            }
            is_best =
                isfinite(value) &&
                (!isfinite(best) || (lower_is_better(t.metric) ? value < best : value > best));
            if (is_best) best = value, best_epoch = epoch;
            if (c->progress >= 0 && r_ema)
                fprintf(stderr, "epoch %d/%d: train loss %.4f, val %s %.4f, EMA %.4f%s\n",
                        epoch + 1, c->epochs, loss, t.metric, cv_metrics_result_scalar(r, t.metric),
                        ema_value, is_best ? (use_ema ? " (best: EMA)" : " (best)") : "");
            else if (c->progress >= 0)
                fprintf(stderr, "epoch %d/%d: train loss %.4f, val %s %.4f%s\n", epoch + 1,
                        c->epochs, loss, t.metric, value, is_best ? " (best)" : "");
        }
        if (t.rank == 0) { /* rank 0 alone writes checkpoints and the runs database */
            char *extra =
                sidecar_json(&t, epoch, best_epoch, best, r, r_ema, use_ema ? "ema" : "model");
            char *mjson = r ? cv_metrics_report_json(use_ema ? r_ema : r) : NULL;
            const cv_state *params = cv_model_params(t.model);
            s = cv_checkpoint_save(ctx, c->out_dir, "last", params, t.optim, t.ema, extra);
            if (!s && (is_best || !t.val_loader))
                s = cv_checkpoint_save(ctx, c->out_dir, "best",
                                       use_ema ? cv_ema_state(t.ema) : params, NULL, NULL, extra);
            cv_run_epoch_info ei = {epoch,      loss,  cv_sched_lr(&t.sched, c->lr, epoch, 0, 1),
                                    now() - t0, mjson, is_best,
                                    value};
            if (!s) s = cv_run_epoch(ctx, t.runs, t.run_id, &ei);
            free(extra);
            free(mjson);
        }
        cv_metrics_result_free(r);
        cv_metrics_result_free(r_ema);
        out->epochs_run = epoch + 1;
        since_best = is_best ? 0 : since_best + 1;
        if (!s && c->patience > 0 && t.val_loader && since_best >= c->patience) {
            if (c->progress >= 0)
                fprintf(stderr, "early stopping: no improvement of %s for %d epochs\n", t.metric,
                        c->patience);
            break;
        }
    }
    if (t.runs && t.run_id > 0) {
        char path[4096];
        snprintf(path, sizeof path, "%s/best.safetensors", c->out_dir);
        if (!s && access(path, R_OK) == 0)
            s = cv_run_artifact(ctx, t.runs, t.run_id, "best", path, NULL);
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", cv_ctx_error(ctx)); /* keep the run's error, not the DB's */
        cv_run_end(ctx, t.runs, t.run_id, s ? "failed" : "finished");
        if (s) cv_fail(ctx, s, "%s", msg);
    }
    out->best_epoch = best_epoch;
    out->best_metric = best;
    out->run_id = t.run_id;
    out->num_classes = t.num_classes;
    trainer_free(&t);
    return s;
}
