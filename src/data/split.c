/* Stratified holdout and k-fold splits, iterative stratification for multi-label data, and the
 * split file (JSON) that makes every run see the same split. */
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cvision/transforms.h"
#include "core/atomic.h"
#include "data/dataset_impl.h"

struct cv_split {
    int nparts;
    int folds; /* 0 = holdout */
    double val_fraction;
    uint64_t seed;
    int64_t samples;
    uint64_t fingerprint;
    int64_t **part;
    int64_t *count;
};

void cv_split_free(cv_split *s)
{
    if (!s) return;
    for (int k = 0; k < s->nparts; k++) free(s->part[k]);
    free(s->part);
    free(s->count);
    free(s);
}

int cv_split_num_parts(const cv_split *s)
{
    return s->nparts;
}

const int64_t *cv_split_part(const cv_split *s, int k, int64_t *n)
{
    if (k < 0 || k >= s->nparts) {
        *n = 0;
        return NULL;
    }
    *n = s->count[k];
    return s->part[k];
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

cv_status cv_split_fold_train(cv_ctx *ctx, const cv_split *s, int k, int64_t **idx, int64_t *n)
{
    *idx = NULL;
    *n = 0;
    if (k < 0 || k >= s->nparts)
        return cv_fail(ctx, CV_ERR_INVALID, "split: fold %d out of range (%d parts)", k, s->nparts);
    int64_t total = 0;
    for (int j = 0; j < s->nparts; j++)
        if (j != k) total += s->count[j];
    int64_t *v = malloc((size_t)(total + 1) * sizeof *v);
    if (!v) return cv_fail(ctx, CV_ERR_NOMEM, "out of memory");
    int64_t m = 0;
    for (int j = 0; j < s->nparts; j++)
        if (j != k) memcpy(v + m, s->part[j], (size_t)s->count[j] * sizeof *v), m += s->count[j];
    qsort(v, (size_t)m, sizeof *v, cmp_i64);
    *idx = v;
    *n = m;
    return CV_OK;
}

/* A hash of the labels, so a split file made for other data is not silently reused. */
static uint64_t label_fingerprint(const cv_dataset *ds)
{
    uint64_t h = 1469598103934665603ull;
    int k = cv_dataset_num_classes(ds);
    for (int64_t i = 0; i < cv_dataset_len(ds); i++) {
        const uint8_t *ml = cv_dataset_multilabel(ds, i);
        if (ml)
            for (int c = 0; c < k; c++) h = (h ^ ml[c]) * 1099511628211ull;
        else
            h = (h ^ (uint32_t)cv_dataset_label(ds, i)) * 1099511628211ull;
    }
    return h;
}

static cv_split *split_alloc(int nparts, int64_t n)
{
    cv_split *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->nparts = nparts;
    s->part = calloc((size_t)nparts, sizeof *s->part);
    s->count = calloc((size_t)nparts, sizeof *s->count);
    if (!s->part || !s->count) goto fail;
    for (int k = 0; k < nparts; k++)
        if (!(s->part[k] = malloc((size_t)(n + 1) * sizeof **s->part))) goto fail;
    return s;
fail:
    cv_split_free(s);
    return NULL;
}

/* Single-label: per class, a seeded shuffle of its samples, then
 *  holdout: floor(n_c * f) to val, the remaining round(N * f) - sum given one each to the classes
 *           with the largest fractional parts (ties by a seeded order), so every class is within
 *           1 of its exact share and the total is exact;
 *  k-fold:  the classes' shuffled runs are concatenated and dealt round-robin (sklearn's
 *           StratifiedKFold idea), so each class is within 1 across folds and folds within 1. */
static void split_single(const cv_dataset *ds, const cv_split_params *p, int nparts, cv_split *s,
                         int64_t *order, int64_t *start, int64_t *cnt, int64_t *fill, double *frac,
                         int64_t *nval, int64_t *rank, cv_rng *rng)
{
    int64_t n = cv_dataset_len(ds);
    int k = cv_dataset_num_classes(ds) + 1; /* group k-1 = unlabeled */
    for (int64_t i = 0; i < n; i++) {
        int l = cv_dataset_label(ds, i);
        cnt[l < 0 ? k - 1 : l]++;
    }
    for (int c = 1; c <= k; c++) start[c] = start[c - 1] + cnt[c - 1];
    for (int64_t i = 0; i < n; i++) {
        int l = cv_dataset_label(ds, i);
        int g = l < 0 ? k - 1 : l;
        order[start[g] + fill[g]++] = i;
    }
    for (int c = 0; c < k; c++) ds_shuffle(order + start[c], cnt[c], rng);
    if (nparts > 2 || p->folds) {
        for (int64_t j = 0; j < n; j++) {
            int f = (int)(j % nparts);
            s->part[f][s->count[f]++] = order[j];
        }
        return;
    }
    double f = p->val_fraction;
    int64_t want = (int64_t)llround((double)n * f), have = 0;
    for (int c = 0; c < k; c++) {
        double exact = (double)cnt[c] * f;
        nval[c] = (int64_t)floor(exact);
        frac[c] = exact - (double)nval[c];
        have += nval[c];
        rank[c] = c;
    }
    ds_shuffle(rank, k, rng);
    /* Stable selection of the largest fractional parts over the seeded class order. */
    for (int i = 1; i < k; i++)
        for (int j = i; j > 0 && frac[rank[j]] > frac[rank[j - 1]]; j--) {
            int64_t t = rank[j];
            rank[j] = rank[j - 1];
            rank[j - 1] = t;
        }
    for (int i = 0; i < k && have < want; i++)
        if (nval[rank[i]] < cnt[rank[i]] && frac[rank[i]] > 0) nval[rank[i]]++, have++;
    for (int c = 0; c < k; c++)
        for (int64_t j = 0; j < cnt[c]; j++) {
            int part = j < nval[c] ? 1 : 0;
            s->part[part][s->count[part]++] = order[start[c] + j];
        }
}

/* Multi-label: iterative stratification (Sechidis, Tsoumakas, Vlahavas 2011). Repeatedly take the
 * label with the fewest unassigned samples; give each of its samples to the part that most wants
 * that label (ties: the part wanting most samples overall, then a seeded choice). */
static cv_status split_multi(cv_ctx *ctx, const cv_dataset *ds, int nparts, const double *r,
                             cv_split *s, cv_rng *rng)
{
    int64_t n = cv_dataset_len(ds);
    int k = cv_dataset_num_classes(ds);
    double *want = calloc((size_t)nparts * (size_t)(k + 1), sizeof *want);
    int64_t *order = malloc((size_t)(n + 1) * sizeof *order);
    uint8_t *done = calloc((size_t)n + 1, 1);
    int64_t *remaining = calloc((size_t)k + 1, sizeof *remaining);
    if (!want || !order || !done || !remaining) {
        free(want), free(order), free(done), free(remaining);
        return cv_fail(ctx, CV_ERR_NOMEM, "out of memory");
    }
    /* want[j*(k+1) + l]: samples with label l part j still wants; [.. + k]: samples overall. */
    for (int64_t i = 0; i < n; i++) {
        const uint8_t *ml = cv_dataset_multilabel(ds, i);
        for (int l = 0; l < k; l++) remaining[l] += ml[l];
    }
    for (int j = 0; j < nparts; j++) {
        for (int l = 0; l < k; l++) want[j * (k + 1) + l] = r[j] * (double)remaining[l];
        want[j * (k + 1) + k] = r[j] * (double)n;
    }
    for (int64_t i = 0; i < n; i++) order[i] = i;
    ds_shuffle(order, n, rng);
    int64_t left = n;
    while (left > 0) {
        int lab = -1;
        for (int l = 0; l < k; l++)
            if (remaining[l] > 0 && (lab < 0 || remaining[l] < remaining[lab])) lab = l;
        for (int64_t o = 0; o < n; o++) {
            int64_t i = order[o];
            if (done[i]) continue;
            const uint8_t *ml = cv_dataset_multilabel(ds, i);
            if (lab >= 0 ? !ml[lab] : 0) continue;
            int best = -1, ties = 0;
            int key = lab >= 0 ? lab : k;
            for (int j = 0; j < nparts; j++) {
                double a = want[j * (k + 1) + key], b = want[j * (k + 1) + k];
                if (best >= 0) {
                    double ba = want[best * (k + 1) + key], bb = want[best * (k + 1) + k];
                    if (a < ba || (a == ba && b < bb)) continue;
                    if (a == ba && b == bb) {
                        /* Reservoir choice among equal parts. */
                        if (cv_rng_randint(rng, 0, ++ties + 1) == 0) best = j;
                        continue;
                    }
                }
                best = j;
                ties = 0;
            }
            s->part[best][s->count[best]++] = i;
            done[i] = 1;
            left--;
            for (int l = 0; l < k; l++)
                if (ml[l]) want[best * (k + 1) + l] -= 1, remaining[l]--;
            want[best * (k + 1) + k] -= 1;
        }
    }
    free(want), free(order), free(done), free(remaining);
    return CV_OK;
}

cv_status cv_split_make(cv_ctx *ctx, const cv_dataset *ds, const cv_split_params *p, cv_split **out)
{
    *out = NULL;
    int64_t n = cv_dataset_len(ds);
    if (p->folds == 1 || p->folds < 0 || p->folds > 100)
        return cv_fail(ctx, CV_ERR_INVALID, "split: folds must be 0 (holdout) or 2..100");
    double f = p->val_fraction > 0 ? p->val_fraction : 0.2;
    if (!p->folds && !(f > 0 && f < 1))
        return cv_fail(ctx, CV_ERR_INVALID, "split: validation fraction must be in (0, 1)");
    int nparts = p->folds ? p->folds : 2;
    if (p->folds && n < p->folds)
        return cv_fail(ctx, CV_ERR_INVALID, "split: %d folds of %lld samples", p->folds,
                       (long long)n);
    cv_split *s = split_alloc(nparts, n);
    int k = cv_dataset_num_classes(ds) + 1;
    int64_t *order = malloc((size_t)(n + 1) * sizeof *order);
    int64_t *start = calloc((size_t)k + 1, sizeof *start);
    int64_t *cnt = calloc((size_t)k + 1, sizeof *cnt);
    int64_t *fill = calloc((size_t)k + 1, sizeof *fill);
    int64_t *nval = calloc((size_t)k + 1, sizeof *nval);
    int64_t *rank = calloc((size_t)k + 1, sizeof *rank);
    double *frac = calloc((size_t)k + 1, sizeof *frac);
    double *r = calloc((size_t)nparts, sizeof *r);
    cv_status st = CV_OK;
    if (!s || !order || !start || !cnt || !fill || !nval || !rank || !frac || !r) {
        st = cv_fail(ctx, CV_ERR_NOMEM, "out of memory");
        goto done;
    }
    s->folds = p->folds;
    s->val_fraction = p->folds ? 0 : f;
    s->seed = p->seed;
    s->samples = n;
    s->fingerprint = label_fingerprint(ds);
    cv_rng rng;
    cv_rng_init(&rng, p->seed, 0x5350u); /* a stream of its own: "SP" */
    if (cv_dataset_is_multilabel(ds)) {
        for (int j = 0; j < nparts; j++) r[j] = p->folds ? 1.0 / nparts : (j ? f : 1 - f);
        st = split_multi(ctx, ds, nparts, r, s, &rng);
    } else {
        split_single(ds, p, nparts, s, order, start, cnt, fill, frac, nval, rank, &rng);
    }
    for (int j = 0; j < nparts; j++)
        qsort(s->part[j], (size_t)s->count[j], sizeof(int64_t), cmp_i64);
done:
    free(order), free(start), free(cnt), free(fill), free(nval), free(rank), free(frac), free(r);
    if (st)
        cv_split_free(s);
    else
        *out = s;
    return st;
}

cv_status cv_split_save(cv_ctx *ctx, const cv_split *s, const char *path)
{
    cJSON *o = cJSON_CreateObject();
    char buf[32];
    cJSON_AddStringToObject(o, "format", "cvision-split");
    cJSON_AddNumberToObject(o, "version", 1);
    cJSON_AddStringToObject(o, "kind", s->folds ? "kfold" : "holdout");
    cJSON_AddNumberToObject(o, "folds", s->folds);
    cJSON_AddNumberToObject(o, "val_fraction", s->val_fraction);
    snprintf(buf, sizeof buf, "%" PRIu64, s->seed);
    cJSON_AddStringToObject(o, "seed", buf);
    cJSON_AddNumberToObject(o, "samples", (double)s->samples);
    snprintf(buf, sizeof buf, "%016" PRIx64, s->fingerprint);
    cJSON_AddStringToObject(o, "labels_fingerprint", buf);
    cJSON *parts = cJSON_AddArrayToObject(o, "parts");
    for (int k = 0; k < s->nparts; k++) {
        cJSON *a = cJSON_CreateArray();
        for (int64_t i = 0; i < s->count[k]; i++)
            cJSON_AddItemToArray(a, cJSON_CreateNumber((double)s->part[k][i]));
        cJSON_AddItemToArray(parts, a);
    }
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!text) return cv_fail(ctx, CV_ERR_NOMEM, "out of memory");
    /* Written beside the target and renamed, so a concurrent run never reads half a file. */
    cv_write_part content[2] = {{text, strlen(text)}, {"\n", 1}};
    cv_status st = cv_write_parts_atomic(ctx, path, 0, content, 2);
    free(text);
    return st;
}

