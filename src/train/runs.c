/* Run tracking in SQLite: one row per run, per epoch and per artefact. WAL journaling and a busy
 * timeout let several training processes (and `cvision runs` readers) share a database. */
#include "cvision/train.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cvision/weights.h"

struct cv_runs {
    sqlite3 *db;
    char path[4096];
};

static const char *schema =
    "CREATE TABLE IF NOT EXISTS runs("
    " id INTEGER PRIMARY KEY AUTOINCREMENT, started TEXT NOT NULL, finished TEXT,"
    " status TEXT NOT NULL, arch TEXT, data TEXT, args TEXT, seed INTEGER, out_dir TEXT,"
    " metric TEXT, best_metric REAL, best_epoch INTEGER, host TEXT, pid INTEGER);"
    "CREATE TABLE IF NOT EXISTS epochs("
    " run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE, epoch INTEGER NOT NULL,"
    " train_loss REAL, val_metrics TEXT, lr REAL, seconds REAL, recorded TEXT,"
    " PRIMARY KEY(run_id, epoch));"
    "CREATE TABLE IF NOT EXISTS artifacts("
    " run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE, kind TEXT NOT NULL,"
    " path TEXT NOT NULL, sha256 TEXT, created TEXT);"
    "CREATE INDEX IF NOT EXISTS artifacts_run ON artifacts(run_id);";

#define NOW "strftime('%Y-%m-%dT%H:%M:%fZ','now')"

static cv_status db_fail(cv_ctx *ctx, cv_runs *r, const char *what)
{
    return cv_fail(ctx, CV_ERR_IO, "%s: %s: %s", r->path, what, sqlite3_errmsg(r->db));
}

static cv_status exec(cv_ctx *ctx, cv_runs *r, const char *sql)
{
    char *err = NULL;
    if (sqlite3_exec(r->db, sql, NULL, NULL, &err) == SQLITE_OK) return CV_OK;
    cv_status s = cv_fail(ctx, CV_ERR_IO, "%s: %s", r->path, err ? err : "SQLite error");
    sqlite3_free(err);
    return s;
}

cv_status cv_runs_open(cv_ctx *ctx, const char *path, cv_runs **out)
{
    *out = NULL;
    cv_runs *r = calloc(1, sizeof *r);
    if (!r) return cv_fail(ctx, CV_ERR_NOMEM, "runs: out of memory");
    struct stat st;
    int is_dir = stat(path, &st) == 0 && S_ISDIR(st.st_mode);
    if ((size_t)snprintf(r->path, sizeof r->path, is_dir ? "%s/runs.sqlite" : "%s", path) >=
        sizeof r->path) {
        free(r);
        return cv_fail(ctx, CV_ERR_INVALID, "runs: path too long");
    }
    if (sqlite3_open_v2(r->path, &r->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK) {
        cv_status s = cv_fail(ctx, CV_ERR_IO, "%s: cannot open: %s", r->path,
                              r->db ? sqlite3_errmsg(r->db) : "out of memory");
        sqlite3_close(r->db);
        free(r);
        return s;
    }
    sqlite3_busy_timeout(r->db, 30000);
    cv_status s = exec(ctx, r, "PRAGMA journal_mode=WAL; PRAGMA foreign_keys=ON;");
    if (!s) s = exec(ctx, r, schema);
    if (s) {
        cv_runs_close(r);
        return s;
    }
    *out = r;
    return CV_OK;
}

void cv_runs_close(cv_runs *r)
{
    if (!r) return;
    sqlite3_close(r->db);
    free(r);
}

static cv_status prepare(cv_ctx *ctx, cv_runs *r, const char *sql, sqlite3_stmt **st)
{
    if (sqlite3_prepare_v2(r->db, sql, -1, st, NULL) != SQLITE_OK)
        return db_fail(ctx, r, "prepare");
    return CV_OK;
}

static void bind_text(sqlite3_stmt *st, int i, const char *s)
{
    if (s)
        sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, i);
}

static void bind_real(sqlite3_stmt *st, int i, double v)
{
    if (isfinite(v))
        sqlite3_bind_double(st, i, v);
    else
        sqlite3_bind_null(st, i);
}

/* Runs a prepared statement that returns no rows, then finalizes it. */
static cv_status done(cv_ctx *ctx, cv_runs *r, sqlite3_stmt *st, const char *what)
{
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? CV_OK : db_fail(ctx, r, what);
}

