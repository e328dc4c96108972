/* The training toolkit: losses, optimizers, learning-rate schedules, an exponential moving average
 * of weights, atomic checkpoints and run tracking in SQLite.
 *
 * Everything here works on plain tensors and named-tensor tables (cv_state): the trainer hands in
 * the model's parameters and a table of float32 gradients with the same names. Every formula is
 * PyTorch 1.13's (torch.nn.functional, torch.optim, torch.optim.lr_scheduler) or torchvision's
 * classification reference's; docs/training.md writes them out. */
#ifndef CVISION_TRAIN_H
#define CVISION_TRAIN_H

#include <stdint.h>

#include "cvision/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- losses ----
 * Each returns the mean loss in *loss (accumulated in double) and, when `grad` is not NULL, writes
 * d(loss)/d(logits) into it (float32, the logits' shape). */

typedef struct cv_ce_opts {
    double label_smoothing;  /* 0..1, F.cross_entropy's label_smoothing */
    const cv_tensor *weight; /* float32 [K] class weights, or NULL */
    int use_ignore_index;    /* 0: every target must be in [0, K) */
    int64_t ignore_index;    /* targets equal to it contribute nothing (PyTorch: -100) */
} cv_ce_opts;

/* F.cross_entropy(logits [N,K] float32, target [N] int64/int32, weight, ignore_index,
 * label_smoothing), mean reduction: normalised by the summed weights of the non-ignored targets
 * (NaN when there are none, as PyTorch). opts may be NULL. */
cv_status cv_loss_cross_entropy(cv_ctx *ctx, const cv_tensor *logits, const cv_tensor *target,
                                const cv_ce_opts *opts, double *loss, cv_tensor *grad);

/* Cross-entropy with probability targets [N,K] float32 (MixUp/CutMix; F.cross_entropy with a
 * floating target): mean over N of -sum_k w_k t'_nk log softmax(x_n)_k, t' = t(1-s) + s/K.
 * opts->ignore_index is not used. */
cv_status cv_loss_soft_cross_entropy(cv_ctx *ctx, const cv_tensor *logits, const cv_tensor *target,
                                     const cv_ce_opts *opts, double *loss, cv_tensor *grad);

/* F.binary_cross_entropy_with_logits(logits [N,K], target [N,K] float32, weight [K] or NULL,
 * pos_weight [K] or NULL), mean over all N*K elements (multi-label). */
cv_status cv_loss_bce_logits(cv_ctx *ctx, const cv_tensor *logits, const cv_tensor *target,
                             const cv_tensor *weight, const cv_tensor *pos_weight, double *loss,
                             cv_tensor *grad);

/* F.l1_loss / F.mse_loss of a regression head: logits [N,1] or [N], target float32 with N
 * elements (e.g. ordinal grades as numbers). */
cv_status cv_loss_l1(cv_ctx *ctx, const cv_tensor *logits, const cv_tensor *target, double *loss,
                     cv_tensor *grad);
cv_status cv_loss_mse(cv_ctx *ctx, const cv_tensor *logits, const cv_tensor *target, double *loss,
                      cv_tensor *grad);

/* ---- optimizers ---- */

typedef enum { CV_OPTIM_SGD = 0, CV_OPTIM_ADAM, CV_OPTIM_ADAMW } cv_optim_kind;

typedef struct cv_optim_config {
    cv_optim_kind kind;
    double lr;                  /* base learning rate (used by cv_optim_step_sched) */
    double weight_decay;        /* default for cv_optim_add_state; SGD/Adam: L2 in the gradient,
                                 * AdamW: decoupled p *= 1 - lr*wd */
    double momentum, dampening; /* SGD */
    int nesterov;               /* SGD */
    double beta1, beta2, eps;   /* Adam/AdamW */
    int amsgrad;                /* Adam/AdamW */
} cv_optim_config;

/* PyTorch's defaults for `kind`: SGD momentum 0 dampening 0 wd 0; Adam betas (0.9, 0.999) eps
 * 1e-8 wd 0; AdamW the same with wd 0.01. lr 0.1 (SGD) or 0.001 (Adam/AdamW). */
void cv_optim_config_default(cv_optim_kind kind, cv_optim_config *cfg);
/* "sgd", "sgd_nesterov" (SGD with nesterov on), "adam", "adamw"; -1 if unknown. */
int cv_optim_kind_parse(const char *name);

typedef struct cv_optim cv_optim;

cv_status cv_optim_new(cv_ctx *ctx, const cv_optim_config *cfg, cv_optim **out);
void cv_optim_free(cv_optim *o);

/* Adds one parameter: float32 `param` and `grad` of the same shape, both owned by the caller and
 * alive while the optimizer is. Its learning rate is lr * lr_mult; `weight_decay` is its own. */
cv_status cv_optim_add(cv_ctx *ctx, cv_optim *o, const char *name, cv_tensor *param,
                       cv_tensor *grad, double lr_mult, double weight_decay);

/* Rules for building the parameter list from a state_dict. A zeroed struct with weight decay
 * fields set to NAN means: everything trains, one weight decay, multiplier 1. */
typedef struct cv_param_rules {
    /* torchvision's --norm-weight-decay: the weight and bias of normalisation layers (a parameter
     * "P.weight" with one dimension, and its sibling "P.bias") get this decay. NAN: cfg's. */
    double norm_weight_decay;
    /* torchvision's --bias-weight-decay: every parameter named "bias" or "*.bias" (normalisation
     * biases included; it takes precedence over norm_weight_decay). NAN: cfg's. */
    double bias_weight_decay;
    /* "fc.=10,layer3.=0.5": lr multiplier by name prefix, the longest matching prefix wins,
     * default 1. A multiplier of 0 freezes the parameter. NULL or "": none. */
    const char *lr_mults;
    /* Comma-separated name prefixes: only matching parameters train (linear probe: "fc."). NULL
     * or "": all. */
    const char *trainable;
    /* Comma-separated name prefixes that are frozen (applied after `trainable`). */
    const char *frozen;
} cv_param_rules;

/* Sets rules to "all train, cfg's decay, multiplier 1". */
void cv_param_rules_default(cv_param_rules *rules);

/* Adds every tensor of `params` that has a float32 gradient of the same name and shape in `grads`
 * (buffers such as running_mean have none and are skipped), in `params`' order, following `rules`
 * (NULL: defaults). Fails on a malformed rule string or when no parameter is left to train. */
cv_status cv_optim_add_state(cv_ctx *ctx, cv_optim *o, cv_state *params, cv_state *grads,
                             const cv_param_rules *rules);

/* The parameters in the optimizer, for logging: name, lr multiplier, weight decay. */
int cv_optim_count(const cv_optim *o);
const char *cv_optim_name(const cv_optim *o, int i);
double cv_optim_lr_mult(const cv_optim *o, int i);
double cv_optim_weight_decay(const cv_optim *o, int i);
/* Number of cv_optim_step calls so far (restored by cv_optim_state_load). */
int64_t cv_optim_steps(const cv_optim *o);

/* torch.nn.utils.clip_grad_norm_(params, max_norm) over the optimizer's gradients (2-norm): all
 * gradients are scaled by min(1, max_norm / (total_norm + 1e-6)). *total_norm (may be NULL)
 * receives the norm before clipping. */
cv_status cv_optim_clip_grad_norm(cv_ctx *ctx, cv_optim *o, double max_norm, double *total_norm);

/* Sets SGD's momentum or Adam's beta1 (OneCycleLR's momentum cycling). */
void cv_optim_set_momentum(cv_optim *o, double momentum);

/* One optimizer step at base learning rate `lr` (each parameter uses lr * its multiplier). */
cv_status cv_optim_step(cv_ctx *ctx, cv_optim *o, double lr);

/* Optimizer state as named tensors: per parameter "<name>.momentum_buffer" (SGD, once it
 * exists), "<name>.exp_avg", "<name>.exp_avg_sq", "<name>.max_exp_avg_sq" (amsgrad), and
 * "<name>.step" (int64 scalar); metadata "optimizer" and the hyperparameters. Tensors are put into
 * `out` with `prefix` before each name (NULL: none). */
cv_status cv_optim_state_save(cv_ctx *ctx, const cv_optim *o, cv_state *out, const char *prefix);
/* Restores what cv_optim_state_save wrote (same prefix); the optimizer must have the same kind
 * and parameters (names and shapes). A resumed run then continues bit-exactly. */
cv_status cv_optim_state_load(cv_ctx *ctx, cv_optim *o, const cv_state *st, const char *prefix);

/* ---- learning-rate schedules ----
 * Epoch-wise schedules (constant, step, multistep, cosine) change the lr once per epoch, as
 * torchvision's reference steps its scheduler after each epoch; one-cycle changes it every
 * optimizer step, as OneCycleLR is meant to be stepped. Warmup (epoch-wise) is torchvision's
 * SequentialLR([LinearLR(start_factor=warmup_decay) or ConstantLR(factor=warmup_decay),
 * main], milestones=[warmup_epochs]): the main schedule's epochs count from the end of warmup. */

typedef enum {
    CV_SCHED_CONSTANT = 0,
    CV_SCHED_STEP,      /* StepLR(step_size, gamma) */
    CV_SCHED_MULTISTEP, /* MultiStepLR(milestones, gamma) */
    CV_SCHED_COSINE,    /* CosineAnnealingLR(T_max = epochs - warmup_epochs, eta_min) */
    CV_SCHED_ONECYCLE,  /* OneCycleLR(max_lr = lr, epochs, steps_per_epoch) */
} cv_sched_kind;

#define CV_SCHED_MAX_MILESTONES 32

typedef struct cv_sched {
    cv_sched_kind kind;
    int epochs;
    int warmup_epochs;
    double warmup_decay; /* 0.01 */
    int warmup_constant; /* 0: linear warmup (LinearLR), 1: ConstantLR */
    int step_size;       /* 30 */
    double gamma;        /* 0.1 */
    int milestones[CV_SCHED_MAX_MILESTONES];
    int n_milestones;
    double eta_min; /* cosine's lr_min, 0 */
    /* one-cycle, PyTorch's defaults */
    double pct_start, div_factor, final_div_factor; /* 0.3, 25, 1e4 */
    int anneal_linear, three_phase;                 /* 0, 0 */
    int cycle_momentum;                             /* 1 */
    double base_momentum, max_momentum;             /* 0.85, 0.95 */
} cv_sched;

void cv_sched_default(cv_sched *s);
/* Sets one option by its command-line name: "sched" (constant|step|multistep|cosine|onecycle),
 * "epochs", "warmup", "warmup-decay", "warmup-method" (linear|constant), "step-size", "gamma",
 * "milestones" (30,60,90), "lr-min", "pct-start", "div-factor", "final-div-factor",
 * "anneal" (cos|linear), "three-phase" (0|1), "cycle-momentum" (0|1), "base-momentum",
 * "max-momentum". CV_ERR_NOT_FOUND (message set) for an unknown name, so that a CLI can try
 * other tables first. */
cv_status cv_sched_set(cv_ctx *ctx, cv_sched *s, const char *name, const char *value);
/* Parses "cosine --warmup 2 --lr-min 0" or "--sched step --step-size 30 --gamma 0.1" (a leading
 * bare word is the kind) into s, on top of what it holds. */
cv_status cv_sched_parse(cv_ctx *ctx, const char *spec, cv_sched *s);
/* Checks the combination (epochs > warmup, milestones increasing, ...). */
cv_status cv_sched_validate(cv_ctx *ctx, const cv_sched *s);
/* The learning rate for a parameter whose initial lr is base_lr during step `step` (0-based) of
 * epoch `epoch` (0-based). */
double cv_sched_lr(const cv_sched *s, double base_lr, int64_t epoch, int64_t step,
                   int64_t steps_per_epoch);
/* OneCycleLR's cycled momentum (SGD momentum or Adam beta1) for that step, or NAN when the
 * schedule does not cycle momentum. */
double cv_sched_momentum(const cv_sched *s, int64_t epoch, int64_t step, int64_t steps_per_epoch);

/* cv_optim_step with each parameter's lr = cv_sched_lr(s, cfg.lr * mult, ...) and, for one-cycle,
 * the cycled momentum: the same as PyTorch with one param group per multiplier. */
cv_status cv_optim_step_sched(cv_ctx *ctx, cv_optim *o, const cv_sched *s, int64_t epoch,
                              int64_t step, int64_t steps_per_epoch);

/* ---- exponential moving average of weights ----
 * torchvision reference's ExponentialMovingAverage (AveragedModel with use_buffers=True): the
 * first update copies the model; later ones set e = decay*e + (1-decay)*x for every floating
 * tensor of the state (parameters and running statistics); integer buffers
 * (num_batches_tracked) get the same formula in float32, truncated, as PyTorch's copy_ does. */
typedef struct cv_ema cv_ema;

/* A moving average of `model_state` (its names, shapes and dtypes; values are copied at the first
 * update), updated every `every_steps` optimizer steps. */
cv_status cv_ema_new(cv_ctx *ctx, const cv_state *model_state, double decay, int every_steps,
                     cv_ema **out);
void cv_ema_free(cv_ema *e);
/* The reference's adjusted decay: 1 - min(1, (1-decay) * world * batch * every_steps / epochs). */
double cv_ema_adjusted_decay(double decay, int world_size, int batch, int every_steps, int epochs);
/* One update now. */
cv_status cv_ema_update(cv_ctx *ctx, cv_ema *e, const cv_state *model_state);
/* What the reference's loop does after optimizer step `iter` (0-based within the epoch): update
 * when iter % every_steps == 0 and, during warmup epochs, reset so that the next update copies. */
cv_status cv_ema_step(cv_ctx *ctx, cv_ema *e, const cv_state *model_state, int64_t iter,
                      int in_warmup);
/* The averaged state_dict (owned by e), and how many updates it averages. */
const cv_state *cv_ema_state(const cv_ema *e);
int64_t cv_ema_count(const cv_ema *e);
/* Saves/restores the averaged tensors and the count ("<prefix>n_averaged"). */
cv_status cv_ema_state_save(cv_ctx *ctx, const cv_ema *e, cv_state *out, const char *prefix);
cv_status cv_ema_state_load(cv_ctx *ctx, cv_ema *e, const cv_state *st, const char *prefix);

/* ---- checkpoints ----
 * DIR/TAG.safetensors: the model's state_dict exactly (PyTorch load_state_dict(strict=True)).
 * DIR/TAG.optim.safetensors: optimizer state under "optim/", the EMA under "ema/".
 * DIR/TAG.json: {"format":"cvision-checkpoint","tag","files":{name:{"sha256","bytes"}},...}
 * with json_extra's members (arguments, seed, epoch, step, classes, metrics) merged in.
 * Saving keeps the previous complete checkpoint as TAG.prev.* until the new one is committed
 * (the JSON is renamed into place last), so a run killed at any instant leaves a loadable one. */
cv_status cv_checkpoint_save(cv_ctx *ctx, const char *dir, const char *tag,
                             const cv_state *model_state, const cv_optim *optim, const cv_ema *ema,
                             const char *json_extra);

/* Loads DIR/TAG.*, verifying the recorded hashes; if they do not match (a save was interrupted)
 * loads DIR/TAG.prev.* instead. *model_state (caller frees) receives the state_dict; optim and
 * ema (either may be NULL) are restored in place; *json (may be NULL; free()) receives the
 * sidecar's text. CV_ERR_NOT_FOUND when neither exists. */
cv_status cv_checkpoint_load(cv_ctx *ctx, const char *dir, const char *tag, cv_state **model_state,
                             cv_optim *optim, cv_ema *ema, char **json);

/* ---- run tracking (SQLite) ----
 * Tables: runs(id, started, finished, status, arch, data, args JSON, seed, out_dir, metric,
 * best_metric, best_epoch, host, pid), epochs(run_id, epoch, train_loss, val_metrics JSON, lr,
 * seconds), artifacts(run_id, kind, path, sha256, created). WAL journal and a busy timeout let
 * several processes share one database. */
typedef struct cv_runs cv_runs;

/* Opens (creating) the database at `path`; a directory means DIR/runs.sqlite. */
cv_status cv_runs_open(cv_ctx *ctx, const char *path, cv_runs **out);
void cv_runs_close(cv_runs *r);

typedef struct cv_run_info {
    const char *arch, *data, *args_json, *out_dir;
    const char *metric; /* name of the metric "best" refers to, e.g. "acc1" */
    int64_t seed;
} cv_run_info;

/* Records a new run with status "running"; *run_id receives its id. */
cv_status cv_run_begin(cv_ctx *ctx, cv_runs *r, const cv_run_info *info, int64_t *run_id);
/* Marks an existing run "running" again (a resumed run). */
cv_status cv_run_resume(cv_ctx *ctx, cv_runs *r, int64_t run_id);

typedef struct cv_run_epoch_info {
    int epoch;
    double train_loss, lr, seconds;
    const char *val_metrics_json; /* a JSON object, or NULL */
    int is_best;                  /* this epoch is the run's best so far: record metric_value */
    double metric_value;
} cv_run_epoch_info;

/* Records (or, for a resumed run, replaces) one epoch's row. */
cv_status cv_run_epoch(cv_ctx *ctx, cv_runs *r, int64_t run_id, const cv_run_epoch_info *e);
/* Records a file the run produced; sha256 NULL: computed from the file. */
cv_status cv_run_artifact(cv_ctx *ctx, cv_runs *r, int64_t run_id, const char *kind,
                          const char *path, const char *sha256);
/* Finishes a run with `status` ("finished", "failed", "stopped"). */
cv_status cv_run_end(cv_ctx *ctx, cv_runs *r, int64_t run_id, const char *status);

/* JSON for the CLI (free() the text): an array of the runs, newest first; one run with its epochs
 * and artifacts. CV_ERR_NOT_FOUND for an unknown id. */
cv_status cv_runs_list_json(cv_ctx *ctx, cv_runs *r, char **json);
cv_status cv_run_show_json(cv_ctx *ctx, cv_runs *r, int64_t run_id, char **json);

#ifdef __cplusplus
}
#endif
#endif
