/* Image decoding (JPEG via TurboJPEG, PNG via libpng, binary PGM/PPM) and PNG writing.
 *
 * The goal is Pillow's pixels: the same libjpeg-turbo with its default (accurate, "islow") IDCT and
 * fancy upsampling that Pillow uses, and Pillow's mode conversions (convert("RGB"), convert("L"),
 * CMYK JPEGs inverted as Adobe writes them). */
#include "cvision/image.h"

#include <errno.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <turbojpeg.h>
/* jpeglib.h needs size_t and FILE first */
#include <jpeglib.h>

#include "core/atomic.h"
#include "data/image_internal.h"

static cv_status image_alloc(cv_ctx *ctx, int w, int h, int c, int zero, cv_image **out)
{
    *out = NULL;
    if (w <= 0 || h <= 0 || (c != 1 && c != 3) || (int64_t)w * h > IMG_MAX_PIXELS)
        return cv_fail(ctx, CV_ERR_INVALID, "image: bad size %dx%dx%d", w, h, c);
    cv_image *img = calloc(1, sizeof *img);
    if (!img) return cv_fail(ctx, CV_ERR_NOMEM, "image: out of memory");
    img->data = zero ? calloc((size_t)w * h * c, 1) : malloc((size_t)w * h * c);
    if (!img->data) {
        free(img);
        return cv_fail(ctx, CV_ERR_NOMEM, "image: cannot allocate %dx%dx%d", w, h, c);
    }
    img->w = w;
    img->h = h;
    img->c = c;
    *out = img;
    return CV_OK;
}

cv_status cv_image_new(cv_ctx *ctx, int w, int h, int c, cv_image **out)
{
    return image_alloc(ctx, w, h, c, 1, out);
}

cv_status img_new_uninit(cv_ctx *ctx, int w, int h, int c, cv_image **out)
{
    return image_alloc(ctx, w, h, c, 0, out);
}

void cv_image_free(cv_image *img)
{
    if (!img) return;
    free(img->data);
    free(img);
}

cv_status cv_read_file(cv_ctx *ctx, const char *path, void **buf, size_t *n)
{
    *buf = NULL;
    *n = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return cv_fail(ctx, CV_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) || !S_ISREG(st.st_mode)) {
        fclose(f);
        return cv_fail(ctx, CV_ERR_IO, "%s: not a regular file", path);
    }
    size_t size = (size_t)st.st_size;
    void *b = malloc(size ? size : 1);
    if (!b) {
        fclose(f);
        return cv_fail(ctx, CV_ERR_NOMEM, "%s: cannot allocate %zu bytes", path, size);
    }
    if (fread(b, 1, size, f) != size) {
        free(b);
        fclose(f);
        return cv_fail(ctx, CV_ERR_IO, "%s: read error", path);
    }
    fclose(f);
    *buf = b;
    *n = size;
    return CV_OK;
}

/* Pillow's RGB -> L (Convert.c, L24): ITU-R 601-2 luma in 16-bit fixed point, rounded. */
static inline uint8_t luma(const uint8_t *p)
{
    return (uint8_t)((p[0] * 19595 + p[1] * 38470 + p[2] * 7471 + 0x8000) >> 16);
}

/* Converts rows of `sc` interleaved channels (1 gray, 2 gray+alpha, 3 RGB, 4 RGBA) to `dc` (1 or 3)
 * in place-safe order (dc <= sc, or processed back to front when expanding). */
static void convert_pixels(uint8_t *dst, int dc, const uint8_t *src, int sc, size_t npix)
{
    if (dc == sc) {
        if (dst != src) memmove(dst, src, npix * (size_t)sc);
        return;
    }
    if (dc > sc) { /* gray (+alpha) -> RGB: back to front so dst may alias src */
        for (size_t i = npix; i-- > 0;) {
            uint8_t v = src[i * (size_t)sc];
            dst[i * 3] = dst[i * 3 + 1] = dst[i * 3 + 2] = v;
        }
        return;
    }
    for (size_t i = 0; i < npix; i++) {
        const uint8_t *p = src + i * (size_t)sc;
        if (dc == 1)
            dst[i] = sc >= 3 ? luma(p) : p[0];
        else {
            uint8_t r = p[0], g = p[1], b = p[2];
            dst[i * 3] = r;
            dst[i * 3 + 1] = g;
            dst[i * 3 + 2] = b;
        }
    }
}

static int target_channels(int want, int stored_gray)
{
    return want ? want : stored_gray ? 1 : 3;
}

/* ---- JPEG ---- */

/* Pillow reads CMYK JPEGs as inverted ("CMYK;I", Adobe's convention), then converts to RGB with
 * cmyk2rgb: nk = 255 - k; out = nk - nk * c / 255 (rounded as MULDIV255). In place, 4 -> 4 bytes.
 */
