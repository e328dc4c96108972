/* Exact and near-duplicate images, within a set and across two (train/test leakage).
 *
 * Exact: a 128-bit hash of (width, height, channels, pixels); equal hashes are taken as equal
 * images. Near: the 64-bit DCT perceptual hash (cv_image_phash) within Hamming distance t, and
 * confirmed by 16x16 gray thumbnails differing by at most max_diff gray levels on average (pHash
 * alone is too coarse on small images: on FashionMNIST most distance-4 pairs are different items).
 * Candidates come from a multi-index: the 64 bits are cut into t+1 bands, and two hashes within
 * distance t agree exactly on at least one band (pigeonhole), so only samples sharing a band value
 * are compared — not all N^2 pairs. Exact copies are collapsed to one representative first. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cvision/transforms.h"
#include "data/dedup.h"

/* The hash, and (thumb != NULL) a 16x16 gray thumbnail: 2x2 means of the 32x32 image. */
static cv_status phash_thumb(cv_ctx *ctx, const cv_image *img, uint64_t *hash, uint8_t *thumb)
{
    cv_image *gray = NULL, *small = NULL;
    cv_status st = CV_OK;
    if (img->c != 1 && (st = cv_image_convert(ctx, img, 1, &gray))) return st;
    st = cv_image_resize(ctx, gray ? gray : img, 32, 32, CV_INTERP_LANCZOS, &small);
    cv_image_free(gray);
    if (st) return st;
    /* The 8 lowest DCT-II frequencies along each axis (scale is irrelevant to the median test). */
    double cosv[8][32], rows[8][32], low[64], sorted[64];
    for (int k = 0; k < 8; k++)
        for (int n = 0; n < 32; n++) cosv[k][n] = cos(M_PI * k * (2 * n + 1) / 64.0);
    for (int k = 0; k < 8; k++)
        for (int x = 0; x < 32; x++) {
            double s = 0;
            for (int y = 0; y < 32; y++) s += cosv[k][y] * small->data[y * 32 + x];
            rows[k][x] = s;
        }
    for (int k = 0; k < 8; k++)
        for (int j = 0; j < 8; j++) {
            double s = 0;
            for (int x = 0; x < 32; x++) s += cosv[j][x] * rows[k][x];
            low[k * 8 + j] = sorted[k * 8 + j] = s;
        }
    for (int y = 0; thumb && y < 16; y++)
        for (int x = 0; x < 16; x++) {
            const uint8_t *p = small->data + 64 * y + 2 * x;
            thumb[16 * y + x] = (uint8_t)((p[0] + p[1] + p[32] + p[33] + 2) / 4);
        }
    cv_image_free(small);
    /* Median of the 64 values (mean of the middle two), as numpy.median. */
    for (int i = 1; i < 64; i++)
        for (int j = i; j > 0 && sorted[j] < sorted[j - 1]; j--) {
            double t = sorted[j];
            sorted[j] = sorted[j - 1];
            sorted[j - 1] = t;
        }
    double med = (sorted[31] + sorted[32]) / 2;
    uint64_t h = 0;
    for (int i = 0; i < 64; i++)
        if (low[i] > med) h |= (uint64_t)1 << i;
    *hash = h;
    return CV_OK;
}

cv_status cv_image_phash(cv_ctx *ctx, const cv_image *img, uint64_t *hash)
{
    return phash_thumb(ctx, img, hash, NULL);
}

static uint64_t rotl(uint64_t x, int r)
{
    return x << r | x >> (64 - r);
}

static void pixel_hash(const cv_image *img, uint64_t *o1, uint64_t *o2)
{
    uint64_t h1 = 0x243F6A8885A308D3ull ^ (uint64_t)img->w << 32 ^ (uint64_t)img->h << 8 ^
                  (uint64_t)img->c,
             h2 = 0x13198A2E03707344ull + (uint64_t)img->w * 31 + (uint64_t)img->h * 131 +
                  (uint64_t)img->c;
    size_t n = (size_t)img->w * (size_t)img->h * (size_t)img->c, i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, img->data + i, 8);
        h1 = rotl((h1 ^ w) * 0x9E3779B97F4A7C15ull, 29);
        h2 = rotl(h2 + w * 0xC2B2AE3D27D4EB4Full, 31) * 0x165667B19E3779F9ull;
    }
    uint64_t w = 0;
    memcpy(&w, img->data + i, n - i);
    h1 = rotl((h1 ^ w ^ n) * 0x9E3779B97F4A7C15ull, 29);
    h2 = rotl(h2 + (w ^ n) * 0xC2B2AE3D27D4EB4Full, 31) * 0x165667B19E3779F9ull;
    /* Final avalanche so that nearby inputs spread over the whole range. */
    h1 ^= h1 >> 33, h1 *= 0xFF51AFD7ED558CCDull, h1 ^= h1 >> 33;
    h2 ^= h2 >> 29, h2 *= 0xC4CEB9FE1A85EC53ull, h2 ^= h2 >> 32;
    *o1 = h1;
    *o2 = h2;
}

