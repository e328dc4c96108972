/* The batch loader: order, coverage, drop_last, determinism across worker counts, per-sample
 * seeds, skip-bad; and subsets/splits through the C API. Data: an npy dataset whose 2x3 images
 * encode their own index. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test.h"

#define N 103

static char dir[64], spec[400];

static void make_data(void)
{
    cv_ctx *ctx = cv_ctx_new();
    snprintf(dir, sizeof dir, "/tmp/cv_test_loader_XXXXXX");
    CHECK(mkdtemp(dir) != NULL);
    int64_t xs[3] = {N, 2, 3}, ys[1] = {N};
    cv_tensor *x, *y;
    CHECK_OK(ctx, cv_tensor_new(ctx, CV_U8, 3, xs, &x));
    CHECK_OK(ctx, cv_tensor_new(ctx, CV_I64, 1, ys, &y));
    for (int i = 0; i < N; i++) {
        uint8_t *p = (uint8_t *)x->data + i * 6;
        p[0] = i % 256, p[1] = i / 256, p[2] = 7;
        ((int64_t *)y->data)[i] = i % 3;
    }
    char px[128], py[128];
    snprintf(px, sizeof px, "%s/x.npy", dir);
    snprintf(py, sizeof py, "%s/y.npy", dir);
    CHECK_OK(ctx, cv_npy_save(ctx, px, x));
    CHECK_OK(ctx, cv_npy_save(ctx, py, y));
    snprintf(spec, sizeof spec, "npy:%s,%s", px, py);
    cv_tensor_free(x);
    cv_tensor_free(y);
    cv_ctx_free(ctx);
}

/* Runs one epoch; writes the sample indices and first pixel values in order. */
static int64_t run_epoch(cv_ctx *ctx, cv_loader *L, int epoch, int64_t *idx, float *val)
{
    int64_t m = 0;
    const cv_batch *b;
    CHECK_OK(ctx, cv_loader_start_epoch(ctx, L, epoch));
    while (cv_loader_next(ctx, L, &b) == CV_OK && b) {
        for (int64_t j = 0; j < b->n; j++, m++) {
            idx[m] = b->indices[j];
            val[m] = ((float *)b->x->data)[j * 6];
            CHECK(b->labels[j] == b->indices[j] % 3);
        }
    }
    return m;
}

/* Opens *L over ds with o; returns the status of epoch 0's first batch. */
static cv_status first_batch(cv_ctx *ctx, cv_dataset *ds, const cv_loader_opts *o, cv_loader **L)
{
    const cv_batch *b;
    CHECK_OK(ctx, cv_loader_new(ctx, ds, o, L));
    CHECK_OK(ctx, cv_loader_start_epoch(ctx, *L, 0));
    return cv_loader_next(ctx, *L, &b);
}

/* A transform whose output is a function of the sample seed; fails on multiples of 10. */
static int seeded(void *user, cv_ctx *ctx, const cv_image *img, uint64_t seed, float *out)
{
    int index = img->data[0] + 256 * img->data[1];
    if (*(int *)user && index % 10 == 0) return cv_fail(ctx, CV_ERR_FORMAT, "refused %d", index);
    out[0] = (float)(seed % 1000003);
    out[1] = (float)index;
    return CV_OK;
}

