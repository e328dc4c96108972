/* cvision data info|check|show|export: look into a dataset spec. */
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "cvision/transforms.h"
#include "util.h"
#include "data/dedup.h"
#include "data/scan.h"

static void data_usage(FILE *f)
{
    fprintf(
        f,
        "usage: cvision data info SPEC [--json] [--skip-bad] [--threads N]\n"
        "       cvision data check SPEC [--against SPEC2] [--threshold D] [--json]\n"
        "                              [--threads N]\n"
        "       cvision data show SPEC INDEX [--out IMG.npy] [--json]\n"
        "       cvision data export SPEC --out X.npy [--labels Y.npy]\n"
        "       cvision data bench SPEC [--transform T] [--workers W] [--batch B]\n"
        "                              [--batches N] [--epochs E] [--seed S] [--json]\n"
        "\n"
        "info    samples, classes, per-class counts, imbalance ratio, image sizes and\n"
        "        channel mean/std over pixels scaled to [0,1] (population std).\n"
        "check   unreadable files; exact duplicates (same pixels) and near duplicates\n"
        "        (64-bit DCT perceptual hash within Hamming distance D, default 4) inside\n"
        "        SPEC, duplicates whose labels differ, and with --against the samples of\n"
        "        SPEC2 that duplicate a sample of SPEC (train/test leakage).\n"
        "show    one sample: label, class, size, source; --out writes its pixels as a\n"
        "        uint8 [H, W, C] .npy.\n"
        "export  every sample as one uint8 [N, H, W, C] .npy (all images must share a\n"
        "        size) and the labels as int64 [N] (or uint8 [N, K] for multi-label).\n"
        "bench   the loader's throughput: W worker threads read, decode and transform the\n"
        "        samples (default transform rrc(224),hflip,normalize(imagenet)) into\n"
        "        float32 NCHW batches of B (default 32), shuffled, for one pass over the\n"
        "        dataset (or N batches); prints images/s (best of E passes with --epochs).\n"
        "\n"
        "SPEC: fashionmnist:train, mnist:DIR:test, cifar10:DIR:train, folder:DIR,\n"
        "      csv:FILE,images=DIR,id=COL,label=COL,ext=.png, npy:X.npy,Y.npy, ...,\n"
        "      optionally @first=N, @range=A:B, @split=FILE:train|val, @fold=FILE:K:I:train|val\n"
        "      (docs/datasets.md).\n");
}

/* ---- info ---- */

typedef struct {
    uint64_t sum[4], sq[4], px[4]; /* per channel: sum, sum of squares, pixel count */
    int64_t count, min_w, max_w, min_h, max_h, sum_w, sum_h, by_c[5];
} info_acc;

typedef struct {
    info_acc acc[64];
} info_state;

static cv_status info_visit(void *user, cv_ctx *ctx, int worker, int64_t i, const cv_image *img)
{
    info_acc *a = &((info_state *)user)->acc[worker];
    if (a->count == 0 || img->w < a->min_w) a->min_w = img->w;
    if (a->count == 0 || img->h < a->min_h) a->min_h = img->h;
    if (img->w > a->max_w) a->max_w = img->w;
    if (img->h > a->max_h) a->max_h = img->h;
    a->count++;
    a->sum_w += img->w;
    a->sum_h += img->h;
    int c = img->c < 4 ? img->c : 4;
    a->by_c[c]++;
    size_t npx = (size_t)img->w * (size_t)img->h;
    /* Exact integer sums: mean/std do not depend on thread count or order. */
    for (int k = 0; k < c; k++) {
        uint64_t s = 0, q = 0;
        const uint8_t *p = img->data + k;
        for (size_t j = 0; j < npx; j++, p += img->c) s += *p, q += (uint64_t)*p * *p;
        a->sum[k] += s;
        a->sq[k] += q;
        a->px[k] += npx;
    }
    return CV_OK;
}

static cJSON *count_array(const int64_t *v, int n)
{
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber((double)v[i]));
    return a;
}

static int opt_int(const char *s, int *v)
{
    char *end;
    long x = strtol(s, &end, 10);
    if (*end || x < 0 || x > 1 << 20) return 0;
    *v = (int)x;
    return 1;
}

