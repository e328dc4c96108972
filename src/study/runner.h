/* Shared between the study's sources: the study handle, the runs database and the evaluation of
 * a run's selected checkpoint. */
#ifndef CV_STUDY_RUNNER_H
#define CV_STUDY_RUNNER_H

#include <sqlite3.h>

#include "cvision/metrics.h"
#include "cvision/study.h"

typedef struct {
    char opt[32];
    char sched[256];
    double lr, wd;
} study_point;

typedef struct {
    char *name, *train, *val, *test, *metric; /* as configured (val/test may be NULL) */
    char *train_tf, *eval_tf;                 /* transforms, or NULL */
    char *train_spec, *val_spec;              /* what the trainer gets (split suffixes added) */
    const char *key;                          /* the metrics JSON key of the task metric */
    int tuned; /* macro_f1_tuned: per-class thresholds tuned on validation */
    cv_task task;
    int num_classes;
    char **class_names; /* the training data's, to map test labels by name */
} study_dataset;

typedef struct {
    char *arch, *weights; /* weights as given ("none" when absent) */
    char *wpath;          /* the head-less copy the runs load, or NULL (fresh init) */
    double upstream;
} study_model;

/* One run as the database holds it. */
typedef struct {
    int64_t id;
    int dataset, model, point; /* indices into the study's lists */
    char status[16];
    double val_score, test_value;
    int best_epoch;
} study_run;

struct cv_study {
    char *out_dir;
    study_model *models;
    int n_models;
    study_dataset *datasets;
    int n_datasets;
    study_point *points;
    int n_points;
    char *grid_canon;
    int epochs, batch, max_steps, threads, workers, progress;
    uint64_t seed;
    double stale_s;
    char log_prefix[64];
    sqlite3 *db;
    char db_path[4200];
    char host[256], claimed_by[300];
    cv_study_row *rows;
    size_t n_rows;
};

/* ---- studydb.c ---- */
cv_status studydb_open(cv_ctx *ctx, cv_study *s);
cv_status studydb_exec(cv_ctx *ctx, cv_study *s, const char *sql);
cv_status studydb_fail(cv_ctx *ctx, cv_study *s, const char *what);
/* The stored value of a meta key (malloc'd; NULL when absent). */
cv_status studydb_meta_get(cv_ctx *ctx, cv_study *s, const char *key, char **out);
cv_status studydb_meta_set(cv_ctx *ctx, cv_study *s, const char *key, const char *value);
/* Inserts the run rows (inside the caller's transaction). */
cv_status studydb_insert_runs(cv_ctx *ctx, cv_study *s);
/* Claims `only` (> 0) or the first pending run, else the first abandoned one. *id = 0 when there
 * is nothing to claim; *resumed = 1 for an abandoned run (continue its checkpoints). */
cv_status studydb_claim(cv_ctx *ctx, cv_study *s, int64_t only, int64_t *id, int *resumed);
typedef struct {
    const char *status; /* done | failed */
    double train_s, eval_s, val_score, test_value;
    int best_epoch, epochs_run;
    int64_t test_samples;
    const char *error;
} studydb_result;
cv_status studydb_finish(cv_ctx *ctx, cv_study *s, int64_t id, const studydb_result *r);
/* Every run, ascending id (free with free()). */
cv_status studydb_runs(cv_ctx *ctx, cv_study *s, study_run **out, size_t *n);
/* Starts/stops the heartbeat thread of a claimed run (own connection). */
typedef struct study_heartbeat study_heartbeat;
cv_status studydb_heartbeat_start(cv_ctx *ctx, cv_study *s, int64_t id, study_heartbeat **out);
void studydb_heartbeat_stop(study_heartbeat *h);

/* ---- evaluate.c ---- */
/* Maps a task metric name to its metrics key for the task; checks that the key exists. */
cv_status study_metric_key(cv_ctx *ctx, const char *name, cv_task task, int num_classes,
                           const char **key, int *tuned);
int study_lower_is_better(const char *key);
/* The task metric of run_dir's best checkpoint on `test` (thresholds tuned on `val` when
 * d->tuned). */
cv_status study_evaluate(cv_ctx *ctx, const cv_study *s, const study_dataset *d,
                         const char *run_dir, const char *test, double *value, int64_t *samples);

double study_wall_time(void);

#endif
