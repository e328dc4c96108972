/* Detection boxes: the CSV and COCO JSON readers. Image ids and classes are kept as strings
 * (interned), so that a CSV and a JSON file, or two CSVs, can be compared when their ids agree
 * as text. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cvision/image.h"
#include "metrics/boxes.h"

/* ---- interned keys ---- */

static uint64_t hash(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < len; i++) h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
    return h;
}

void cv_keytab_free(cv_keytab *t)
{
    for (int i = 0; i < t->n; i++) free(t->keys[i]);
    free(t->keys);
    free(t->slots);
    memset(t, 0, sizeof *t);
}

int cv_keytab_find(const cv_keytab *t, const char *s, size_t len)
{
    if (!t->nslots) return -1;
    for (size_t i = hash(s, len) & (t->nslots - 1);; i = (i + 1) & (t->nslots - 1)) {
        int k = t->slots[i];
        if (k < 0) return -1;
        if (strlen(t->keys[k]) == len && !memcmp(t->keys[k], s, len)) return k;
    }
}

int cv_keytab_add(cv_keytab *t, const char *s, size_t len)
{
    int k = cv_keytab_find(t, s, len);
    if (k >= 0) return k;
    if (t->n >= (1 << 28)) return -1;
    if (2 * (size_t)(t->n + 1) > t->nslots) { /* rehash at half full */
        size_t ns = t->nslots ? t->nslots * 2 : 64;
        int *slots = malloc(ns * sizeof *slots);
        char **keys = realloc(t->keys, ns / 2 * sizeof *keys);
        if (!slots || !keys) {
            free(slots);
            if (keys) t->keys = keys;
            return -1;
        }
        t->keys = keys;
        for (size_t i = 0; i < ns; i++) slots[i] = -1;
        for (int j = 0; j < t->n; j++) {
            size_t i = hash(keys[j], strlen(keys[j])) & (ns - 1);
            while (slots[i] >= 0) i = (i + 1) & (ns - 1);
            slots[i] = j;
        }
        free(t->slots);
        t->slots = slots;
        t->nslots = ns;
    }
    char *c = malloc(len + 1);
    if (!c) return -1;
    memcpy(c, s, len);
    c[len] = 0;
    size_t i = hash(s, len) & (t->nslots - 1);
    while (t->slots[i] >= 0) i = (i + 1) & (t->nslots - 1);
    t->slots[i] = t->n;
    t->keys[t->n] = c;
    return t->n++;
}

/* ---- the set ---- */

void cv_det_free(cv_det_set *d)
{
    if (!d) return;
    cv_keytab_free(&d->imgs);
    cv_keytab_free(&d->cls);
    free(d->b);
    free(d->name);
    free(d);
}

size_t cv_det_count(const cv_det_set *d)
{
    return d->n;
}

static int push(cv_det_set *d, const cv_det_box *b)
{
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 256;
        cv_det_box *v = realloc(d->b, cap * sizeof *v);
        if (!v) return -1;
        d->b = v;
        d->cap = cap;
    }
    d->b[d->n++] = *b;
    return 0;
}

/* "file:LINE: " for CSV rows, "file: annotations[i]: " for JSON entries */
static void where(const cv_det_set *d, size_t at, char *buf, size_t size)
{
    if (d->json)
        snprintf(buf, size, "%s: %s[%zu]", d->name, d->list, at);
    else
        snprintf(buf, size, "%s:%zu", d->name, at);
}

void cv_det_where(const cv_det_set *d, size_t at, char *buf, size_t size)
{
    where(d, at, buf, size);
}

