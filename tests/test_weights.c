/* Unit tests for the weights layer: the pickle machine, safetensors round trips, SHA-256 and the
 * torch.hub cache logic (no network: the download test targets a closed local port). */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "test.h"
#include "weights/internal.h"
#include "weights/pickle.h"

static cv_status run_pickle(cv_ctx *ctx, pk_arena *a, const char *bytes, size_t n, pv **out)
{
    pk_opts o = {.name = "test.pkl"};
    return pk_load(ctx, &o, a, (const uint8_t *)bytes, n, NULL, out);
}

#define PK(s) s, sizeof(s) - 1

static void test_pickle_values(void)
{
    cv_ctx *ctx = cv_ctx_new();
    pk_arena *a = pk_arena_new();
    pv *v;
    /* {'a': (1, -2, 70000), 'b': [1.5, None, True], 'c': b'xy', 'd': -3 (LONG1), 'e': 2**40} */
    static const char p[] = "\x80\x02}q\x00(X\x01\x00\x00\x00"
                            "a"
                            "K\x01J\xfe\xff\xff\xff"
                            "J\x70\x11\x01\x00\x87X\x01\x00\x00\x00"
                            "b"
                            "](G?\xf8\x00\x00\x00"
                            "\x00\x00\x00N\x88"
                            "eX\x01\x00\x00\x00"
                            "c"
                            "C\x02xyX\x01\x00\x00\x00"
                            "d"
                            "\x8a\x01\xfdX\x01\x00\x00\x00"
                            "e"
                            "\x8a\x06\x00\x00\x00\x00"
                            "\x00\x01u.";
    CHECK_OK(ctx, run_pickle(ctx, a, PK(p), &v));
    CHECK(v && v->kind == PV_DICT && v->u.seq.n == 10);
    const pv *t = pk_dict_get(v, "a");
    CHECK(t && t->kind == PV_TUPLE && t->u.seq.n == 3);
    if (t && t->u.seq.n == 3) {
        CHECK(t->u.seq.v[0]->u.i == 1 && t->u.seq.v[1]->u.i == -2 && t->u.seq.v[2]->u.i == 70000);
    }
    const pv *l = pk_dict_get(v, "b");
    CHECK(l && l->kind == PV_LIST && l->u.seq.n == 3);
    if (l && l->u.seq.n == 3) {
        CHECK(l->u.seq.v[0]->kind == PV_FLOAT && l->u.seq.v[0]->u.f == 1.5);
        CHECK(l->u.seq.v[1]->kind == PV_NONE && l->u.seq.v[2]->kind == PV_BOOL);
    }
    const pv *c = pk_dict_get(v, "c");
    CHECK(c && c->kind == PV_BYTES && c->u.str.n == 2 && !memcmp(c->u.str.s, "xy", 2));
    const pv *d = pk_dict_get(v, "d");
    CHECK(d && d->kind == PV_INT && d->u.i == -3);
    const pv *e = pk_dict_get(v, "e");
    CHECK(e && e->kind == PV_INT && e->u.i == (int64_t)1 << 40);
    CHECK(!pk_dict_get(v, "zz"));

    /* protocol 4: FRAME, SHORT_BINUNICODE, MEMOIZE, STACK_GLOBAL (placeholder), BINGET */
    static const char p4[] = "\x80\x04\x95\x30\x00\x00\x00\x00\x00\x00\x00\x8c\x08"
                             "argparse"
                             "\x94\x8c\x09"
                             "Namespace"
                             "\x94\x93\x94)\x81\x94}\x94\x8c\x02"
                             "lr\x94h\x00sb.";
    CHECK_OK(ctx, run_pickle(ctx, a, PK(p4), &v));
    CHECK(v && v->kind == PV_OBJECT && !strcmp(pk_kind_name(v), "argparse.Namespace"));
    CHECK(v && v->state && v->state->kind == PV_DICT);
    pk_arena_free(a);
    cv_ctx_free(ctx);
}

