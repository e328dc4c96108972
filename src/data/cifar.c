/* CIFAR-10 and CIFAR-100, binary version: records <label><3072 bytes R..G..B> (CIFAR-10) or
 * <coarse><fine><3072> (CIFAR-100), 32x32 row-major planes. torchvision reads the pickled python
 * version of the same data; sample order and pixels are the same. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/dataset_impl.h"

#define CIFAR_PIX 3072

static const char *const cifar10_names[] = {"airplane", "automobile", "bird",  "cat",  "deer",
                                            "dog",      "frog",       "horse", "ship", "truck"};
/* The meta file's order (alphabetical). */
static const char *const cifar100_fine[] = {
    "apple",       "aquarium_fish", "baby",      "bear",       "beaver",       "bed",
    "bee",         "beetle",        "bicycle",   "bottle",     "bowl",         "boy",
    "bridge",      "bus",           "butterfly", "camel",      "can",          "castle",
    "caterpillar", "cattle",        "chair",     "chimpanzee", "clock",        "cloud",
    "cockroach",   "couch",         "crab",      "crocodile",  "cup",          "dinosaur",
    "dolphin",     "elephant",      "flatfish",  "forest",     "fox",          "girl",
    "hamster",     "house",         "kangaroo",  "keyboard",   "lamp",         "lawn_mower",
    "leopard",     "lion",          "lizard",    "lobster",    "man",          "maple_tree",
    "motorcycle",  "mountain",      "mouse",     "mushroom",   "oak_tree",     "orange",
    "orchid",      "otter",         "palm_tree", "pear",       "pickup_truck", "pine_tree",
    "plain",       "plate",         "poppy",     "porcupine",  "possum",       "rabbit",
    "raccoon",     "ray",           "road",      "rocket",     "rose",         "sea",
    "seal",        "shark",         "shrew",     "skunk",      "skyscraper",   "snail",
    "snake",       "spider",        "squirrel",  "streetcar",  "sunflower",    "sweet_pepper",
    "table",       "tank",          "telephone", "television", "tiger",        "tractor",
    "train",       "trout",         "tulip",     "turtle",     "wardrobe",     "whale",
    "willow_tree", "wolf",          "woman",     "worm"};
static const char *const cifar100_coarse[] = {"aquatic_mammals",
                                              "fish",
                                              "flowers",
                                              "food_containers",
                                              "fruit_and_vegetables",
                                              "household_electrical_devices",
                                              "household_furniture",
                                              "insects",
                                              "large_carnivores",
                                              "large_man-made_outdoor_things",
                                              "large_natural_outdoor_scenes",
                                              "large_omnivores_and_herbivores",
                                              "medium_mammals",
                                              "non-insect_invertebrates",
                                              "people",
                                              "reptiles",
                                              "small_mammals",
                                              "trees",
                                              "vehicles_1",
                                              "vehicles_2"};

typedef struct {
    uint8_t *data;  /* all records, concatenated */
    char **files;   /* per file, for sample names */
    int64_t *first; /* first sample of each file */
    int nfiles;
    size_t rec;
    ds_pixels px;
} cifar_impl;

static cv_status cifar_get(cv_ctx *ctx, const cv_dataset *ds, int64_t i, cv_image **img)
{
    return ds_pixels_get(ctx, &((const cifar_impl *)ds->impl)->px, i, img);
}

static void cifar_name(const cv_dataset *ds, int64_t i, char *buf, size_t size)
{
    const cifar_impl *c = ds->impl;
    int f = c->nfiles - 1;
    while (f > 0 && c->first[f] > i) f--;
    snprintf(buf, size, "%s[%lld]", c->files[f], (long long)(i - c->first[f]));
}

static void cifar_free(void *p)
{
    cifar_impl *c = p;
    if (!c) return;
    for (int f = 0; f < c->nfiles; f++) free(c->files[f]);
    free(c->files);
    free(c->first);
    free(c->data);
    free(c);
}

static const ds_ops cifar_ops = {cifar_get, cifar_name, cifar_free, NULL};

/* Class names from a meta text file (one per line, blank lines skipped), if it is there and
 * has exactly k names; else the built-in list. */
static cv_status load_names(cv_ctx *ctx, cv_dataset *ds, const char *dir, const char *file,
                            const char *const *builtin, int k)
{
    char path[4096];
    ds_join(path, sizeof path, dir, file);
    uint8_t *text;
    size_t n;
    if (ds_file_exists(path) && ds_read_file(ctx, path, 1 << 20, &text, &n) == CV_OK) {
        char *names[128];
        int m = 0;
        char *s = (char *)text, *end = s + n;
        while (s < end && m <= k) {
            char *e = memchr(s, '\n', (size_t)(end - s));
            if (!e) e = end;
            char *t = e;
            while (t > s && (t[-1] == '\r' || t[-1] == ' ')) t--;
            *t = 0; /* t <= e < end or t == end: write only inside the buffer */
            if (t > s) names[m++] = s;
            s = e + 1;
            if (t == end) break;
        }
        cv_status st = CV_OK;
        if (m == k) st = ds_set_classes(ctx, ds, (const char *const *)names, k);
        free(text);
        if (m == k || st) return st;
    }
    cv_ctx_clear_error(ctx);
    return ds_set_classes(ctx, ds, builtin, k);
}

