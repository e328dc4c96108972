/* cvision study: the transfer study (include/cvision/study.h, docs/study.md). */
#include <ctype.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "core/atomic.h"
#include "cvision/analysis.h"
#include "cvision/study.h"
#include "util.h"

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: cvision study --models A,B,... --data NAME=SPEC [--data ...] --out DIR [options]\n"
        "  --test NAME=SPEC     test data of dataset NAME (default: its validation data)\n"
        "  --val NAME=SPEC      validation data (default: a class-balanced 80/20 split of the\n"
        "                       training data, one split file shared by every run)\n"
        "  --metric [NAME=]M    task metric: accuracy (default), balanced_accuracy, qwk, roc_auc,\n"
        "                       macro_f1, macro_f1_tuned, mcc, or a metrics JSON key\n"
        "  --train-transform [NAME=]T  --eval-transform [NAME=]T   pipelines (docs/transforms.md)\n"
        "                       for dataset NAME, or for all (default: the trainer's)\n"
        "  --grid G             'lr=0.1,0.01;wd=1e-4,0;opt=sgd,adamw;sched=cosine'\n"
        "  --epochs E (30)  --batch B (64)  --max-steps N  --threads T  --workers W (2)\n"
        "  --weights W          catalog name or file for every model (DEFAULT), 'none' for a\n"
        "                       fresh start, or a map 'resnet18=FILE,alexnet=IMAGENET1K_V1'\n"
        "  --upstream M=ACC,... upstream top-1 (percent) overriding the catalog's acc@1\n"
        "  --seed S (0)  --stale SECONDS (600)  --retry-failed  --quiet  --boot N (1000)\n"
        "  --json               print the final table as JSON (DIR/table.json)\n"
        "  --export-jobs FILE   write one 'cvision study ... --only ID' line per unfinished run\n"
        "  --only ID            run exactly that run (no table)\n"
        "  --report             selection, table and analysis from DIR's database only\n"
        "Writes DIR/study.sqlite, DIR/runs/*, DIR/table.{csv,json} and the analysis.\n");
}

#define MAX_ITEMS 256

typedef struct {
    char name[128];
    const char *spec; /* points into argv, which stays intact for --export-jobs */
} named;

/* "NAME=VALUE" into a list; a repeated NAME is an error. */
static cv_status add_named(cv_ctx *ctx, const char *opt, const char *arg, named *list, int *n)
{
    const char *eq = strchr(arg, '=');
    if (!eq || eq == arg || !eq[1])
        return cv_fail(ctx, CV_ERR_INVALID, "%s: expected NAME=VALUE, got '%s'", opt, arg);
    if (*n == MAX_ITEMS) return cv_fail(ctx, CV_ERR_INVALID, "%s: too many", opt);
    if ((size_t)(eq - arg) >= sizeof list->name)
        return cv_fail(ctx, CV_ERR_INVALID, "%s: name too long in '%s'", opt, arg);
    named *e = &list[*n];
    snprintf(e->name, sizeof e->name, "%.*s", (int)(eq - arg), arg);
    e->spec = eq + 1;
    for (int i = 0; i < *n; i++)
        if (!strcmp(list[i].name, e->name))
            return cv_fail(ctx, CV_ERR_INVALID, "%s: '%s' given twice", opt, e->name);
    (*n)++;
    return CV_OK;
}

/* "NAME=..." with NAME made of letters, digits, '-', '_' and '.' only. */
static int named_prefix(const char *s)
{
    const char *eq = strchr(s, '=');
    if (!eq || eq == s) return 0;
    for (const char *p = s; p < eq; p++)
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_' && *p != '.') return 0;
    return 1;
}

static const char *lookup(const named *list, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(list[i].name, name)) return list[i].spec;
    return NULL;
}

/* Every NAME in `list` must be a dataset. */
static cv_status check_names(cv_ctx *ctx, const char *opt, const named *list, int n,
                             const named *data, int nd)
{
    for (int i = 0; i < n; i++)
        if (!lookup(data, nd, list[i].name))
            return cv_fail(ctx, CV_ERR_INVALID, "%s %s=...: no --data named '%s'", opt,
                           list[i].name, list[i].name);
    return CV_OK;
}