/* The checks shared by both formats: finite numbers, no negative width or height. */
static cv_status check_box(cv_ctx *ctx, const cv_det_set *d, const cv_det_box *b, double w,
                           double h)
{
    char at[300];
    where(d, b->at, at, sizeof at);
    const char *nf = !isfinite(b->x1)      ? "x1"
                     : !isfinite(b->y1)    ? "y1"
                     : !isfinite(w)        ? (d->json ? "width" : "x2")
                     : !isfinite(h)        ? (d->json ? "height" : "y2")
                     : !isfinite(b->score) ? "score"
                     : !isfinite(b->area)  ? "area"
                                           : NULL;
    if (nf) return cv_fail(ctx, CV_ERR_FORMAT, "%s: %s is not a finite number", at, nf);
    if (w < 0)
        return cv_fail(ctx, CV_ERR_FORMAT, "%s: negative width %g (%s)", at, w,
                       d->json ? "bbox is [x, y, width, height]" : "x2 < x1");
    if (h < 0)
        return cv_fail(ctx, CV_ERR_FORMAT, "%s: negative height %g (%s)", at, h,
                       d->json ? "bbox is [x, y, width, height]" : "y2 < y1");
    if (b->area < 0) return cv_fail(ctx, CV_ERR_FORMAT, "%s: negative area %g", at, b->area);
    return CV_OK;
}

/* ---- CSV: a header naming the columns, then one box per row ---- */

enum { C_IMG, C_CLS, C_X1, C_Y1, C_X2, C_Y2, C_SCORE, C_CROWD, C_N };
static const char *const col_names[C_N] = {"image_id", "class", "x1",    "y1",
                                           "x2",       "y2",    "score", "iscrowd"};

static int parse_double(const char *b, const char *e, double *out)
{
    char tmp[64];
    size_t len = (size_t)(e - b);
    if (len == 0 || len >= sizeof tmp) return -1;
    memcpy(tmp, b, len);
    tmp[len] = 0;
    char *end;
    errno = 0;
    *out = strtod(tmp, &end);
    return end == tmp + len ? 0 : -1;
}

