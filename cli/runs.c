/* cvision runs list|show|compare: reads the SQLite run database that training writes. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "commands.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: cvision runs list [--db FILE|DIR] [--json]\n"
               "       cvision runs show ID [--db FILE|DIR] [--json]\n"
               "       cvision runs compare ID ID [ID...] [--db FILE|DIR] [--json]\n"
               "  The database is FILE, or DIR/runs.sqlite (default: ./runs.sqlite); training\n"
               "  writes OUT/runs.sqlite unless told to use a shared one.\n");
}

static const char *str_of(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : "-";
}

static double num_of(const cJSON *o, const char *k, int *ok)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    *ok = cJSON_IsNumber(v);
    return *ok ? v->valuedouble : 0;
}

/* "acc1 0.9123 (epoch 4)" or "-". */
static void best_str(const cJSON *run, char *buf, size_t n)
{
    int ok, ok2;
    double v = num_of(run, "best_metric", &ok), ep = num_of(run, "best_epoch", &ok2);
    if (!ok) {
        snprintf(buf, n, "-");
        return;
    }
    snprintf(buf, n, "%s %.6g (epoch %.0f)", str_of(run, "metric"), v, ok2 ? ep : -1.0);
}

/* The value shown per epoch: the run's metric from the validation metrics, else the loss. */
static int epoch_value(const cJSON *run, const cJSON *ep, double *v)
{
    int ok;
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(ep, "val_metrics");
    const char *metric = str_of(run, "metric");
    const cJSON *mv = cJSON_IsObject(m) ? cJSON_GetObjectItemCaseSensitive(m, metric) : NULL;
    if (cJSON_IsNumber(mv)) {
        *v = mv->valuedouble;
        return 1;
    }
    *v = num_of(ep, "train_loss", &ok);
    return ok;
}

static int print_json(cJSON *j)
{
    char *s = cJSON_Print(j);
    if (s) printf("%s\n", s);
    free(s);
    return 0;
}

static void print_list(const cJSON *arr)
{
    printf("%5s  %-9s  %-20s  %-18s  %6s  %-26s  %s\n", "ID", "STATUS", "STARTED", "ARCH", "EPOCHS",
           "BEST", "DATA");
    const cJSON *run;
    cJSON_ArrayForEach(run, arr)
    {
        int ok;
        char best[96], started[21];
        best_str(run, best, sizeof best);
        snprintf(started, sizeof started, "%.19s", str_of(run, "started"));
        char *t = strchr(started, 'T');
        if (t) *t = ' ';
        printf("%5.0f  %-9s  %-20s  %-18s  %6.0f  %-26s  %s\n", num_of(run, "id", &ok),
               str_of(run, "status"), started, str_of(run, "arch"), num_of(run, "epochs", &ok),
               best, str_of(run, "data"));
    }
}

static void print_show(const cJSON *run)
{
    int ok;
    char best[96];
    best_str(run, best, sizeof best);
    printf("run %.0f: %s on %s [%s]\n", num_of(run, "id", &ok), str_of(run, "arch"),
           str_of(run, "data"), str_of(run, "status"));
    printf("started %s, finished %s, seed %.0f, output %s, host %s, pid %.0f\n",
           str_of(run, "started"), str_of(run, "finished"), num_of(run, "seed", &ok),
           str_of(run, "out_dir"), str_of(run, "host"), num_of(run, "pid", &ok));
    char *args = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(run, "args"));
    printf("args: %s\nbest: %s\n", args ? args : "-", best);
    free(args);
    printf("\n%5s  %12s  %10s  %9s  %s\n", "epoch", "train_loss", "lr", "seconds",
           "validation metrics");
    const cJSON *ep;
    cJSON_ArrayForEach(ep, cJSON_GetObjectItemCaseSensitive(run, "epochs"))
    {
        int ok1, ok2, ok3;
        double loss = num_of(ep, "train_loss", &ok1), lr = num_of(ep, "lr", &ok2),
               sec = num_of(ep, "seconds", &ok3);
        printf("%5.0f  ", num_of(ep, "epoch", &ok));
        ok1 ? printf("%12.6g  ", loss) : printf("%12s  ", "-");
        ok2 ? printf("%10.4g  ", lr) : printf("%10s  ", "-");
        ok3 ? printf("%9.1f ", sec) : printf("%9s ", "-");
        const cJSON *m;
        cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(ep, "val_metrics"))
        {
            if (cJSON_IsNumber(m)) printf(" %s=%.6g", m->string, m->valuedouble);
        }
        printf("\n");
    }
    const cJSON *arts = cJSON_GetObjectItemCaseSensitive(run, "artifacts"), *a;
    if (cJSON_GetArraySize(arts)) printf("\nartifacts:\n");
    cJSON_ArrayForEach(a, arts)
    {
        printf("  %-12s %s  sha256 %.16s\n", str_of(a, "kind"), str_of(a, "path"),
               str_of(a, "sha256"));
    }
}