static void shell_quote(FILE *f, const char *s)
{
    fputc('\'', f);
    for (; *s; s++)
        if (*s == '\'')
            fputs("'\\''", f);
        else
            fputc(*s, f);
    fputc('\'', f);
}

/* The rank under mpirun (or srun); -1 outside MPI. */
static int mpi_rank(void)
{
    static const char *vars[] = {"OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++) {
        const char *v = getenv(vars[i]);
        if (v && *v) return atoi(v);
    }
    return -1;
}

static void print_table(const cv_study_row *rows, size_t n)
{
    const char *last = NULL;
    for (size_t i = 0; i < n; i++) {
        const cv_study_row *r = &rows[i];
        if (!last || strcmp(last, r->dataset)) {
            printf("%s%s (%s)\n", last ? "\n" : "", r->dataset, r->metric);
            printf("  %-22s %8s  %-9s %-9s %-13s %-10s %9s %9s\n", "model", "upstream", "lr", "wd",
                   "opt", "sched", "val", "test");
            last = r->dataset;
        }
        char up[32] = "-";
        if (!isnan(r->upstream)) snprintf(up, sizeof up, "%.2f", r->upstream);
        if (!r->run_id) {
            printf("  %-22s %8s  (no successful run: %d failed)\n", r->model, up, r->runs_failed);
            continue;
        }
        printf("  %-22s %8s  %-9g %-9g %-13s %-10.10s %9.4f %9.4f\n", r->model, up, r->lr, r->wd,
               r->opt, r->sched, r->val_score, r->value);
    }
}

/* Table files, printed table (rank 0 only) and the analysis. */
/* Copies DIR/table.json to stdout (--json). */
static cv_status print_table_json(cv_ctx *ctx, const cv_study *s)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/table.json", cv_study_out_dir(s));
    FILE *f = fopen(path, "r");
    if (!f) return cv_fail(ctx, CV_ERR_IO, "%s: cannot read", path);
    char buf[4096];
    size_t k;
    while ((k = fread(buf, 1, sizeof buf, f)) > 0) fwrite(buf, 1, k, stdout);
    fclose(f);
    return CV_OK;
}

static int finish(cv_ctx *ctx, cv_study *s, int rank, int n_boot, int json)
{
    const cv_study_row *rows;
    size_t n;
    if (cv_study_write_table(ctx, s) || cv_study_table(ctx, s, &rows, &n)) return cli_error(ctx);
    cv_study_result *res = calloc(n ? n : 1, sizeof *res);
    if (!res) {
        cv_fail(ctx, CV_ERR_NOMEM, "out of memory");
        return cli_error(ctx);
    }
    for (size_t i = 0; i < n; i++)
        res[i] = (cv_study_result){rows[i].model, rows[i].dataset, rows[i].metric, rows[i].upstream,
                                   rows[i].value};
    int rc = 0;
    if (rank <= 0 && json && print_table_json(ctx, s)) {
        free(res);
        return cli_error(ctx);
    }
    if (rank <= 0 && !json) print_table(rows, n);
    if (cv_study_analyze(ctx, res, n, cv_study_out_dir(s), cv_study_seed(s), n_boot)) {
        if (rank <= 0) fprintf(stderr, "cvision: analysis: %s\n", cv_ctx_error(ctx));
        rc = 1;
    }
    if (rank <= 0 && !json)
        printf("\nwrote %s/{table.csv,table.json%s}\n", cv_study_out_dir(s),
               rc ? "" : ",analysis.json,analysis.csv,report.html");
    free(res);
    return rc;
}

typedef struct {
    const int64_t *ids;
    size_t n;
    const char *exe, *cwd;
    int argc;
    char **argv;
} jobs_arg;

