/* The study's runs database (DIR/study.sqlite): one row per model x dataset x grid point.
 * Processes claim rows in BEGIN IMMEDIATE transactions (one writer at a time; the others wait on
 * the busy timeout), so a row is never run twice at once. A claimed row carries its claimer
 * (host:pid) and a heartbeat that a thread refreshes while the run trains; a row whose claimer is
 * gone (its pid no longer exists on this host, or its heartbeat is older than the stale timeout)
 * is claimed again and continues from the run's last checkpoint. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "runner.h"

static const char *schema =
    /* A rollback journal, not WAL: WAL needs shared memory, so it breaks for processes on several
     * hosts sharing DIR over a network file system; the study writes too rarely to need WAL. */
    "PRAGMA journal_mode=DELETE;"
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS runs("
    " id INTEGER PRIMARY KEY, dataset TEXT NOT NULL, model TEXT NOT NULL, point INTEGER NOT NULL,"
    " lr REAL, wd REAL, opt TEXT, sched TEXT,"
    " status TEXT NOT NULL DEFAULT 'pending'"
    "  CHECK(status IN ('pending','running','done','failed')),"
    " claimed_by TEXT, host TEXT, pid INTEGER, heartbeat REAL, attempts INTEGER NOT NULL DEFAULT 0,"
    " started REAL, finished REAL, train_seconds REAL, eval_seconds REAL,"
    " val_score REAL, best_epoch INTEGER, epochs_run INTEGER, test_value REAL,"
    " test_samples INTEGER, error TEXT,"
    " UNIQUE(dataset, model, point));";

double study_wall_time(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

cv_status studydb_fail(cv_ctx *ctx, cv_study *s, const char *what)
{
    return cv_fail(ctx, CV_ERR_IO, "%s: %s: %s", s->db_path, what, sqlite3_errmsg(s->db));
}

cv_status studydb_exec(cv_ctx *ctx, cv_study *s, const char *sql)
{
    char *err = NULL;
    if (sqlite3_exec(s->db, sql, NULL, NULL, &err) == SQLITE_OK) return CV_OK;
    cv_status st = cv_fail(ctx, CV_ERR_IO, "%s: %s", s->db_path, err ? err : "sqlite error");
    sqlite3_free(err);
    return st;
}

static cv_status open_conn(cv_ctx *ctx, const char *path, sqlite3 **db)
{
    if (sqlite3_open_v2(path, db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
        cv_status st = cv_fail(ctx, CV_ERR_IO, "%s: cannot open: %s", path,
                               *db ? sqlite3_errmsg(*db) : "out of memory");
        sqlite3_close(*db);
        *db = NULL;
        return st;
    }
    /* Long: the first process may hold the write lock while it makes splits and weights. */
    sqlite3_busy_timeout(*db, 600000);
    return CV_OK;
}

cv_status studydb_open(cv_ctx *ctx, cv_study *s)
{
    snprintf(s->db_path, sizeof s->db_path, "%s/study.sqlite", s->out_dir);
    cv_status st = open_conn(ctx, s->db_path, &s->db);
    if (!st) st = studydb_exec(ctx, s, schema);
    if (gethostname(s->host, sizeof s->host)) snprintf(s->host, sizeof s->host, "localhost");
    s->host[sizeof s->host - 1] = 0;
    snprintf(s->claimed_by, sizeof s->claimed_by, "%s:%ld", s->host, (long)getpid());
    return st;
}

cv_status studydb_meta_get(cv_ctx *ctx, cv_study *s, const char *key, char **out)
{
    *out = NULL;
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(s->db, "SELECT value FROM meta WHERE key=?", -1, &q, NULL))
        return studydb_fail(ctx, s, "reading meta");
    sqlite3_bind_text(q, 1, key, -1, SQLITE_STATIC);
    cv_status st = CV_OK;
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) {
        const char *v = (const char *)sqlite3_column_text(q, 0);
        if (v && !(*out = strdup(v))) st = cv_fail(ctx, CV_ERR_NOMEM, "out of memory");
    } else if (rc != SQLITE_DONE) {
        st = studydb_fail(ctx, s, "reading meta");
    }
    sqlite3_finalize(q);
    return st;
}

cv_status studydb_meta_set(cv_ctx *ctx, cv_study *s, const char *key, const char *value)
{
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(s->db, "INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)", -1, &q,
                           NULL))
        return studydb_fail(ctx, s, "writing meta");
    sqlite3_bind_text(q, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, value, -1, SQLITE_STATIC);
    int rc = sqlite3_step(q);
    sqlite3_finalize(q);
    return rc == SQLITE_DONE ? CV_OK : studydb_fail(ctx, s, "writing meta");
}

