/* cvision eval: a model over a dataset in eval mode, with the full metrics report. Writes the
 * predictions CSV that `cvision metrics --pred` reads, the metrics JSON and the HTML page. Under
 * mpirun each rank evaluates its shard and rank 0 reports on all of them (cv_eval_gather). */
#include <cjson/cJSON.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "commands.h"
#include "report/json.h"
#include "util.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: cvision eval -m ARCH -w WEIGHTS --data SPEC [options]\n"
               "Runs the model in eval mode over the dataset and reports every metric.\n"
               "Under mpirun, each rank evaluates its shard and rank 0 reports on all of them\n"
               "(docs/distributed.md).\n"
               "  --transform P   preprocessing pipeline (docs/transforms.md); default: the\n"
               "                  checkpoint's JSON sidecar, else the catalog preset of catalog\n"
               "                  weights, else chosen from the images (docs/eval.md)\n"
               "  --task T        multiclass|binary|multilabel|ordinal (default: from the data)\n"
               "  --batch B       images per forward pass (default 32)\n"
               "  --workers W     loader threads (default 2)\n"
               "  --threads T     compute threads (default: all CPUs)\n"
               "  --out DIR       write DIR/predictions.csv, DIR/metrics.json, DIR/report.html\n"
               "  --html FILE     also write the HTML report to FILE\n"
               "  --json          print the JSON report instead of the text summary\n"
               "  --ci N          percentile bootstrap CIs from N resamples (default: none)\n"
               "  --seed S        bootstrap seed (default 0)\n"
               "  --skip-bad      skip unreadable samples (counted) instead of failing\n");
}

typedef struct {
    const char *arch, *weights, *data, *transform, *out, *html, *task;
    int batch, workers, threads, ci, json, skip_bad;
    unsigned long long seed;
} args_t;

/* What a training run's JSON sidecar (X.json beside X.safetensors) says about the model. */
typedef struct {
    cJSON *root;
    int num_classes;      /* 0: not recorded */
    const char *eval_tf;  /* or NULL */
    const char *task;     /* or NULL */
    const cJSON *classes; /* array of strings, or NULL */
    char path[4096];
} sidecar_t;