static const char *write_jobs(void *arg, FILE *f)
{
    const jobs_arg *j = arg;
    for (size_t i = 0; i < j->n; i++) {
        fputs("cd ", f);
        shell_quote(f, j->cwd);
        fputs(" && ", f);
        shell_quote(f, j->exe);
        fputs(" study", f);
        for (int a = 1; a < j->argc; a++) {
            if (!strcmp(j->argv[a], "--export-jobs")) {
                a++;
                continue;
            }
            if (!strncmp(j->argv[a], "--export-jobs=", 14)) continue;
            fputc(' ', f);
            shell_quote(f, j->argv[a]);
        }
        fprintf(f, " --only %lld\n", (long long)j->ids[i]);
    }
    return ferror(f) ? cv_write_error() : NULL;
}

/* One command line per unfinished run, reproducing this command with --only ID. */
static int export_jobs(cv_ctx *ctx, cv_study *s, const char *path, int argc, char **argv)
{
    int64_t *ids;
    size_t n;
    if (cv_study_pending(ctx, s, &ids, &n)) return cli_error(ctx);
    char exe[PATH_MAX], cwd[PATH_MAX];
    ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
    snprintf(exe + (k > 0 ? k : 0), sizeof exe - (size_t)(k > 0 ? k : 0), "%s",
             k > 0 ? "" : "cvision");
    if (!getcwd(cwd, sizeof cwd)) snprintf(cwd, sizeof cwd, ".");
    jobs_arg j = {ids, n, exe, cwd, argc, argv};
    cv_status st = cv_write_atomic(ctx, path, 0, write_jobs, &j);
    free(ids);
    if (st) return cli_error(ctx);
    printf("wrote %zu job line(s) to %s; when they are done: cvision study --out %s --report\n", n,
           path, cv_study_out_dir(s));
    return 0;
}