static void test_order_and_determinism(void)
{
    cv_ctx *ctx = cv_ctx_new();
    cv_dataset *ds;
    CHECK_OK(ctx, cv_dataset_open(ctx, spec, &ds));
    int64_t idx[4][N], seen[N];
    float val[4][N];
    int workers[4] = {1, 3, 8, 2};
    for (int w = 0; w < 4; w++) {
        cv_loader_opts o = {.batch_size = 10,
                            .workers = workers[w],
                            .prefetch = w == 3 ? 1 : 0,
                            .shuffle = 1,
                            .seed = 42};
        cv_loader *L;
        CHECK_OK(ctx, cv_loader_new(ctx, ds, &o, &L));
        CHECK(cv_loader_num_batches(L) == 11);
        CHECK(run_epoch(ctx, L, 0, idx[w], val[w]) == N);
        if (w == 0) {
            /* A permutation, with the pixels of the sample it names. */
            memset(seen, 0, sizeof seen);
            for (int i = 0; i < N; i++) seen[idx[0][i]]++;
            int perm = 1, identity = 1;
            for (int i = 0; i < N; i++) perm &= seen[i] == 1, identity &= idx[0][i] == i;
            CHECK(perm && !identity);
            for (int i = 0; i < N; i++) CHECK_NEAR(val[0][i], (idx[0][i] % 256) / 255.0, 1e-7);
            /* Another epoch, another order; the same epoch again, the same order. */
            int64_t idx2[N];
            float v2[N];
            run_epoch(ctx, L, 1, idx2, v2);
            CHECK(memcmp(idx2, idx[0], sizeof idx2) != 0);
            run_epoch(ctx, L, 0, idx2, v2);
            CHECK(memcmp(idx2, idx[0], sizeof idx2) == 0);
        } else {
            CHECK(memcmp(idx[w], idx[0], sizeof idx[0]) == 0);
            CHECK(memcmp(val[w], val[0], sizeof val[0]) == 0);
        }
        cv_loader_free(L);
    }
    /* drop_last, no shuffle: 10 full batches in dataset order. */
    cv_loader_opts o = {.batch_size = 10, .workers = 2, .drop_last = 1};
    cv_loader *L;
    CHECK_OK(ctx, cv_loader_new(ctx, ds, &o, &L));
    CHECK(cv_loader_num_batches(L) == 10);
    CHECK(run_epoch(ctx, L, 0, idx[0], val[0]) == 100);
    for (int i = 0; i < 100; i++) CHECK(idx[0][i] == i);
    cv_loader_free(L);
    cv_dataset_free(ds);
    cv_ctx_free(ctx);
}

static void test_transform_seeds_and_skip(void)
{
    cv_ctx *ctx = cv_ctx_new();
    cv_dataset *ds;
    CHECK_OK(ctx, cv_dataset_open(ctx, spec, &ds));
    int fail = 1;
    float out[2][N * 2];
    int64_t idx[2][N];
    for (int w = 0; w < 2; w++) {
        cv_loader_opts o = {.batch_size = 7,
                            .workers = w ? 5 : 1,
                            .shuffle = 1,
                            .seed = 9,
                            .skip_bad = 1,
                            .out_c = 2,
                            .out_h = 1,
                            .out_w = 1,
                            .transform = seeded,
                            .user = &fail};
        cv_loader *L;
        CHECK_OK(ctx, cv_loader_new(ctx, ds, &o, &L));
        CHECK_OK(ctx, cv_loader_start_epoch(ctx, L, 3));
        const cv_batch *b;
        int64_t m = 0;
        while (cv_loader_next(ctx, L, &b) == CV_OK && b)
            for (int64_t j = 0; j < b->n; j++, m++) {
                float *x = (float *)b->x->data + j * 2;
                out[w][2 * m] = x[0], out[w][2 * m + 1] = x[1];
                idx[w][m] = b->indices[j];
                CHECK(x[1] == (float)b->indices[j]);
                uint64_t s = cv_transform_sample_seed(9, 3, (uint64_t)b->indices[j]);
                CHECK(x[0] == (float)(s % 1000003));
            }
        CHECK(m == N - 11); /* 0, 10, ..., 100 skipped */
        CHECK(cv_loader_skipped(L) == 11);
        cv_loader_free(L);
    }
    CHECK(memcmp(out[0], out[1], sizeof(float) * 2 * (N - 11)) == 0);
    CHECK(memcmp(idx[0], idx[1], sizeof(int64_t) * (N - 11)) == 0);
    /* Without skip_bad the first failing batch is an error naming the sample. */
    cv_loader_opts o = {.batch_size = 7,
                        .workers = 3,
                        .out_c = 2,
                        .out_h = 1,
                        .out_w = 1,
                        .transform = seeded,
                        .user = &fail};
    cv_loader *L;
    CHECK(first_batch(ctx, ds, &o, &L) == CV_ERR_FORMAT);
    CHECK(strstr(cv_ctx_error(ctx), "refused 0") && strstr(cv_ctx_error(ctx), "x.npy[0]"));
    const cv_batch *b;
    CHECK(cv_loader_next(ctx, L, &b) == CV_OK && b == NULL);
    cv_loader_free(L);
    /* The default conversion refuses images of another shape. */
    cv_loader_opts o2 = {.batch_size = 4, .workers = 1, .out_c = 3, .out_h = 2, .out_w = 3};
    CHECK(first_batch(ctx, ds, &o2, &L) == CV_ERR_SHAPE);
    cv_loader_free(L);
    cv_dataset_free(ds);
    cv_ctx_free(ctx);
}