static cv_status parse_csv(cv_ctx *ctx, cv_det_set *d, const char *buf, size_t len)
{
    const char *p = buf, *end = buf + len;
    if (len >= 3 && !memcmp(p, "\xEF\xBB\xBF", 3)) p += 3;
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *he = nl ? nl : end;
    int ncols = 1;
    for (const char *q = p; q < he; q++) ncols += *q == ',';
    if (ncols > 1000)
        return cv_fail(ctx, CV_ERR_FORMAT, "%s:1: %d columns is too many", d->name, ncols);
    const char **fb = malloc((size_t)ncols * sizeof *fb), **fe = malloc((size_t)ncols * sizeof *fe);
    cv_status st = CV_OK;
    if (!fb || !fe) {
        st = cv_fail(ctx, CV_ERR_NOMEM, "%s: out of memory", d->name);
        goto done;
    }
    int col[C_N];
    for (int c = 0; c < C_N; c++) col[c] = -1;
    cv_csv_split(p, he, fb, fe, ncols);
    for (int i = 0; i < ncols; i++) {
        const char *b = fb[i], *e = fe[i];
        cv_csv_trim(&b, &e);
        for (int c = 0; c < C_N; c++)
            if ((size_t)(e - b) == strlen(col_names[c]) &&
                !memcmp(b, col_names[c], (size_t)(e - b))) {
                if (col[c] >= 0) {
                    st = cv_fail(ctx, CV_ERR_FORMAT, "%s:1: column '%s' appears twice", d->name,
                                 col_names[c]);
                    goto done;
                }
                col[c] = i;
            }
    }
    for (int c = 0; c < C_N; c++)
        if (col[c] < 0 && (c <= C_Y2 || (c == C_SCORE && d->pred))) {
            st = cv_fail(ctx, CV_ERR_FORMAT,
                         "%s:1: no '%s' column (the header must name image_id,class,x1,y1,x2,y2%s)",
                         d->name, col_names[c], d->pred ? ",score" : "");
            goto done;
        }
    size_t line = 1;
    for (p = nl ? nl + 1 : end; p < end; p = nl ? nl + 1 : end) {
        line++;
        nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end, *tb = p, *te = le;
        cv_csv_trim(&tb, &te);
        if (tb == te) continue;
        int nf = cv_csv_split(p, le, fb, fe, ncols);
        if (nf != ncols) {
            st = cv_fail(ctx, CV_ERR_FORMAT,
                         "%s:%zu: expected %d fields as in the header, found %s%d", d->name, line,
                         ncols, nf > ncols ? "more than " : "", nf > ncols ? ncols : nf);
            goto done;
        }
        const char *b[C_N] = {0}, *e[C_N] = {0};
        for (int c = 0; c < C_N; c++)
            if (col[c] >= 0) {
                b[c] = fb[col[c]];
                e[c] = fe[col[c]];
                cv_csv_trim(&b[c], &e[c]);
            }
        if (b[C_IMG] == e[C_IMG]) {
            st = cv_fail(ctx, CV_ERR_FORMAT, "%s:%zu: empty image_id", d->name, line);
            goto done;
        }
        int img = cv_keytab_add(&d->imgs, b[C_IMG], (size_t)(e[C_IMG] - b[C_IMG]));
        if (img < 0) goto oom;
        int empty = 1; /* class and box all empty: an image without objects (ground truth) */
        for (int c = C_CLS; c <= C_Y2; c++) empty &= b[c] == e[c];
        if (empty && !d->pred) continue;
        cv_det_box box = {.img = img, .at = line};
        double v[4];
        static const char *const coord[4] = {"x1", "y1", "x2", "y2"};
        if (b[C_CLS] == e[C_CLS]) {
            st = cv_fail(ctx, CV_ERR_FORMAT, "%s:%zu: empty class", d->name, line);
            goto done;
        }
        for (int k = 0; k < 4; k++)
            if (parse_double(b[C_X1 + k], e[C_X1 + k], &v[k])) {
                st = cv_fail(ctx, CV_ERR_FORMAT, "%s:%zu: column '%s': '%.*s' is not a number",
                             d->name, line, coord[k],
                             (int)(e[C_X1 + k] - b[C_X1 + k] < 40 ? e[C_X1 + k] - b[C_X1 + k] : 40),
                             b[C_X1 + k]);
                goto done;
            }
        if (d->pred && parse_double(b[C_SCORE], e[C_SCORE], &box.score)) {
            st = cv_fail(
                ctx, CV_ERR_FORMAT, "%s:%zu: column 'score': '%.*s' is not a number", d->name, line,
                (int)(e[C_SCORE] - b[C_SCORE] < 40 ? e[C_SCORE] - b[C_SCORE] : 40), b[C_SCORE]);
            goto done;
        }
        if (!d->pred && col[C_CROWD] >= 0 && b[C_CROWD] != e[C_CROWD]) {
            size_t l = (size_t)(e[C_CROWD] - b[C_CROWD]);
            if (l != 1 || (*b[C_CROWD] != '0' && *b[C_CROWD] != '1')) {
                st = cv_fail(ctx, CV_ERR_FORMAT, "%s:%zu: column 'iscrowd': expected 0 or 1",
                             d->name, line);
                goto done;
            }
            box.crowd = *b[C_CROWD] == '1';
        }
        box.x1 = v[0];
        box.y1 = v[1];
        box.x2 = v[2];
        box.y2 = v[3];
        double w = v[2] - v[0], h = v[3] - v[1];
        box.barea = box.area = w * h;
        if ((st = check_box(ctx, d, &box, w, h))) goto done;
        box.cls = cv_keytab_add(&d->cls, b[C_CLS], (size_t)(e[C_CLS] - b[C_CLS]));
        if (box.cls < 0 || push(d, &box)) goto oom;
    }
    goto done;
oom:
    st = cv_fail(ctx, CV_ERR_NOMEM, "%s: out of memory", d->name);
done:
    free(fb);
    free(fe);
    return st;
}

/* ---- COCO JSON ---- */