static void test_pickle_errors(void)
{
    cv_ctx *ctx = cv_ctx_new();
    pk_arena *a = pk_arena_new();
    pv *v;
    static const struct {
        const char *bytes;
        size_t n;
        const char *msg;
    } bad[] = {
        {PK("\x80\x02"
            "cos\nsystem\nX\x02\x00\x00\x00idR."),
         "forbidden global 'os.system'"},
        {PK("\x80\x02"
            "cbuiltins\ngetattr\n."),
         "forbidden global 'builtins.getattr'"},
        {PK("\x80\x02"
            "cnt\nsystem\n."),
         "forbidden global 'nt.system'"},
        {PK("\x80\x02"
            "cos.path\njoin\n."),
         "forbidden global 'os.path.join'"},
        {PK("\x80\x02R."), "stack underflow"},
        {PK("\x80\x02(R."), "stack underflow"}, /* a MARK hides what is below it */
        {PK("\x80\x02h\x03."), "never stored"},
        {PK("\x80\x02K\x01r\xff\xff\xff\xff."), "too large"},
        {PK("\x80\x02X\x10\x00\x00\x00"
            "abc."),
         "runs past the end"},
        {PK("\x80\x02K\x01"), "no STOP"},
        {PK("\x80\x02K\x01K\x02."), "STOP with 2 items"},
        {PK("\x80\x02\xfe."), "unsupported pickle opcode 0xfe"},
        {PK("\x80\x02K\x01)R."), "not callable"},
        {PK("\x80\x02}K\x01s."), "stack underflow"},
        {PK("\x80\x02K\x01K\x02K\x03s."), "SETITEM on a int"},
        {PK("\x80\x02"
            "c\xff\nx\n."),
         "malformed GLOBAL"},
        {PK("\x80\x02"
            "cabc"),
         "unterminated GLOBAL"},
        {PK("\x80\x02X\x01\x00\x00\x00xQ."), "persistent id"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        cv_status s = run_pickle(ctx, a, bad[i].bytes, bad[i].n, &v);
        CHECK(s != CV_OK);
        if (s == CV_OK || !strstr(cv_ctx_error(ctx), bad[i].msg)) {
            fprintf(stderr, "  case %zu: '%s' lacks '%s'\n", i, cv_ctx_error(ctx), bad[i].msg);
            test_failures++;
        }
        CHECK(!strncmp(cv_ctx_error(ctx), "test.pkl: ", 10));
    }
    /* every prefix of a valid pickle fails cleanly */
    static const char ok[] = "\x80\x02}q\x00(X\x01\x00\x00\x00"
                             "a"
                             "K\x01X\x01\x00\x00\x00"
                             "b"
                             "](G?\xf8\x00\x00\x00\x00\x00\x00N\x88"
                             "eu.";
    CHECK_OK(ctx, run_pickle(ctx, a, PK(ok), &v));
    for (size_t cut = 0; cut + 1 < sizeof ok - 1; cut++) CHECK(run_pickle(ctx, a, ok, cut, &v));
    /* deep MARK nesting is bounded */
    size_t n = 20000;
    char *deep = malloc(n + 3);
    memcpy(deep, "\x80\x02", 2);
    memset(deep + 2, '(', n);
    deep[n + 2] = '.';
    CHECK(run_pickle(ctx, a, deep, n + 3, &v) == CV_ERR_FORMAT);
    CHECK(strstr(cv_ctx_error(ctx), "nested too deeply") != NULL);
    free(deep);
    pk_arena_free(a);
    cv_ctx_free(ctx);
}

static void tmpdir(char *buf, size_t n)
{
    snprintf(buf, n, "/tmp/cv_test_weights_XXXXXX");
    CHECK(mkdtemp(buf) != NULL);
}

static void test_safetensors_roundtrip(void)
{
    cv_ctx *ctx = cv_ctx_new();
    char dir[64], path[128];
    tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/rt.safetensors", dir);
    cv_state *st = cv_state_new();
    const cv_dtype types[] = {CV_F32, CV_I64, CV_U8, CV_BF16, CV_F64, CV_BOOL, CV_I32, CV_F16};
    for (int i = 0; i < 8; i++) {
        int64_t shape[3] = {i + 1, 2, 3};
        cv_tensor *t;
        CHECK_OK(ctx, cv_tensor_new(ctx, types[i], i % 4, shape, &t));
        for (size_t b = 0; b < t->nbytes; b++)
            ((uint8_t *)t->data)[b] = (uint8_t)(b * 7 + (size_t)i);
        if (types[i] == CV_BOOL) memset(t->data, 1, t->nbytes);
        char name[16];
        snprintf(name, sizeof name, "t%d.%s", 7 - i, cv_dtype_name(types[i]));
        CHECK_OK(ctx, cv_state_put(ctx, st, name, t));
    }
    int64_t zero[2] = {0, 4};
    cv_tensor *t;
    CHECK_OK(ctx, cv_tensor_new(ctx, CV_F32, 2, zero, &t));
    CHECK_OK(ctx, cv_state_put(ctx, st, "empty", t));
    CHECK_OK(ctx, cv_state_set_meta(ctx, st, "format", "pt"));
    CHECK_OK(ctx, cv_state_set_meta(ctx, st, "quote\"d", "back\\slash\n"));
    CHECK_OK(ctx, cv_safetensors_save(ctx, st, path));
    cv_state *back;
    CHECK_OK(ctx, cv_weights_load(ctx, path, &back));
    if (back) {
        CHECK(cv_state_count(back) == cv_state_count(st));
        for (int i = 0; i < cv_state_count(st); i++) {
            cv_tensor *x = cv_state_tensor(st, i), *y = cv_state_tensor(back, i);
            CHECK(!strcmp(cv_state_name(st, i), cv_state_name(back, i)));
            CHECK(x->dtype == y->dtype && cv_tensor_same_shape(x, y) && x->nbytes == y->nbytes);
            CHECK(!memcmp(x->data, y->data, x->nbytes));
        }
        CHECK(cv_state_get_meta(back, "format") &&
              !strcmp(cv_state_get_meta(back, "format"), "pt"));
        const char *q = cv_state_get_meta(back, "quote\"d");
        CHECK(q && !strcmp(q, "back\\slash\n"));
        cv_state_free(back);
    }
    /* the header length is a multiple of 8 and the file loads from memory as well */
    FILE *f = fopen(path, "rb");
    uint8_t buf[1 << 14];
    size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
    if (f) fclose(f);
    CHECK(n > 8 && buf[0] % 8 == 0);
    CHECK_OK(ctx, cv_weights_load_mem(ctx, "mem", buf, n, NULL, &back));
    cv_state_free(back);
    CHECK(cv_weights_load_mem(ctx, "mem", buf, n - 1, NULL, &back) == CV_ERR_FORMAT);
    CHECK(!strncmp(cv_ctx_error(ctx), "mem: ", 5));
    CHECK(cv_weights_load_mem(ctx, "mem", buf, n, "model", &back) == CV_ERR_INVALID);
    cv_state_free(st);
    unlink(path);
    rmdir(dir);
    cv_ctx_free(ctx);
}

static void test_sniff(void)
{
    CHECK(cv_weights_sniff((const uint8_t *)"PK\x03\x04....", 8) == WF_ZIP);
    CHECK(cv_weights_sniff((const uint8_t *)"\x80\x02\x8a\x0a", 4) == WF_LEGACY);
    CHECK(cv_weights_sniff((const uint8_t *)"\x08\0\0\0\0\0\0\0{}      ", 16) == WF_SAFETENSORS);
    CHECK(cv_weights_sniff((const uint8_t *)"hello", 5) == WF_UNKNOWN);
}

static void test_hash_prefix(void)
{
    char b[32];
    CHECK(cv_hash_prefix("resnet18-f37072fd.pth", b, sizeof b) == 8 && !strcmp(b, "f37072fd"));
    CHECK(cv_hash_prefix("alexnet-owt-7be5be79.pth", b, sizeof b) == 8 && !strcmp(b, "7be5be79"));
    CHECK(cv_hash_prefix("shufflenetv2_x0.5-f707e7126e.pth", b, sizeof b) == 10 &&
          !strcmp(b, "f707e7126e"));
    CHECK(cv_hash_prefix("resnet18_fbgemm_16fa66dd.pth", b, sizeof b) == 0 && !*b);
    CHECK(cv_hash_prefix("x-ABCDEF.pth", b, sizeof b) == 0);
    CHECK(cv_hash_prefix("x-.pth", b, sizeof b) == 0 && !*b);
    CHECK(cv_hash_prefix("a-b-12.tar.gz", b, sizeof b) == 2 && !strcmp(b, "12"));
}

static void write_file(const char *path, const char *data)
{
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f) return;
    fputs(data, f);
    fclose(f);
}