cv_status ds_open_cifar(cv_ctx *ctx, const char *type, const char *args, cv_dataset **out)
{
    int is100 = !strcmp(type, "cifar100");
    char buf[4096], *f[8];
    int nf = ds_split_fields(args, ':', buf, sizeof buf, f, 8);
    int coarse = 0;
    if (is100 && nf >= 3 && !strcmp(f[nf - 1], "coarse")) coarse = 1, nf--;
    if (nf < 2)
        return cv_fail(ctx, CV_ERR_INVALID, "%s:%s: expected %s:DIR:train|test%s", type, args, type,
                       is100 ? "[:coarse]" : "");
    for (int i = 1; i < nf - 1; i++) f[i][-1] = ':';
    const char *root = f[0], *part = f[nf - 1];
    int train = !strcmp(part, "train");
    if (!train && strcmp(part, "test"))
        return cv_fail(ctx, CV_ERR_INVALID, "%s: unknown part '%s' (train, test)", type, part);
    const char *names10[] = {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                             "data_batch_4.bin", "data_batch_5.bin"};
    const char *test10[] = {"test_batch.bin"}, *train100[] = {"train.bin"},
               *test100[] = {"test.bin"};
    const char **files = is100 ? (train ? train100 : test100) : (train ? names10 : test10);
    int nfiles = is100 ? 1 : (train ? 5 : 1);
    /* DIR itself or the folder the archive unpacks to. */
    char dir[4096], path[4096];
    snprintf(dir, sizeof dir, "%s", root);
    if (!ds_file_exists(ds_join(path, sizeof path, dir, files[0]))) {
        ds_join(dir, sizeof dir, root, is100 ? "cifar-100-binary" : "cifar-10-batches-bin");
        if (!ds_file_exists(ds_join(path, sizeof path, dir, files[0])))
            return cv_fail(ctx, CV_ERR_NOT_FOUND, "%s: no %s there (nor in %s/)", root, files[0],
                           is100 ? "cifar-100-binary" : "cifar-10-batches-bin");
    }
    size_t rec = CIFAR_PIX + (is100 ? 2 : 1);
    cifar_impl *c = calloc(1, sizeof *c);
    cv_dataset *ds = NULL;
    uint8_t *chunk[5] = {0};
    size_t size[5] = {0};
    cv_status st = CV_OK;
    if (!c || !(c->files = calloc(5, sizeof *c->files)) ||
        !(c->first = calloc(5, sizeof *c->first)))
        goto nomem;
    size_t total = 0;
    for (int i = 0; i < nfiles; i++) {
        ds_join(path, sizeof path, dir, files[i]);
        if (!(c->files[i] = strdup(path))) goto nomem;
        c->nfiles = i + 1;
        if ((st = ds_read_file(ctx, path, (size_t)1 << 34, &chunk[i], &size[i]))) goto fail;
        if (size[i] % rec) {
            st = cv_fail(ctx, CV_ERR_FORMAT,
                         "%s: %zu bytes is not a whole number of %zu-byte records", path, size[i],
                         rec);
            goto fail;
        }
        c->first[i] = (int64_t)(total / rec);
        total += size[i];
    }
    if (nfiles == 1) {
        c->data = chunk[0];
        chunk[0] = NULL;
    } else {
        if (!(c->data = malloc(total ? total : 1))) goto nomem;
        size_t off = 0;
        for (int i = 0; i < nfiles; i++) {
            memcpy(c->data + off, chunk[i], size[i]);
            off += size[i];
            free(chunk[i]);
            chunk[i] = NULL;
        }
    }
    int64_t n = (int64_t)(total / rec);
    int k = is100 ? (coarse ? 20 : 100) : 10;
    if (!(ds = ds_new(n, k))) goto nomem;
    for (int64_t i = 0; i < n; i++) {
        const uint8_t *r = c->data + (size_t)i * rec;
        int v = is100 ? r[coarse ? 0 : 1] : r[0];
        if (v >= k) {
            char name[4200];
            c->rec = rec;
            ds->impl = c;
            cifar_name(ds, i, name, sizeof name);
            ds->impl = NULL;
            st = cv_fail(ctx, CV_ERR_FORMAT, "%s: %s label %d is outside 0..%d", name,
                         is100 ? (coarse ? "coarse" : "fine") : "the", v, k - 1);
            goto fail;
        }
        ds->labels[i] = v;
    }
    st = is100
             ? load_names(ctx, ds, dir, coarse ? "coarse_label_names.txt" : "fine_label_names.txt",
                          coarse ? cifar100_coarse : cifar100_fine, k)
             : load_names(ctx, ds, dir, "batches.meta.txt", cifar10_names, k);
    if (st) goto fail;
    c->rec = rec;
    c->px = (ds_pixels){.base = c->data + (is100 ? 2 : 1),
                        .sample_stride = rec,
                        .h = 32,
                        .w = 32,
                        .c = 3,
                        .sy = 32,
                        .sx = 1,
                        .sc = 1024};
    ds->ops = &cifar_ops;
    ds->impl = c;
    *out = ds;
    return CV_OK;
nomem:
    st = cv_fail(ctx, CV_ERR_NOMEM, "out of memory");
fail:
    for (int i = 0; i < 5; i++) free(chunk[i]);
    cifar_free(c);
    cv_dataset_free(ds);
    return st;
}
