/* The torch.hub cache: where weights live, their SHA-256 check, and downloading missing ones. */
#include <curl/curl.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cvision/weights.h"

static void to_hex(const unsigned char *d, unsigned n, char *hex)
{
    for (unsigned i = 0; i < n; i++) snprintf(hex + 2 * i, 3, "%02x", d[i]);
}

cv_status cv_sha256_file(cv_ctx *ctx, const char *path, char hex[65])
{
    FILE *f = fopen(path, "rb");
    if (!f) return cv_fail(ctx, CV_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char buf[1 << 16], digest[EVP_MAX_MD_SIZE];
    unsigned dn = 0;
    int ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    size_t n;
    while (ok && (n = fread(buf, 1, sizeof buf, f)) > 0) ok = EVP_DigestUpdate(md, buf, n);
    int err = ferror(f);
    ok = ok && !err && EVP_DigestFinal_ex(md, digest, &dn);
    EVP_MD_CTX_free(md);
    fclose(f);
    if (!ok) return cv_fail(ctx, CV_ERR_IO, "%s: cannot read for hashing", path);
    to_hex(digest, dn, hex);
    return CV_OK;
}

int cv_hash_prefix(const char *name, char *buf, size_t n)
{
    /* torch.hub's HASH_REGEX = r"-([a-f0-9]*)\." searched in the file name: first match wins. */
    for (const char *p = strchr(name, '-'); p; p = strchr(p + 1, '-')) {
        const char *q = p + 1;
        while ((*q >= 'a' && *q <= 'f') || (*q >= '0' && *q <= '9')) q++;
        if (*q != '.') continue;
        size_t len = (size_t)(q - p - 1);
        if (!n || len >= n) break;
        memcpy(buf, p + 1, len);
        buf[len] = 0;
        return (int)len;
    }
    if (n) buf[0] = 0;
    return 0;
}

static const char *env(const char *k)
{
    const char *v = getenv(k);
    return v && *v ? v : NULL;
}

cv_status cv_hub_dir(cv_ctx *ctx, char *buf, size_t n)
{
    const char *v;
    int w;
    if ((v = env("TORCH_HOME")))
        w = snprintf(buf, n, "%s/hub", v);
    else if ((v = env("XDG_CACHE_HOME")))
        w = snprintf(buf, n, "%s/torch/hub", v);
    else if ((v = env("HOME")))
        w = snprintf(buf, n, "%s/.cache/torch/hub", v);
    else
        return cv_fail(ctx, CV_ERR_NOT_FOUND,
                       "hub: none of TORCH_HOME, XDG_CACHE_HOME, HOME is "
                       "set");
    if (w < 0 || (size_t)w >= n) return cv_fail(ctx, CV_ERR_INVALID, "hub: path too long");
    return CV_OK;
}

static int mkdirs(char *path)
{
    for (char *p = path + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        int r = mkdir(path, 0777);
        *p = '/';
        if (r && errno != EEXIST) return -1;
    }
    return mkdir(path, 0777) && errno != EEXIST ? -1 : 0;
}

static cv_status check_hash(cv_ctx *ctx, const char *path, const char *file, const char *hex)
{
    char want[80];
    size_t n = (size_t)cv_hash_prefix(file, want, sizeof want);
    if (strncmp(hex, want, n))
        return cv_fail(ctx, CV_ERR_FORMAT,
                       "%s: invalid hash value (expected \"%s\", got \"%.64s\"): "
                       "the file is corrupt or not the one its name says; delete it",
                       path, want, hex);
    return CV_OK;
}

typedef struct {
    FILE *f;
    EVP_MD_CTX *md;
    int err;
} sink;

static size_t on_data(char *p, size_t size, size_t nmemb, void *user)
{
    sink *s = user;
    size_t n = size * nmemb;
    if (fwrite(p, 1, n, s->f) != n || !EVP_DigestUpdate(s->md, p, n)) {
        s->err = 1;
        return 0;
    }
    return n;
}

static cv_status download(cv_ctx *ctx, const char *url, const char *file, const char *dst)
{
    unsigned char rnd[16];
    char tmp[4200], rhex[33], hex[65];
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) /* only uniqueness matters here */
        for (unsigned i = 0; i < sizeof rnd; i++) rnd[i] = (unsigned char)((getpid() >> i) + i);
    to_hex(rnd, sizeof rnd, rhex);
    snprintf(tmp, sizeof tmp, "%s.%s.partial", dst, rhex);
    sink s = {.f = fopen(tmp, "wb"), .md = EVP_MD_CTX_new()};
    CURL *c = curl_easy_init();
    char err[CURL_ERROR_SIZE] = "";
    CURLcode rc = CURLE_FAILED_INIT;
    if (s.f && s.md && c && EVP_DigestInit_ex(s.md, EVP_sha256(), NULL)) {
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
        curl_easy_setopt(c, CURLOPT_ERRORBUFFER, err);
        curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 20L);
        curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L); /* give up on a stalled transfer */
        curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
        curl_easy_setopt(c, CURLOPT_USERAGENT, "torch.hub");
        rc = curl_easy_perform(c);
    }
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned dn = 0;
    int ok = rc == CURLE_OK && !s.err && EVP_DigestFinal_ex(s.md, digest, &dn);
    ok = s.f && fflush(s.f) == 0 && fsync(fileno(s.f)) == 0 && ok;
    if (s.f) ok = fclose(s.f) == 0 && ok;
    EVP_MD_CTX_free(s.md);
    if (c) curl_easy_cleanup(c);
    if (!ok) {
        unlink(tmp);
        const char *why = !s.f ? strerror(errno) : *err ? err : curl_easy_strerror(rc);
        return cv_fail(ctx, CV_ERR_NETWORK,
                       "cannot download %s (%s): fetch it by other means and "
                       "save it as %s",
                       url, why, dst);
    }
    to_hex(digest, dn, hex);
    cv_status st = check_hash(ctx, tmp, file, hex);
    if (st == CV_OK && rename(tmp, dst) != 0)
        st = cv_fail(ctx, CV_ERR_IO, "%s: cannot move the download into place: %s", dst,
                     strerror(errno));
    if (st != CV_OK) unlink(tmp);
    return st;
}