/* A random pipeline through the adapter: same batches for 1 and 4 workers, and each sample equal
 * to cv_transform_apply with the sample's seed. */
static void test_pipeline_adapter(void)
{
    cv_ctx *ctx = cv_ctx_new();
    cv_dataset *ds;
    CHECK_OK(ctx, cv_dataset_open(ctx, spec, &ds));
    cv_transform_pipeline *pipe;
    CHECK_OK(ctx, cv_transform_pipeline_parse(ctx, "hflip(0.5),to_tensor", &pipe));
    cv_loader_pipeline lp = {pipe, 1, 2, 3};
    float got[2][N * 6];
    for (int w = 0; w < 2; w++) {
        cv_loader_opts o = {.batch_size = 8,
                            .workers = w ? 4 : 1,
                            .shuffle = 1,
                            .seed = 5,
                            .out_c = 1,
                            .out_h = 2,
                            .out_w = 3,
                            .transform = cv_loader_pipeline_fn,
                            .user = &lp};
        cv_loader *L;
        CHECK_OK(ctx, cv_loader_new(ctx, ds, &o, &L));
        CHECK_OK(ctx, cv_loader_start_epoch(ctx, L, 2));
        const cv_batch *b;
        int64_t m = 0;
        while (cv_loader_next(ctx, L, &b) == CV_OK && b)
            for (int64_t j = 0; j < b->n; j++, m++) {
                memcpy(got[w] + m * 6, (float *)b->x->data + j * 6, 6 * sizeof(float));
                cv_image *img;
                cv_tensor *t;
                CHECK_OK(ctx, cv_dataset_get(ctx, ds, b->indices[j], &img, NULL));
                uint64_t seed = cv_transform_sample_seed(5, 2, (uint64_t)b->indices[j]);
                CHECK_OK(ctx, cv_transform_apply(ctx, pipe, img, seed, &t));
                CHECK(memcmp(t->data, got[w] + m * 6, 6 * sizeof(float)) == 0);
                cv_tensor_free(t);
                cv_image_free(img);
            }
        CHECK(m == N);
        cv_loader_free(L);
    }
    CHECK(memcmp(got[0], got[1], sizeof got[0]) == 0);
    /* A pipeline whose output is not the batch's shape fails cleanly. */
    cv_loader_pipeline bad = {pipe, 1, 3, 2};
    cv_loader_opts o = {.batch_size = 8,
                        .workers = 2,
                        .out_c = 1,
                        .out_h = 3,
                        .out_w = 2,
                        .transform = cv_loader_pipeline_fn,
                        .user = &bad};
    cv_loader *L;
    CHECK(first_batch(ctx, ds, &o, &L) == CV_ERR_SHAPE);
    cv_loader_free(L);
    cv_transform_pipeline_free(pipe);
    cv_dataset_free(ds);
    cv_ctx_free(ctx);
}

