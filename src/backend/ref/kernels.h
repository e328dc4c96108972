/* Plain-C kernels on NCHW float32: the reference semantics of every op (PyTorch's), used by the
 * reference backend and as the fallback of faster backends for ops they cannot express. */
#ifndef CV_REF_KERNELS_H
#define CV_REF_KERNELS_H

#include <stdint.h>

#include "core/graph.h"

void ref_conv2d(const float *x, const float *w, const float *bias, float *y, const cv_shape4 *xs,
                const cv_shape4 *ys, int kh, int kw, const cv_attrs *a);
void ref_batchnorm(const float *x, float *y, const cv_shape4 *s, const float *weight,
                   const float *bias, const float *mean, const float *var, float eps);
void ref_act(const float *x, float *y, int64_t n, cv_act act);
float ref_act1(float v, cv_act act);
void ref_maxpool(const float *x, float *y, const cv_shape4 *xs, const cv_shape4 *ys,
                 const cv_attrs *a);
void ref_avgpool(const float *x, float *y, const cv_shape4 *xs, const cv_shape4 *ys,
                 const cv_attrs *a);
void ref_adaptive_avgpool(const float *x, float *y, const cv_shape4 *xs, const cv_shape4 *ys);
void ref_linear(const float *x, const float *w, const float *bias, float *y, int64_t n, int64_t in,
                int64_t out);
/* y = a + b, or a * b with b broadcast over H, W when b is [N, C, 1, 1]. */
void ref_binary(cv_op op, const float *a, const float *b, float *y, const cv_shape4 *as,
                const cv_shape4 *bs);
void ref_concat(const float *const *xs, const cv_shape4 *shapes, int n, float *y);
void ref_softmax(const float *x, float *y, int64_t rows, int64_t cols);

#endif