cv_status cv_split_load(cv_ctx *ctx, const char *path, cv_split **out)
{
    *out = NULL;
    uint8_t *data;
    size_t n;
    cv_status st = ds_read_file(ctx, path, (size_t)1 << 31, &data, &n);
    if (st) return st;
    cJSON *o = cJSON_ParseWithLength((const char *)data, n);
    free(data);
    if (!o) return cv_fail(ctx, CV_ERR_FORMAT, "%s: not valid JSON", path);
    cv_split *s = NULL;
    const cJSON *fmt = cJSON_GetObjectItem(o, "format"), *folds = cJSON_GetObjectItem(o, "folds"),
                *vf = cJSON_GetObjectItem(o, "val_fraction"),
                *seed = cJSON_GetObjectItem(o, "seed"), *ns = cJSON_GetObjectItem(o, "samples"),
                *fp = cJSON_GetObjectItem(o, "labels_fingerprint"),
                *parts = cJSON_GetObjectItem(o, "parts");
    if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, "cvision-split") ||
        !cJSON_IsNumber(folds) || !cJSON_IsNumber(vf) || !cJSON_IsString(seed) ||
        !cJSON_IsNumber(ns) || !cJSON_IsString(fp) || !cJSON_IsArray(parts)) {
        st = cv_fail(ctx, CV_ERR_FORMAT, "%s: not a cvision split file", path);
        goto done;
    }
    int np = cJSON_GetArraySize(parts);
    double samples = ns->valuedouble;
    int nfolds = folds->valueint;
    if (!(samples >= 0 && samples < 9e15) || np < 2 || (nfolds && nfolds != np) ||
        (!nfolds && np != 2)) {
        st = cv_fail(ctx, CV_ERR_FORMAT, "%s: inconsistent split header", path);
        goto done;
    }
    s = split_alloc(np, (int64_t)samples);
    uint8_t *seen = calloc((size_t)samples + 1, 1);
    if (!s || !seen) {
        free(seen);
        st = cv_fail(ctx, CV_ERR_NOMEM, "out of memory");
        goto done;
    }
    s->folds = nfolds;
    s->val_fraction = vf->valuedouble;
    s->seed = strtoull(seed->valuestring, NULL, 10);
    s->samples = (int64_t)samples;
    s->fingerprint = strtoull(fp->valuestring, NULL, 16);
    int64_t total = 0;
    for (int k = 0; k < np && !st; k++) {
        const cJSON *a = cJSON_GetArrayItem(parts, k), *v;
        if (!cJSON_IsArray(a)) {
            st = cv_fail(ctx, CV_ERR_FORMAT, "%s: part %d is not an array", path, k);
            break;
        }
        cJSON_ArrayForEach(v, a)
        {
            double x = cJSON_IsNumber(v) ? v->valuedouble : -1;
            if (!(x >= 0 && x < samples) || x != floor(x) || seen[(int64_t)x]) {
                st = cv_fail(ctx, CV_ERR_FORMAT,
                             "%s: part %d: index %g is out of range, not an integer or repeated",
                             path, k, x);
                break;
            }
            seen[(int64_t)x] = 1;
            s->part[k][s->count[k]++] = (int64_t)x;
        }
        total += s->count[k];
    }
    free(seen);
    if (!st && total != s->samples)
        st = cv_fail(ctx, CV_ERR_FORMAT, "%s: parts cover %lld of %lld samples", path,
                     (long long)total, (long long)s->samples);
    for (int k = 0; !st && k < np; k++)
        qsort(s->part[k], (size_t)s->count[k], sizeof(int64_t), cmp_i64);
