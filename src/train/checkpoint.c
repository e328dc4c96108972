/* Checkpoints that survive a kill at any instant.
 *
 * A checkpoint is TAG.safetensors (the state_dict), TAG.optim.safetensors (optimizer and EMA
 * state) and TAG.json, which records the SHA-256 and size of both and so commits them: a set is
 * complete only when the hashes in its JSON match its files. Saving:
 *   1. writes the new files as TAG*.new (each fsynced);
 *   2. if the current set is complete, replaces TAG.prev.* by hard links to it (the JSON last);
 *   3. renames the new tensor files into place, then the new JSON (fsyncing the directory).
 * Whatever step a kill interrupts, TAG.* or TAG.prev.* is complete; the loader takes the first
 * complete one. */
#include "checkpoint.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/atomic.h"
#include "cvision/weights.h"

enum { F_MODEL, F_OPTIM, F_JSON, F_COUNT };
static const char *const suffixes[F_COUNT] = {".safetensors", ".optim.safetensors", ".json"};
static const char *const roles[2] = {"model", "optim"};

typedef struct {
    char path[F_COUNT][4096];
} fileset;

static cv_status names(cv_ctx *ctx, const char *dir, const char *tag, const char *gen,
                       const char *ext, fileset *fs)
{
    for (int i = 0; i < F_COUNT; i++)
        if ((size_t)snprintf(fs->path[i], sizeof fs->path[i], "%s/%s%s%s%s", dir, tag, gen,
                             suffixes[i], ext) >= sizeof fs->path[i])
            return cv_fail(ctx, CV_ERR_INVALID, "checkpoint: path too long in %s", dir);
    return CV_OK;
}

static cv_status check_tag(cv_ctx *ctx, const char *tag)
{
    if (!tag || !*tag || strchr(tag, '/') || !strcmp(tag, ".") || !strcmp(tag, ".."))
        return cv_fail(ctx, CV_ERR_INVALID, "checkpoint: bad tag '%s'", tag ? tag : "");
    return CV_OK;
}

static cv_status sync_dir(cv_ctx *ctx, const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return cv_fail(ctx, CV_ERR_IO, "%s: cannot open: %s", dir, strerror(errno));
    int r = fsync(fd);
    int err = errno;
    close(fd);
    /* some file systems cannot fsync a directory; the renames are still ordered */
    if (r && err != EINVAL && err != EROFS)
        return cv_fail(ctx, CV_ERR_IO, "%s: fsync: %s", dir, strerror(err));
    return CV_OK;
}

/* A second name for `src` (a hard link; a synced copy where links are not supported). */
static cv_status link_or_copy(cv_ctx *ctx, const char *src, const char *dst)
{
    if (link(src, dst) == 0) return CV_OK;
    FILE *f = fopen(src, "rb");
    if (!f) return cv_fail(ctx, CV_ERR_IO, "%s: cannot open: %s", src, strerror(errno));
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? 2 * cap : 1 << 20;
            char *b = realloc(buf, cap);
            if (!b) {
                free(buf);
                fclose(f);
                return cv_fail(ctx, CV_ERR_NOMEM, "%s: out of memory", src);
            }
            buf = b;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0) break;
    }
    int err = ferror(f);
    fclose(f);
    cv_status s = err ? cv_fail(ctx, CV_ERR_IO, "%s: read failed", src)
                      : cv_write_file_atomic(ctx, dst, 1, buf, n);
    free(buf);
    return s;
}

static cv_status remove_file(cv_ctx *ctx, const char *path)
{
    if (unlink(path) && errno != ENOENT)
        return cv_fail(ctx, CV_ERR_IO, "%s: cannot remove: %s", path, strerror(errno));
    return CV_OK;
}

static cv_status file_size(cv_ctx *ctx, const char *path, long long *size)
{
    struct stat st;
    if (stat(path, &st)) return cv_fail(ctx, CV_ERR_IO, "%s: %s", path, strerror(errno));
    *size = (long long)st.st_size;
    return CV_OK;
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    long n = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    if (n >= 0 && n < (64 << 20) && fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n + 1))) {
        if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
            free(buf);
            buf = NULL;
        } else {
            buf[n] = 0;
        }
    }
    fclose(f);
    return buf;
}

