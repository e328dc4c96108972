/* The batch loader: worker threads each assemble whole batches (read, transform, pack into float32
 * NCHW) into a ring of `prefetch` slots; the consumer takes batches strictly in order. Batch b
 * holds samples order[b*bs .. b*bs+bs) of the epoch's permutation, and each sample's random seed is
 * cv_transform_sample_seed(seed, epoch, index), so the output depends on neither the number of
 * workers nor their timing. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cvision/transforms.h"
#include "data/dataset_impl.h"

typedef struct {
    cv_batch b;
    int64_t number; /* the batch this slot holds or is filling; -1 = free */
    int ready;
    cv_status status;
    char msg[1024];
} slot;

struct cv_loader {
    const cv_dataset *ds;
    cv_loader_opts o;
    int64_t n, nbatches; /* n: samples this loader yields per epoch (its shard) */
    int64_t nfull;       /* samples in the dataset */
    int64_t *perm;       /* the epoch's permutation of all samples (sharded loaders) */
    size_t per;          /* floats per sample */
    int k;               /* classes (multi-label targets) */
    int64_t *order;
    int epoch;
    slot *slots;
    pthread_t *tid;
    int nthreads;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int64_t next_claim; /* next batch a worker may start */
    int64_t next_out;   /* next batch the consumer gets */
    int64_t released;   /* batches whose slots are free again */
    int running, stop;
    int64_t skipped;
};

int cv_loader_pipeline_fn(void *user, cv_ctx *ctx, const cv_image *img, uint64_t sample_seed,
                          float *out_chw)
{
    const cv_loader_pipeline *p = user;
    return cv_transform_apply_into(ctx, p->pipe, img, sample_seed, out_chw, p->c, p->h, p->w);
}

/* With the pipeline adapter and a dataset of image files, the pipeline gets the encoded file
 * (cv_transform_apply_encoded: a leading rrc decodes a JPEG's crop only, DCT-scaled). Returns 0
 * when that does not apply, else 1 with the outcome in *st. */
static int encoded_transform(cv_ctx *ctx, const cv_loader *L, int64_t idx, uint64_t seed,
                             float *out, cv_status *st)
{
    void *buf;
    size_t n;
    if (L->o.transform != cv_loader_pipeline_fn) return 0;
    *st = ds_read_encoded(ctx, L->ds, idx, &buf, &n);
    if (*st == CV_ERR_UNSUPPORTED) return 0;
    if (*st) return 1;
    const cv_loader_pipeline *p = L->o.user;
    char name[512];
    cv_dataset_sample_name(L->ds, idx, name, sizeof name);
    *st = cv_transform_apply_encoded(ctx, p->pipe, buf, n, name, seed, out, p->c, p->h, p->w);
    free(buf);
    return 1;
}

static cv_status default_transform(cv_ctx *ctx, const cv_loader *L, const cv_image *img, float *out)
{
    const cv_loader_opts *o = &L->o;
    if (img->c != o->out_c || img->h != o->out_h || img->w != o->out_w)
        return cv_fail(ctx, CV_ERR_SHAPE,
                       "image is %dx%dx%d, the batch wants %dx%dx%d (use a transform to resize)",
                       img->w, img->h, img->c, o->out_w, o->out_h, o->out_c);
    size_t hw = (size_t)img->w * (size_t)img->h;
    for (int c = 0; c < img->c; c++)
        for (size_t p = 0; p < hw; p++) out[c * hw + p] = img->data[p * img->c + c] / 255.0f;
    return CV_OK;
}

/* Fills slot s with batch `b`. Runs without the lock: the slot is this worker's alone. */
static void fill(cv_loader *L, cv_ctx *ctx, slot *s, int64_t b)
{
    int64_t first = b * L->o.batch_size, last = first + L->o.batch_size;
    if (last > L->n) last = L->n;
    int64_t m = 0, skipped = 0;
    s->status = CV_OK;
    for (int64_t j = first; j < last; j++) {
        int64_t idx = L->order[j];
        cv_image *img;
        int label = cv_dataset_label(L->ds, idx);
        float *out = (float *)s->b.x->data + (size_t)m * L->per;
        uint64_t seed = cv_transform_sample_seed(L->o.seed, (uint64_t)L->epoch, (uint64_t)idx);
        cv_status st;
        if (!encoded_transform(ctx, L, idx, seed, out, &st) &&
            !(st = cv_dataset_get(ctx, L->ds, idx, &img, &label))) {
            st = L->o.transform ? (cv_status)L->o.transform(L->o.user, ctx, img, seed, out)
                                : default_transform(ctx, L, img, out);
            cv_image_free(img);
        }
        if (st) {
            char name[512];
            cv_dataset_sample_name(L->ds, idx, name, sizeof name);
            /* Only problems with the sample itself may be skipped. */
            if (L->o.skip_bad && st != CV_ERR_NOMEM && st != CV_ERR_INTERNAL) {
                skipped++;
                continue;
            }
            s->status = st;
            const char *e = cv_ctx_error(ctx);
            if (strstr(e, name))
                snprintf(s->msg, sizeof s->msg, "%s", e);
            else
                snprintf(s->msg, sizeof s->msg, "%s: %s", name, e);
            return;
        }
        s->b.labels[m] = label;
        s->b.indices[m] = idx;
        if (s->b.targets) {
            const uint8_t *ml = cv_dataset_multilabel(L->ds, idx);
            for (int c = 0; c < L->k; c++) s->b.targets[(size_t)m * L->k + c] = ml[c];
        }
        m++;
    }
    s->b.n = m;
    s->b.skipped = skipped;
    s->b.x->shape[0] = m;
    s->b.x->nbytes = (size_t)m * L->per * sizeof(float);
}