static cv_status hash_visit(void *user, cv_ctx *ctx, int worker, int64_t i, const cv_image *img)
{
    dd_set *s = user;
    cv_status st = phash_thumb(ctx, img, &s->ph[i], s->thumb + (size_t)i * 256);
    if (st) return st;
    pixel_hash(img, &s->h1[i], &s->h2[i]);
    s->ok[i] = 1;
    return CV_OK;
}

cv_status dd_hash(cv_ctx *ctx, const cv_dataset *ds, int threads, dd_set *s)
{
    memset(s, 0, sizeof *s);
    s->ds = ds;
    s->n = cv_dataset_len(ds);
    size_t n = (size_t)s->n + 1;
    s->h1 = calloc(n, 8), s->h2 = calloc(n, 8), s->ph = calloc(n, 8), s->ok = calloc(n, 1);
    s->thumb = malloc(n * 256);
    if (!s->h1 || !s->h2 || !s->ph || !s->ok || !s->thumb) {
        dd_set_free(s);
        return cv_fail(ctx, CV_ERR_NOMEM, "out of memory");
    }
    cv_status st = ds_scan(ctx, ds, threads, hash_visit, s, &s->bad, &s->nbad);
    if (st) dd_set_free(s);
    return st;
}

void dd_set_free(dd_set *s)
{
    free(s->h1), free(s->h2), free(s->ph), free(s->ok), free(s->thumb);
    ds_bad_free(s->bad, s->nbad);
    memset(s, 0, sizeof *s);
}

/* ---- comparisons ---- */

typedef struct {
    uint64_t k1, k2;
    int64_t i;
} key;

static int cmp_key(const void *a, const void *b)
{
    const key *x = a, *y = b;
    if (x->k1 != y->k1) return x->k1 < y->k1 ? -1 : 1;
    if (x->k2 != y->k2) return x->k2 < y->k2 ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);
}

/* Whether two samples carry different labels (by class name, so two sets may order classes
 * differently). Unlabeled samples conflict with nothing. */
static int labels_differ(const cv_dataset *a, int64_t i, const cv_dataset *b, int64_t j)
{
    const uint8_t *ma = cv_dataset_multilabel(a, i), *mb = cv_dataset_multilabel(b, j);
    if (ma || mb) {
        if (!ma || !mb) return 0;
        int ka = cv_dataset_num_classes(a), kb = cv_dataset_num_classes(b);
        for (int x = 0; x < ka; x++) {
            int found = 0;
            for (int y = 0; y < kb && !found; y++)
                if (!strcmp(cv_dataset_class_name(a, x), cv_dataset_class_name(b, y)))
                    found = mb[y] + 1;
            if ((found ? found - 1 : 0) != ma[x]) return 1;
        }
        for (int y = 0; y < kb; y++) {
            int found = 0;
            for (int x = 0; x < ka && !found; x++)
                found = !strcmp(cv_dataset_class_name(a, x), cv_dataset_class_name(b, y));
            if (!found && mb[y]) return 1;
        }
        return 0;
    }
    int la = cv_dataset_label(a, i), lb = cv_dataset_label(b, j);
    if (la < 0 || lb < 0) return 0;
    return strcmp(cv_dataset_class_name(a, la), cv_dataset_class_name(b, lb)) != 0;
}

static uint64_t band(uint64_t h, int b, int nb)
{
    int lo = 64 * b / nb, hi = 64 * (b + 1) / nb;
    return (h >> lo) & (hi - lo == 64 ? ~0ull : (((uint64_t)1 << (hi - lo)) - 1));
}

/* Mean absolute difference of two thumbnails, in gray levels. */
static double thumb_diff(const dd_set *a, int64_t i, const dd_set *b, int64_t j)
{
    const uint8_t *p = a->thumb + (size_t)i * 256, *q = b->thumb + (size_t)j * 256;
    int s = 0;
    for (int k = 0; k < 256; k++) s += abs(p[k] - q[k]);
    return s / 256.0;
}

static void add_example(dd_pair *ex, int *n, int64_t a, int64_t b, int dist)
{
    if (*n < DEDUP_EXAMPLES) ex[(*n)++] = (dd_pair){a, b, dist};
}