/* Is the set complete: its JSON parses and the files it records have those sizes and hashes?
 * On success *json_out (may be NULL) receives the parsed sidecar. */
static cv_status verify(cv_ctx *ctx, const fileset *fs, cJSON **json_out)
{
    if (json_out) *json_out = NULL;
    char *text = read_text(fs->path[F_JSON]);
    if (!text) return cv_fail(ctx, CV_ERR_NOT_FOUND, "%s: cannot read", fs->path[F_JSON]);
    cJSON *j = cJSON_Parse(text);
    free(text);
    const cJSON *files = cJSON_GetObjectItemCaseSensitive(j, "files");
    if (!cJSON_IsObject(files) || !cJSON_GetObjectItemCaseSensitive(files, "model")) {
        cJSON_Delete(j);
        return cv_fail(ctx, CV_ERR_FORMAT, "%s: not a cvision checkpoint sidecar",
                       fs->path[F_JSON]);
    }
    for (int i = 0; i < 2; i++) {
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(files, roles[i]);
        if (!e) continue;
        const cJSON *hash = cJSON_GetObjectItemCaseSensitive(e, "sha256");
        const cJSON *bytes = cJSON_GetObjectItemCaseSensitive(e, "bytes");
        long long size = 0;
        char hex[65];
        cv_status s = file_size(ctx, fs->path[i], &size);
        if (!s &&
            (!cJSON_IsString(hash) || !cJSON_IsNumber(bytes) || (double)size != bytes->valuedouble))
            s = cv_fail(ctx, CV_ERR_FORMAT, "%s: size %lld differs from the one %s records",
                        fs->path[i], size, fs->path[F_JSON]);
        if (!s) s = cv_sha256_file(ctx, fs->path[i], hex);
        if (!s && strcmp(hex, hash->valuestring))
            s = cv_fail(ctx, CV_ERR_FORMAT, "%s: SHA-256 differs from the one %s records",
                        fs->path[i], fs->path[F_JSON]);
        if (s) {
            cJSON_Delete(j);
            return s;
        }
    }
    if (json_out)
        *json_out = j;
    else
        cJSON_Delete(j);
    return CV_OK;
}

static cJSON *file_record(cv_ctx *ctx, const char *path, cv_status *s)
{
    char hex[65];
    long long size = 0;
    if ((*s = cv_sha256_file(ctx, path, hex)) || (*s = file_size(ctx, path, &size))) return NULL;
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "sha256", hex);
    cJSON_AddNumberToObject(e, "bytes", (double)size);
    return e;
}

/* The sidecar: our members first, then json_extra's (which may not replace ours). */
static cv_status build_json(cv_ctx *ctx, const char *tag, const fileset *fresh, int has_optim,
                            const char *json_extra, char **out)
{
    cJSON *extra = NULL;
    if (json_extra && *json_extra) {
        extra = cJSON_Parse(json_extra);
        if (!cJSON_IsObject(extra)) {
            cJSON_Delete(extra);
            return cv_fail(ctx, CV_ERR_INVALID, "checkpoint: the extra JSON is not an object");
        }
    }
    cJSON *root = cJSON_CreateObject(), *files = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "format", "cvision-checkpoint");
    cJSON_AddNumberToObject(root, "version", 1);
    cJSON_AddStringToObject(root, "tag", tag);
    char when[32];
    time_t now = time(NULL);
    struct tm tm;
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tm));
    cJSON_AddStringToObject(root, "saved", when);
    cJSON_AddItemToObject(root, "files", files);
    cv_status s = CV_OK;
    for (int i = 0; i < 1 + has_optim && !s; i++) {
        cJSON *e = file_record(ctx, fresh->path[i], &s);
        if (e) cJSON_AddItemToObject(files, roles[i], e);
    }
    cJSON *item = extra ? extra->child : NULL;
    while (item && !s) {
        cJSON *next = item->next;
        if (!cJSON_GetObjectItemCaseSensitive(root, item->string)) {
            cJSON_DetachItemViaPointer(extra, item);
            cJSON_AddItemToObject(root, item->string, item);
        }
        item = next;
    }
    if (!s && !(*out = cJSON_Print(root)))
        s = cv_fail(ctx, CV_ERR_NOMEM, "checkpoint: out of memory");
    cJSON_Delete(root);
    cJSON_Delete(extra);
    return s;
}