static int cmd_info(cv_ctx *ctx, int argc, char **argv)
{
    const char *spec = NULL;
    int json = 0, skip_bad = 0, threads = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            json = 1;
        else if (!strcmp(argv[i], "--skip-bad"))
            skip_bad = 1;
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc && opt_int(argv[i + 1], &threads))
            i++;
        else if (argv[i][0] != '-' && !spec)
            spec = argv[i];
        else {
            cv_fail(ctx, CV_ERR_INVALID, "data info: unexpected argument '%s'", argv[i]);
            return cli_error(ctx);
        }
    }
    if (!spec) {
        data_usage(stderr);
        return 2;
    }
    cv_dataset *ds;
    if (cv_dataset_open(ctx, spec, &ds)) return cli_error(ctx);
    int k = cv_dataset_num_classes(ds);
    int64_t n = cv_dataset_len(ds);
    int64_t *counts = calloc((size_t)k + 1, sizeof *counts);
    info_state *is = calloc(1, sizeof *is);
    ds_bad *bad = NULL;
    int64_t nbad = 0, unlabeled = 0;
    int rc = 0;
    if (!counts || !is) {
        cv_fail(ctx, CV_ERR_NOMEM, "out of memory");
        rc = cli_error(ctx);
        goto out;
    }
    for (int64_t i = 0; i < n; i++) {
        const uint8_t *ml = cv_dataset_multilabel(ds, i);
        if (ml) {
            for (int c = 0; c < k; c++) counts[c] += ml[c];
        } else {
            int l = cv_dataset_label(ds, i);
            if (l >= 0)
                counts[l]++;
            else
                unlabeled++;
        }
    }
    if (ds_scan(ctx, ds, threads, info_visit, is, skip_bad ? &bad : NULL, &nbad)) {
        rc = cli_error(ctx);
        goto out;
    }
    info_acc t = {0};
    int first = 1;
    for (int w = 0; w < 64; w++) {
        info_acc *a = &is->acc[w];
        if (!a->count) continue;
        for (int c = 0; c < 4; c++) t.sum[c] += a->sum[c], t.sq[c] += a->sq[c], t.px[c] += a->px[c];
        for (int c = 0; c < 5; c++) t.by_c[c] += a->by_c[c];
        if (first || a->min_w < t.min_w) t.min_w = a->min_w;
        if (first || a->min_h < t.min_h) t.min_h = a->min_h;
        if (a->max_w > t.max_w) t.max_w = a->max_w;
        if (a->max_h > t.max_h) t.max_h = a->max_h;
        t.count += a->count, t.sum_w += a->sum_w, t.sum_h += a->sum_h;
        first = 0;
    }
    int64_t cmin = -1, cmax = 0;
    for (int c = 0; c < k; c++) {
        if (cmin < 0 || counts[c] < cmin) cmin = counts[c];
        if (counts[c] > cmax) cmax = counts[c];
    }
    int nch = 0;
    double mean[4], sd[4];
    for (int c = 0; c < 4; c++) {
        if (!t.px[c]) continue;
        nch = c + 1;
        double m = (double)t.sum[c] / (double)t.px[c];
        double v = (double)t.sq[c] / (double)t.px[c] - m * m;
        mean[c] = m / 255.0;
        sd[c] = sqrt(v > 0 ? v : 0) / 255.0;
    }
    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "spec", spec);
        cJSON_AddNumberToObject(o, "samples", (double)n);
        cJSON_AddNumberToObject(o, "classes", k);
        cJSON *names = cJSON_AddArrayToObject(o, "class_names");
        for (int c = 0; c < k; c++)
            cJSON_AddItemToArray(names, cJSON_CreateString(cv_dataset_class_name(ds, c)));
        cJSON_AddItemToObject(o, "per_class_counts", count_array(counts, k));
        cJSON_AddBoolToObject(o, "multilabel", cv_dataset_is_multilabel(ds));
        cJSON_AddBoolToObject(o, "ordinal", cv_dataset_is_ordinal(ds));
        if (!cv_dataset_is_multilabel(ds))
            cJSON_AddNumberToObject(o, "unlabeled", (double)unlabeled);
        if (cmin > 0)
            cJSON_AddNumberToObject(o, "imbalance_ratio", (double)cmax / (double)cmin);
        else
            cJSON_AddNullToObject(o, "imbalance_ratio");
        cJSON_AddNumberToObject(o, "images_read", (double)t.count);
        cJSON *sz = cJSON_AddObjectToObject(o, "image_size");
        cJSON_AddNumberToObject(sz, "min_width", (double)t.min_w);
        cJSON_AddNumberToObject(sz, "max_width", (double)t.max_w);
        cJSON_AddNumberToObject(sz, "mean_width", t.count ? (double)t.sum_w / t.count : 0);
        cJSON_AddNumberToObject(sz, "min_height", (double)t.min_h);
        cJSON_AddNumberToObject(sz, "max_height", (double)t.max_h);
        cJSON_AddNumberToObject(sz, "mean_height", t.count ? (double)t.sum_h / t.count : 0);
        cJSON *ch = cJSON_AddObjectToObject(o, "images_by_channels");
        for (int c = 1; c <= 4; c++)
            if (t.by_c[c]) {
                char key[8];
                snprintf(key, sizeof key, "%d", c);
                cJSON_AddNumberToObject(ch, key, (double)t.by_c[c]);
            }
        cJSON_AddItemToObject(o, "channel_mean", cJSON_CreateDoubleArray(mean, nch));
        cJSON_AddItemToObject(o, "channel_std", cJSON_CreateDoubleArray(sd, nch));
        cJSON_AddNumberToObject(o, "skipped", (double)nbad);
        cJSON *sk = cJSON_AddArrayToObject(o, "skipped_samples");
        for (int64_t b = 0; b < nbad; b++)
            cJSON_AddItemToArray(sk, cJSON_CreateString(bad[b].message));
        char *text = cJSON_Print(o);
        if (text) puts(text);
        free(text);
        cJSON_Delete(o);
    } else {
        printf("dataset     %s\n", spec);
        printf("samples     %" PRId64 "\n", n);
        printf("classes     %d%s%s\n", k, cv_dataset_is_multilabel(ds) ? " (multi-label)" : "",
               cv_dataset_is_ordinal(ds) ? " (ordinal)" : "");
        for (int c = 0; c < k; c++)
            printf("  %4d  %-24s %8" PRId64 "  %5.1f%%\n", c, cv_dataset_class_name(ds, c),
                   counts[c], n ? 100.0 * (double)counts[c] / (double)n : 0.0);
        if (unlabeled && !cv_dataset_is_multilabel(ds))
            printf("  unlabeled                      %8" PRId64 "\n", unlabeled);
        if (cmin > 0)
            printf("imbalance   %.3f (largest / smallest class)\n", (double)cmax / cmin);
        else
            printf("imbalance   undefined (a class has no samples)\n");
        if (t.count) {
            if (t.min_w == t.max_w && t.min_h == t.max_h)
                printf("image size  %" PRId64 "x%" PRId64 "\n", t.min_w, t.min_h);
            else
                printf("image size  width %" PRId64 "..%" PRId64 " (mean %.1f), height %" PRId64
                       "..%" PRId64 " (mean %.1f)\n",
                       t.min_w, t.max_w, (double)t.sum_w / t.count, t.min_h, t.max_h,
                       (double)t.sum_h / t.count);
        }
        printf("mean        ");
        for (int c = 0; c < nch; c++) printf("%s%.4f", c ? ", " : "", mean[c]);
        printf("\nstd         ");
        for (int c = 0; c < nch; c++) printf("%s%.4f", c ? ", " : "", sd[c]);
        printf("\n");
        if (nbad) {
            printf("skipped     %" PRId64 " unreadable samples\n", nbad);
            for (int64_t b = 0; b < nbad; b++) printf("  %s\n", bad[b].message);
        }
    }