static cv_status check_json(cv_ctx *ctx, const char *what, const char *text)
{
    if (!text) return CV_OK;
    cJSON *j = cJSON_Parse(text);
    int ok = j != NULL;
    cJSON_Delete(j);
    return ok ? CV_OK : cv_fail(ctx, CV_ERR_INVALID, "runs: %s is not valid JSON", what);
}

cv_status cv_run_begin(cv_ctx *ctx, cv_runs *r, const cv_run_info *info, int64_t *run_id)
{
    sqlite3_stmt *st;
    cv_status s = check_json(ctx, "the arguments", info->args_json);
    if (!s)
        s = prepare(ctx, r,
                    "INSERT INTO runs(started, status, arch, data, args, seed, out_dir, metric,"
                    " host, pid) VALUES(" NOW ", 'running', ?, ?, ?, ?, ?, ?, ?, ?)",
                    &st);
    if (s) return s;
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    bind_text(st, 1, info->arch);
    bind_text(st, 2, info->data);
    bind_text(st, 3, info->args_json);
    sqlite3_bind_int64(st, 4, info->seed);
    bind_text(st, 5, info->out_dir);
    bind_text(st, 6, info->metric);
    bind_text(st, 7, host);
    sqlite3_bind_int64(st, 8, (sqlite3_int64)getpid());
    if ((s = done(ctx, r, st, "recording the run"))) return s;
    *run_id = sqlite3_last_insert_rowid(r->db);
    return CV_OK;
}

static cv_status update_run(cv_ctx *ctx, cv_runs *r, int64_t run_id, const char *sql,
                            const char *text)
{
    sqlite3_stmt *st;
    cv_status s = prepare(ctx, r, sql, &st);
    if (s) return s;
    bind_text(st, 1, text);
    sqlite3_bind_int64(st, 2, run_id);
    if ((s = done(ctx, r, st, "updating the run"))) return s;
    if (sqlite3_changes(r->db) != 1)
        return cv_fail(ctx, CV_ERR_NOT_FOUND, "%s: no run %lld", r->path, (long long)run_id);
    return CV_OK;
}

cv_status cv_run_resume(cv_ctx *ctx, cv_runs *r, int64_t run_id)
{
    return update_run(ctx, r, run_id, "UPDATE runs SET status = ?, finished = NULL WHERE id = ?",
                      "running");
}

cv_status cv_run_end(cv_ctx *ctx, cv_runs *r, int64_t run_id, const char *status)
{
    return update_run(ctx, r, run_id, "UPDATE runs SET status = ?, finished = " NOW " WHERE id = ?",
                      status ? status : "finished");
}

cv_status cv_run_epoch(cv_ctx *ctx, cv_runs *r, int64_t run_id, const cv_run_epoch_info *e)
{
    sqlite3_stmt *st;
    cv_status s = check_json(ctx, "the validation metrics", e->val_metrics_json);
    if (!s) s = exec(ctx, r, "BEGIN IMMEDIATE");
    if (s) return s;
    s = prepare(ctx, r,
                "INSERT OR REPLACE INTO epochs(run_id, epoch, train_loss, val_metrics, lr, seconds,"
                " recorded) VALUES(?, ?, ?, ?, ?, ?, " NOW ")",
                &st);
    if (!s) {
        sqlite3_bind_int64(st, 1, run_id);
        sqlite3_bind_int(st, 2, e->epoch);
        bind_real(st, 3, e->train_loss);
        bind_text(st, 4, e->val_metrics_json);
        bind_real(st, 5, e->lr);
        bind_real(st, 6, e->seconds);
        s = done(ctx, r, st, "recording the epoch");
    }
    if (!s && e->is_best &&
        (s = prepare(ctx, r,
                     "UPDATE runs SET best_metric = ?, best_epoch = ? WHERE "
                     "id = ?",
                     &st)) == CV_OK) {
        bind_real(st, 1, e->metric_value);
        sqlite3_bind_int(st, 2, e->epoch);
        sqlite3_bind_int64(st, 3, run_id);
        s = done(ctx, r, st, "recording the best epoch");
    }
    if (s) {
        sqlite3_exec(r->db, "ROLLBACK", NULL, NULL, NULL);
        return s;
    }
    return exec(ctx, r, "COMMIT");
}

