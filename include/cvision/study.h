/* The transfer study (Fang, Kornblith & Schmidt 2023): every model x dataset x grid point is
 * fine-tuned by the trainer, the best grid point per (model, dataset) is chosen on validation and
 * its test metric recorded. Runs are rows of an SQLite database in the output directory, so a
 * killed study resumes and any number of processes (or MPI ranks) share the work by claiming
 * rows. docs/study.md describes the command and the database. */
#ifndef CVISION_STUDY_H
#define CVISION_STUDY_H

#include <stddef.h>
#include <stdint.h>

#include "cvision/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cv_study_dataset {
    const char *name;   /* short name: letters, digits, '-', '_' */
    const char *train;  /* training spec (required) */
    const char *val;    /* validation spec; NULL: a class-balanced 80/20 split of `train`, one split
                         * file shared by every run of this dataset */
    const char *test;   /* test spec; NULL: the validation data is also the test data */
    const char *metric; /* accuracy (default), balanced_accuracy, qwk, roc_auc, macro_f1,
                         * macro_f1_tuned, mcc, or any key of the metrics JSON */
    const char *train_transform, *eval_transform; /* pipelines; NULL: the trainer's defaults */
} cv_study_dataset;

typedef struct cv_study_config {
    const char *out_dir;
    const char *const *models;  /* architectures */
    const char *const *weights; /* per model: a file, a catalog name ("DEFAULT", "IMAGENET1K_V1")
                                 * or NULL/"none" for a fresh initialisation */
    int n_models;
    const cv_study_dataset *datasets;
    int n_datasets;
    const char *grid; /* "lr=0.1,0.01;wd=1e-4,0;opt=sgd,adamw;sched=cosine" */
    int epochs, batch, max_steps, threads, workers;
    uint64_t seed;
    const char *upstream;   /* "model=acc,..." overrides the catalog's acc@1; may be NULL */
    double stale_s;         /* a running row whose heartbeat is older is reclaimed (default 600) */
    int progress;           /* trainer output: 0 plain lines, -1 silent */
    const char *log_prefix; /* prefixed to the study's own log lines ("[rank 1] "), may be NULL */
} cv_study_config;

void cv_study_config_default(cv_study_config *c);

typedef struct cv_study cv_study;

/* Opens DIR/study.sqlite, creating the runs (and the shared splits and head-less copies of the
 * pretrained weights) on first use. An existing study made with other options is an error that
 * names the option that differs. */
cv_status cv_study_open(cv_ctx *ctx, const cv_study_config *c, cv_study **out);
/* Opens an existing study with the options stored in its database (for --report). */
cv_status cv_study_open_existing(cv_ctx *ctx, const char *out_dir, cv_study **out);
void cv_study_close(cv_study *s);

/* Claims and runs pending (or abandoned) runs until none is left, then waits for runs other
 * processes hold. *ran counts the runs this process did. */
cv_status cv_study_work(cv_ctx *ctx, cv_study *s, int *ran);
/* Runs exactly run `id` (if it is pending or abandoned; done runs are left alone). */
cv_status cv_study_run_one(cv_ctx *ctx, cv_study *s, int64_t id);
/* Failed runs back to pending. */
cv_status cv_study_retry_failed(cv_ctx *ctx, cv_study *s, int *n);

/* Ids of the runs that are not done (pending, running or failed), ascending. free() them. */
cv_status cv_study_pending(cv_ctx *ctx, cv_study *s, int64_t **ids, size_t *n);
/* Run counts by status. */
cv_status cv_study_counts(cv_ctx *ctx, cv_study *s, int *pending, int *running, int *done,
                          int *failed);

/* One row of the final table: the selected grid point of a (model, dataset). */
typedef struct cv_study_row {
    const char *dataset, *model, *metric;
    double upstream; /* upstream (ImageNet) top-1 in percent, NAN if unknown */
    int64_t run_id;  /* the selected run; 0 when no run of the pair succeeded */
    double lr, wd;
    const char *opt, *sched;
    double val_score; /* the validation metric at the best epoch */
    int best_epoch;   /* 1-based */
    double value;     /* the task metric on the test data; NAN when every run failed */
    int runs_done, runs_failed;
} cv_study_row;

/* Selection from the database: the grid point with the best validation score per (model,
 * dataset) (ties: the first grid point), in dataset then model order. The rows point into the
 * study and stay valid until the next call or cv_study_close. */
cv_status cv_study_table(cv_ctx *ctx, cv_study *s, const cv_study_row **rows, size_t *n);
/* Writes DIR/table.csv and DIR/table.json (atomically; identical bytes from every process). */
cv_status cv_study_write_table(cv_ctx *ctx, cv_study *s);
const char *cv_study_out_dir(const cv_study *s);
uint64_t cv_study_seed(const cv_study *s);

#ifdef __cplusplus
}
#endif
#endif