out:
    ds_bad_free(bad, nbad);
    free(counts);
    free(is);
    cv_dataset_free(ds);
    return rc;
}

/* ---- check ---- */

static cJSON *pair_json(const cv_dataset *a, const cv_dataset *b, const dd_pair *p)
{
    char na[4096], nb[4096];
    cv_dataset_sample_name(a, p->a, na, sizeof na);
    cv_dataset_sample_name(b, p->b, nb, sizeof nb);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "a", na);
    cJSON_AddStringToObject(o, "b", nb);
    cJSON_AddNumberToObject(o, "distance", p->dist);
    cJSON_AddBoolToObject(o, "labels_differ",
                          cv_dataset_label(a, p->a) != cv_dataset_label(b, p->b) &&
                              strcmp(cv_dataset_class_name(a, cv_dataset_label(a, p->a)),
                                     cv_dataset_class_name(b, cv_dataset_label(b, p->b))));
    return o;
}

static void print_pairs(const char *title, const cv_dataset *a, const cv_dataset *b,
                        const dd_pair *p, int n)
{
    if (!n) return;
    printf("  %s (first %d):\n", title, n);
    for (int i = 0; i < n; i++) {
        char na[4096], nb[4096];
        cv_dataset_sample_name(a, p[i].a, na, sizeof na);
        cv_dataset_sample_name(b, p[i].b, nb, sizeof nb);
        printf("    %s  %s  (distance %d)\n", na, nb, p[i].dist);
    }
}