cv_status cv_run_artifact(cv_ctx *ctx, cv_runs *r, int64_t run_id, const char *kind,
                          const char *path, const char *sha256)
{
    char hex[65];
    if (!sha256) {
        cv_status s = cv_sha256_file(ctx, path, hex);
        if (s) return s;
        sha256 = hex;
    }
    sqlite3_stmt *st;
    cv_status s = prepare(ctx, r,
                          "INSERT INTO artifacts(run_id, kind, path, sha256, created)"
                          " VALUES(?, ?, ?, ?, " NOW ")",
                          &st);
    if (s) return s;
    sqlite3_bind_int64(st, 1, run_id);
    bind_text(st, 2, kind);
    bind_text(st, 3, path);
    bind_text(st, 4, sha256);
    return done(ctx, r, st, "recording the artefact");
}

/* ---- reading back as JSON ---- */

/* Column i of the current row as a JSON value; "args" and "val_metrics" hold JSON text. */
static cJSON *column(sqlite3_stmt *st, int i)
{
    const char *name = sqlite3_column_name(st, i);
    switch (sqlite3_column_type(st, i)) {
    case SQLITE_INTEGER:
        return cJSON_CreateNumber((double)sqlite3_column_int64(st, i));
    case SQLITE_FLOAT:
        return cJSON_CreateNumber(sqlite3_column_double(st, i));
    case SQLITE_TEXT: {
        const char *t = (const char *)sqlite3_column_text(st, i);
        if (!strcmp(name, "args") || !strcmp(name, "val_metrics")) {
            cJSON *j = cJSON_Parse(t);
            if (j) return j;
        }
        return cJSON_CreateString(t);
    }
    default:
        return cJSON_CreateNull();
    }
}

/* All rows of a query (one int64 parameter, or none when param < 0) as an array of objects. */
static cv_status rows(cv_ctx *ctx, cv_runs *r, const char *sql, int64_t param, cJSON **out)
{
    sqlite3_stmt *st;
    cv_status s = prepare(ctx, r, sql, &st);
    if (s) return s;
    if (param >= 0) sqlite3_bind_int64(st, 1, param);
    cJSON *arr = cJSON_CreateArray();
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        cJSON *o = cJSON_CreateObject();
        for (int i = 0; i < sqlite3_column_count(st); i++)
            cJSON_AddItemToObject(o, sqlite3_column_name(st, i), column(st, i));
        cJSON_AddItemToArray(arr, o);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        cJSON_Delete(arr);
        return db_fail(ctx, r, "reading");
    }
    *out = arr;
    return CV_OK;
}

static cv_status print(cv_ctx *ctx, cJSON *j, char **json)
{
    *json = cJSON_Print(j);
    cJSON_Delete(j);
    return *json ? CV_OK : cv_fail(ctx, CV_ERR_NOMEM, "runs: out of memory");
}

cv_status cv_runs_list_json(cv_ctx *ctx, cv_runs *r, char **json)
{
    cJSON *arr;
    cv_status s = rows(ctx, r,
                       "SELECT id, started, finished, status, arch, data, seed, out_dir, metric,"
                       " best_metric, best_epoch, (SELECT COUNT(*) FROM epochs WHERE run_id ="
                       " runs.id) AS epochs FROM runs ORDER BY id DESC",
                       -1, &arr);
    return s ? s : print(ctx, arr, json);
}

cv_status cv_run_show_json(cv_ctx *ctx, cv_runs *r, int64_t run_id, char **json)
{
    cJSON *run, *epochs = NULL, *arts = NULL;
    cv_status s = rows(ctx, r, "SELECT * FROM runs WHERE id = ?", run_id, &run);
    if (s) return s;
    cJSON *one = cJSON_DetachItemFromArray(run, 0);
    cJSON_Delete(run);
    if (!one) return cv_fail(ctx, CV_ERR_NOT_FOUND, "%s: no run %lld", r->path, (long long)run_id);
    s = rows(ctx, r,
             "SELECT epoch, train_loss, lr, seconds, val_metrics, recorded FROM epochs"
             " WHERE run_id = ? ORDER BY epoch",
             run_id, &epochs);
    if (!s)
        s = rows(
            ctx, r,
            "SELECT kind, path, sha256, created FROM artifacts WHERE run_id = ? ORDER BY rowid",
            run_id, &arts);
    if (s) {
        cJSON_Delete(one);
        cJSON_Delete(epochs);
        return s;
    }
    cJSON_AddItemToObject(one, "epochs", epochs);
    cJSON_AddItemToObject(one, "artifacts", arts);
    return print(ctx, one, json);
}