static void cmyk_inverted_to_rgb(uint8_t *raw, size_t npix)
{
    for (size_t i = 0; i < npix; i++) {
        uint8_t *p = raw + i * 4;
        int nk = p[3]; /* 255 - (255 - raw k) */
        for (int j = 0; j < 3; j++) {
            int c = 255 - p[j], t = c * nk + 128;
            int v = nk - (((t >> 8) + t) >> 8);
            p[j] = (uint8_t)(v < 0 ? 0 : v);
        }
    }
}

static cv_status jpeg_decode(cv_ctx *ctx, const uint8_t *buf, size_t n, const char *name, int want,
                             int min_w, int min_h, cv_image **out)
{
    tjhandle tj = tjInitDecompress();
    if (!tj) return cv_fail(ctx, CV_ERR_NOMEM, "%s: cannot start the JPEG decoder", name);
    cv_status s = CV_OK;
    uint8_t *raw = NULL;
    int w, h, subsamp, cs;
    if (tjDecompressHeader3(tj, buf, (unsigned long)n, &w, &h, &subsamp, &cs)) {
        s = cv_fail(ctx, CV_ERR_FORMAT, "%s: corrupt JPEG: %s", name, tjGetErrorStr2(tj));
        goto done;
    }
    if (w <= 0 || h <= 0 || (int64_t)w * h > IMG_MAX_PIXELS) {
        s = cv_fail(ctx, CV_ERR_FORMAT, "%s: JPEG size %dx%d is out of range", name, w, h);
        goto done;
    }
    /* The smallest DCT scale factor that still covers min_w x min_h. */
    int sw = w, sh = h;
    if (min_w > 0 || min_h > 0) {
        int nf;
        tjscalingfactor *sf = tjGetScalingFactors(&nf);
        for (int i = 0; sf && i < nf; i++) {
            int tw = TJSCALED(w, sf[i]), th = TJSCALED(h, sf[i]);
            if (sf[i].num > sf[i].denom || tw < min_w || th < min_h) continue;
            if ((int64_t)tw * th < (int64_t)sw * sh) {
                sw = tw;
                sh = th;
            }
        }
    }
    int cmyk = cs == TJCS_CMYK || cs == TJCS_YCCK, gray = cs == TJCS_GRAY;
    int pf = gray ? TJPF_GRAY : cmyk ? TJPF_CMYK : TJPF_RGB, pc = gray ? 1 : cmyk ? 4 : 3;
    raw = malloc((size_t)sw * sh * pc);
    if (!raw) {
        s = cv_fail(ctx, CV_ERR_NOMEM, "%s: cannot allocate a %dx%d image", name, sw, sh);
        goto done;
    }
    if (tjDecompress2(tj, buf, (unsigned long)n, raw, sw, 0, sh, pf,
                      TJFLAG_ACCURATEDCT | TJFLAG_LIMITSCANS)) {
        /* libjpeg warnings (e.g. extraneous bytes) are ignored as Pillow ignores them, except
         * running out of data: Pillow calls that "image file is truncated". */
        const char *msg = tjGetErrorStr2(tj);
        if (tjGetErrorCode(tj) != TJERR_WARNING || strstr(msg, "Premature end")) {
            s = cv_fail(ctx, CV_ERR_FORMAT, "%s: corrupt or truncated JPEG: %s", name, msg);
            goto done;
        }
    }
    int dc = target_channels(want, gray);
    if (cmyk) cmyk_inverted_to_rgb(raw, (size_t)sw * sh);
    s = cv_image_new(ctx, sw, sh, dc, out);
    if (s) {
        s = cv_fail(ctx, s, "%s: %s", name, cv_ctx_error(ctx));
        goto done;
    }
    convert_pixels((*out)->data, dc, raw, pc, (size_t)sw * sh);
done:
    free(raw);
    tjDestroy(tj);
    return s;
}

int img_jpeg_complete(const uint8_t *buf, size_t n)
{
    /* Entropy-coded data never holds FF D9 (an FF there is followed by 00 or a restart marker),
     * so the last FF D9 is the end-of-image marker; allow a little trailing garbage. */
    size_t lo = n > 4096 ? n - 4096 : 2;
    for (size_t i = n; i-- > lo + 1;)
        if (buf[i] == 0xD9 && buf[i - 1] == 0xFF) return 1;
    return 0;
}

typedef struct {
    struct jpeg_error_mgr pub;
    jmp_buf jmp;
    char msg[JMSG_LENGTH_MAX];
} jpeg_err;

static void jpeg_on_error(j_common_ptr cinfo)
{
    jpeg_err *e = (jpeg_err *)cinfo->err;
    cinfo->err->format_message(cinfo, e->msg);
    longjmp(e->jmp, 1);
}

static void jpeg_on_message(j_common_ptr cinfo, int level)
{
    (void)cinfo; /* warnings are ignored, as Pillow ignores them */
    (void)level;
}

typedef struct {
    struct jpeg_decompress_struct cinfo;
    jpeg_err err;
    uint8_t *raw;
} jpeg_job;