cv_status cv_weights_fetch(cv_ctx *ctx, const char *url, const char *file_name, char *path_out,
                           size_t n)
{
    char base[512], hub[4096], dir[4200];
    if (!file_name) {
        /* the last component of the URL's path */
        size_t end = strcspn(url, "?#");
        const char *b = url;
        for (size_t i = 0; i < end; i++)
            if (url[i] == '/') b = url + i + 1;
        size_t len = (size_t)(url + end - b);
        if (len >= sizeof base) len = 0;
        memcpy(base, b, len);
        base[len] = 0;
        file_name = base;
    }
    if (!*file_name || strchr(file_name, '/') || !strcmp(file_name, ".") ||
        !strcmp(file_name, ".."))
        return cv_fail(ctx, CV_ERR_INVALID, "%s: no file name to store it under", url);
    cv_status s = cv_hub_dir(ctx, hub, sizeof hub);
    if (s != CV_OK) return s;
    snprintf(dir, sizeof dir, "%s/checkpoints", hub);
    int w = snprintf(path_out, n, "%s/%s", dir, file_name);
    if (w < 0 || (size_t)w >= n) return cv_fail(ctx, CV_ERR_INVALID, "%s: path too long", dir);
    struct stat sb;
    if (stat(path_out, &sb) == 0) {
        if (!S_ISREG(sb.st_mode))
            return cv_fail(ctx, CV_ERR_IO, "%s: not a regular file", path_out);
        char hex[65];
        s = cv_sha256_file(ctx, path_out, hex);
        return s == CV_OK ? check_hash(ctx, path_out, file_name, hex) : s;
    }
    if (mkdirs(dir) != 0)
        return cv_fail(ctx, CV_ERR_IO,
                       "%s: cannot create the cache folder (%s): save %s there as "
                       "%s",
                       dir, strerror(errno), url, path_out);
    return download(ctx, url, file_name, path_out);
}