static void *worker(void *p)
{
    cv_loader *L = p;
    cv_ctx *ctx = cv_ctx_new();
    pthread_mutex_lock(&L->lock);
    for (;;) {
        int P = L->o.prefetch;
        while (!L->stop && L->next_claim < L->nbatches && L->next_claim >= L->released + P)
            pthread_cond_wait(&L->cond, &L->lock);
        if (L->stop || L->next_claim >= L->nbatches) break;
        int64_t b = L->next_claim++;
        slot *s = &L->slots[b % P];
        s->number = b;
        s->ready = 0;
        pthread_mutex_unlock(&L->lock);
        if (ctx) {
            fill(L, ctx, s, b);
        } else {
            s->status = CV_ERR_NOMEM;
            snprintf(s->msg, sizeof s->msg, "out of memory");
        }
        pthread_mutex_lock(&L->lock);
        s->ready = 1;
        pthread_cond_broadcast(&L->cond);
    }
    pthread_mutex_unlock(&L->lock);
    cv_ctx_free(ctx);
    return NULL;
}

static void stop_workers(cv_loader *L)
{
    if (!L->running) return;
    pthread_mutex_lock(&L->lock);
    L->stop = 1;
    pthread_cond_broadcast(&L->cond);
    pthread_mutex_unlock(&L->lock);
    for (int t = 0; t < L->nthreads; t++) pthread_join(L->tid[t], NULL);
    L->running = 0;
    L->stop = 0;
}

void cv_loader_free(cv_loader *L)
{
    if (!L) return;
    stop_workers(L);
    if (L->slots)
        for (int i = 0; i < L->o.prefetch; i++) {
            cv_tensor_free(L->slots[i].b.x);
            free(L->slots[i].b.labels);
            free(L->slots[i].b.targets);
            free(L->slots[i].b.indices);
        }
    free(L->slots);
    free(L->tid);
    free(L->order);
    free(L->perm);
    pthread_mutex_destroy(&L->lock);
    pthread_cond_destroy(&L->cond);
    free(L);
}

int64_t cv_shard_indices(const int64_t *perm, int64_t n, int world, int rank, cv_shard_mode mode,
                         int64_t *out)
{
    if (world < 1 || n < 1) return 0;
    int64_t total = mode == CV_SHARD_DROP  ? n / world * world
                    : mode == CV_SHARD_PAD ? (n + world - 1) / world * world
                                           : n;
    int64_t k = 0;
    /* Padding repeats the list from its start, as often as needed (torch's
     * indices += (indices * ceil(pad / len))[:pad]). */
    for (int64_t j = rank; j < total; j += world, k++)
        if (out) out[k] = perm[j % n];
    return k;
}