static void add_bad(cJSON *o, const dd_set *s)
{
    cJSON_AddNumberToObject(o, "unreadable", (double)s->nbad);
    cJSON *a = cJSON_AddArrayToObject(o, "unreadable_samples");
    for (int64_t i = 0; i < s->nbad; i++)
        cJSON_AddItemToArray(a, cJSON_CreateString(s->bad[i].message));
}

static int cmd_check(cv_ctx *ctx, int argc, char **argv)
{
    const char *spec = NULL, *against = NULL;
    int json = 0, threads = 0, threshold = 4;
    double max_diff = 4;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            json = 1;
        else if (!strcmp(argv[i], "--against") && i + 1 < argc)
            against = argv[++i];
        else if (!strcmp(argv[i], "--threshold") && i + 1 < argc &&
                 opt_int(argv[i + 1], &threshold) && threshold <= 15)
            i++;
        else if (!strcmp(argv[i], "--max-diff") && i + 1 < argc) {
            char *end;
            max_diff = strtod(argv[++i], &end);
            if (*end || !(max_diff >= 0 && max_diff <= 255)) {
                cv_fail(ctx, CV_ERR_INVALID, "data check: --max-diff must be 0..255");
                return cli_error(ctx);
            }
        } else if (!strcmp(argv[i], "--threads") && i + 1 < argc && opt_int(argv[i + 1], &threads))
            i++;
        else if (argv[i][0] != '-' && !spec)
            spec = argv[i];
        else {
            cv_fail(ctx, CV_ERR_INVALID, "data check: unexpected argument '%s'%s", argv[i],
                    !strcmp(argv[i], "--threshold") ? " (the threshold is 0..15)" : "");
            return cli_error(ctx);
        }
    }
    if (!spec) {
        data_usage(stderr);
        return 2;
    }
    cv_dataset *da = NULL, *db = NULL;
    dd_set sa = {0}, sb = {0};
    dd_report r;
    int rc = 0;
    if (cv_dataset_open(ctx, spec, &da) || (against && cv_dataset_open(ctx, against, &db)) ||
        dd_hash(ctx, da, threads, &sa) || (db && dd_hash(ctx, db, threads, &sb)) ||
        dd_compare(ctx, &sa, db ? &sb : NULL, threshold, max_diff, &r)) {
        rc = cli_error(ctx);
        goto out;
    }
    if (json) {
        cJSON *o = cJSON_CreateObject(), *a;
        cJSON_AddStringToObject(o, "spec", spec);
        cJSON_AddNumberToObject(o, "samples", (double)sa.n);
        add_bad(o, &sa);
        cJSON_AddNumberToObject(o, "threshold", threshold);
        cJSON_AddNumberToObject(o, "max_diff", max_diff);
        cJSON_AddNumberToObject(o, "exact_duplicate_groups", (double)r.exact_groups);
        cJSON_AddNumberToObject(o, "exact_duplicate_images", (double)r.exact_extra);
        cJSON_AddNumberToObject(o, "exact_groups_with_different_labels", (double)r.exact_conflicts);
        cJSON_AddNumberToObject(o, "near_duplicate_pairs", (double)r.near_pairs);
        cJSON_AddNumberToObject(o, "near_pairs_with_different_labels", (double)r.near_conflicts);
        a = cJSON_AddArrayToObject(o, "exact_examples");
        for (int i = 0; i < r.n_exact_ex; i++)
            cJSON_AddItemToArray(a, pair_json(da, da, &r.exact_ex[i]));
        a = cJSON_AddArrayToObject(o, "near_examples");
        for (int i = 0; i < r.n_near_ex; i++)
            cJSON_AddItemToArray(a, pair_json(da, da, &r.near_ex[i]));
        if (db) {
            cJSON *l = cJSON_AddObjectToObject(o, "against");
            cJSON_AddStringToObject(l, "spec", against);
            cJSON_AddNumberToObject(l, "samples", (double)sb.n);
            add_bad(l, &sb);
            cJSON_AddNumberToObject(l, "leaked_exact", (double)r.leak_exact);
            cJSON_AddNumberToObject(l, "leaked_near", (double)r.leak_near);
            cJSON_AddNumberToObject(l, "leaked", (double)(r.leak_exact + r.leak_near));
            cJSON_AddNumberToObject(l, "leaked_with_different_labels", (double)r.leak_conflicts);
            a = cJSON_AddArrayToObject(l, "examples");
            for (int i = 0; i < r.n_leak_ex; i++)
                cJSON_AddItemToArray(a, pair_json(da, db, &r.leak_ex[i]));
        }
        char *text = cJSON_Print(o);
        if (text) puts(text);
        free(text);
        cJSON_Delete(o);
    } else {
        printf("dataset      %s (%" PRId64 " samples)\n", spec, sa.n);
        printf("unreadable   %" PRId64 "\n", sa.nbad);
        for (int64_t i = 0; i < sa.nbad; i++) printf("  %s\n", sa.bad[i].message);
        printf("exact dups   %" PRId64 " extra copies in %" PRId64 " groups (%" PRId64
               " groups with different labels)\n",
               r.exact_extra, r.exact_groups, r.exact_conflicts);
        print_pairs("exact", da, da, r.exact_ex, r.n_exact_ex);
        printf("near dups    %" PRId64
               " pairs within pHash distance %d and thumbnail difference %g (%" PRId64
               " with different labels)\n",
               r.near_pairs, threshold, max_diff, r.near_conflicts);
        print_pairs("near", da, da, r.near_ex, r.n_near_ex);
        if (db) {
            printf("against      %s (%" PRId64 " samples, %" PRId64 " unreadable)\n", against, sb.n,
                   sb.nbad);
            for (int64_t i = 0; i < sb.nbad; i++) printf("  %s\n", sb.bad[i].message);
            printf("leakage      %" PRId64 " samples duplicate the first set: %" PRId64
                   " exact, %" PRId64 " near (%" PRId64 " with different labels)\n",
                   r.leak_exact + r.leak_near, r.leak_exact, r.leak_near, r.leak_conflicts);
            print_pairs("leaked", da, db, r.leak_ex, r.n_leak_ex);
        }
    }
