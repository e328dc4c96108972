/* cvision metrics --task segmentation | detection: label-map IoU and box mAP. */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "commands.h"
#include "report/json.h"
#include "util.h"

static const char *usage_text =
    "usage: cvision metrics --task segmentation --gt DIR|LIST|FILE --pred DIR|LIST|FILE\n"
    "                       [--classes K] [--ignore 255] [--json]\n"
    "       cvision metrics --task detection --gt FILE --pred FILE [--json]\n"
    "  segmentation: label maps as PNG (palette indices or gray values) or .npy integer\n"
    "    arrays; two directories (paired by file name, extension aside), two list files\n"
    "    (one path per line, relative to the list's directory, paired by line) or two maps.\n"
    "  detection: CSV (header image_id,class,x1,y1,x2,y2[,score][,iscrowd]) or COCO JSON\n"
    "    (ground truth with \"annotations\"; predictions as the results list).\n"
    "  docs/metrics-json.md describes the formats and the JSON keys.\n";

typedef struct {
    char **v;
    size_t n, cap;
} strlist;

static void list_free(strlist *l)
{
    for (size_t i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

static int list_push(strlist *l, const char *s, size_t len)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        char **v = realloc(l->v, cap * sizeof *v);
        if (!v) return -1;
        l->v = v;
        l->cap = cap;
    }
    char *c = malloc(len + 1);
    if (!c) return -1;
    memcpy(c, s, len);
    c[len] = 0;
    l->v[l->n++] = c;
    return 0;
}

static int is_map_name(const char *name)
{
    size_t l = strlen(name);
    return (l > 4 && !strcasecmp(name + l - 4, ".png")) ||
           (l > 4 && !strcasecmp(name + l - 4, ".npy"));
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The label maps in a directory (file names, sorted). */
static cv_status dir_maps(cv_ctx *ctx, const char *dir, strlist *out)
{
    DIR *d = opendir(dir);
    if (!d) return cv_fail(ctx, CV_ERR_IO, "%s: cannot open: %s", dir, strerror(errno));
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.' && is_map_name(e->d_name) &&
            list_push(out, e->d_name, strlen(e->d_name))) {
            closedir(d);
            return cv_fail(ctx, CV_ERR_NOMEM, "out of memory");
        }
    closedir(d);
    qsort(out->v, out->n, sizeof *out->v, cmp_str);
    if (!out->n) return cv_fail(ctx, CV_ERR_FORMAT, "%s: no .png or .npy label maps", dir);
    return CV_OK;
}

static int join(char *buf, size_t size, const char *dir, size_t dlen, const char *name)
{
    int n = name[0] == '/' ? snprintf(buf, size, "%s", name)
                           : snprintf(buf, size, "%.*s%s%s", (int)dlen, dir, dlen ? "/" : "", name);
    return n < 0 || (size_t)n >= size ? -1 : 0;
}

/* A list file: one path per line (blank lines skipped), relative to the list's directory. */
static cv_status list_maps(cv_ctx *ctx, const char *path, strlist *out)
{
    void *buf;
    size_t n;
    cv_status st = cv_read_file(ctx, path, &buf, &n);
    if (st) return st;
    const char *slash = strrchr(path, '/');
    size_t dlen = slash ? (size_t)(slash - path) : 0;
    char full[4096];
    const char *p = buf, *end = p + n;
    for (size_t line = 1; p < end; line++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p)), *le = nl ? nl : end;
        while (le > p && (le[-1] == '\r' || le[-1] == ' ' || le[-1] == '\t')) le--;
        while (p < le && (*p == ' ' || *p == '\t')) p++;
        if (le > p) {
            char name[4096];
            size_t l = (size_t)(le - p);
            if (l >= sizeof name || memchr(p, 0, l)) {
                st = cv_fail(ctx, CV_ERR_FORMAT, "%s:%zu: not a usable path", path, line);
                break;
            }
            memcpy(name, p, l);
            name[l] = 0;
            if (join(full, sizeof full, path, dlen, name) || list_push(out, full, strlen(full))) {
                st = cv_fail(ctx, CV_ERR_FORMAT, "%s:%zu: path too long or out of memory", path,
                             line);
                break;
            }
        }
        p = nl ? nl + 1 : end;
    }
    free(buf);
    if (!st && !out->n) st = cv_fail(ctx, CV_ERR_FORMAT, "%s: no paths in the list", path);
    return st;
}