static void print_compare(cJSON *const *runs, int n, const cJSON *diff)
{
    int ok;
    printf("%-20s", "run");
    for (int i = 0; i < n; i++) printf("  %-22.0f", num_of(runs[i], "id", &ok));
    const char *rows[] = {"arch", "data", "status", "metric"};
    for (int r = 0; r < 4; r++) {
        printf("\n%-20s", rows[r]);
        for (int i = 0; i < n; i++) printf("  %-22.22s", str_of(runs[i], rows[r]));
    }
    printf("\n%-20s", "best");
    for (int i = 0; i < n; i++) {
        char b[96];
        best_str(runs[i], b, sizeof b);
        printf("  %-22.22s", b);
    }
    printf("\n%-20s", "epochs");
    for (int i = 0; i < n; i++)
        printf("  %-22d", cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(runs[i], "epochs")));
    printf("\n");
    const cJSON *d;
    if (cJSON_GetArraySize(diff)) printf("\narguments that differ:\n");
    cJSON_ArrayForEach(d, diff)
    {
        printf("  %-18.18s", d->string);
        const cJSON *v;
        cJSON_ArrayForEach(v, d)
        {
            char *s = cJSON_PrintUnformatted(v);
            printf("  %-22.22s", s ? s : "?");
            free(s);
        }
        printf("\n");
    }
    printf("\nper epoch (the run's metric, else the training loss):\n%5s", "epoch");
    int max_ep = 0;
    for (int i = 0; i < n; i++) {
        printf("  %12.0f", num_of(runs[i], "id", &ok));
        const cJSON *ep;
        cJSON_ArrayForEach(ep, cJSON_GetObjectItemCaseSensitive(runs[i], "epochs"))
        {
            int e = (int)num_of(ep, "epoch", &ok);
            if (ok && e + 1 > max_ep) max_ep = e + 1;
        }
    }
    printf("\n");
    for (int e = 0; e < max_ep; e++) {
        printf("%5d", e);
        for (int i = 0; i < n; i++) {
            const cJSON *ep, *found = NULL;
            cJSON_ArrayForEach(ep, cJSON_GetObjectItemCaseSensitive(runs[i], "epochs"))
            {
                if ((int)num_of(ep, "epoch", &ok) == e) found = ep;
            }
            double v;
            if (found && epoch_value(runs[i], found, &v))
                printf("  %12.6g", v);
            else
                printf("  %12s", "-");
        }
        printf("\n");
    }
}

/* Arguments (top-level keys of each run's args JSON) whose values are not all equal. */
static cJSON *args_diff(cJSON *const *runs, int n)
{
    cJSON *diff = cJSON_CreateObject();
    for (int i = 0; i < n; i++) {
        const cJSON *a;
        cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(runs[i], "args"))
        {
            if (!a->string || cJSON_GetObjectItemCaseSensitive(diff, a->string)) continue;
            int same = 1;
            for (int k = 0; k < n && same; k++) {
                const cJSON *b = cJSON_GetObjectItemCaseSensitive(
                    cJSON_GetObjectItemCaseSensitive(runs[k], "args"), a->string);
                same = b && cJSON_Compare(a, b, 1);
            }
            if (same) continue;
            cJSON *vals = cJSON_AddArrayToObject(diff, a->string);
            for (int k = 0; k < n; k++) {
                const cJSON *b = cJSON_GetObjectItemCaseSensitive(
                    cJSON_GetObjectItemCaseSensitive(runs[k], "args"), a->string);
                cJSON_AddItemToArray(vals, b ? cJSON_Duplicate(b, 1) : cJSON_CreateNull());
            }
        }
    }
    return diff;
}