static cv_status make_dir(cv_ctx *ctx, const char *dir)
{
    char buf[4096];
    if ((size_t)snprintf(buf, sizeof buf, "%s", dir) >= sizeof buf)
        return cv_fail(ctx, CV_ERR_INVALID, "checkpoint: directory name too long");
    for (char *p = buf + 1;; p++) {
        char c = *p;
        if (c != '/' && c) continue;
        *p = 0;
        if (mkdir(buf, 0755) && errno != EEXIST)
            return cv_fail(ctx, CV_ERR_IO, "%s: cannot create: %s", buf, strerror(errno));
        *p = c;
        if (!c) break;
    }
    return CV_OK;
}

/* Counts file-system steps and stops before step `stop_at` (a simulated kill). */
typedef struct {
    int n, stop_at;
} stepper;

#define STEP(st)                                                                                   \
    do {                                                                                           \
        if ((st)->stop_at >= 0 && (st)->n == (st)->stop_at) goto killed;                           \
        (st)->n++;                                                                                 \
    } while (0)

cv_status cv_checkpoint_save_until(cv_ctx *ctx, const char *dir, const char *tag,
                                   const cv_state *model_state, const cv_optim *optim,
                                   const cv_ema *ema, const char *json_extra, int stop_at,
                                   int *steps)
{
    fileset cur, prev, fresh;
    cv_status s = check_tag(ctx, tag);
    if (!s) s = names(ctx, dir, tag, "", "", &cur);
    if (!s) s = names(ctx, dir, tag, ".prev", "", &prev);
    if (!s) s = names(ctx, dir, tag, "", ".new", &fresh);
    if (!s) s = make_dir(ctx, dir);
    if (s) return s;
    stepper st = {0, stop_at};
    char *json = NULL;
    cv_state *os = NULL;
    int has_optim = optim || ema;

    /* 1. the new files under temporary names */
    STEP(&st);
    if ((s = cv_safetensors_save(ctx, model_state, fresh.path[F_MODEL]))) goto done;
    if (has_optim) {
        STEP(&st);
        if (!(os = cv_state_new())) {
            s = cv_fail(ctx, CV_ERR_NOMEM, "checkpoint: out of memory");
            goto done;
        }
        if (optim) s = cv_optim_state_save(ctx, optim, os, "optim/");
        if (!s && ema) s = cv_ema_state_save(ctx, ema, os, "ema/");
        if (!s) s = cv_safetensors_save(ctx, os, fresh.path[F_OPTIM]);
        if (s) goto done;
    }
    if ((s = build_json(ctx, tag, &fresh, has_optim, json_extra, &json))) goto done;
    STEP(&st);
    if ((s = cv_write_file_atomic(ctx, fresh.path[F_JSON], 1, json, strlen(json)))) goto done;
    if ((s = sync_dir(ctx, dir))) goto done;

    /* 2. keep the current set as the previous one, if it is complete */
    if (verify(ctx, &cur, NULL) == CV_OK) {
        cv_ctx_clear_error(ctx);
        for (int i = F_COUNT - 1; i >= 0; i--) { /* the JSON first: prev is incomplete from here */
            STEP(&st);
            if ((s = remove_file(ctx, prev.path[i]))) goto done;
        }
        for (int i = 0; i < F_COUNT; i++) { /* the JSON last: it commits prev */
            if (i == F_OPTIM && access(cur.path[i], F_OK)) continue;
            STEP(&st);
            if ((s = link_or_copy(ctx, cur.path[i], prev.path[i]))) goto done;
        }
        if ((s = sync_dir(ctx, dir))) goto done;
    }
    cv_ctx_clear_error(ctx);

    /* 3. into place: tensors, then the JSON that commits them */
    for (int i = 0; i < F_COUNT; i++) {
        if (i == F_OPTIM && !has_optim) continue;
        if (i == F_JSON && (s = sync_dir(ctx, dir))) goto done;
        STEP(&st);
        if (rename(fresh.path[i], cur.path[i])) {
            s = cv_fail(ctx, CV_ERR_IO, "%s: cannot rename into place: %s", cur.path[i],
                        strerror(errno));
            goto done;
        }
    }
    if ((s = sync_dir(ctx, dir))) goto done;
    /* an optimizer file of an earlier save that this one does not have is stale */
    if (!has_optim) s = remove_file(ctx, cur.path[F_OPTIM]);
    goto done;
killed:
    s = CV_OK;
done:
    if (steps) *steps = st.n;
    free(json);
    cv_state_free(os);
    return s;
}