/* Ids are fixed by position (dataset, then model, then grid point), so every process and every
 * exported job line agrees on them. */
cv_status studydb_insert_runs(cv_ctx *ctx, cv_study *s)
{
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(s->db,
                           "INSERT OR IGNORE INTO runs(id, dataset, model, point, lr, wd, opt, "
                           "sched) VALUES(?, ?, ?, ?, ?, ?, ?, ?)",
                           -1, &q, NULL))
        return studydb_fail(ctx, s, "creating runs");
    cv_status st = CV_OK;
    int64_t id = 0;
    for (int d = 0; !st && d < s->n_datasets; d++)
        for (int m = 0; !st && m < s->n_models; m++)
            for (int p = 0; !st && p < s->n_points; p++) {
                const study_point *pt = &s->points[p];
                sqlite3_reset(q);
                sqlite3_bind_int64(q, 1, ++id);
                sqlite3_bind_text(q, 2, s->datasets[d].name, -1, SQLITE_STATIC);
                sqlite3_bind_text(q, 3, s->models[m].arch, -1, SQLITE_STATIC);
                sqlite3_bind_int(q, 4, p);
                sqlite3_bind_double(q, 5, pt->lr);
                sqlite3_bind_double(q, 6, pt->wd);
                sqlite3_bind_text(q, 7, pt->opt, -1, SQLITE_STATIC);
                sqlite3_bind_text(q, 8, pt->sched, -1, SQLITE_STATIC);
                if (sqlite3_step(q) != SQLITE_DONE) st = studydb_fail(ctx, s, "creating runs");
            }
    sqlite3_finalize(q);
    return st;
}

static int pid_alive(long pid)
{
    if (pid <= 0) return 0;
    if (pid == (long)getpid()) return 1;
    return kill((pid_t)pid, 0) == 0 || errno == EPERM;
}

/* Within the caller's transaction: is run `id` abandoned by its claimer? */
static int abandoned(const cv_study *s, const char *host, long pid, double heartbeat, double now)
{
    if (heartbeat < now - s->stale_s) return 1;
    return host && !strcmp(host, s->host) && !pid_alive(pid);
}

cv_status studydb_claim(cv_ctx *ctx, cv_study *s, int64_t only, int64_t *id, int *resumed)
{
    *id = 0;
    *resumed = 0;
    cv_status st = studydb_exec(ctx, s, "BEGIN IMMEDIATE");
    if (st) return st;
    sqlite3_stmt *q = NULL;
    const char *sql = only > 0
                          ? "SELECT id, status, host, pid, heartbeat FROM runs WHERE id=?"
                          : "SELECT id, status, host, pid, heartbeat FROM runs WHERE status IN "
                            "('pending','running') ORDER BY status='running', id";
    if (sqlite3_prepare_v2(s->db, sql, -1, &q, NULL)) {
        st = studydb_fail(ctx, s, "claiming a run");
        goto out;
    }
    if (only > 0) sqlite3_bind_int64(q, 1, only);
    double now = study_wall_time();
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        const char *status = (const char *)sqlite3_column_text(q, 1);
        if (!strcmp(status, "pending")) {
            *id = sqlite3_column_int64(q, 0);
            break;
        }
        if (!strcmp(status, "running") &&
            abandoned(s, (const char *)sqlite3_column_text(q, 2), (long)sqlite3_column_int64(q, 3),
                      sqlite3_column_double(q, 4), now)) {
            *id = sqlite3_column_int64(q, 0);
            *resumed = 1;
            break;
        }
        if (only > 0) break;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) st = studydb_fail(ctx, s, "claiming a run");
    sqlite3_finalize(q);
    q = NULL;
    if (st || !*id) goto out;
    if (sqlite3_prepare_v2(s->db,
                           "UPDATE runs SET status='running', claimed_by=?, host=?, pid=?, "
                           "heartbeat=?, started=?, attempts=attempts+1, error=NULL WHERE id=?",
                           -1, &q, NULL)) {
        st = studydb_fail(ctx, s, "claiming a run");
        goto out;
    }
    sqlite3_bind_text(q, 1, s->claimed_by, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, s->host, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 3, (sqlite3_int64)getpid());
    sqlite3_bind_double(q, 4, now);
    sqlite3_bind_double(q, 5, now);
    sqlite3_bind_int64(q, 6, *id);
    if (sqlite3_step(q) != SQLITE_DONE) st = studydb_fail(ctx, s, "claiming a run");
    sqlite3_finalize(q);