static int parse_args(cv_ctx *ctx, int argc, char **argv, args_t *a)
{
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},   {"weights", required_argument, 0, 'w'},
        {"data", required_argument, 0, 'd'},    {"transform", required_argument, 0, 'T'},
        {"task", required_argument, 0, 'k'},    {"batch", required_argument, 0, 'b'},
        {"workers", required_argument, 0, 'W'}, {"threads", required_argument, 0, 't'},
        {"out", required_argument, 0, 'o'},     {"html", required_argument, 0, 'H'},
        {"json", no_argument, 0, 'j'},          {"ci", required_argument, 0, 'c'},
        {"seed", required_argument, 0, 's'},    {"skip-bad", no_argument, 0, 'S'},
        {"help", no_argument, 0, 'h'},          {0, 0, 0, 0}};
    memset(a, 0, sizeof *a);
    a->batch = 32;
    a->workers = 2;
    cv_status s = CV_OK;
    int c;
    char *end;
    optind = 1;
    while (!s && (c = getopt_long(argc, argv, "m:w:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm':
            a->arch = optarg;
            break;
        case 'w':
            a->weights = optarg;
            break;
        case 'd':
            a->data = optarg;
            break;
        case 'T':
            a->transform = optarg;
            break;
        case 'k':
            a->task = optarg;
            break;
        case 'b':
            s = cli_int(ctx, "--batch", optarg, 1, 1 << 16, &a->batch);
            break;
        case 'W':
            s = cli_int(ctx, "--workers", optarg, 1, 256, &a->workers);
            break;
        case 't':
            s = cli_int(ctx, "--threads", optarg, 1, 4096, &a->threads);
            break;
        case 'o':
            a->out = optarg;
            break;
        case 'H':
            a->html = optarg;
            break;
        case 'j':
            a->json = 1;
            break;
        case 'c':
            s = cli_int(ctx, "--ci", optarg, 0, 1000000, &a->ci);
            break;
        case 's':
            errno = 0;
            a->seed = strtoull(optarg, &end, 10);
            if (errno || end == optarg || *end)
                s = cv_fail(ctx, CV_ERR_INVALID, "--seed: expected an integer, got '%s'", optarg);
            break;
        case 'S':
            a->skip_bad = 1;
            break;
        case 'h':
            usage(stdout);
            return 1;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (s) return -1;
    if (optind < argc) {
        cv_fail(ctx, CV_ERR_INVALID, "eval: unexpected argument '%s' (see --help)", argv[optind]);
        return -1;
    }
    if (!a->arch || !a->weights || !a->data) {
        cv_fail(ctx, CV_ERR_INVALID, "eval: -m ARCH, -w WEIGHTS and --data SPEC are required");
        return -1;
    }
    return 0;
}

static char *read_text(cv_ctx *ctx, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        cv_fail(ctx, CV_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = NULL;
    long n = -1;
    if (!fseek(f, 0, SEEK_END) && (n = ftell(f)) >= 0 && n < (1L << 26) && !fseek(f, 0, SEEK_SET) &&
        (buf = malloc((size_t)n + 1)) && fread(buf, 1, (size_t)n, f) == (size_t)n) {
        buf[n] = 0;
    } else {
        free(buf);
        buf = NULL;
        cv_fail(ctx, CV_ERR_IO, "%s: cannot read (or larger than 64 MiB)", path);
    }
    fclose(f);
    return buf;
}

/* Reads the sidecar of a weights file, if there is one: X.json for X.safetensors or X.pth,
 * written by the checkpoint module ("format": "cvision-checkpoint"). Keys used: num_classes,
 * classes, eval_transform, task. A JSON file of another format is ignored. */
static cv_status sidecar_read(cv_ctx *ctx, const char *weights, sidecar_t *sc)
{
    memset(sc, 0, sizeof *sc);
    const char *dot = strrchr(weights, '.'), *slash = strrchr(weights, '/');
    if (!dot || (slash && dot < slash)) return CV_OK;
    snprintf(sc->path, sizeof sc->path, "%.*s.json", (int)(dot - weights), weights);
    struct stat sb;
    if (stat(sc->path, &sb) || !S_ISREG(sb.st_mode)) return CV_OK;
    char *txt = read_text(ctx, sc->path);
    if (!txt) return CV_ERR_IO;
    sc->root = cJSON_Parse(txt);
    free(txt);
    if (!sc->root)
        return cv_fail(ctx, CV_ERR_FORMAT, "%s: not valid JSON (the sidecar of %s)", sc->path,
                       weights);
    if (!cJSON_IsObject(sc->root))
        return cv_fail(ctx, CV_ERR_FORMAT, "%s: not a JSON object (the sidecar of %s)", sc->path,
                       weights);
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(sc->root, "format");
    if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, "cvision-checkpoint")) {
        cJSON_Delete(sc->root);
        sc->root = NULL;
        return CV_OK;
    }
    const cJSON *k = cJSON_GetObjectItemCaseSensitive(sc->root, "num_classes");
    const cJSON *cl = cJSON_GetObjectItemCaseSensitive(sc->root, "classes");
    const cJSON *tf = cJSON_GetObjectItemCaseSensitive(sc->root, "eval_transform");
    const cJSON *task = cJSON_GetObjectItemCaseSensitive(sc->root, "task");
    if (k) {
        if (!cJSON_IsNumber(k) || k->valuedouble < 1 || k->valuedouble > (1 << 24) ||
            k->valuedouble != (int)k->valuedouble)
            return cv_fail(ctx, CV_ERR_FORMAT, "%s: \"num_classes\" must be a positive integer",
                           sc->path);
        sc->num_classes = k->valueint;
    }
    if (cl) {
        const cJSON *it;
        int n = 0;
        if (!cJSON_IsArray(cl))
            return cv_fail(ctx, CV_ERR_FORMAT, "%s: \"classes\" must be an array of strings",
                           sc->path);
        cJSON_ArrayForEach(it, cl)
        {
            if (!cJSON_IsString(it))
                return cv_fail(ctx, CV_ERR_FORMAT, "%s: \"classes\"[%d] is not a string", sc->path,
                               n);
            n++;
        }
        if (sc->num_classes && n != sc->num_classes)
            return cv_fail(ctx, CV_ERR_FORMAT, "%s: %d \"classes\" but \"num_classes\" is %d",
                           sc->path, n, sc->num_classes);
        sc->classes = cl;
    }
    if (tf) {
        if (!cJSON_IsString(tf))
            return cv_fail(ctx, CV_ERR_FORMAT, "%s: \"eval_transform\" must be a string", sc->path);
        sc->eval_tf = tf->valuestring;
    }
    if (task) {
        if (!cJSON_IsString(task))
            return cv_fail(ctx, CV_ERR_FORMAT, "%s: \"task\" must be a string", sc->path);
        sc->task = task->valuestring;
    }
    return CV_OK;
}

/* Whether the dataset's classes are only numbered ("0", "1", ...: npy arrays), not named. */
static int numbered_classes(const cv_dataset *ds)
{
    for (int c = 0; c < cv_dataset_num_classes(ds); c++) {
        char want[24];
        snprintf(want, sizeof want, "%d", c);
        if (strcmp(cv_dataset_class_name(ds, c), want)) return 0;
    }
    return 1;
}

/* The first sample that loads (all of them failing is reported with sample 0's error). */
static cv_status first_image(cv_ctx *ctx, const cv_dataset *ds, int skip_bad, cv_image **img)
{
    int64_t n = cv_dataset_len(ds);
    if (n == 0)
        return cv_fail(ctx, CV_ERR_INVALID, "%s: the dataset is empty", cv_dataset_spec(ds));
    char first_err[1024] = "";
    for (int64_t i = 0; i < n; i++) {
        cv_status s = cv_dataset_get(ctx, ds, i, img, NULL);
        if (!s) return CV_OK;
        if (i == 0) {
            char name[512];
            cv_dataset_sample_name(ds, 0, name, sizeof name);
            const char *e = cv_ctx_error(ctx);
            if (strstr(e, name))
                snprintf(first_err, sizeof first_err, "%s", e);
            else
                snprintf(first_err, sizeof first_err, "%s: %s", name, e);
        }
        if (!skip_bad || s == CV_ERR_NOMEM) return cv_fail(ctx, s, "%s", first_err);
    }
    return cv_fail(ctx, CV_ERR_FORMAT, "no sample of the dataset could be read (%s)", first_err);
}

/* The eval transform when none is given: the catalog preset for catalog weights; else images no
 * larger than 96x96 (MNIST, CIFAR, SVHN, STL10) at their own size, gray ones replicated to RGB,
 * and larger ones with ImageNet's resize(256), center_crop(224); ImageNet normalisation. */
static void default_transform(const cv_weights_info *info, const cv_image *img, char *buf, size_t n)
{
    if (info) {
        snprintf(buf, n,
                 "resize(%d,%s),center_crop(%d),to_tensor,normalize(%.9g,%.9g,%.9g,%.9g,%.9g,%.9g)",
                 info->resize, info->interpolation, info->crop, info->mean[0], info->mean[1],
                 info->mean[2], info->std[0], info->std[1], info->std[2]);
        return;
    }
    int small = img->w <= 96 && img->h <= 96;
    snprintf(buf, n, "%s%sto_tensor,normalize(imagenet)", img->c == 1 ? "grayscale(3)," : "",
             small ? "" : "resize(256),center_crop(224),");
}

/* One CSV field per score: %.9g reads back as the same float32, so `cvision metrics` on the file
 * sees exactly the values the report was computed from. */
static void write_row(FILE *f, int64_t index, const int *label, int multilabel, const float *p,
                      int K)
{
    fprintf(f, "%lld,", (long long)index);
    if (multilabel) {
        int first = 1;
        for (int c = 0; c < K; c++)
            if (label[c]) fprintf(f, first ? "%d" : " %d", c), first = 0;
    } else {
        fprintf(f, "%d", label[0]);
    }
    for (int c = 0; c < K; c++) fprintf(f, ",%.9g", p[c]);
    fputc('\n', f);
}

/* Where the evaluated rows go (in one process batch by batch, under mpirun all of them at once
 * on rank 0, in dataset order): the predictions CSV and the metrics accumulator. */
typedef struct {
    FILE *csv; /* or NULL */
    cv_metrics *mt;
    int multilabel, k;
} sink_t;

static cv_status sink_rows(cv_ctx *ctx, void *user, const int64_t *index, const int *labels,
                           const float *scores, size_t n)
{
    const sink_t *o = user;
    for (size_t i = 0; o->csv && i < n; i++)
        write_row(o->csv, index[i], labels + i * (o->multilabel ? o->k : 1), o->multilabel,
                  scores + i * o->k, o->k);
    return cv_metrics_add(ctx, o->mt, labels, scores, NULL, n);
}

static cv_status mkdir_p(cv_ctx *ctx, const char *dir)
{
    char p[4096];
    if (snprintf(p, sizeof p, "%s", dir) >= (int)sizeof p)
        return cv_fail(ctx, CV_ERR_INVALID, "%s: path too long", dir);
    for (char *q = p + 1; *q; q++) {
        if (*q != '/') continue;
        *q = 0;
        if (mkdir(p, 0777) && errno != EEXIST)
            return cv_fail(ctx, CV_ERR_IO, "%s: cannot create: %s", p, strerror(errno));
        *q = '/';
    }
    if (mkdir(p, 0777) && errno != EEXIST)
        return cv_fail(ctx, CV_ERR_IO, "%s: cannot create: %s", p, strerror(errno));
    return CV_OK;
}

static cv_status write_file(cv_ctx *ctx, const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f) return cv_fail(ctx, CV_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
    fputs(text, f);
    fputc('\n', f);
    if (fclose(f)) return cv_fail(ctx, CV_ERR_IO, "%s: write error: %s", path, strerror(errno));
    return CV_OK;
}

int cmd_eval(cv_ctx *ctx, int argc, char **argv)
{
    args_t a;
    int rc = parse_args(ctx, argc, argv, &a);
    if (rc) return rc == 1 ? 0 : rc == 2 ? 2 : cli_error(ctx);
    if (a.threads) cv_ctx_set_threads(ctx, a.threads);
    cv_comm *comm = NULL;
    if (cv_comm_init(ctx, &comm)) return cli_error(ctx);
    int rank = cv_comm_rank(comm), world = cv_comm_size(comm);

    sidecar_t sc;
    cv_model *m = NULL;
    const cv_weights_info *info = NULL;
    cv_dataset *ds = NULL;
    cv_image *img0 = NULL;
    cv_transform_pipeline *pipe = NULL;
    cv_tensor *t0 = NULL, *logits = NULL;
    cv_loader *L = NULL;
    cv_metrics *mt = NULL;
    cv_metrics_result *r = NULL;
    cv_eval_gather *g = NULL;
    sink_t sink = {0};
    FILE *csv = NULL;
    float *prob = NULL;
    int *lab = NULL;
    char *json = NULL;
    const char **names = NULL;
    char csv_path[4200] = "", csv_tmp[4300] = "", path[4200], tfbuf[512];
    int ok = 0;

    if (sidecar_read(ctx, a.weights, &sc) ||
        cli_load_model(ctx, a.arch, a.weights, sc.num_classes, 0, &m, &info) ||
        cv_dataset_open(ctx, a.data, &ds))
        goto out;
    int K = cv_model_num_classes(m), dk = cv_dataset_num_classes(ds);
    int multilabel = cv_dataset_is_multilabel(ds);

    /* Labels index the model's outputs: the class lists must agree, except that numbered
     * classes (npy labels 0..max) may be fewer than the model's. */
    if (dk != K && !(dk < K && !multilabel && numbered_classes(ds))) {
        cv_fail(ctx, CV_ERR_SHAPE, "%s has %d classes but the model (%s) has %d outputs", a.data,
                dk, a.weights, K);
        goto out;
    }
    names = calloc((size_t)K, sizeof *names);
    if (!names) {
        cv_fail(ctx, CV_ERR_NOMEM, "out of memory");
        goto out;
    }
    int named = 0;
    if (dk == K && !numbered_classes(ds)) {
        for (int c = 0; c < K; c++) names[c] = cv_dataset_class_name(ds, c);
        named = 1;
    }
    if (sc.classes) {
        int c = 0, differ = 0;
        const cJSON *it;
        cJSON_ArrayForEach(it, sc.classes)
        {
            if (c < K && named && strcmp(names[c], it->valuestring)) differ = 1;
            if (c < K && !named) names[c] = it->valuestring;
            c++;
        }
        if (c != K) {
            cv_fail(ctx, CV_ERR_FORMAT, "%s: %d \"classes\" but the model has %d outputs", sc.path,
                    c, K);
            goto out;
        }
        if (differ && rank == 0)
            fprintf(stderr, "cvision: warning: the class names of %s differ from those in %s\n",
                    a.data, sc.path);
        named = 1;
    } else if (!named && info && K == 1000) {
        for (int c = 0; c < K; c++) names[c] = cv_imagenet_categories()[c];
        named = 1;
    }

    cv_task task = multilabel                  ? CV_TASK_MULTILABEL
                   : cv_dataset_is_ordinal(ds) ? CV_TASK_ORDINAL
                   : K == 2                    ? CV_TASK_BINARY
                                               : CV_TASK_MULTICLASS;
    const char *task_name = a.task ? a.task : sc.task;
    if (task_name && cv_task_parse(ctx, task_name, &task)) goto out;
    if ((task == CV_TASK_MULTILABEL) != multilabel) {
        cv_fail(ctx, CV_ERR_INVALID, "--task %s does not fit %s, whose labels are %s",
                cv_task_name(task), a.data, multilabel ? "multi-label" : "single class indices");
        goto out;
    }

    if (first_image(ctx, ds, a.skip_bad, &img0)) goto out;
    const char *tf = a.transform ? a.transform : sc.eval_tf;
    if (!tf) {
        default_transform(info, img0, tfbuf, sizeof tfbuf);
        tf = tfbuf;
    }
    /* The output shape comes from the first readable sample; random ops draw from a fixed seed so
     * that a rerun gives the same numbers. */
    if (cv_transform_pipeline_parse(ctx, tf, &pipe) || cv_transform_apply(ctx, pipe, img0, 0, &t0))
        goto out;
    if (t0->ndim != 3 || t0->shape[0] != 3) {
        cv_fail(ctx, CV_ERR_SHAPE,
                "the transform '%s' gives %lld channels; models take 3 (add grayscale(3) for "
                "gray images)",
                tf, (long long)t0->shape[0]);
        goto out;
    }
    if (cv_transform_pipeline_is_random(pipe) && rank == 0)
        fprintf(stderr, "cvision: warning: the transform '%s' is random\n", tf);

    cv_loader_pipeline lp = {pipe, 3, (int)t0->shape[1], (int)t0->shape[2]};
    cv_loader_opts lo = {0};
    lo.batch_size = a.batch;
    lo.workers = a.workers;
    lo.skip_bad = a.skip_bad;
    /* an unpadded shard per rank: every sample is evaluated once */
    lo.world = world, lo.rank = rank, lo.shard = CV_SHARD_EXACT;
    lo.out_c = lp.c;
    lo.out_h = lp.h;
    lo.out_w = lp.w;
    lo.transform = cv_loader_pipeline_fn;
    lo.user = &lp;
    cv_metrics_opts mo;
    cv_metrics_opts_default(&mo);
    mo.bootstrap = a.ci;
    mo.seed = a.seed;
    /* rank 0 alone computes the metrics and writes the outputs */
    if (cv_loader_new(ctx, ds, &lo, &L) || cv_loader_start_epoch(ctx, L, 0) ||
        (rank == 0 && cv_metrics_new(ctx, task, K, &mo, &mt)))
        goto out;
    prob = malloc((size_t)a.batch * (size_t)K * sizeof *prob);
    lab = malloc((size_t)a.batch * (size_t)(multilabel ? K : 1) * sizeof *lab);
    if (!prob || !lab) {
        cv_fail(ctx, CV_ERR_NOMEM, "out of memory");
        goto out;
    }
    if (a.out && rank == 0) {
        if (mkdir_p(ctx, a.out)) goto out;
        snprintf(csv_path, sizeof csv_path, "%s/predictions.csv", a.out);
        snprintf(csv_tmp, sizeof csv_tmp, "%s.partial", csv_path);
        if (!(csv = fopen(csv_tmp, "w"))) {
            cv_fail(ctx, CV_ERR_IO, "%s: cannot write: %s", csv_tmp, strerror(errno));
            goto out;
        }
        fprintf(csv, "index,label");
        for (int c = 0; c < K; c++) fprintf(csv, ",score_%d", c);
        fputc('\n', csv);
    }
    sink = (sink_t){csv, mt, multilabel, K};
    if (cv_eval_gather_new(ctx, comm, multilabel ? K : 1, K, sink_rows, &sink, &g)) goto out;

    int tty = isatty(2) && rank == 0;
    /* the progress line counts rank 0's shard */
    int64_t total = cv_dataset_len(ds), done = 0,
            mine = world > 1 ? cv_shard_indices(NULL, total, world, rank, CV_SHARD_EXACT, NULL)
                             : total;
    double t_start = cli_now(), t_fwd = 0;
    const cv_batch *b;
    for (;;) {
        if (cv_loader_next(ctx, L, &b)) goto out;
        if (!b) break;
        if (b->n == 0) continue;
        for (int64_t i = 0; i < b->n; i++) {
            if (multilabel) {
                for (int c = 0; c < K; c++) lab[i * K + c] = b->targets[i * K + c] > 0.5f;
            } else if (b->labels[i] < 0) {
                char nm[512];
                cv_dataset_sample_name(ds, b->indices[i], nm, sizeof nm);
                cv_fail(ctx, CV_ERR_INVALID, "%s: the sample has no label", nm);
                goto out;
            } else {
                lab[i] = b->labels[i];
            }
        }
        double t = cli_now();
        cv_tensor_free(logits);
        logits = NULL;
        if (cv_model_forward(ctx, m, b->x, &logits)) goto out;
        t_fwd += cli_now() - t;
        cv_logits_to_scores(logits->data, prob, b->n, K, multilabel);
        if (cv_eval_gather_add(ctx, g, b->indices, lab, prob, (size_t)b->n)) goto out;
        done += b->n + b->skipped;
        if (tty)
            fprintf(stderr, "\reval: %lld/%lld images, %.1f images/s%s ", (long long)done,
                    (long long)mine, done / (cli_now() - t_start), world > 1 ? " (rank 0)" : "");
    }
    if (tty) fputc('\n', stderr);
    /* skipped samples and forward time summed over the ranks */
    double sums[2] = {(double)cv_loader_skipped(L), t_fwd};
    if (cv_eval_gather_finish(ctx, g) || cv_comm_allreduce_sum(ctx, comm, sums, 2, CV_F64))
        goto out;
    double seconds = cli_now() - t_start;
    int64_t skipped = (int64_t)sums[0];
    t_fwd = sums[1];
    if (rank != 0) { /* rank 0 alone reports */
        ok = 1;
        goto out;
    }
    if (skipped)
        fprintf(stderr, "cvision: skipped %lld unreadable sample%s of %lld\n", (long long)skipped,
                skipped == 1 ? "" : "s", (long long)total);
    if (csv) {
        FILE *f = csv;
        csv = NULL;
        int bad = ferror(f);
        if (fclose(f) || bad) {
            cv_fail(ctx, CV_ERR_IO, "%s: write error", csv_tmp);
            goto out;
        }
        if (rename(csv_tmp, csv_path)) {
            cv_fail(ctx, CV_ERR_IO, "%s: cannot rename to %s: %s", csv_tmp, csv_path,
                    strerror(errno));
            goto out;
        }
        csv_tmp[0] = 0;
    }
    if (cv_metrics_finalize(ctx, mt, &r) ||
        (named && cv_metrics_result_set_class_names(ctx, r, names, K)))
        goto out;

    cJSON *extra = cJSON_CreateObject(), *ev = cJSON_AddObjectToObject(extra, "eval");
    cJSON_AddStringToObject(ev, "arch", a.arch);
    cJSON_AddStringToObject(ev, "weights", a.weights);
    cJSON_AddStringToObject(ev, "data", a.data);
    cJSON_AddStringToObject(ev, "transform", tf);
    cJSON_AddNumberToObject(ev, "samples", (double)(total - skipped));
    cJSON_AddNumberToObject(ev, "skipped", (double)skipped);
    cJSON_AddNumberToObject(ev, "seconds", seconds);
    cJSON_AddNumberToObject(ev, "forward_seconds", t_fwd);
    cJSON_AddNumberToObject(ev, "images_per_s", seconds > 0 ? (total - skipped) / seconds : 0);
    cJSON_AddNumberToObject(ev, "ranks", world);
    json = cv_metrics_report_json_extra(r, extra);
    if (!json) {
        cv_fail(ctx, CV_ERR_NOMEM, "out of memory writing JSON");
        goto out;
    }
    if (a.out) {
        snprintf(path, sizeof path, "%s/metrics.json", a.out);
        if (write_file(ctx, path, json)) goto out;
        snprintf(path, sizeof path, "%s/report.html", a.out);
        if (cv_metrics_report_html(ctx, r, path)) goto out;
    }
    if (a.html && cv_metrics_report_html(ctx, r, a.html)) goto out;
    if (a.json) {
        puts(json);
    } else {
        printf("%s on %s (%s): ", a.weights, a.data, tf);
        cv_metrics_report_text(stdout, r);
        if (a.out) printf("\nwrote %s/{predictions.csv,metrics.json,report.html}\n", a.out);
    }
    ok = 1;
out:
    if (csv) fclose(csv);
    if (csv_tmp[0]) unlink(csv_tmp);
    free(json);
    free(prob);
    free(lab);
    free(names);
    cv_metrics_result_free(r);
    cv_eval_gather_free(g);
    cv_metrics_free(mt);
    cv_loader_free(L);
    cv_tensor_free(logits);
    cv_tensor_free(t0);
    cv_transform_pipeline_free(pipe);
    cv_image_free(img0);
    cv_dataset_free(ds);
    cv_model_free(m);
    cJSON_Delete(sc.root);
    return cli_comm_end(ctx, comm, ok ? CV_OK : CV_ERR_INVALID) ? cli_error(ctx) : 0;
}
