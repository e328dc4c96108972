/* folder:DIR[,allow_empty] — torchvision's ImageFolder: one sub-folder per class, classes in plain
 * byte order ("100" before "2"), each class walked as sorted(os.walk(dir, followlinks=True)) —
 * directories ordered by their full path string, files by name — keeping files whose lower-cased
 * name ends in one of IMG_EXTENSIONS. Images are decoded as RGB (PIL's convert("RGB")). */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/dataset_impl.h"

static const char *const img_ext[] = {".jpg", ".jpeg", ".png",  ".ppm", ".bmp",
                                      ".pgm", ".tif",  ".tiff", ".webp"};

typedef struct {
    char **paths;
    int64_t n, cap;
} folder_impl;

static cv_status folder_get(cv_ctx *ctx, const cv_dataset *ds, int64_t i, cv_image **img)
{
    return cv_image_load(ctx, ((const folder_impl *)ds->impl)->paths[i], 3, img);
}

static void folder_name(const cv_dataset *ds, int64_t i, char *buf, size_t size)
{
    snprintf(buf, size, "%s", ((const folder_impl *)ds->impl)->paths[i]);
}

static void folder_free(void *p)
{
    folder_impl *f = p;
    if (!f) return;
    for (int64_t i = 0; i < f->n; i++) free(f->paths[i]);
    free(f->paths);
    free(f);
}

static cv_status folder_read(cv_ctx *ctx, const cv_dataset *ds, int64_t i, void **buf, size_t *n)
{
    return cv_read_file(ctx, ((const folder_impl *)ds->impl)->paths[i], buf, n);
}

static const ds_ops folder_ops = {folder_get, folder_name, folder_free, folder_read};

/* filename.lower().endswith(IMG_EXTENSIONS), on the ASCII letters that the extensions hold. */
static int has_img_ext(const char *name)
{
    size_t n = strlen(name);
    char tail[8];
    size_t t = n < 7 ? n : 7;
    for (size_t j = 0; j < t; j++) tail[j] = (char)tolower((unsigned char)name[n - t + j]);
    tail[t] = 0;
    for (size_t e = 0; e < sizeof img_ext / sizeof img_ext[0]; e++) {
        size_t m = strlen(img_ext[e]);
        if (t >= m && !strcmp(tail + t - m, img_ext[e])) return 1;
    }
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A growable list of strings. */
typedef struct {
    char **v;
    int64_t n, cap;
} strlist;

static int sl_push(strlist *l, char *s)
{
    if (!s) return 0;
    if (l->n == l->cap) {
        int64_t nc = l->cap ? l->cap * 2 : 64;
        char **nv = realloc(l->v, (size_t)nc * sizeof *nv);
        if (!nv) {
            free(s);
            return 0;
        }
        l->v = nv;
        l->cap = nc;
    }
    l->v[l->n++] = s;
    return 1;
}

static void sl_free(strlist *l)
{
    for (int64_t i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
}

typedef struct {
    dev_t dev;
    ino_t ino;
} dir_id;

/* Collects every directory under `dir` (itself included), following links like os.walk with
 * followlinks=True; a link back to a directory on the current path is an error, not a loop. */
static cv_status walk_dirs(cv_ctx *ctx, const char *dir, strlist *dirs, dir_id *stack, int depth)
{
    struct stat st;
    if (stat(dir, &st)) return cv_fail(ctx, CV_ERR_IO, "%s: %s", dir, strerror(errno));
    if (depth >= 64) return cv_fail(ctx, CV_ERR_INVALID, "%s: folders nested too deep", dir);
    for (int i = 0; i < depth; i++)
        if (stack[i].dev == st.st_dev && stack[i].ino == st.st_ino)
            return cv_fail(ctx, CV_ERR_INVALID, "%s: symbolic link loop", dir);
    stack[depth] = (dir_id){st.st_dev, st.st_ino};
    if (!sl_push(dirs, strdup(dir))) return cv_fail(ctx, CV_ERR_NOMEM, "out of memory");
    DIR *d = opendir(dir);
    /* os.walk ignores directories it cannot list. */
    if (!d) return CV_OK;
    strlist subs = {0};
    struct dirent *e;
    cv_status rc = CV_OK;
    char path[4096];
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        ds_join(path, sizeof path, dir, e->d_name);
        struct stat es;
        if (stat(path, &es) == 0 && S_ISDIR(es.st_mode) && !sl_push(&subs, strdup(path))) {
            rc = cv_fail(ctx, CV_ERR_NOMEM, "out of memory");
            break;
        }
    }
    closedir(d);
    for (int64_t i = 0; !rc && i < subs.n; i++)
        rc = walk_dirs(ctx, subs.v[i], dirs, stack, depth + 1);
    sl_free(&subs);
    return rc;
}

/* Appends the image files directly in `dir` (non-directories, as os.walk's fnames), sorted. */
static cv_status list_files(cv_ctx *ctx, const char *dir, strlist *out)
{
    DIR *d = opendir(dir);
    if (!d) return CV_OK;
    strlist files = {0};
    struct dirent *e;
    char path[4096];
    cv_status rc = CV_OK;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") || !has_img_ext(e->d_name))
            continue;
        ds_join(path, sizeof path, dir, e->d_name);
        struct stat es;
        if (stat(path, &es) == 0 && S_ISDIR(es.st_mode)) continue;
        if (!sl_push(&files, strdup(e->d_name))) {
            rc = cv_fail(ctx, CV_ERR_NOMEM, "out of memory");
            break;
        }
    }
    closedir(d);
    if (files.n) qsort(files.v, (size_t)files.n, sizeof *files.v, cmp_str);
    for (int64_t i = 0; !rc && i < files.n; i++) {
        ds_join(path, sizeof path, dir, files.v[i]);
        if (!sl_push(out, strdup(path))) rc = cv_fail(ctx, CV_ERR_NOMEM, "out of memory");
    }
    sl_free(&files);
    return rc;
}