out:
    if (st) {
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        *id = 0;
        return st;
    }
    return studydb_exec(ctx, s, "COMMIT");
}

static void bind_num(sqlite3_stmt *q, int i, double v)
{
    if (v == v)
        sqlite3_bind_double(q, i, v);
    else
        sqlite3_bind_null(q, i);
}

cv_status studydb_finish(cv_ctx *ctx, cv_study *s, int64_t id, const studydb_result *r)
{
    sqlite3_stmt *q;
    /* Only while we still hold the claim: a run reclaimed from us (we looked dead) is theirs. */
    if (sqlite3_prepare_v2(s->db,
                           "UPDATE runs SET status=?, finished=?, train_seconds=?, "
                           "eval_seconds=?, val_score=?, best_epoch=?, epochs_run=?, "
                           "test_value=?, test_samples=?, error=? WHERE id=? AND claimed_by=?",
                           -1, &q, NULL))
        return studydb_fail(ctx, s, "recording a run");
    sqlite3_bind_text(q, 1, r->status, -1, SQLITE_STATIC);
    sqlite3_bind_double(q, 2, study_wall_time());
    bind_num(q, 3, r->train_s);
    bind_num(q, 4, r->eval_s);
    bind_num(q, 5, r->val_score);
    sqlite3_bind_int(q, 6, r->best_epoch);
    sqlite3_bind_int(q, 7, r->epochs_run);
    bind_num(q, 8, r->test_value);
    sqlite3_bind_int64(q, 9, r->test_samples);
    if (r->error)
        sqlite3_bind_text(q, 10, r->error, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(q, 10);
    sqlite3_bind_int64(q, 11, id);
    sqlite3_bind_text(q, 12, s->claimed_by, -1, SQLITE_STATIC);
    int rc = sqlite3_step(q);
    sqlite3_finalize(q);
    return rc == SQLITE_DONE ? CV_OK : studydb_fail(ctx, s, "recording a run");
}

static int index_of_model(const cv_study *s, const char *name)
{
    for (int i = 0; i < s->n_models; i++)
        if (!strcmp(s->models[i].arch, name)) return i;
    return -1;
}

static int index_of_dataset(const cv_study *s, const char *name)
{
    for (int i = 0; i < s->n_datasets; i++)
        if (!strcmp(s->datasets[i].name, name)) return i;
    return -1;
}

cv_status studydb_runs(cv_ctx *ctx, cv_study *s, study_run **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT id, dataset, model, point, status, val_score, test_value, "
                           "best_epoch FROM runs ORDER BY id",
                           -1, &q, NULL))
        return studydb_fail(ctx, s, "reading runs");
    size_t cap = 0;
    cv_status st = CV_OK;
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? 2 * cap : 64;
            study_run *r = realloc(*out, cap * sizeof *r);
            if (!r) {
                st = cv_fail(ctx, CV_ERR_NOMEM, "out of memory");
                break;
            }
            *out = r;
        }
        study_run *r = &(*out)[*n];
        r->id = sqlite3_column_int64(q, 0);
        r->dataset = index_of_dataset(s, (const char *)sqlite3_column_text(q, 1));
        r->model = index_of_model(s, (const char *)sqlite3_column_text(q, 2));
        r->point = sqlite3_column_int(q, 3);
        if (r->dataset < 0 || r->model < 0 || r->point < 0 || r->point >= s->n_points) {
            st = cv_fail(ctx, CV_ERR_FORMAT,
                         "%s: run %lld names a dataset, model or grid point "
                         "the study does not have",
                         s->db_path, (long long)r->id);
            break;
        }
        snprintf(r->status, sizeof r->status, "%s", (const char *)sqlite3_column_text(q, 4));
        r->val_score = sqlite3_column_type(q, 5) == SQLITE_NULL ? NAN : sqlite3_column_double(q, 5);
        r->test_value =
            sqlite3_column_type(q, 6) == SQLITE_NULL ? NAN : sqlite3_column_double(q, 6);
        r->best_epoch = sqlite3_column_int(q, 7);
        (*n)++;
    }
    if (!st && rc != SQLITE_DONE) st = studydb_fail(ctx, s, "reading runs");
    sqlite3_finalize(q);
    if (st) {
        free(*out);
        *out = NULL;
        *n = 0;
    }
    return st;
}

