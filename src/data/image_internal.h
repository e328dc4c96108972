/* Internal to src/data: the JPEG region decoder the training loader uses. */
#ifndef CV_DATA_IMAGE_INTERNAL_H
#define CV_DATA_IMAGE_INTERNAL_H

#include "cvision/image.h"

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

#endif