/* Everything that must survive a longjmp lives in *job. */
static cv_status jpeg_region_run(cv_ctx *ctx, jpeg_job *job, const uint8_t *buf, size_t n,
                                 const char *name, int num, int x0, int y0, int w, int h,
                                 cv_image **out, int *ox)
{
    struct jpeg_decompress_struct *ci = &job->cinfo;
    ci->err = jpeg_std_error(&job->err.pub);
    job->err.pub.error_exit = jpeg_on_error;
    job->err.pub.emit_message = jpeg_on_message;
    if (setjmp(job->err.jmp)) {
        jpeg_destroy_decompress(ci);
        return cv_fail(ctx, CV_ERR_FORMAT, "%s: corrupt JPEG: %s", name, job->err.msg);
    }
    jpeg_create_decompress(ci);
    jpeg_mem_src(ci, buf, (unsigned long)n);
    jpeg_read_header(ci, TRUE);
    if ((int64_t)ci->image_width * ci->image_height > IMG_MAX_PIXELS) {
        jpeg_destroy_decompress(ci);
        return cv_fail(ctx, CV_ERR_FORMAT, "%s: JPEG size %ux%u is out of range", name,
                       ci->image_width, ci->image_height);
    }
    int cs = ci->jpeg_color_space, cmyk = cs == JCS_CMYK || cs == JCS_YCCK,
        gray = cs == JCS_GRAYSCALE;
    ci->out_color_space = gray ? JCS_GRAYSCALE : cmyk ? JCS_CMYK : JCS_RGB;
    ci->scale_num = (unsigned)num;
    ci->scale_denom = 8;
    ci->dct_method = JDCT_ISLOW;
    jpeg_start_decompress(ci);
    if (x0 < 0 || y0 < 0 || w <= 0 || h <= 0 || (unsigned)(x0 + w) > ci->output_width ||
        (unsigned)(y0 + h) > ci->output_height) {
        jpeg_destroy_decompress(ci);
        return cv_fail(ctx, CV_ERR_INVALID, "%s: region outside the scaled JPEG", name);
    }
    JDIMENSION xoff = (JDIMENSION)x0, cw = (JDIMENSION)w;
    if (x0 > 0 || (unsigned)w < ci->output_width) jpeg_crop_scanline(ci, &xoff, &cw);
    if (y0 > 0) jpeg_skip_scanlines(ci, (JDIMENSION)y0);
    int pc = ci->output_components;
    /* RGB and gray rows go straight into the image (gray is expanded in place afterwards) */
    cv_status s = img_new_uninit(ctx, (int)cw, h, 3, out);
    if (!s && pc > 3 && !(job->raw = malloc((size_t)cw * h * pc)))
        s = cv_fail(ctx, CV_ERR_NOMEM, "%s: cannot allocate a %ux%d image", name, cw, h);
    if (s) {
        jpeg_destroy_decompress(ci);
        return s;
    }
    uint8_t *dst = pc > 3 ? job->raw : (*out)->data;
    for (int y = 0; y < h;) {
        JSAMPROW rows[16];
        int k = h - y < 16 ? h - y : 16;
        for (int r = 0; r < k; r++) rows[r] = dst + (size_t)(y + r) * cw * pc;
        JDIMENSION got = jpeg_read_scanlines(ci, rows, (JDIMENSION)k);
        if (!got) {
            jpeg_destroy_decompress(ci);
            return cv_fail(ctx, CV_ERR_FORMAT, "%s: truncated JPEG", name);
        }
        y += (int)got;
    }
    jpeg_abort_decompress(ci); /* the rows below the region are never decoded */
    jpeg_destroy_decompress(ci);
    if (cmyk) cmyk_inverted_to_rgb(job->raw, (size_t)cw * h);
    convert_pixels((*out)->data, 3, dst, pc, (size_t)cw * h);
    *ox = (int)xoff;
    return CV_OK;
}

cv_status img_jpeg_decode_region(cv_ctx *ctx, const uint8_t *buf, size_t n, const char *name,
                                 int num, int x0, int y0, int w, int h, cv_image **out, int *ox)
{
    *out = NULL;
    jpeg_job *job = calloc(1, sizeof *job);
    if (!job) return cv_fail(ctx, CV_ERR_NOMEM, "%s: out of memory", name);
    cv_status s = jpeg_region_run(ctx, job, buf, n, name, num, x0, y0, w, h, out, ox);
    free(job->raw);
    free(job);
    if (s) {
        cv_image_free(*out);
        *out = NULL;
    }
    return s;
}

/* ---- PNG ---- */

typedef struct {
    const uint8_t *buf;
    size_t n, off;
    char msg[200];
    jmp_buf jmp;
    uint8_t *pixels;
    png_bytep *rows;
} png_job;