/* Pairs of (ground truth, prediction) paths from two directories, two lists or two files. */
static cv_status pairs(cv_ctx *ctx, const char *gt, const char *pred, strlist *g, strlist *p)
{
    struct stat sg, sp;
    if (stat(gt, &sg)) return cv_fail(ctx, CV_ERR_IO, "%s: cannot open: %s", gt, strerror(errno));
    if (stat(pred, &sp))
        return cv_fail(ctx, CV_ERR_IO, "%s: cannot open: %s", pred, strerror(errno));
    if (S_ISDIR(sg.st_mode) != S_ISDIR(sp.st_mode))
        return cv_fail(ctx, CV_ERR_INVALID,
                       "metrics: --gt and --pred must both be directories or both files");
    cv_status st;
    if (!S_ISDIR(sg.st_mode)) {
        if (is_map_name(gt) && is_map_name(pred))
            return list_push(g, gt, strlen(gt)) || list_push(p, pred, strlen(pred))
                       ? cv_fail(ctx, CV_ERR_NOMEM, "out of memory")
                       : CV_OK;
        if ((st = list_maps(ctx, gt, g)) || (st = list_maps(ctx, pred, p))) return st;
        if (g->n != p->n)
            return cv_fail(ctx, CV_ERR_FORMAT, "%s lists %zu label maps but %s lists %zu", gt, g->n,
                           pred, p->n);
        return CV_OK;
    }
    strlist gn = {0}, pn = {0};
    char a[4096], b[4096];
    if ((st = dir_maps(ctx, gt, &gn)) || (st = dir_maps(ctx, pred, &pn))) goto done;
    /* pair by stem: the extensions may differ (a PNG ground truth, a .npy prediction) */
    size_t used = 0;
    for (size_t i = 0; i < gn.n; i++) {
        size_t stem = strlen(gn.v[i]) - 4;
        const char *match = NULL;
        for (size_t j = 0; j < pn.n; j++)
            if (strlen(pn.v[j]) == stem + 4 && !strncmp(pn.v[j], gn.v[i], stem)) {
                if (match) {
                    st = cv_fail(ctx, CV_ERR_FORMAT, "%s: both %s and %s predict %s", pred, match,
                                 pn.v[j], gn.v[i]);
                    goto done;
                }
                match = pn.v[j];
            }
        if (!match) {
            st = cv_fail(ctx, CV_ERR_FORMAT,
                         "%s: no prediction for %s/%s (expected %.*s.png or .npy)", pred, gt,
                         gn.v[i], (int)stem, gn.v[i]);
            goto done;
        }
        used++;
        if (join(a, sizeof a, gt, strlen(gt), gn.v[i]) ||
            join(b, sizeof b, pred, strlen(pred), match) || list_push(g, a, strlen(a)) ||
            list_push(p, b, strlen(b))) {
            st = cv_fail(ctx, CV_ERR_NOMEM, "out of memory or path too long");
            goto done;
        }
    }
    if (used < pn.n)
        for (size_t j = 0; j < pn.n; j++) {
            int found = 0;
            for (size_t i = 0; i < gn.n && !found; i++)
                found = strlen(pn.v[j]) == strlen(gn.v[i]) &&
                        !strncmp(pn.v[j], gn.v[i], strlen(gn.v[i]) - 4);
            if (!found) {
                st = cv_fail(ctx, CV_ERR_FORMAT, "%s/%s: no ground truth for this prediction in %s",
                             pred, pn.v[j], gt);
                goto done;
            }
        }
done:
    list_free(&gn);
    list_free(&pn);
    return st;
}

static int segmentation(cv_ctx *ctx, const char *gt, const char *pred, int classes, int ignore,
                        int json, cv_metrics_result **r, cJSON *inputs)
{
    strlist g = {0}, p = {0};
    cv_seg *s = NULL;
    int32_t *a = NULL, *b = NULL;
    int ok = 0;
    if (pairs(ctx, gt, pred, &g, &p) || cv_seg_new(ctx, classes, ignore, &s)) goto out;
    for (size_t i = 0; i < g.n; i++) {
        int w1, h1, w2, h2;
        if (cv_label_map_read(ctx, g.v[i], &a, &w1, &h1) ||
            cv_label_map_read(ctx, p.v[i], &b, &w2, &h2))
            goto out;
        if (w1 != w2 || h1 != h2) {
            cv_fail(ctx, CV_ERR_FORMAT,
                    "%s: %dx%d (width x height), but the prediction %s is %dx%d", g.v[i], w1, h1,
                    p.v[i], w2, h2);
            goto out;
        }
        if (cv_seg_add(ctx, s, a, b, (size_t)w1 * h1, g.v[i])) goto out;
        free(a);
        free(b);
        a = b = NULL;
    }
    if (cv_seg_finalize(ctx, s, r)) goto out;
    uint64_t maps, pixels, ignored;
    cv_seg_counts(s, &maps, &pixels, &ignored);
    cJSON_AddNumberToObject(inputs, "label_maps", (double)maps);
    cJSON_AddNumberToObject(inputs, "pixels", (double)pixels);
    cJSON_AddNumberToObject(inputs, "ignored_pixels", (double)ignored);
    cJSON_AddNumberToObject(inputs, "ignore_index", ignore);
    if (!json)
        printf("%llu label maps, %llu pixels counted, %llu with the ignore index %d\n",
               (unsigned long long)maps, (unsigned long long)pixels, (unsigned long long)ignored,
               ignore);
    ok = 1;
out:
    free(a);
    free(b);
    cv_seg_free(s);
    list_free(&g);
    list_free(&p);
    return ok ? 0 : -1;
}

