/* The trainer: fine-tunes (or trains) a model on a dataset spec with validation, checkpoints,
 * resume and run tracking. `cvision train` is a thin front end; the transfer study calls it once
 * per grid point. */
#ifndef CVISION_TRAINER_H
#define CVISION_TRAINER_H

#include <stdint.h>

#include "cvision/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cv_train_config {
    const char *arch;    /* torchvision builder name (required) */
    const char *weights; /* NULL: fresh init (seeded); else a weights file or a catalog name. The
                          * head is replaced when the dataset's class count differs. */
    const char *data;    /* training dataset spec (required) */
    const char *val;     /* validation spec; NULL: a stratified val_fraction of `data`, saved in
                          * out_dir/split.json and reused; with val_fraction 0, no validation */
    double val_fraction; /* default 0.2 (the transfer study's 80/20) */
    const char *out_dir; /* required */
    int epochs, batch, workers, threads;
    const char *optim; /* sgd (default) | sgd_nesterov | adam | adamw */
    double lr, momentum, weight_decay;
    double norm_weight_decay; /* NAN: weight_decay (torchvision's --norm-weight-decay) */
    const char *sched;        /* e.g. "cosine --warmup 1"; NULL: constant */
    const char *train_transform, *eval_transform; /* NULL: defaults for the data (see docs) */
    const char *loss; /* ce (default; bce for multi-label) | bce | mse | l1 */
    double label_smoothing;
    const char
        *mode;     /* full (default) | linear (frozen backbone) | lpft (linear probe, then full) */
    int lp_epochs; /* lpft: epochs of linear probing (default epochs / 2) */
    const char *lr_mults; /* "layer4.=1,fc.=10": lr multipliers by name prefix */
    double clip_grad;     /* max global gradient norm; 0: none */
    int patience;         /* early stopping after this many epochs without improvement; 0: off */
    double ema_decay;     /* exponential moving average of the weights; 0: off */
    const char *amp;      /* mixed precision: "bf16" or NULL/"off" (cv_model_set_amp) */
    const char *metric;   /* metric that selects the best epoch (a metrics JSON key); NULL:
                           * accuracy_score, or the task's usual one */
    double mixup, cutmix; /* batch-mixing alphas; 0: off */
    int drop_last;
    int no_shuffle; /* keep the dataset's order (parity tests) */
    double dropout; /* NAN: the architecture's own; else every dropout layer's p */
    uint64_t seed;
    int resume;          /* continue from out_dir/last.* */
    const char *runs_db; /* NULL: out_dir/runs.sqlite */
    int progress;        /* 1: a progress bar (a terminal), 0: plain log lines, -1: silent */
    int max_steps;       /* stop each epoch after this many steps (tests, smoke runs); 0: all */
    /* Data-parallel training (docs/distributed.md): NULL, or a communicator of one rank, trains
     * in this process alone. With several ranks each takes its shard of every epoch, gradients
     * are averaged, and rank 0 alone logs and writes checkpoints and the runs database. */
    struct cv_comm *comm;
    /* Synchronised batch norm: training-mode statistics over all ranks' batches, computed by the
     * synchronised code path also with one rank, so that 1 and N ranks compute alike. */
    int sync_bn;
} cv_train_config;

/* Fills the defaults (epochs 10, batch 64, lr 0.01, momentum 0.9, wd 1e-4, ...). */
void cv_train_config_default(cv_train_config *c);

typedef struct cv_train_result {
    int epochs_run;
    int best_epoch;     /* 0-based; -1 when there was no validation */
    double best_metric; /* the selected metric at best_epoch (NAN without validation) */
    double last_train_loss;
    int64_t run_id;
    int num_classes;
} cv_train_result;

cv_status cv_train_run(cv_ctx *ctx, const cv_train_config *c, cv_train_result *out);

#ifdef __cplusplus
}
#endif
#endif