cv_status ds_open_folder(cv_ctx *ctx, const char *args, cv_dataset **out)
{
    char root[4096];
    snprintf(root, sizeof root, "%s", args);
    int allow_empty = 0;
    char *comma = strrchr(root, ',');
    if (comma && !strcmp(comma + 1, "allow_empty")) *comma = 0, allow_empty = 1;
    DIR *d = opendir(root);
    if (!d) return cv_fail(ctx, CV_ERR_IO, "folder %s: %s", root, strerror(errno));
    strlist classes = {0}, files = {0};
    int64_t *start = NULL;
    cv_status rc = CV_OK;
    struct dirent *e;
    char path[4096];
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        ds_join(path, sizeof path, root, e->d_name);
        struct stat es;
        if (stat(path, &es) == 0 && S_ISDIR(es.st_mode) && !sl_push(&classes, strdup(e->d_name))) {
            rc = cv_fail(ctx, CV_ERR_NOMEM, "out of memory");
            break;
        }
    }
    closedir(d);
    if (rc) goto done;
    if (!classes.n) {
        rc = cv_fail(ctx, CV_ERR_NOT_FOUND, "folder %s: no class folders in it", root);
        goto done;
    }
    if (classes.n > 1000000) {
        rc = cv_fail(ctx, CV_ERR_UNSUPPORTED, "folder %s: too many classes", root);
        goto done;
    }
    qsort(classes.v, (size_t)classes.n, sizeof *classes.v, cmp_str);
    start = calloc((size_t)classes.n + 1, sizeof *start);
    if (!start) {
        rc = cv_fail(ctx, CV_ERR_NOMEM, "out of memory");
        goto done;
    }
    char empty[1024] = "";
    int nempty = 0;
    for (int64_t c = 0; c < classes.n && !rc; c++) {
        strlist dirs = {0};
        dir_id stack[64];
        start[c] = files.n;
        rc = walk_dirs(ctx, ds_join(path, sizeof path, root, classes.v[c]), &dirs, stack, 0);
        if (!rc && dirs.n) qsort(dirs.v, (size_t)dirs.n, sizeof *dirs.v, cmp_str);
        for (int64_t i = 0; !rc && i < dirs.n; i++) rc = list_files(ctx, dirs.v[i], &files);
        sl_free(&dirs);
        if (!rc && files.n == start[c] && nempty++ < 8) {
            size_t l = strlen(empty);
            snprintf(empty + l, sizeof empty - l, "%s%s", l ? ", " : "", classes.v[c]);
        }
    }
    start[classes.n] = files.n;
    if (rc) goto done;
    if (nempty && !allow_empty) {
        rc = cv_fail(ctx, CV_ERR_NOT_FOUND,
                     "folder %s: no image files (.jpg .jpeg .png .ppm .bmp .pgm .tif .tiff .webp) "
                     "for %d class%s: %s%s (add ,allow_empty to accept)",
                     root, nempty, nempty > 1 ? "es" : "", empty, nempty > 8 ? ", ..." : "");
        goto done;
    }
    cv_dataset *ds = ds_new(files.n, (int)classes.n);
    folder_impl *f = calloc(1, sizeof *f);
    if (!ds || !f) {
        cv_dataset_free(ds);
        free(f);
        rc = cv_fail(ctx, CV_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (int64_t c = 0; c < classes.n; c++) {
        for (int64_t i = start[c]; i < start[c + 1]; i++) ds->labels[i] = (int32_t)c;
        /* Ownership of the name moves to the dataset. */
        ds->class_names[c] = classes.v[c];
        classes.v[c] = NULL;
    }
    f->paths = files.v;
    f->n = files.n;
    files = (strlist){0};
    ds->ops = &folder_ops;
    ds->impl = f;
    *out = ds;
done:
    free(start);
    sl_free(&classes);
    sl_free(&files);
    return rc;
}