struct study_heartbeat {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
    sqlite3 *db;
    int64_t id;
    double interval;
    const char *claimed_by;
};

static void *heartbeat_main(void *arg)
{
    study_heartbeat *h = arg;
    pthread_mutex_lock(&h->mu);
    while (!h->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        double t = (double)ts.tv_sec + ts.tv_nsec * 1e-9 + h->interval;
        ts.tv_sec = (time_t)t;
        ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
        pthread_cond_timedwait(&h->cv, &h->mu, &ts);
        if (h->stop) break;
        sqlite3_stmt *q;
        if (sqlite3_prepare_v2(h->db, "UPDATE runs SET heartbeat=? WHERE id=? AND claimed_by=?", -1,
                               &q, NULL) == SQLITE_OK) {
            sqlite3_bind_double(q, 1, study_wall_time());
            sqlite3_bind_int64(q, 2, h->id);
            sqlite3_bind_text(q, 3, h->claimed_by, -1, SQLITE_STATIC);
            sqlite3_step(q); /* a missed beat is retried at the next interval */
            sqlite3_finalize(q);
        }
    }
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

cv_status studydb_heartbeat_start(cv_ctx *ctx, cv_study *s, int64_t id, study_heartbeat **out)
{
    *out = NULL;
    study_heartbeat *h = calloc(1, sizeof *h);
    if (!h) return cv_fail(ctx, CV_ERR_NOMEM, "out of memory");
    cv_status st = open_conn(ctx, s->db_path, &h->db);
    if (st) {
        free(h);
        return st;
    }
    h->id = id;
    h->claimed_by = s->claimed_by;
    h->interval = s->stale_s / 4 < 1 ? 1 : s->stale_s / 4 > 60 ? 60 : s->stale_s / 4;
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->cv, NULL);
    if (pthread_create(&h->thread, NULL, heartbeat_main, h)) {
        sqlite3_close(h->db);
        pthread_mutex_destroy(&h->mu);
        pthread_cond_destroy(&h->cv);
        free(h);
        return cv_fail(ctx, CV_ERR_IO, "cannot start the heartbeat thread");
    }
    *out = h;
    return CV_OK;
}

void studydb_heartbeat_stop(study_heartbeat *h)
{
    if (!h) return;
    pthread_mutex_lock(&h->mu);
    h->stop = 1;
    pthread_cond_signal(&h->cv);
    pthread_mutex_unlock(&h->mu);
    pthread_join(h->thread, NULL);
    sqlite3_close(h->db);
    pthread_mutex_destroy(&h->mu);
    pthread_cond_destroy(&h->cv);
    free(h);
}