/* An id (image_id, category_id, id) as its key text: integers as decimal, strings as is. */
static int id_key(const cJSON *v, char *buf, size_t size, const char **key, size_t *len)
{
    if (cJSON_IsString(v)) {
        *key = v->valuestring;
        *len = strlen(v->valuestring);
        return *len ? 0 : -1;
    }
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) ||
        fabs(v->valuedouble) > 9007199254740992.0)
        return -1;
    snprintf(buf, size, "%.0f", v->valuedouble);
    *key = buf;
    *len = strlen(buf);
    return 0;
}

static cv_status parse_json(cv_ctx *ctx, cv_det_set *d, const char *buf, size_t len)
{
    const char *endp = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(buf, len, &endp, 0);
    if (!root) {
        size_t off = endp && endp >= buf && endp <= buf + len ? (size_t)(endp - buf) : 0, line = 1;
        for (size_t i = 0; i < off; i++) line += buf[i] == '\n';
        return cv_fail(ctx, CV_ERR_FORMAT, "%s:%zu: not valid JSON (at byte %zu)", d->name, line,
                       off);
    }
    cv_status st = CV_OK;
    char kb[40], at[300];
    const char *key;
    size_t kl;
    const cJSON *anns = root;
    d->list = "results";
    if (cJSON_IsObject(root)) {
        anns = cJSON_GetObjectItemCaseSensitive(root, "annotations");
        d->list = "annotations";
    }
    if (!cJSON_IsArray(anns)) {
        st = cv_fail(ctx, CV_ERR_FORMAT, "%s: expected %s", d->name,
                     d->pred ? "a list of results ([{\"image_id\", \"category_id\", \"bbox\", "
                               "\"score\"}, ...])"
                             : "an object with an \"annotations\" list");
        goto done;
    }
    if (!d->pred && cJSON_IsObject(root)) {
        /* the declared images (also those without objects) and categories */
        static const char *const lists[2] = {"images", "categories"};
        for (int l = 0; l < 2; l++) {
            const cJSON *arr = cJSON_GetObjectItemCaseSensitive(root, lists[l]), *it;
            if (!arr) continue;
            if (!cJSON_IsArray(arr)) {
                st = cv_fail(ctx, CV_ERR_FORMAT, "%s: \"%s\" is not a list", d->name, lists[l]);
                goto done;
            }
            size_t i = 0;
            cJSON_ArrayForEach(it, arr)
            {
                if (id_key(cJSON_GetObjectItemCaseSensitive(it, "id"), kb, sizeof kb, &key, &kl)) {
                    st = cv_fail(ctx, CV_ERR_FORMAT, "%s: %s[%zu]: no integer or string \"id\"",
                                 d->name, lists[l], i);
                    goto done;
                }
                if (cv_keytab_add(l ? &d->cls : &d->imgs, key, kl) < 0) goto oom;
                i++;
            }
        }
        d->has_images = cJSON_GetObjectItemCaseSensitive(root, "images") != NULL;
    }
    size_t i = 0;
    const cJSON *a;
    cJSON_ArrayForEach(a, anns)
    {
        cv_det_box box = {.at = i};
        where(d, i, at, sizeof at);
        i++;
        if (!cJSON_IsObject(a)) {
            st = cv_fail(ctx, CV_ERR_FORMAT, "%s: not an object", at);
            goto done;
        }
        if (id_key(cJSON_GetObjectItemCaseSensitive(a, "image_id"), kb, sizeof kb, &key, &kl)) {
            st = cv_fail(ctx, CV_ERR_FORMAT, "%s: no integer or string \"image_id\"", at);
            goto done;
        }
        box.img =
            d->has_images ? cv_keytab_find(&d->imgs, key, kl) : cv_keytab_add(&d->imgs, key, kl);
        if (box.img < 0) {
            if (!d->has_images) goto oom;
            st = cv_fail(ctx, CV_ERR_FORMAT, "%s: image_id %s is not in \"images\"", at, key);
            goto done;
        }
        if (id_key(cJSON_GetObjectItemCaseSensitive(a, "category_id"), kb, sizeof kb, &key, &kl)) {
            st = cv_fail(ctx, CV_ERR_FORMAT, "%s: no integer or string \"category_id\"", at);
            goto done;
        }
        if ((box.cls = cv_keytab_add(&d->cls, key, kl)) < 0) goto oom;
        const cJSON *bb = cJSON_GetObjectItemCaseSensitive(a, "bbox");
        double v[4];
        int nb = cJSON_IsArray(bb) ? cJSON_GetArraySize(bb) : -1;
        for (int k = 0; k < 4 && nb == 4; k++) {
            const cJSON *x = cJSON_GetArrayItem(bb, k);
            if (!cJSON_IsNumber(x))
                nb = -1;
            else
                v[k] = x->valuedouble;
        }
        if (nb != 4) {
            st = cv_fail(ctx, CV_ERR_FORMAT, "%s: \"bbox\" must be [x, y, width, height]", at);
            goto done;
        }
        box.x1 = v[0];
        box.y1 = v[1];
        box.x2 = v[0] + v[2]; /* as pycocotools' IoU computes the corners */
        box.y2 = v[1] + v[3];
        box.barea = box.area = v[2] * v[3];
        const cJSON *sc = cJSON_GetObjectItemCaseSensitive(a, "score");
        if (d->pred) {
            if (!cJSON_IsNumber(sc)) {
                st = cv_fail(ctx, CV_ERR_FORMAT, "%s: no numeric \"score\"", at);
                goto done;
            }
            box.score = sc->valuedouble;
        } else {
            const cJSON *cr = cJSON_GetObjectItemCaseSensitive(a, "iscrowd");
            const cJSON *ar = cJSON_GetObjectItemCaseSensitive(a, "area");
            if (cr && !cJSON_IsBool(cr) &&
                !(cJSON_IsNumber(cr) && (cr->valuedouble == 0 || cr->valuedouble == 1))) {
                st = cv_fail(ctx, CV_ERR_FORMAT, "%s: \"iscrowd\" must be 0 or 1", at);
                goto done;
            }
            box.crowd = cJSON_IsTrue(cr) || (cJSON_IsNumber(cr) && cr->valuedouble == 1);
            if (ar) {
                if (!cJSON_IsNumber(ar)) {
                    st = cv_fail(ctx, CV_ERR_FORMAT, "%s: \"area\" is not a number", at);
                    goto done;
                }
                box.area = ar->valuedouble; /* COCO: the segment's area drives the size ranges */
            }
        }
        if ((st = check_box(ctx, d, &box, v[2], v[3]))) goto done;
        if (push(d, &box)) goto oom;
    }
    goto done;
oom:
    st = cv_fail(ctx, CV_ERR_NOMEM, "%s: out of memory", d->name);
done:
    cJSON_Delete(root);
    return st;
}

