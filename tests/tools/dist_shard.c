/* The C side of the sampler check in tests/parity/test_dist.py: prints, one per line, the dataset
 * indices a loader yields in one epoch as rank RANK of WORLD.
 *
 * usage: dist_shard SPEC WORLD RANK SHUFFLE SEED EPOCH MODE BATCH   (MODE: pad|drop|exact) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cvision/cvision.h"

int main(int argc, char **argv)
{
    if (argc != 9) {
        fprintf(stderr, "usage: dist_shard SPEC WORLD RANK SHUFFLE SEED EPOCH MODE BATCH\n");
        return 2;
    }
    cv_ctx *ctx = cv_ctx_new();
    cv_dataset *ds = NULL;
    cv_loader *L = NULL;
    cv_loader_opts o = {0};
    o.world = atoi(argv[2]), o.rank = atoi(argv[3]), o.shuffle = atoi(argv[4]);
    o.seed = strtoull(argv[5], NULL, 10);
    o.shard = !strcmp(argv[7], "drop")    ? CV_SHARD_DROP
              : !strcmp(argv[7], "exact") ? CV_SHARD_EXACT
                                          : CV_SHARD_PAD;
    o.batch_size = atoi(argv[8]);
    o.workers = 2;
    cv_status s = cv_dataset_open(ctx, argv[1], &ds);
    if (!s) s = cv_loader_new(ctx, ds, &o, &L);
    if (!s) s = cv_loader_start_epoch(ctx, L, atoi(argv[6]));
    const cv_batch *b;
    while (!s && !(s = cv_loader_next(ctx, L, &b)) && b)
        for (int64_t i = 0; i < b->n; i++) printf("%lld\n", (long long)b->indices[i]);
    if (s) fprintf(stderr, "dist_shard: %s\n", cv_ctx_error(ctx));
    cv_loader_free(L);
    cv_dataset_free(ds);
    cv_ctx_free(ctx);
    return s ? 1 : 0;
}