static void test_subset_and_split_api(void)
{
    cv_ctx *ctx = cv_ctx_new();
    cv_dataset *ds, *sub, *sub2;
    CHECK_OK(ctx, cv_dataset_open(ctx, spec, &ds));
    int64_t pick[3] = {5, 100, 5};
    CHECK_OK(ctx, cv_dataset_subset(ctx, ds, pick, 3, &sub));
    int64_t pick2[2] = {1, 0};
    CHECK_OK(ctx, cv_dataset_subset(ctx, sub, pick2, 2, &sub2));
    cv_dataset_free(ds); /* the views keep it alive */
    cv_dataset_free(sub);
    cv_image *img;
    int label;
    CHECK_OK(ctx, cv_dataset_get(ctx, sub2, 0, &img, &label));
    CHECK(img->data[0] == 100 && label == 1);
    cv_image_free(img);
    CHECK(cv_dataset_get(ctx, sub2, 2, &img, &label) == CV_ERR_INVALID && img == NULL);
    CHECK(cv_dataset_subset(ctx, sub2, pick, 1, &sub) == CV_ERR_INVALID);
    cv_dataset_free(sub2);

    CHECK_OK(ctx, cv_dataset_open(ctx, spec, &ds));
    cv_split *s;
    cv_split_params p = {.folds = 4, .seed = 1};
    CHECK_OK(ctx, cv_split_make(ctx, ds, &p, &s));
    CHECK(cv_split_num_parts(s) == 4);
    int64_t total = 0, n, *tr;
    for (int k = 0; k < 4; k++) {
        cv_split_part(s, k, &n);
        total += n;
        CHECK(n == 25 || n == 26);
        int64_t tn;
        CHECK_OK(ctx, cv_split_fold_train(ctx, s, k, &tr, &tn));
        CHECK(tn + n == N);
        for (int64_t i = 1; i < tn; i++) CHECK(tr[i] > tr[i - 1]);
        free(tr);
    }
    CHECK(total == N);
    char path[128];
    snprintf(path, sizeof path, "%s/split.json", dir);
    CHECK_OK(ctx, cv_split_save(ctx, s, path));
    cv_split *s2;
    CHECK_OK(ctx, cv_split_load_or_make(ctx, ds, path, &p, &s2));
    for (int k = 0; k < 4; k++) {
        int64_t n1, n2;
        const int64_t *a = cv_split_part(s, k, &n1), *b = cv_split_part(s2, k, &n2);
        CHECK(n1 == n2 && memcmp(a, b, (size_t)n1 * sizeof *a) == 0);
    }
    cv_split_free(s2);
    p.seed = 2;
    CHECK(cv_split_load_or_make(ctx, ds, path, &p, &s2) == CV_ERR_INVALID);
    CHECK(strstr(cv_ctx_error(ctx), "delete the file") != NULL);
    /* A damaged split file is a format error, not a crash. */
    FILE *f = fopen(path, "w");
    fputs("{\"format\":\"cvision-split\",\"folds\":0,\"val_fraction\":0.2,\"seed\":\"2\","
          "\"samples\":3,\"labels_fingerprint\":\"0\",\"parts\":[[0,1],[1]]}",
          f);
    fclose(f);
    CHECK(cv_split_load(ctx, path, &s2) == CV_ERR_FORMAT);
    CHECK(strstr(cv_ctx_error(ctx), "repeated") != NULL);
    unlink(path);
    cv_split_free(s);
    cv_dataset_free(ds);
    cv_ctx_free(ctx);
}

int main(void)
{
    make_data();
    RUN(test_order_and_determinism);
    RUN(test_transform_seeds_and_skip);
    RUN(test_pipeline_adapter);
    RUN(test_subset_and_split_api);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    TEST_EXIT();
}