static int detection(cv_ctx *ctx, const char *gt, const char *pred, int json, cv_metrics_result **r,
                     cJSON *inputs)
{
    cv_det_set *g = NULL, *p = NULL;
    int ok = 0;
    if (cv_det_read(ctx, gt, 0, &g) || cv_det_read(ctx, pred, 1, &p) ||
        cv_det_evaluate(ctx, g, p, r))
        goto out;
    cJSON_AddNumberToObject(inputs, "ground_truth_boxes", (double)cv_det_count(g));
    cJSON_AddNumberToObject(inputs, "predictions", (double)cv_det_count(p));
    if (!json)
        printf("%zu images, %zu ground-truth boxes, %zu predictions\n",
               cv_metrics_result_samples(*r), cv_det_count(g), cv_det_count(p));
    ok = 1;
out:
    cv_det_free(g);
    cv_det_free(p);
    return ok ? 0 : -1;
}

int cmd_metrics_detseg(cv_ctx *ctx, int argc, char **argv)
{
    const char *task = NULL, *gt = NULL, *pred = NULL;
    int json = 0, classes = 0, ignore = 255;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        if (!strcmp(o, "--json")) {
            json = 1;
            continue;
        }
        if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
            fputs(usage_text, stdout);
            return 0;
        }
        if (i + 1 >= argc) {
            cv_fail(ctx, CV_ERR_INVALID, "metrics: %s needs a value (see --help)", o);
            return cli_error(ctx);
        }
        const char *v = argv[++i];
        if (!strcmp(o, "--task"))
            task = v;
        else if (!strcmp(o, "--gt"))
            gt = v;
        else if (!strcmp(o, "--pred"))
            pred = v;
        else if (!strcmp(o, "--classes")) {
            if (cli_int(ctx, o, v, 1, 4096, &classes)) return cli_error(ctx);
        } else if (!strcmp(o, "--ignore")) {
            if (cli_int(ctx, o, v, -1000000000, 1000000000, &ignore)) return cli_error(ctx);
        } else {
            cv_fail(ctx, CV_ERR_INVALID, "metrics: unknown option %s for --task %s (see --help)", o,
                    task ? task : "?");
            return cli_error(ctx);
        }
    }
    int seg = task && !strcmp(task, "segmentation");
    if (!gt || !pred) {
        cv_fail(ctx, CV_ERR_INVALID, "metrics: --task %s needs --gt and --pred (see --help)",
                seg ? "segmentation" : "detection");
        return cli_error(ctx);
    }
    cv_metrics_result *r = NULL;
    cJSON *extra = cJSON_CreateObject(), *inputs = cJSON_AddObjectToObject(extra, "inputs");
    cJSON_AddStringToObject(inputs, "gt", gt);
    cJSON_AddStringToObject(inputs, "pred", pred);
    int rc = seg ? segmentation(ctx, gt, pred, classes, ignore, json, &r, inputs)
                 : detection(ctx, gt, pred, json, &r, inputs);
    if (rc) {
        cJSON_Delete(extra);
        return cli_error(ctx);
    }
    if (json) {
        char *s = cv_metrics_report_json_extra(r, extra);
        if (!s) {
            cv_metrics_result_free(r);
            cv_fail(ctx, CV_ERR_NOMEM, "metrics: out of memory writing JSON");
            return cli_error(ctx);
        }
        puts(s);
        free(s);
    } else {
        cJSON_Delete(extra);
        cv_metrics_report_text(stdout, r);
    }
    cv_metrics_result_free(r);
    return 0;
}