cv_status cv_det_parse(cv_ctx *ctx, const char *buf, size_t len, const char *name, int predictions,
                       cv_det_set **out)
{
    *out = NULL;
    cv_det_set *d = calloc(1, sizeof *d);
    if (!d || !(d->name = strdup(name))) {
        free(d);
        return cv_fail(ctx, CV_ERR_NOMEM, "%s: out of memory", name);
    }
    d->pred = predictions != 0;
    size_t i = 0;
    while (i < len && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\r' || buf[i] == '\n')) i++;
    if (i == len) {
        cv_det_free(d);
        return cv_fail(ctx, CV_ERR_FORMAT, "%s: empty file", name);
    }
    d->json = buf[i] == '{' || buf[i] == '[';
    cv_status st = d->json ? parse_json(ctx, d, buf, len) : parse_csv(ctx, d, buf, len);
    if (st) {
        cv_det_free(d);
        return st;
    }
    *out = d;
    return CV_OK;
}

cv_status cv_det_read(cv_ctx *ctx, const char *path, int predictions, cv_det_set **out)
{
    void *buf;
    size_t n;
    *out = NULL;
    cv_status st = cv_read_file(ctx, path, &buf, &n);
    if (st) return st;
    st = cv_det_parse(ctx, buf, n, path, predictions, out);
    free(buf);
    return st;
}