done:
    cJSON_Delete(o);
    if (st)
        cv_split_free(s);
    else
        *out = s;
    return st;
}

cv_status cv_split_load_or_make(cv_ctx *ctx, const cv_dataset *ds, const char *path,
                                const cv_split_params *p, cv_split **out)
{
    *out = NULL;
    if (access(path, F_OK) != 0) {
        cv_split *s;
        cv_status st = cv_split_make(ctx, ds, p, &s);
        if (!st) st = cv_split_save(ctx, s, path);
        if (st)
            cv_split_free(s);
        else
            *out = s;
        return st;
    }
    cv_split *s;
    cv_status st = cv_split_load(ctx, path, &s);
    if (st) return st;
    double f = p->val_fraction > 0 ? p->val_fraction : 0.2;
    if (s->samples != cv_dataset_len(ds) || s->fingerprint != label_fingerprint(ds)) {
        st = cv_fail(ctx, CV_ERR_INVALID,
                     "%s: split made for other data (%lld samples, labels %016" PRIx64
                     "); %s has %lld samples, labels %016" PRIx64 ": delete the file to remake it",
                     path, (long long)s->samples, s->fingerprint, cv_dataset_spec(ds),
                     (long long)cv_dataset_len(ds), label_fingerprint(ds));
    } else if (s->folds != p->folds || s->seed != p->seed ||
               (!p->folds && fabs(s->val_fraction - f) > 1e-12)) {
        st = cv_fail(ctx, CV_ERR_INVALID,
                     "%s: split made with folds=%d val=%g seed=%" PRIu64
                     ", asked for folds=%d val=%g seed=%" PRIu64 ": delete the file to remake it",
                     path, s->folds, s->val_fraction, s->seed, p->folds, p->folds ? 0 : f, p->seed);
    }
    if (st)
        cv_split_free(s);
    else
        *out = s;
    return st;
}