out:
    dd_set_free(&sa);
    dd_set_free(&sb);
    cv_dataset_free(da);
    cv_dataset_free(db);
    return rc;
}

/* ---- show / export ---- */

static int cmd_show(cv_ctx *ctx, int argc, char **argv)
{
    const char *spec = NULL, *index = NULL, *outp = NULL;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            json = 1;
        else if (!strcmp(argv[i], "--out") && i + 1 < argc)
            outp = argv[++i];
        else if (argv[i][0] != '-' && !spec)
            spec = argv[i];
        else if (argv[i][0] != '-' && !index)
            index = argv[i];
        else {
            cv_fail(ctx, CV_ERR_INVALID, "data show: unexpected argument '%s'", argv[i]);
            return cli_error(ctx);
        }
    }
    if (!spec || !index) {
        data_usage(stderr);
        return 2;
    }
    char *end;
    long long idx = strtoll(index, &end, 10);
    if (*end || end == index) {
        cv_fail(ctx, CV_ERR_INVALID, "data show: INDEX must be an integer, not '%s'", index);
        return cli_error(ctx);
    }
    cv_dataset *ds;
    if (cv_dataset_open(ctx, spec, &ds)) return cli_error(ctx);
    cv_image *img = NULL;
    int label, rc = 0;
    cv_tensor *t = NULL;
    char name[4096];
    if (cv_dataset_get(ctx, ds, idx, &img, &label)) {
        rc = cli_error(ctx);
        goto out;
    }
    cv_dataset_sample_name(ds, idx, name, sizeof name);
    if (outp) {
        int64_t shape[3] = {img->h, img->w, img->c};
        if (cv_tensor_wrap(ctx, CV_U8, 3, shape, img->data, &t) || cv_npy_save(ctx, outp, t)) {
            rc = cli_error(ctx);
            goto out;
        }
    }
    const uint8_t *ml = cv_dataset_multilabel(ds, idx);
    int k = cv_dataset_num_classes(ds);
    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "index", (double)idx);
        cJSON_AddStringToObject(o, "source", name);
        cJSON_AddNumberToObject(o, "width", img->w);
        cJSON_AddNumberToObject(o, "height", img->h);
        cJSON_AddNumberToObject(o, "channels", img->c);
        if (ml) {
            cJSON *a = cJSON_AddArrayToObject(o, "labels");
            for (int c = 0; c < k; c++)
                if (ml[c]) cJSON_AddItemToArray(a, cJSON_CreateNumber(c));
        } else {
            cJSON_AddNumberToObject(o, "label", label);
            cJSON_AddStringToObject(o, "class", cv_dataset_class_name(ds, label));
        }
        char *text = cJSON_Print(o);
        if (text) puts(text);
        free(text);
        cJSON_Delete(o);
    } else {
        printf("sample   %lld of %lld\nsource   %s\nsize     %dx%d, %d channel%s\n", idx,
               (long long)cv_dataset_len(ds), name, img->w, img->h, img->c, img->c > 1 ? "s" : "");
        if (ml) {
            printf("labels  ");
            for (int c = 0; c < k; c++)
                if (ml[c]) printf(" %d (%s)", c, cv_dataset_class_name(ds, c));
            printf("\n");
        } else {
            printf("label    %d (%s)\n", label,
                   label >= 0 ? cv_dataset_class_name(ds, label) : "none");
        }
    }