static cv_status parse_id(cv_ctx *ctx, const char *s, int64_t *id)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || v <= 0) return cv_fail(ctx, CV_ERR_INVALID, "runs: '%s' is not a run id", s);
    *id = v;
    return CV_OK;
}

int cmd_runs(cv_ctx *ctx, int argc, char **argv)
{
    const char *db = "runs.sqlite", *action = NULL;
    const char *ids[64];
    int nids = 0, json = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--json")) {
            json = 1;
        } else if (!strcmp(argv[i], "--db") && i + 1 < argc) {
            db = argv[++i];
        } else if (argv[i][0] == '-') {
            cv_fail(ctx, CV_ERR_INVALID, "runs: unknown option '%s'", argv[i]);
            return cli_error(ctx);
        } else if (!action) {
            action = argv[i];
        } else if (nids < 64) {
            ids[nids++] = argv[i];
        } else {
            cv_fail(ctx, CV_ERR_INVALID, "runs: too many run ids");
            return cli_error(ctx);
        }
    }
    int need = !action                      ? -1
               : !strcmp(action, "list")    ? 0
               : !strcmp(action, "show")    ? 1
               : !strcmp(action, "compare") ? 2
                                            : -1;
    if (need < 0 || (need < 2 && nids != need) || (need == 2 && nids < 2)) {
        usage(stderr);
        return 2;
    }
    struct stat st;
    if (stat(db, &st)) {
        cv_fail(ctx, CV_ERR_NOT_FOUND, "%s: no runs database here (pass --db FILE or DIR)", db);
        return cli_error(ctx);
    }
    cv_runs *r;
    if (cv_runs_open(ctx, db, &r)) return cli_error(ctx);
    cv_status s = CV_OK;
    cJSON *runs[64] = {0};
    char *text = NULL;
    if (need == 0) {
        s = cv_runs_list_json(ctx, r, &text);
        runs[0] = text ? cJSON_Parse(text) : NULL;
        free(text);
    }
    for (int i = 0; i < nids && !s; i++) {
        int64_t id = 0;
        s = parse_id(ctx, ids[i], &id);
        if (!s) s = cv_run_show_json(ctx, r, id, &text);
        if (!s) {
            runs[i] = cJSON_Parse(text);
            free(text);
        }
    }
    cv_runs_close(r);
    int n = need == 0 ? 1 : nids;
    for (int i = 0; i < n && !s; i++)
        if (!runs[i]) s = cv_fail(ctx, CV_ERR_INTERNAL, "runs: unreadable JSON from the database");
    if (s) {
        for (int i = 0; i < 64; i++) cJSON_Delete(runs[i]);
        return cli_error(ctx);
    }
    if (need == 2) {
        cJSON *diff = args_diff(runs, nids);
        if (json) {
            cJSON *o = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(o, "runs");
            for (int i = 0; i < nids; i++) {
                cJSON_AddItemToArray(arr, runs[i]);
                runs[i] = NULL;
            }
            cJSON_AddItemToObject(o, "args_diff", diff);
            print_json(o);
            cJSON_Delete(o);
        } else {
            print_compare(runs, nids, diff);
            cJSON_Delete(diff);
        }
    } else if (json) {
        print_json(runs[0]);
    } else if (need == 0) {
        print_list(runs[0]);
    } else {
        print_show(runs[0]);
    }
    for (int i = 0; i < 64; i++) cJSON_Delete(runs[i]);
    return 0;
}
