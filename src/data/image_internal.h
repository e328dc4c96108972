/* Internal to src/data (and the label-map reader in src/metrics): the JPEG region decoder the
 * training loader uses, and the libpng harness. */
#ifndef CV_DATA_IMAGE_INTERNAL_H
#define CV_DATA_IMAGE_INTERNAL_H

#include <png.h>

#include "cvision/image.h"

/* Pillow's Image.MAX_IMAGE_PIXELS * 2: above this Pillow raises DecompressionBombError. */
#define IMG_MAX_PIXELS 178956970LL

/* cv_image_new without zeroing the pixels, for images that are overwritten whole. */
cv_status img_new_uninit(cv_ctx *ctx, int w, int h, int c, cv_image **out);

/* Whether buf is a JPEG that reaches its end-of-image marker (trailing bytes allowed): a region
 * decode stops early, so only such files take that path and a truncated one still fails. */
int img_jpeg_complete(const uint8_t *buf, size_t n);

/* Decodes a JPEG at DCT scale num/8 (1..8), only the scaled image's rows [y0, y0 + h) and at least
 * its columns [x0, x0 + w) (libjpeg's jpeg_skip_scanlines / jpeg_crop_scanline): *out is RGB and
 * holds columns [*ox, *ox + (*out)->w) of those rows. Same IDCT and upsampling as a full decode. */
cv_status img_jpeg_decode_region(cv_ctx *ctx, const uint8_t *buf, size_t n, const char *name,
                                 int num, int x0, int y0, int w, int h, cv_image **out, int *ox);

/* Chooses libpng's transformations from the header (png_read_info has run), or refuses the image
 * with cv_fail. */
typedef cv_status (*img_png_setup)(cv_ctx *ctx, const char *name, png_structp png, png_infop info,
                                   void *arg);

/* Decoded samples: h rows of w * channels samples of `bytes` bytes (2: big-endian). */
typedef struct {
    uint8_t *pixels; /* malloc'ed; the caller frees it */
    int w, h, channels, bytes;
} img_png_pixels;

/* Decodes a PNG held in memory with libpng: `setup` picks the transformations, which must yield 8-
 * or 16-bit samples and at most max_channels channels; sizes are checked against IMG_MAX_PIXELS
 * and against what the file can hold. Errors name `name`. */
cv_status img_png_read(cv_ctx *ctx, const uint8_t *buf, size_t n, const char *name,
                       int max_channels, img_png_setup setup, void *arg, img_png_pixels *out);

#endif