static void png_on_error(png_structp png, png_const_charp msg)
{
    png_job *job = png_get_error_ptr(png);
    snprintf(job->msg, sizeof job->msg, "%s", msg);
    longjmp(job->jmp, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg;
}

static void png_on_read(png_structp png, png_bytep out, size_t len)
{
    png_job *job = png_get_io_ptr(png);
    if (len > job->n - job->off) png_error(png, "file is truncated");
    memcpy(out, job->buf + job->off, len);
    job->off += len;
}

/* Runs libpng; everything that must survive a longjmp lives in *job. */
static cv_status png_run(cv_ctx *ctx, png_job *job, const char *name, int max_channels,
                         img_png_setup setup, void *arg, img_png_pixels *out)
{
    png_structp png =
        png_create_read_struct(PNG_LIBPNG_VER_STRING, job, png_on_error, png_on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        return cv_fail(ctx, CV_ERR_NOMEM, "%s: cannot start the PNG decoder", name);
    }
    if (setjmp(job->jmp)) {
        png_destroy_read_struct(&png, &info, NULL);
        return cv_fail(ctx, CV_ERR_FORMAT, "%s: corrupt PNG: %s", name, job->msg);
    }
    png_set_read_fn(png, job, png_on_read);
    png_read_info(png, info);
    png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    int depth = png_get_bit_depth(png, info);
    cv_status s = setup(ctx, name, png, info, arg);
    if (s) {
        png_destroy_read_struct(&png, &info, NULL);
        return s;
    }
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    int sc = png_get_channels(png, info), out_depth = png_get_bit_depth(png, info);
    size_t rowbytes = png_get_rowbytes(png, info);
    if (w == 0 || h == 0 || (int64_t)w * h > IMG_MAX_PIXELS || sc < 1 || sc > max_channels ||
        (out_depth != 8 && out_depth != 16) || rowbytes != (size_t)w * sc * (out_depth / 8))
        png_error(png, "unsupported size or layout");
    /* deflate expands at most 1032:1, so a file this small cannot hold that many pixels. */
    if (((uint64_t)w * sc * depth / 8 + 1) * h > (uint64_t)job->n * 1032 + 1024)
        png_error(png, "header declares more pixels than the file can hold");
    job->pixels = malloc((size_t)h * rowbytes);
    job->rows = malloc(h * sizeof *job->rows);
    if (!job->pixels || !job->rows) png_error(png, "out of memory");
    for (png_uint_32 y = 0; y < h; y++) job->rows[y] = job->pixels + y * rowbytes;
    png_read_image(png, job->rows);
    png_read_end(png, NULL);
    png_destroy_read_struct(&png, &info, NULL);
    *out = (img_png_pixels){job->pixels, (int)w, (int)h, sc, out_depth / 8};
    job->pixels = NULL;
    return CV_OK;
}

cv_status img_png_read(cv_ctx *ctx, const uint8_t *buf, size_t n, const char *name,
                       int max_channels, img_png_setup setup, void *arg, img_png_pixels *out)
{
    png_job *job = calloc(1, sizeof *job);
    if (!job) return cv_fail(ctx, CV_ERR_NOMEM, "%s: out of memory", name);
    job->buf = buf;
    job->n = n;
    cv_status s = png_run(ctx, job, name, max_channels, setup, arg, out);
    free(job->pixels);
    free(job->rows);
    free(job);
    return s;
}

/* Reduces everything to 8 bits per sample: 16-bit keeps the high byte (as Pillow does for RGB and
 * RGBA), palettes are expanded, 1/2/4-bit gray scaled to 0..255. tRNS is ignored: alpha is
 * dropped anyway. */
static cv_status png_setup_image(cv_ctx *ctx, const char *name, png_structp png, png_infop info,
                                 void *arg)
{
    (void)ctx;
    (void)name;
    int ct = png_get_color_type(png, info), depth = png_get_bit_depth(png, info);
    /* Pillow opens 16-bit gray as mode I, whose convert("L"/"RGB") clips the value to 255; every
     * other 16-bit type keeps the high byte (its unpackers read ";16B" as 8 bits). */
    int *gray16 = arg;
    *gray16 = ct == PNG_COLOR_TYPE_GRAY && depth == 16;
    if (depth == 16 && !*gray16) png_set_strip_16(png);
    if (ct == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (ct == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    return CV_OK;
}

static cv_status png_decode(cv_ctx *ctx, const uint8_t *buf, size_t n, const char *name, int want,
                            cv_image **out)
{
    int gray16 = 0;
    img_png_pixels px;
    cv_status s = img_png_read(ctx, buf, n, name, 4, png_setup_image, &gray16, &px);
    if (s) return s;
    size_t np = (size_t)px.w * px.h;
    if (gray16)
        for (size_t i = 0; i < np; i++) {
            int v = px.pixels[2 * i] << 8 | px.pixels[2 * i + 1]; /* big-endian */
            px.pixels[i] = (uint8_t)(v > 255 ? 255 : v);
        }
    int dc = target_channels(want, px.channels <= 2);
    s = cv_image_new(ctx, px.w, px.h, dc, out);
    if (s)
        s = cv_fail(ctx, s, "%s: %s", name, cv_ctx_error(ctx));
    else
        convert_pixels((*out)->data, dc, px.pixels, px.channels, np);
    free(px.pixels);
    return s;
}

/* ---- binary PGM / PPM (P5, P6) ---- */

static int pnm_int(const uint8_t *b, size_t n, size_t *off, int *v)
{
    for (;;) { /* whitespace and # comments */
        while (*off < n &&
               (b[*off] == ' ' || b[*off] == '\t' || b[*off] == '\n' || b[*off] == '\r'))
            (*off)++;
        if (*off < n && b[*off] == '#') {
            while (*off < n && b[*off] != '\n') (*off)++;
        } else
            break;
    }
    if (*off >= n || b[*off] < '0' || b[*off] > '9') return 0;
    long long x = 0;
    while (*off < n && b[*off] >= '0' && b[*off] <= '9') {
        x = x * 10 + (b[(*off)++] - '0');
        if (x > 1 << 30) return 0;
    }
    *v = (int)x;
    return 1;
}

static cv_status pnm_decode(cv_ctx *ctx, const uint8_t *b, size_t n, const char *name, int want,
                            cv_image **out)
{
    size_t off = 2;
    int w, h, maxval, sc = b[1] == '5' ? 1 : 3;
    if (!pnm_int(b, n, &off, &w) || !pnm_int(b, n, &off, &h) || !pnm_int(b, n, &off, &maxval) ||
        off >= n)
        return cv_fail(ctx, CV_ERR_FORMAT, "%s: corrupt PGM/PPM header", name);
    off++; /* the single whitespace byte before the data */
    if (maxval != 255)
        return cv_fail(ctx, CV_ERR_UNSUPPORTED, "%s: PGM/PPM maxval %d (only 255 is supported)",
                       name, maxval);
    if (w <= 0 || h <= 0 || (int64_t)w * h > IMG_MAX_PIXELS)
        return cv_fail(ctx, CV_ERR_FORMAT, "%s: PGM/PPM size %dx%d is out of range", name, w, h);
    size_t need = (size_t)w * h * sc;
    if (n - off < need)
        return cv_fail(ctx, CV_ERR_FORMAT, "%s: PGM/PPM is truncated (%zu of %zu data bytes)", name,
                       n - off, need);
    int dc = target_channels(want, sc == 1);
    cv_status s = cv_image_new(ctx, w, h, dc, out);
    if (s) return s;
    convert_pixels((*out)->data, dc, b + off, sc, (size_t)w * h);
    return CV_OK;
}

/* ---- BMP (Pillow's BmpImagePlugin, uncompressed) ---- */

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint16_t le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

typedef struct {
    int w, h, bits, topdown, colors, pal_pad;
    uint32_t compression;
    size_t pal_off, data_off, stride;
    int order[4]; /* 32-bit: byte offsets of R, G, B in a pixel */
    int gray;     /* palette is Pillow's "greyscale" (mode L or 1): the index is the value */
    int rgb565;   /* 16-bit: 5-6-5 bits (else 5-5-5) */
} bmp_info;

/* Reads and checks the headers as Pillow's _bitmap does; every offset is checked against n. */
static cv_status bmp_header(cv_ctx *ctx, const uint8_t *b, size_t n, const char *name, bmp_info *bi)
{
    memset(bi, 0, sizeof *bi);
    if (n < 18) return cv_fail(ctx, CV_ERR_FORMAT, "%s: BMP is truncated (%zu bytes)", name, n);
    uint32_t offset = le32(b + 10), hs = le32(b + 14);
    if (hs != 12 && hs != 40 && hs != 64 && hs != 108 && hs != 124)
        return cv_fail(ctx, CV_ERR_UNSUPPORTED, "%s: unsupported BMP header size %u", name, hs);
    if (n < 14 + (size_t)hs)
        return cv_fail(ctx, CV_ERR_FORMAT, "%s: BMP header is truncated", name);
    const uint8_t *h = b + 18; /* the header after its size field */
    uint32_t w32, h32;
    size_t pos = 14 + hs;
    bi->order[0] = 2, bi->order[1] = 1, bi->order[2] = 0; /* BGR(X) */
    if (hs == 12) {
        w32 = le16(h), h32 = le16(h + 2);
        bi->bits = le16(h + 6);
        bi->pal_pad = 3;
    } else {
        w32 = le32(h), h32 = le32(h + 4);
        bi->topdown = h[7] == 0xFF; /* a negative height: rows top to bottom */
        if (bi->topdown) h32 = (uint32_t)(0x100000000ULL - h32);
        bi->bits = le16(h + 10);
        bi->compression = le32(h + 12);
        bi->colors = (int)(le32(h + 28) > 65536 ? 65537 : le32(h + 28));
        bi->pal_pad = 4;
        if (bi->compression == 3) { /* BI_BITFIELDS: 32-bit layouts Pillow reads as RGB(A) */
            uint32_t m[4] = {0, 0, 0, 0};
            if (hs >= 52) {
                for (int k = 0; k < 4; k++) m[k] = le32(h + 36 + 4 * k);
            } else {
                if (n < pos + 12)
                    return cv_fail(ctx, CV_ERR_FORMAT, "%s: BMP masks are truncated", name);
                for (int k = 0; k < 3; k++) m[k] = le32(b + pos + 4 * k);
                pos += 12;
            }
            static const uint32_t masks[6][4] = {
                {0xFF0000, 0xFF00, 0xFF, 0},          {0xFF000000, 0xFF0000, 0xFF00, 0},
                {0xFF000000, 0xFF0000, 0xFF00, 0xFF}, {0xFF, 0xFF00, 0xFF0000, 0xFF000000},
                {0xFF0000, 0xFF00, 0xFF, 0xFF000000}, {0, 0, 0, 0}};
            static const int orders[6][3] = {{2, 1, 0}, {3, 2, 1}, {3, 2, 1},
                                             {0, 1, 2}, {2, 1, 0}, {2, 1, 0}};
            int k = 0, ok = 0;
            if (bi->bits == 32) { /* all four masks must be one of Pillow's layouts */
                while (k < 6 && memcmp(m, masks[k], sizeof m)) k++;
                ok = k < 6;
            } else if (bi->bits == 24) { /* only the RGB masks count */
                ok = !memcmp(m, masks[0], 3 * sizeof *m);
            } else if (bi->bits == 16) {
                bi->rgb565 = m[0] == 0xF800 && m[1] == 0x7E0 && m[2] == 0x1F;
                ok = bi->rgb565 || (m[0] == 0x7C00 && m[1] == 0x3E0 && m[2] == 0x1F);
            }
            if (!ok)
                return cv_fail(ctx, CV_ERR_UNSUPPORTED,
                               "%s: unsupported BMP bitfields layout (%d bits)", name, bi->bits);
            if (bi->bits == 32)
                for (int c = 0; c < 3; c++) bi->order[c] = orders[k][c];
        } else if (bi->compression != 0) {
            return cv_fail(ctx, CV_ERR_UNSUPPORTED,
                           "%s: unsupported BMP compression %u (uncompressed only)", name,
                           bi->compression);
        }
    }
    if (bi->bits != 1 && bi->bits != 4 && bi->bits != 8 && bi->bits != 16 && bi->bits != 24 &&
        bi->bits != 32)
        return cv_fail(ctx, CV_ERR_UNSUPPORTED,
                       "%s: unsupported BMP depth %d bits (1, 4, 8, 16, 24, 32)", name, bi->bits);
    if (w32 == 0 || h32 == 0 || w32 > (1u << 30) || h32 > (1u << 30) ||
        (uint64_t)w32 * h32 > IMG_MAX_PIXELS)
        return cv_fail(ctx, CV_ERR_FORMAT, "%s: BMP size %ux%u is out of range", name, w32, h32);
    bi->w = (int)w32, bi->h = (int)h32;
    if (!bi->colors) bi->colors = 1 << (bi->bits > 16 ? 16 : bi->bits);
    if (offset == 14 + hs && bi->bits <= 8) offset += 4 * (uint32_t)bi->colors; /* Pillow's */
    if (bi->bits <= 8) {
        if (bi->colors > 65536)
            return cv_fail(ctx, CV_ERR_UNSUPPORTED, "%s: BMP palette of %d colours", name,
                           bi->colors);
        bi->pal_off = pos;
        size_t pal = (size_t)bi->pal_pad * bi->colors;
        if (n < pos + pal) return cv_fail(ctx, CV_ERR_FORMAT, "%s: BMP palette is truncated", name);
        /* Pillow ignores a palette of greys 0, 1, 2, ... (or black, white for 2 colours) */
        bi->gray = 1;
        for (int k = 0; k < bi->colors && bi->gray; k++) {
            int v = bi->colors == 2 ? (k ? 255 : 0) : k & 255;
            const uint8_t *e = b + pos + (size_t)k * bi->pal_pad;
            bi->gray = e[0] == v && e[1] == v && e[2] == v;
        }
        if (bi->gray && bi->colors == 2 && bi->bits != 1)
            return cv_fail(ctx, CV_ERR_UNSUPPORTED, "%s: 2-colour BMP of %d bits", name, bi->bits);
        pos += pal;
    }
    bi->data_off = offset ? offset : pos;
    bi->stride = (((size_t)bi->w * bi->bits + 31) >> 3) & ~(size_t)3;
    if (bi->data_off > n || (n - bi->data_off) / bi->stride < (size_t)bi->h)
        return cv_fail(ctx, CV_ERR_FORMAT,
                       "%s: BMP is truncated (pixel data at %zu, %zu bytes of %zu needed)", name,
                       bi->data_off, bi->data_off > n ? 0 : n - bi->data_off,
                       bi->stride * (size_t)bi->h);
    return CV_OK;
}

static cv_status bmp_decode(cv_ctx *ctx, const uint8_t *b, size_t n, const char *name, int want,
                            cv_image **out)
{
    bmp_info bi;
    cv_status s = bmp_header(ctx, b, n, name, &bi);
    if (s) return s;
    /* stored gray: Pillow's mode L or 1 */
    int dc = target_channels(want, bi.bits <= 8 && bi.gray);
    if ((s = cv_image_new(ctx, bi.w, bi.h, dc, out))) return s;
    uint8_t pal[256][3];
    for (int k = 0; k < 256; k++) { /* Pillow's palette starts as a grey ramp */
        const uint8_t *e = b + bi.pal_off + (size_t)k * bi.pal_pad;
        int in = bi.bits <= 8 && k < bi.colors;
        pal[k][0] = in ? e[2] : (uint8_t)k;
        pal[k][1] = in ? e[1] : (uint8_t)k;
        pal[k][2] = in ? e[0] : (uint8_t)k;
    }
    for (int y = 0; y < bi.h; y++) {
        const uint8_t *row = b + bi.data_off + (size_t)(bi.topdown ? y : bi.h - 1 - y) * bi.stride;
        uint8_t *d = (*out)->data + (size_t)y * bi.w * dc;
        for (int x = 0; x < bi.w; x++, d += dc) {
            uint8_t rgb[3];
            if (bi.bits == 16) { /* Pillow's BGR;15 / BGR;16 unpackers */
                int v = le16(row + 2 * (size_t)x), g6 = bi.rgb565;
                rgb[0] = (uint8_t)(((v >> (g6 ? 11 : 10)) & 31) * 255 / 31);
                rgb[1] = (uint8_t)(g6 ? ((v >> 5) & 63) * 255 / 63 : ((v >> 5) & 31) * 255 / 31);
                rgb[2] = (uint8_t)((v & 31) * 255 / 31);
            } else if (bi.bits >= 24) {
                const uint8_t *p = row + (size_t)x * (bi.bits / 8);
                for (int c = 0; c < 3; c++) rgb[c] = p[bi.order[c]];
            } else {
                int per = 8 / bi.bits,
                    idx = row[x / per] >> (8 - bi.bits * (x % per + 1)) & ((1 << bi.bits) - 1);
                if (bi.gray) { /* the index is the grey value (mode 1: 0 or 255) */
                    int v = bi.bits == 1 ? idx * 255 : idx;
                    rgb[0] = rgb[1] = rgb[2] = (uint8_t)v;
                } else {
                    memcpy(rgb, pal[idx], 3);
                }
            }
            if (dc == 3)
                memcpy(d, rgb, 3);
            else
                d[0] = luma(rgb);
        }
    }
    return CV_OK;
}

/* ---- dispatch ---- */

enum { FMT_UNKNOWN, FMT_JPEG, FMT_PNG, FMT_PNM, FMT_BMP };

static int sniff(const uint8_t *b, size_t n)
{
    if (n >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF) return FMT_JPEG;
    if (n >= 8 && !memcmp(b, "\x89PNG\r\n\x1a\n", 8)) return FMT_PNG;
    if (n >= 3 && b[0] == 'P' && (b[1] == '5' || b[1] == '6')) return FMT_PNM;
    if (n >= 2 && b[0] == 'B' && b[1] == 'M') return FMT_BMP;
    return FMT_UNKNOWN;
}

static cv_status decode(cv_ctx *ctx, const void *buf, size_t n, const char *name, int want,
                        int min_w, int min_h, cv_image **out)
{
    *out = NULL;
    if (want != 0 && want != 1 && want != 3)
        return cv_fail(ctx, CV_ERR_INVALID, "%s: want_channels must be 0, 1 or 3, not %d", name,
                       want);
    switch (sniff(buf, n)) {
    case FMT_JPEG:
        return jpeg_decode(ctx, buf, n, name, want, min_w, min_h, out);
    case FMT_PNG:
        return png_decode(ctx, buf, n, name, want, out);
    case FMT_PNM:
        return pnm_decode(ctx, buf, n, name, want, out);
    case FMT_BMP:
        return bmp_decode(ctx, buf, n, name, want, out);
    default:
        return cv_fail(ctx, CV_ERR_FORMAT, "%s: not a JPEG, PNG, BMP or PGM/PPM image (%zu bytes)",
                       name, n);
    }
}

cv_status cv_image_decode(cv_ctx *ctx, const void *buf, size_t n, const char *name,
                          int want_channels, cv_image **out)
{
    return decode(ctx, buf, n, name, want_channels, 0, 0, out);
}

cv_status cv_image_decode_scaled(cv_ctx *ctx, const void *buf, size_t n, const char *name,
                                 int want_channels, int min_w, int min_h, cv_image **out)
{
    return decode(ctx, buf, n, name, want_channels, min_w > 0 ? min_w : 1, min_h > 0 ? min_h : 1,
                  out);
}

cv_status cv_image_load(cv_ctx *ctx, const char *path, int want_channels, cv_image **out)
{
    void *buf;
    size_t n;
    *out = NULL;
    cv_status s = cv_read_file(ctx, path, &buf, &n);
    if (s) return s;
    s = cv_image_decode(ctx, buf, n, path, want_channels, out);
    free(buf);
    return s;
}

cv_status cv_image_probe(cv_ctx *ctx, const void *buf, size_t n, const char *name, int *w, int *h,
                         int *c)
{
    const uint8_t *b = buf;
    switch (sniff(b, n)) {
    case FMT_JPEG: {
        tjhandle tj = tjInitDecompress();
        if (!tj) return cv_fail(ctx, CV_ERR_NOMEM, "%s: cannot start the JPEG decoder", name);
        int ss, cs, bad = tjDecompressHeader3(tj, b, (unsigned long)n, w, h, &ss, &cs);
        cv_status s =
            bad ? cv_fail(ctx, CV_ERR_FORMAT, "%s: corrupt JPEG: %s", name, tjGetErrorStr2(tj))
                : CV_OK;
        tjDestroy(tj);
        *c = cs == TJCS_GRAY ? 1 : 3;
        return s;
    }
    case FMT_PNG:
        /* IHDR is always the first chunk: width, height, depth, colour type at fixed offsets. */
        if (n < 26 || memcmp(b + 12, "IHDR", 4))
            return cv_fail(ctx, CV_ERR_FORMAT, "%s: corrupt PNG: no IHDR", name);
        *w = (int)((uint32_t)b[16] << 24 | b[17] << 16 | b[18] << 8 | b[19]);
        *h = (int)((uint32_t)b[20] << 24 | b[21] << 16 | b[22] << 8 | b[23]);
        *c = (b[25] == 0 || b[25] == 4) ? 1 : 3;
        if (*w <= 0 || *h <= 0)
            return cv_fail(ctx, CV_ERR_FORMAT, "%s: corrupt PNG: bad size", name);
        return CV_OK;
    case FMT_PNM: {
        size_t off = 2;
        int mv;
        if (!pnm_int(b, n, &off, w) || !pnm_int(b, n, &off, h) || !pnm_int(b, n, &off, &mv))
            return cv_fail(ctx, CV_ERR_FORMAT, "%s: corrupt PGM/PPM header", name);
        *c = b[1] == '5' ? 1 : 3;
        return CV_OK;
    }
    case FMT_BMP: {
        bmp_info bi;
        cv_status s = bmp_header(ctx, b, n, name, &bi);
        *w = bi.w, *h = bi.h, *c = bi.bits <= 8 && bi.gray ? 1 : 3;
        return s;
    }
    default:
        return cv_fail(ctx, CV_ERR_FORMAT, "%s: not a JPEG, PNG, BMP or PGM/PPM image (%zu bytes)",
                       name, n);
    }
}

/* ---- PNG writer ---- */

typedef struct {
    char msg[200];
    jmp_buf jmp;
    png_bytep *rows;
    const cv_image *img;
} png_wjob;

static void png_on_werror(png_structp png, png_const_charp msg)
{
    png_wjob *job = png_get_error_ptr(png);
    snprintf(job->msg, sizeof job->msg, "%s", msg);
    longjmp(job->jmp, 1);
}

static const char *png_write_file(void *arg, FILE *f)
{
    png_wjob *job = arg;
    const cv_image *img = job->img;
    png_structp png =
        png_create_write_struct(PNG_LIBPNG_VER_STRING, job, png_on_werror, png_on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_write_struct(&png, NULL);
        return "out of memory";
    }
    if (setjmp(job->jmp)) {
        png_destroy_write_struct(&png, &info);
        return job->msg;
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)img->w, (png_uint_32)img->h, 8,
                 img->c == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < img->h; y++) job->rows[y] = img->data + (size_t)y * img->w * img->c;
    png_write_image(png, job->rows);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return NULL;
}

cv_status cv_image_save_png(cv_ctx *ctx, const char *path, const cv_image *img)
{
    if (!img || img->w <= 0 || img->h <= 0 || (img->c != 1 && img->c != 3))
        return cv_fail(ctx, CV_ERR_INVALID, "%s: cannot write an invalid image as PNG", path);
    png_wjob *job = calloc(1, sizeof *job);
    if (job) job->rows = malloc((size_t)img->h * sizeof *job->rows);
    if (!job || !job->rows) {
        free(job);
        return cv_fail(ctx, CV_ERR_NOMEM, "%s: out of memory", path);
    }
    job->img = img;
    cv_status s = cv_write_atomic(ctx, path, 0, png_write_file, job);
    free(job->rows);
    free(job);
    return s;
}