/* Binary search for the first entry with k1 == v (k2 ignored) in a sorted key array. */
static int64_t lower(const key *v, int64_t n, uint64_t k1, uint64_t k2, int use_k2)
{
    int64_t lo = 0, hi = n;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        int less = v[mid].k1 < k1 || (use_k2 && v[mid].k1 == k1 && v[mid].k2 < k2);
        if (less)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

cv_status dd_compare(cv_ctx *ctx, const dd_set *a, const dd_set *b, int t, double max_diff,
                     dd_report *r)
{
    memset(r, 0, sizeof *r);
    if (t < 0 || t > 15)
        return cv_fail(ctx, CV_ERR_INVALID, "near-duplicate threshold must be 0..15");
    r->threshold = t;
    r->max_diff = max_diff;
    int nb = t + 1;
    int64_t n = a->n, nok = 0, nrep = 0;
    key *ex = malloc((size_t)(n + 1) * sizeof *ex);
    int64_t *rep = malloc((size_t)(n + 1) * sizeof *rep);
    key *bands = malloc((size_t)(n + 1) * (size_t)nb * sizeof *bands);
    if (!ex || !rep || !bands) {
        free(ex), free(rep), free(bands);
        return cv_fail(ctx, CV_ERR_NOMEM, "out of memory");
    }
    /* Exact groups. */
    for (int64_t i = 0; i < n; i++)
        if (a->ok[i]) ex[nok++] = (key){a->h1[i], a->h2[i], i};
    qsort(ex, (size_t)nok, sizeof *ex, cmp_key);
    for (int64_t s = 0, e; s < nok; s = e) {
        e = s + 1;
        int conflict = 0;
        while (e < nok && ex[e].k1 == ex[s].k1 && ex[e].k2 == ex[s].k2) {
            conflict |= labels_differ(a->ds, ex[s].i, a->ds, ex[e].i);
            if (e == s + 1) add_example(r->exact_ex, &r->n_exact_ex, ex[s].i, ex[e].i, 0);
            e++;
        }
        rep[nrep++] = ex[s].i;
        if (e - s > 1)
            r->exact_groups++, r->exact_extra += e - s - 1, r->exact_conflicts += conflict;
    }
    /* Near pairs among representatives, one sorted band index per band. */
    for (int bi = 0; bi < nb; bi++) {
        key *bk = bands + (size_t)bi * (size_t)nrep;
        for (int64_t j = 0; j < nrep; j++) bk[j] = (key){band(a->ph[rep[j]], bi, nb), 0, rep[j]};
        qsort(bk, (size_t)nrep, sizeof *bk, cmp_key);
        for (int64_t s = 0, e; s < nrep; s = e) {
            for (e = s + 1; e < nrep && bk[e].k1 == bk[s].k1; e++) {
            }
            for (int64_t x = s; x < e; x++)
                for (int64_t y = x + 1; y < e; y++) {
                    uint64_t p = a->ph[bk[x].i], q = a->ph[bk[y].i];
                    int d = __builtin_popcountll(p ^ q), earlier = 0;
                    if (d > t || thumb_diff(a, bk[x].i, a, bk[y].i) > max_diff) continue;
                    /* Counted once: in the first band where the two agree. */
                    for (int b2 = 0; b2 < bi && !earlier; b2++)
                        earlier = band(p, b2, nb) == band(q, b2, nb);
                    if (earlier) continue;
                    r->near_pairs++;
                    int64_t i = bk[x].i < bk[y].i ? bk[x].i : bk[y].i, j = bk[x].i ^ bk[y].i ^ i;
                    r->near_conflicts += labels_differ(a->ds, i, a->ds, j);
                    add_example(r->near_ex, &r->n_near_ex, i, j, d);
                }
        }
    }
    /* Leakage: each sample of b against a. */
    if (b) {
        for (int64_t j = 0; j < b->n; j++) {
            if (!b->ok[j]) continue;
            int64_t at = lower(ex, nok, b->h1[j], b->h2[j], 1);
            if (at < nok && ex[at].k1 == b->h1[j] && ex[at].k2 == b->h2[j]) {
                r->leak_exact++;
                int conflict = 0;
                for (int64_t x = at; x < nok && ex[x].k1 == b->h1[j] && ex[x].k2 == b->h2[j]; x++)
                    conflict |= labels_differ(a->ds, ex[x].i, b->ds, j);
                r->leak_conflicts += conflict;
                add_example(r->leak_ex, &r->n_leak_ex, ex[at].i, j, 0);
                continue;
            }
            int best = 99;
            int64_t match = -1;
            for (int bi = 0; bi < nb; bi++) {
                const key *bk = bands + (size_t)bi * (size_t)nrep;
                uint64_t v = band(b->ph[j], bi, nb);
                for (int64_t x = lower(bk, nrep, v, 0, 0); x < nrep && bk[x].k1 == v; x++) {
                    int d = __builtin_popcountll(a->ph[bk[x].i] ^ b->ph[j]);
                    if (d <= t && (d < best || (d == best && bk[x].i < match)) &&
                        thumb_diff(a, bk[x].i, b, j) <= max_diff)
                        best = d, match = bk[x].i;
                }
            }
            if (match >= 0) {
                r->leak_near++;
                r->leak_conflicts += labels_differ(a->ds, match, b->ds, j);
                add_example(r->leak_ex, &r->n_leak_ex, match, j, best);
            }
        }
    }
    free(ex), free(rep), free(bands);
    return CV_OK;
}