int cmd_study(cv_ctx *ctx, int argc, char **argv)
{
    enum {
        O_MODELS = 256,
        O_DATA,
        O_VAL,
        O_TEST,
        O_METRIC,
        O_GRID,
        O_EPOCHS,
        O_BATCH,
        O_MAXS,
        O_THREADS,
        O_WORKERS,
        O_WEIGHTS,
        O_UP,
        O_SEED,
        O_STALE,
        O_RETRY,
        O_QUIET,
        O_EXPORT,
        O_ONLY,
        O_REPORT,
        O_OUT,
        O_BOOT,
        O_TTF,
        O_ETF,
        O_JSON
    };
    static const struct option opts[] = {{"models", required_argument, 0, O_MODELS},
                                         {"data", required_argument, 0, O_DATA},
                                         {"val", required_argument, 0, O_VAL},
                                         {"test", required_argument, 0, O_TEST},
                                         {"metric", required_argument, 0, O_METRIC},
                                         {"grid", required_argument, 0, O_GRID},
                                         {"epochs", required_argument, 0, O_EPOCHS},
                                         {"batch", required_argument, 0, O_BATCH},
                                         {"max-steps", required_argument, 0, O_MAXS},
                                         {"threads", required_argument, 0, O_THREADS},
                                         {"workers", required_argument, 0, O_WORKERS},
                                         {"weights", required_argument, 0, O_WEIGHTS},
                                         {"upstream", required_argument, 0, O_UP},
                                         {"seed", required_argument, 0, O_SEED},
                                         {"stale", required_argument, 0, O_STALE},
                                         {"retry-failed", no_argument, 0, O_RETRY},
                                         {"quiet", no_argument, 0, O_QUIET},
                                         {"export-jobs", required_argument, 0, O_EXPORT},
                                         {"only", required_argument, 0, O_ONLY},
                                         {"report", no_argument, 0, O_REPORT},
                                         {"out", required_argument, 0, O_OUT},
                                         {"boot", required_argument, 0, O_BOOT},
                                         {"train-transform", required_argument, 0, O_TTF},
                                         {"eval-transform", required_argument, 0, O_ETF},
                                         {"json", no_argument, 0, O_JSON},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    cv_study_config c;
    cv_study_config_default(&c);
    static named data[MAX_ITEMS], val[MAX_ITEMS], test[MAX_ITEMS], metric[MAX_ITEMS],
        ttf[MAX_ITEMS], etf[MAX_ITEMS];
    const char *ttf_all = NULL, *etf_all = NULL;
    int nd = 0, nv = 0, nt = 0, nm = 0, ntt = 0, net = 0, retry = 0, report = 0, n_boot = 1000,
        json = 0;
    const char *models = NULL, *weights = "DEFAULT", *export_path = NULL, *default_metric = NULL;
    long long only = 0;
    cv_status st = CV_OK;
    char *end;
    int ch;
    optind = 1;
    while (!st && (ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (ch) {
        case O_MODELS:
            models = optarg;
            break;
        case O_DATA:
            st = add_named(ctx, "--data", optarg, data, &nd);
            break;
        case O_VAL:
            st = add_named(ctx, "--val", optarg, val, &nv);
            break;
        case O_TEST:
            st = add_named(ctx, "--test", optarg, test, &nt);
            break;
        case O_METRIC:
            if (strchr(optarg, '='))
                st = add_named(ctx, "--metric", optarg, metric, &nm);
            else
                default_metric = optarg;
            break;
        case O_GRID:
            c.grid = optarg;
            break;
        case O_TTF: /* NAME=T when NAME is a plain name; pipelines themselves hold '(' */
            if (named_prefix(optarg))
                st = add_named(ctx, "--train-transform", optarg, ttf, &ntt);
            else
                ttf_all = optarg;
            break;
        case O_ETF:
            if (named_prefix(optarg))
                st = add_named(ctx, "--eval-transform", optarg, etf, &net);
            else
                etf_all = optarg;
            break;
        case O_EPOCHS:
            st = cli_int(ctx, "--epochs", optarg, 1, 1 << 20, &c.epochs);
            break;
        case O_BATCH:
            st = cli_int(ctx, "--batch", optarg, 2, 1 << 20, &c.batch);
            break;
        case O_MAXS:
            st = cli_int(ctx, "--max-steps", optarg, 1, 1 << 30, &c.max_steps);
            break;
        case O_THREADS:
            st = cli_int(ctx, "--threads", optarg, 1, 4096, &c.threads);
            break;
        case O_WORKERS:
            st = cli_int(ctx, "--workers", optarg, 1, 256, &c.workers);
            break;
        case O_WEIGHTS:
            weights = optarg;
            break;
        case O_UP:
            c.upstream = optarg;
            break;
        case O_SEED:
            c.seed = strtoull(optarg, &end, 10);
            if (end == optarg || *end || *optarg == '-')
                st = cv_fail(ctx, CV_ERR_INVALID, "--seed: expected a non-negative integer");
            break;
        case O_STALE:
            st = cli_double(ctx, "--stale", optarg, 1e-3, 1e9, &c.stale_s);
            break;
        case O_RETRY:
            retry = 1;
            break;
        case O_QUIET:
            c.progress = -1;
            break;
        case O_EXPORT:
            export_path = optarg;
            break;
        case O_ONLY:
            only = strtoll(optarg, &end, 10);
            if (end == optarg || *end || only < 1)
                st = cv_fail(ctx, CV_ERR_INVALID, "--only: expected a run id >= 1, got '%s'",
                             optarg);
            break;
        case O_REPORT:
            report = 1;
            break;
        case O_JSON:
            json = 1;
            break;
        case O_OUT:
            c.out_dir = optarg;
            break;
        case O_BOOT:
            st = cli_int(ctx, "--boot", optarg, 0, 1000000, &n_boot);
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (st) return cli_error(ctx);
    if (optind < argc) {
        cv_fail(ctx, CV_ERR_INVALID, "study: unexpected argument '%s' (see --help)", argv[optind]);
        return cli_error(ctx);
    }
    if (!c.out_dir) {
        cv_fail(ctx, CV_ERR_INVALID, "study: --out DIR is required (see --help)");
        return cli_error(ctx);
    }
    int rank = mpi_rank();
    char prefix[32] = "";
    if (rank >= 0) snprintf(prefix, sizeof prefix, "[rank %d] ", rank);
    c.log_prefix = prefix;
    cv_study *s = NULL;
    if (report && !models && !nd) {
        if (cv_study_open_existing(ctx, c.out_dir, &s)) return cli_error(ctx);
        int rc = finish(ctx, s, rank, n_boot, json);
        cv_study_close(s);
        return rc;
    }
    if (!models || !nd) {
        cv_fail(ctx, CV_ERR_INVALID, "study: --models and --data are required (see --help)");
        return cli_error(ctx);
    }
    if ((nv && check_names(ctx, "--val", val, nv, data, nd)) ||
        (nt && check_names(ctx, "--test", test, nt, data, nd)) ||
        (nm && check_names(ctx, "--metric", metric, nm, data, nd)) ||
        (ntt && check_names(ctx, "--train-transform", ttf, ntt, data, nd)) ||
        (net && check_names(ctx, "--eval-transform", etf, net, data, nd)))
        return cli_error(ctx);

    /* models and their weights */
    char mbuf[4096], wbuf[4096];
    const char *mv[MAX_ITEMS], *wv[MAX_ITEMS];
    int n_models = 0;
    if (strlen(models) >= sizeof mbuf || strlen(weights) >= sizeof wbuf) {
        cv_fail(ctx, CV_ERR_INVALID, "--models or --weights: too long");
        return cli_error(ctx);
    }
    snprintf(mbuf, sizeof mbuf, "%s", models);
    snprintf(wbuf, sizeof wbuf, "%s", weights);
    char *save = NULL;
    for (char *p = strtok_r(mbuf, ",", &save); p && n_models < MAX_ITEMS;
         p = strtok_r(NULL, ",", &save))
        mv[n_models++] = p;
    named wmap[MAX_ITEMS];
    int nw = 0;
    if (strchr(wbuf, '=')) {
        save = NULL;
        for (char *p = strtok_r(wbuf, ",", &save); p; p = strtok_r(NULL, ",", &save))
            if (add_named(ctx, "--weights", p, wmap, &nw)) return cli_error(ctx);
        for (int i = 0; i < nw; i++) {
            int found = 0;
            for (int m = 0; m < n_models; m++) found |= !strcmp(mv[m], wmap[i].name);
            if (!found) {
                cv_fail(ctx, CV_ERR_INVALID, "--weights %s=...: '%s' is not in --models",
                        wmap[i].name, wmap[i].name);
                return cli_error(ctx);
            }
        }
    }
    for (int m = 0; m < n_models; m++) {
        wv[m] = nw ? lookup(wmap, nw, mv[m]) : wbuf;
        if (!wv[m]) {
            cv_fail(ctx, CV_ERR_INVALID,
                    "--weights: no entry for %s (give %s=none for a fresh initialisation)", mv[m],
                    mv[m]);
            return cli_error(ctx);
        }
    }
    cv_study_dataset ds[MAX_ITEMS];
    for (int i = 0; i < nd; i++) {
        const char *mt = lookup(metric, nm, data[i].name);
        const char *tt = lookup(ttf, ntt, data[i].name), *et = lookup(etf, net, data[i].name);
        ds[i] = (cv_study_dataset){data[i].name,
                                   data[i].spec,
                                   lookup(val, nv, data[i].name),
                                   lookup(test, nt, data[i].name),
                                   mt               ? mt
                                   : default_metric ? default_metric
                                                    : "accuracy",
                                   tt ? tt : ttf_all,
                                   et ? et : etf_all};
    }
    c.models = mv, c.weights = wv, c.n_models = n_models;
    c.datasets = ds, c.n_datasets = nd;

    if (cv_study_open(ctx, &c, &s)) return cli_error(ctx);
    int rc = 0, n = 0;
    if (retry && !cv_study_retry_failed(ctx, s, &n) && n && c.progress >= 0)
        fprintf(stderr, "%sstudy: %d failed run(s) back to pending\n", prefix, n);
    if (export_path) {
        rc = export_jobs(ctx, s, export_path, argc, argv);
    } else if (only) {
        rc = cv_study_run_one(ctx, s, only) ? cli_error(ctx) : 0;
    } else if (!report && cv_study_work(ctx, s, &n)) {
        rc = cli_error(ctx);
    } else {
        rc = finish(ctx, s, rank, n_boot, json);
    }
    cv_study_close(s);
    return rc;
}