static void test_sha256_and_hub(void)
{
    cv_ctx *ctx = cv_ctx_new();
    char dir[64], path[256], hex[65], got[4096], want[4096];
    tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/abc", dir);
    write_file(path, "abc"); /* FIPS 180-2 test vector */
    CHECK_OK(ctx, cv_sha256_file(ctx, path, hex));
    CHECK(!strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
    unlink(path);

    setenv("TORCH_HOME", "/x/th", 1);
    setenv("XDG_CACHE_HOME", "/x/xdg", 1);
    setenv("HOME", "/x/home", 1);
    CHECK_OK(ctx, cv_hub_dir(ctx, got, sizeof got));
    CHECK(!strcmp(got, "/x/th/hub"));
    unsetenv("TORCH_HOME");
    CHECK_OK(ctx, cv_hub_dir(ctx, got, sizeof got));
    CHECK(!strcmp(got, "/x/xdg/torch/hub"));
    setenv("XDG_CACHE_HOME", "", 1); /* empty counts as unset */
    CHECK_OK(ctx, cv_hub_dir(ctx, got, sizeof got));
    CHECK(!strcmp(got, "/x/home/.cache/torch/hub"));
    char small[8];
    CHECK(cv_hub_dir(ctx, small, sizeof small) == CV_ERR_INVALID);

    /* a cached file is used without network, after its hash prefix is checked */
    setenv("TORCH_HOME", dir, 1);
    char ck[128];
    snprintf(ck, sizeof ck, "%s/hub", dir);
    mkdir(ck, 0777);
    snprintf(ck, sizeof ck, "%s/hub/checkpoints", dir);
    mkdir(ck, 0777);
    snprintf(path, sizeof path, "%s/tmp.bin", dir);
    write_file(path, "weights!");
    CHECK_OK(ctx, cv_sha256_file(ctx, path, hex));
    char name[64], cached[256];
    snprintf(name, sizeof name, "net-%.8s.pth", hex);
    snprintf(cached, sizeof cached, "%s/%s", ck, name);
    CHECK(rename(path, cached) == 0);
    CHECK_OK(ctx,
             cv_weights_fetch(ctx, "http://127.0.0.1:9/models/net.pth", name, got, sizeof got));
    CHECK(!strcmp(got, cached));
    /* the name from the URL, query stripped */
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:9/models/%s?x=1", name);
    CHECK_OK(ctx, cv_weights_fetch(ctx, url, NULL, got, sizeof got));
    CHECK(!strcmp(got, cached));
    /* a wrong hash in the name is refused */
    snprintf(want, sizeof want, "%s/net-00000000.pth", ck);
    CHECK(rename(cached, want) == 0);
    CHECK(cv_weights_fetch(ctx, "http://127.0.0.1:9/net-00000000.pth", NULL, got, sizeof got) ==
          CV_ERR_FORMAT);
    CHECK(strstr(cv_ctx_error(ctx), "invalid hash value (expected \"00000000\"") != NULL);
    unlink(want);
    /* no hash in the name: no check */
    snprintf(want, sizeof want, "%s/plain_weights.pth", ck);
    write_file(want, "x");
    CHECK_OK(ctx,
             cv_weights_fetch(ctx, "http://127.0.0.1:9/plain_weights.pth", NULL, got, sizeof got));
    unlink(want);

    /* a failed download says, in one line, which URL to put where, and leaves nothing behind */
    time_t t0 = time(NULL);
    CHECK(cv_weights_fetch(ctx, "http://127.0.0.1:9/x-abcdef12.pth", NULL, got, sizeof got) ==
          CV_ERR_NETWORK);
    CHECK(time(NULL) - t0 < 15);
    snprintf(want, sizeof want, "%s/x-abcdef12.pth", ck);
    const char *msg = cv_ctx_error(ctx);
    CHECK(strstr(msg, "http://127.0.0.1:9/x-abcdef12.pth") && strstr(msg, want));
    CHECK(!strchr(msg, '\n'));
    CHECK(access(want, F_OK) != 0);
    CHECK(rmdir(ck) == 0); /* empty: no .partial left */
    snprintf(ck, sizeof ck, "%s/hub", dir);
    rmdir(ck);
    rmdir(dir);
    CHECK(cv_weights_fetch(ctx, "http://127.0.0.1:9/", NULL, got, sizeof got) == CV_ERR_INVALID);
    cv_ctx_free(ctx);
}

static void test_catalog(void)
{
    int n = cv_catalog_count();
    CHECK(n > 0 && !cv_catalog_entry(n) && !cv_catalog_entry(-1));
    for (int i = 0; i < n; i++) {
        const cv_weights_info *w = cv_catalog_entry(i);
        char full[128], hp[32];
        snprintf(full, sizeof full, "%s.%s", w->enum_name, w->name);
        /* every entry is found by all three spellings, and its hash prefix is its file name's */
        CHECK(cv_catalog_find(w->arch, w->name) == w);
        CHECK(cv_catalog_find(NULL, full) == w);
        CHECK(cv_catalog_find(w->arch, full) == w);
        cv_hash_prefix(w->file, hp, sizeof hp);
        CHECK(!strcmp(hp, w->sha256_prefix));
        CHECK(strstr(w->url, w->file) &&
              !strcmp(w->url + strlen(w->url) - strlen(w->file), w->file));
        if (w->is_default) {
            CHECK(cv_catalog_find(w->arch, "DEFAULT") == w);
            snprintf(full, sizeof full, "%s.DEFAULT", w->enum_name);
            CHECK(cv_catalog_find(NULL, full) == w);
        }
        CHECK(w->crop > 0 && w->resize >= w->crop - 1 && w->min_h > 0 && w->min_w > 0);
    }
    CHECK(cv_catalog_find("resnet18", "IMAGENET1K_V7") == NULL);
    CHECK(cv_catalog_find("resnet18", "ResNet50_Weights.IMAGENET1K_V1") == NULL);
    CHECK(cv_catalog_find(NULL, "IMAGENET1K_V1") == NULL);
    CHECK(cv_catalog_find("no_such_arch", "DEFAULT") == NULL);
    const char *const *c = cv_imagenet_categories();
    int nc = 0;
    while (c[nc]) nc++;
    CHECK(nc == 1000);
}

int main(void)
{
    RUN(test_pickle_values);
    RUN(test_pickle_errors);
    RUN(test_safetensors_roundtrip);
    RUN(test_sniff);
    RUN(test_hash_prefix);
    RUN(test_sha256_and_hub);
    RUN(test_catalog);
    TEST_EXIT();
}
