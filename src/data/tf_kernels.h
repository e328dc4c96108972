/* Internal to src/data: torchvision's tensor ops on float CHW planes.
 * `u8` marks planes that hold uint8 values (0..255): each op then follows what torchvision does for
 * a uint8 tensor (bound 255, and the same truncation or rounding back to integers). */
#ifndef CV_DATA_TF_KERNELS_H
#define CV_DATA_TF_KERNELS_H

#include "cvision/transforms.h"

/* 2x3 inverse affine matrix as torchvision's _get_inverse_affine_matrix (angle, shear in degrees).
 */
void tfk_inverse_affine(const double center[2], double angle, const double translate[2],
                        double scale, const double shear[2], double m[6]);
/* F_t.rotate's output size with expand=True. */
void tfk_affine_output_size(const double m[6], int w, int h, int *ow, int *oh);
/* grid_sample of F_t.affine / F_t.rotate; fill NULL = torchvision's fill=None (no mask channel). */
cv_status tfk_affine(cv_ctx *ctx, const cv_planes *in, const double m[6], int ow, int oh,
                     int bilinear, const float *fill, int u8, cv_planes **out);

void tfk_brightness(cv_planes *p, double f, int u8);
void tfk_contrast(cv_planes *p, double f, int u8);
cv_status tfk_saturation(cv_ctx *ctx, cv_planes *p, double f, int u8);
void tfk_hue(cv_planes *p, double f, int u8);
cv_status tfk_grayscale(cv_ctx *ctx, const cv_planes *in, int out_c, int u8, cv_planes **out);
void tfk_invert(cv_planes *p, int u8);
void tfk_posterize(cv_planes *p, int bits);
void tfk_solarize(cv_planes *p, double threshold, int u8);
void tfk_autocontrast(cv_planes *p, int u8);
void tfk_equalize(cv_planes *p);
cv_status tfk_sharpness(cv_ctx *ctx, cv_planes *p, double f, int u8);
void tfk_hflip(cv_planes *p);
void tfk_vflip(cv_planes *p);
/* F.pad: mode 0 constant (fill), 1 edge, 2 reflect, 3 symmetric; pads left, top, right, bottom. */
cv_status tfk_pad(cv_ctx *ctx, const cv_planes *in, const int pad[4], int mode, float fill,
                  cv_planes **out);
cv_status tfk_crop(cv_ctx *ctx, const cv_planes *in, int top, int left, int h, int w,
                   cv_planes **out);
/* F.resize on a tensor (torch.nn.functional.interpolate, align_corners=False): nearest, bilinear or
 * bicubic, with or without antialias; u8 rounds and clamps back as torchvision does. */
cv_status tfk_resize(cv_ctx *ctx, const cv_planes *in, int oh, int ow, cv_interp interp,
                     int antialias, int u8, cv_planes **out);

/* float32 torch.linspace(start, end, steps)[i], computed as torch does on the CPU. */
float tfk_linspace(float start, float end, int steps, int i);

#endif