cv_status cv_checkpoint_save(cv_ctx *ctx, const char *dir, const char *tag,
                             const cv_state *model_state, const cv_optim *optim, const cv_ema *ema,
                             const char *json_extra)
{
    return cv_checkpoint_save_until(ctx, dir, tag, model_state, optim, ema, json_extra, -1, NULL);
}

static cv_status load_set(cv_ctx *ctx, const fileset *fs, cv_state **model_state, cv_optim *optim,
                          cv_ema *ema, char **json)
{
    cJSON *j;
    cv_status s = verify(ctx, fs, &j);
    if (s) return s;
    cv_state *m = NULL, *os = NULL;
    int has_optim = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "files"),
                                                     "optim") != NULL;
    if ((optim || ema) && !has_optim)
        s = cv_fail(ctx, CV_ERR_NOT_FOUND, "%s: the checkpoint has no optimizer/EMA state",
                    fs->path[F_JSON]);
    if (!s) s = cv_weights_load(ctx, fs->path[F_MODEL], &m);
    if (!s && (optim || ema)) s = cv_weights_load(ctx, fs->path[F_OPTIM], &os);
    if (!s && optim) s = cv_optim_state_load(ctx, optim, os, "optim/");
    if (!s && ema) s = cv_ema_state_load(ctx, ema, os, "ema/");
    if (!s && json) {
        /* say which set was loaded: the previous one after an interrupted save */
        const char *base = strrchr(fs->path[F_JSON], '/');
        cJSON_AddStringToObject(j, "loaded_from", base ? base + 1 : fs->path[F_JSON]);
        if (!(*json = cJSON_Print(j))) s = cv_fail(ctx, CV_ERR_NOMEM, "checkpoint: out of memory");
    }
    cJSON_Delete(j);
    cv_state_free(os);
    if (s) {
        cv_state_free(m);
        return s;
    }
    *model_state = m;
    return CV_OK;
}

cv_status cv_checkpoint_load(cv_ctx *ctx, const char *dir, const char *tag, cv_state **model_state,
                             cv_optim *optim, cv_ema *ema, char **json)
{
    *model_state = NULL;
    if (json) *json = NULL;
    fileset cur, prev;
    cv_status s = check_tag(ctx, tag);
    if (!s) s = names(ctx, dir, tag, "", "", &cur);
    if (!s) s = names(ctx, dir, tag, ".prev", "", &prev);
    if (s) return s;
    s = load_set(ctx, &cur, model_state, optim, ema, json);
    if (s == CV_OK) return CV_OK;
    char first[512];
    snprintf(first, sizeof first, "%s", cv_ctx_error(ctx));
    cv_status s2 = load_set(ctx, &prev, model_state, optim, ema, json);
    if (s2 == CV_OK) return CV_OK;
    if (s == CV_ERR_NOT_FOUND && s2 == CV_ERR_NOT_FOUND)
        return cv_fail(ctx, CV_ERR_NOT_FOUND, "%s/%s: no checkpoint (%s)", dir, tag, first);
    return cv_fail(ctx, s != CV_ERR_NOT_FOUND ? s : s2, "%s/%s: no complete checkpoint: %s; %s",
                   dir, tag, first, cv_ctx_error(ctx));
}
