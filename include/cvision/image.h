/* Image decoding and encoding: JPEG (TurboJPEG), PNG (libpng), binary PGM/PPM and BMP, with the
 * pixel values Pillow gives for Image.open(path).convert("RGB") / .convert("L"). */
#ifndef CVISION_IMAGE_H
#define CVISION_IMAGE_H

#include "cvision/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* An 8-bit image, rows top to bottom, pixels interleaved (HWC); c is 1 (gray) or 3 (RGB). */
typedef struct cv_image {
    int w, h, c;
    uint8_t *data;
} cv_image;

/* A zero-filled image (c must be 1 or 3). */
cv_status cv_image_new(cv_ctx *ctx, int w, int h, int c, cv_image **out);
void cv_image_free(cv_image *img);

/* want_channels: 3 = RGB (like PIL's convert("RGB"): gray replicated, alpha dropped, palette
 * expanded), 1 = gray (like PIL's convert("L"): L = (19595 R + 38470 G + 7471 B + 32768) >> 16),
 * 0 = as stored (1 for gray files, 3 otherwise; alpha is always dropped).
 * The format is sniffed from the bytes, not the name. A corrupt or truncated file is an error
 * naming it. Images over Pillow's decompression-bomb limit (178956970 pixels) are refused. */
cv_status cv_image_load(cv_ctx *ctx, const char *path, int want_channels, cv_image **out);
cv_status cv_image_decode(cv_ctx *ctx, const void *buf, size_t n, const char *name,
                          int want_channels, cv_image **out);
/* Like cv_image_decode, but a JPEG is decoded with TurboJPEG's DCT-domain scaling at the smallest
 * scale factor (of 1/8, 2/8, ... 8/8) whose output is still at least min_w x min_h (the full size
 * when no factor is small enough). Other formats decode at full size. This is not pixel-identical
 * to a full decode followed by a resize: use it where speed matters more than exactness (training).
 */
cv_status cv_image_decode_scaled(cv_ctx *ctx, const void *buf, size_t n, const char *name,
                                 int want_channels, int min_w, int min_h, cv_image **out);
/* Reads just the header: width, height and stored channel count (1 gray, 3 colour). Cheap. */
cv_status cv_image_probe(cv_ctx *ctx, const void *buf, size_t n, const char *name, int *w, int *h,
                         int *c);
/* Writes an 8-bit gray or RGB PNG atomically (temporary file, then rename). */
cv_status cv_image_save_png(cv_ctx *ctx, const char *path, const cv_image *img);

/* Reads a whole file into memory (for decode-from-memory callers). Free with free(). */
cv_status cv_read_file(cv_ctx *ctx, const char *path, void **buf, size_t *n);

#ifdef __cplusplus
}
#endif
#endif