out:
    cv_tensor_free(t);
    cv_image_free(img);
    cv_dataset_free(ds);
    return rc;
}

typedef struct {
    uint8_t *pix;
    int w, h, c;
    int64_t mismatch; /* first sample of another size + 1, or 0 */
} export_state;

static cv_status export_visit(void *user, cv_ctx *ctx, int worker, int64_t i, const cv_image *img)
{
    export_state *e = user;
    if (img->w != e->w || img->h != e->h || img->c != e->c) {
        /* Several workers may see a mismatch; any one is reported. */
        __atomic_store_n(&e->mismatch, i + 1, __ATOMIC_RELAXED);
        return CV_OK;
    }
    size_t per = (size_t)e->w * (size_t)e->h * (size_t)e->c;
    memcpy(e->pix + (size_t)i * per, img->data, per);
    return CV_OK;
}

static int cmd_export(cv_ctx *ctx, int argc, char **argv)
{
    const char *spec = NULL, *outp = NULL, *labp = NULL;
    int threads = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--out") && i + 1 < argc)
            outp = argv[++i];
        else if (!strcmp(argv[i], "--labels") && i + 1 < argc)
            labp = argv[++i];
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc && opt_int(argv[i + 1], &threads))
            i++;
        else if (argv[i][0] != '-' && !spec)
            spec = argv[i];
        else {
            cv_fail(ctx, CV_ERR_INVALID, "data export: unexpected argument '%s'", argv[i]);
            return cli_error(ctx);
        }
    }
    if (!spec || !outp) {
        data_usage(stderr);
        return 2;
    }
    cv_dataset *ds;
    if (cv_dataset_open(ctx, spec, &ds)) return cli_error(ctx);
    int64_t n = cv_dataset_len(ds);
    int k = cv_dataset_num_classes(ds), rc = 0;
    export_state e = {0};
    cv_tensor *x = NULL, *y = NULL;
    cv_image *first = NULL;
    if (n > 0) {
        if (cv_dataset_get(ctx, ds, 0, &first, NULL)) {
            rc = cli_error(ctx);
            goto out;
        }
        e.w = first->w, e.h = first->h, e.c = first->c;
    }
    int64_t xs[4] = {n, e.h, e.w, e.c};
    if (cv_tensor_new(ctx, CV_U8, 4, xs, &x)) {
        rc = cli_error(ctx);
        goto out;
    }
    e.pix = x->data;
    if (ds_scan(ctx, ds, threads, export_visit, &e, NULL, NULL)) {
        rc = cli_error(ctx);
        goto out;
    }
    if (e.mismatch) {
        char name[4096];
        cv_dataset_sample_name(ds, e.mismatch - 1, name, sizeof name);
        cv_fail(ctx, CV_ERR_SHAPE, "data export: %s is not %dx%dx%d like sample 0", name, e.w, e.h,
                e.c);
        rc = cli_error(ctx);
        goto out;
    }
    if (cv_npy_save(ctx, outp, x)) {
        rc = cli_error(ctx);
        goto out;
    }
    if (labp) {
        int multi = cv_dataset_is_multilabel(ds);
        int64_t ys[2] = {n, k};
        if (cv_tensor_new(ctx, multi ? CV_U8 : CV_I64, multi ? 2 : 1, ys, &y)) {
            rc = cli_error(ctx);
            goto out;
        }
        for (int64_t i = 0; i < n; i++) {
            if (multi)
                memcpy((uint8_t *)y->data + i * k, cv_dataset_multilabel(ds, i), (size_t)k);
            else
                ((int64_t *)y->data)[i] = cv_dataset_label(ds, i);
        }
        if (cv_npy_save(ctx, labp, y)) rc = cli_error(ctx);
    }