cv_status cv_loader_new(cv_ctx *ctx, const cv_dataset *ds, const cv_loader_opts *opts,
                        cv_loader **out)
{
    *out = NULL;
    cv_loader_opts o = *opts;
    if (o.batch_size < 1) return cv_fail(ctx, CV_ERR_INVALID, "loader: batch size must be >= 1");
    if (o.workers < 1) o.workers = cv_ctx_threads(ctx);
    if (o.workers > 256) o.workers = 256;
    if (o.prefetch < 1) o.prefetch = 2 * o.workers;
    if (o.prefetch > 1024) o.prefetch = 1024;
    int64_t n = cv_dataset_len(ds);
    if (!o.transform && (o.out_c <= 0 || o.out_h <= 0 || o.out_w <= 0)) {
        if (n == 0) return cv_fail(ctx, CV_ERR_INVALID, "loader: empty dataset");
        cv_image *img;
        cv_status st = cv_dataset_get(ctx, ds, 0, &img, NULL);
        if (st) return st;
        o.out_c = img->c, o.out_h = img->h, o.out_w = img->w;
        cv_image_free(img);
    }
    if (o.out_c <= 0 || o.out_h <= 0 || o.out_w <= 0)
        return cv_fail(ctx, CV_ERR_INVALID, "loader: a transform needs the output shape (C, H, W)");
    if (o.world < 1) o.world = 1;
    if (o.rank < 0 || o.rank >= o.world)
        return cv_fail(ctx, CV_ERR_INVALID, "loader: rank %d outside 0..%d", o.rank, o.world - 1);
    cv_loader *L = calloc(1, sizeof *L);
    if (!L) return cv_fail(ctx, CV_ERR_NOMEM, "out of memory");
    pthread_mutex_init(&L->lock, NULL);
    pthread_cond_init(&L->cond, NULL);
    L->ds = ds;
    L->o = o;
    L->nfull = n;
    L->n = n = o.world == 1 ? n : cv_shard_indices(NULL, n, o.world, o.rank, o.shard, NULL);
    L->k = cv_dataset_num_classes(ds);
    L->per = (size_t)o.out_c * (size_t)o.out_h * (size_t)o.out_w;
    L->nbatches = o.drop_last ? n / o.batch_size : (n + o.batch_size - 1) / o.batch_size;
    L->order = malloc((size_t)(n + 1) * sizeof *L->order);
    if (o.world > 1) L->perm = malloc((size_t)(L->nfull + 1) * sizeof *L->perm);
    L->slots = calloc((size_t)o.prefetch, sizeof *L->slots);
    L->tid = calloc((size_t)o.workers, sizeof *L->tid);
    int ok = L->order && L->slots && L->tid && (o.world == 1 || L->perm);
    int64_t shape[4] = {o.batch_size, o.out_c, o.out_h, o.out_w};
    for (int i = 0; ok && i < o.prefetch; i++) {
        slot *s = &L->slots[i];
        s->number = -1;
        ok = cv_tensor_new(ctx, CV_F32, 4, shape, &s->b.x) == CV_OK &&
             (s->b.labels = malloc((size_t)o.batch_size * sizeof *s->b.labels)) &&
             (s->b.indices = malloc((size_t)o.batch_size * sizeof *s->b.indices)) &&
             (!cv_dataset_is_multilabel(ds) ||
              (s->b.targets = malloc((size_t)o.batch_size * (size_t)L->k * sizeof(float))));
    }
    if (!ok) {
        cv_loader_free(L);
        return cv_fail(ctx, CV_ERR_NOMEM, "loader: out of memory for %d batches of %d", o.prefetch,
                       o.batch_size);
    }
    L->epoch = -1;
    *out = L;
    return CV_OK;
}

cv_status cv_loader_start_epoch(cv_ctx *ctx, cv_loader *L, int epoch)
{
    stop_workers(L);
    L->epoch = epoch;
    /* Every rank draws the same permutation of the whole dataset, then takes its shard. */
    int64_t *perm = L->o.world > 1 ? L->perm : L->order;
    for (int64_t i = 0; i < L->nfull; i++) perm[i] = i;
    if (L->o.shuffle) {
        cv_rng rng;
        /* Streams 2^32 + epoch: apart from any sample's stream. */
        cv_rng_init(&rng, L->o.seed, ((uint64_t)1 << 32) + (uint64_t)epoch);
        ds_shuffle(perm, L->nfull, &rng);
    }
    if (L->o.world > 1)
        cv_shard_indices(perm, L->nfull, L->o.world, L->o.rank, L->o.shard, L->order);
    L->next_claim = L->next_out = L->released = 0;
    for (int i = 0; i < L->o.prefetch; i++) L->slots[i].number = -1, L->slots[i].ready = 0;
    int want = L->o.workers;
    if (want > L->nbatches) want = L->nbatches > 0 ? (int)L->nbatches : 0;
    L->nthreads = 0;
    for (int t = 0; t < want; t++) {
        if (pthread_create(&L->tid[t], NULL, worker, L)) break;
        L->nthreads++;
    }
    L->running = 1;
    if (want && !L->nthreads) {
        L->running = 0;
        return cv_fail(ctx, CV_ERR_INTERNAL, "loader: could not start worker threads");
    }
    return CV_OK;
}

cv_status cv_loader_next(cv_ctx *ctx, cv_loader *L, const cv_batch **out)
{
    *out = NULL;
    if (L->epoch < 0) return cv_fail(ctx, CV_ERR_INVALID, "loader: no epoch started");
    pthread_mutex_lock(&L->lock);
    /* The batch handed out last time is done with: its slot may be refilled. */
    if (L->released < L->next_out) {
        L->released = L->next_out;
        pthread_cond_broadcast(&L->cond);
    }
    if (L->next_out >= L->nbatches) {
        pthread_mutex_unlock(&L->lock);
        return CV_OK;
    }
    slot *s = &L->slots[L->next_out % L->o.prefetch];
    while (!(s->number == L->next_out && s->ready)) pthread_cond_wait(&L->cond, &L->lock);
    pthread_mutex_unlock(&L->lock);
    if (s->status) {
        cv_status st = cv_fail(ctx, s->status, "%s", s->msg);
        stop_workers(L);
        L->next_out = L->nbatches; /* the epoch ends at an error */
        return st;
    }
    L->next_out++;
    L->skipped += s->b.skipped;
    *out = &s->b;
    return CV_OK;
}

int64_t cv_loader_num_batches(const cv_loader *L)
{
    return L->nbatches;
}

int64_t cv_loader_skipped(const cv_loader *L)
{
    return L->skipped;
}