out:
    cv_image_free(first);
    cv_tensor_free(x);
    cv_tensor_free(y);
    cv_dataset_free(ds);
    return rc;
}

/* ---- bench ---- */

static int cmd_data_bench(cv_ctx *ctx, int argc, char **argv)
{
    const char *spec = NULL, *tf = "rrc(224),hflip,normalize(imagenet)";
    int json = 0, workers = 1, batch = 32, batches = 0, epochs = 1;
    int seed = 0;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        if (!strcmp(o, "--json")) {
            json = 1;
            continue;
        }
        if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
            data_usage(stdout);
            return 0;
        }
        if (o[0] != '-' && !spec) {
            spec = o;
            continue;
        }
        if (i + 1 >= argc) {
            cv_fail(ctx, CV_ERR_INVALID, "data bench: unknown or incomplete option '%s'", o);
            return cli_error(ctx);
        }
        const char *v = argv[++i];
        cv_status st = !strcmp(o, "--transform") ? (tf = v, CV_OK)
                       : !strcmp(o, "--workers") ? cli_int(ctx, o, v, 1, 256, &workers)
                       : !strcmp(o, "--batch")   ? cli_int(ctx, o, v, 1, 65536, &batch)
                       : !strcmp(o, "--batches") ? cli_int(ctx, o, v, 1, 1 << 30, &batches)
                       : !strcmp(o, "--epochs")  ? cli_int(ctx, o, v, 1, 1000, &epochs)
                       : !strcmp(o, "--seed")
                           ? cli_int(ctx, o, v, 0, 1 << 30, &seed)
                           : cv_fail(ctx, CV_ERR_INVALID, "data bench: unknown option '%s'", o);
        if (st) return cli_error(ctx);
    }
    if (!spec) {
        data_usage(stderr);
        return 2;
    }
    cv_dataset *ds = NULL;
    cv_transform_pipeline *pipe = NULL;
    cv_loader *L = NULL;
    cv_image *img = NULL;
    cv_tensor *x = NULL;
    int rc = 1;
    if (cv_dataset_open(ctx, spec, &ds) || cv_transform_pipeline_parse(ctx, tf, &pipe) ||
        cv_dataset_get(ctx, ds, 0, &img, NULL) || cv_transform_apply(ctx, pipe, img, 0, &x))
        goto out;
    if (x->ndim != 3) {
        cv_fail(ctx, CV_ERR_SHAPE, "data bench: transform '%s' does not give C x H x W", tf);
        goto out;
    }
    cv_loader_pipeline lp = {pipe, (int)x->shape[0], (int)x->shape[1], (int)x->shape[2]};
    cv_loader_opts o = {.batch_size = batch,
                        .workers = workers,
                        .shuffle = 1,
                        .seed = (uint64_t)seed,
                        .out_c = lp.c,
                        .out_h = lp.h,
                        .out_w = lp.w,
                        .transform = cv_loader_pipeline_fn,
                        .user = &lp};
    if (cv_loader_new(ctx, ds, &o, &L)) goto out;
    double best = 0, total_s = 0;
    int64_t images = 0;
    for (int e = 0; e < epochs; e++) {
        double t0 = cli_now();
        int64_t n = 0, nb = 0;
        const cv_batch *b;
        if (cv_loader_start_epoch(ctx, L, e)) goto out;
        while (!batches || nb < batches) {
            if (cv_loader_next(ctx, L, &b)) goto out;
            if (!b) break;
            n += b->n;
            nb++;
        }
        double s = cli_now() - t0;
        if (n == 0) break;
        total_s += s;
        images = n;
        if (n / s > best) best = n / s;
    }
    if (!images) {
        cv_fail(ctx, CV_ERR_INVALID, "data bench: %s gave no samples", spec);
        goto out;
    }
    if (json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "spec", spec);
        cJSON_AddStringToObject(j, "transform", tf);
        cJSON_AddNumberToObject(j, "workers", workers);
        cJSON_AddNumberToObject(j, "batch", batch);
        cJSON_AddNumberToObject(j, "images", (double)images);
        cJSON_AddNumberToObject(j, "epochs", epochs);
        cJSON_AddNumberToObject(j, "seconds", total_s);
        cJSON_AddNumberToObject(j, "images_per_s", best);
        cJSON_AddNumberToObject(j, "images_per_s_per_worker", best / workers);
        cJSON_AddNumberToObject(j, "skipped", (double)cv_loader_skipped(L));
        char *s = cJSON_Print(j);
        puts(s ? s : "{}");
        free(s);
        cJSON_Delete(j);
    } else {
        printf("%s: %lld images of [%d, %d, %d] per pass, %d worker%s, batch %d: %.1f images/s "
               "(%.1f per worker)\n",
               spec, (long long)images, lp.c, lp.h, lp.w, workers, workers > 1 ? "s" : "", batch,
               best, best / workers);
    }
    rc = 0;
out:
    cv_tensor_free(x);
    cv_image_free(img);
    cv_loader_free(L);
    cv_transform_pipeline_free(pipe);
    cv_dataset_free(ds);
    return rc ? cli_error(ctx) : 0;
}

int cmd_data(cv_ctx *ctx, int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        data_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "info")) return cmd_info(ctx, argc - 1, argv + 1);
    if (!strcmp(argv[1], "check")) return cmd_check(ctx, argc - 1, argv + 1);
    if (!strcmp(argv[1], "show")) return cmd_show(ctx, argc - 1, argv + 1);
    if (!strcmp(argv[1], "export")) return cmd_export(ctx, argc - 1, argv + 1);
    if (!strcmp(argv[1], "bench")) return cmd_data_bench(ctx, argc - 1, argv + 1);
    cv_fail(ctx, CV_ERR_INVALID, "data: unknown subcommand '%s' (info, check, show, export, bench)",
            argv[1]);
    return cli_error(ctx);
}
